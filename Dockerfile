# Lynkr gateway image: slim Python, pinned dependencies, non-root user, data volume.
#
#   docker build -t lynkr .
#   docker run --network host -v lynkr-data:/data \
#     -e MODEL_PROVIDER=openai -e OPENAI_BASE_URL=http://127.0.0.1:11434/v1 lynkr
#
# Lynkr binds 127.0.0.1 (it refuses other addresses until API keys / JWT exist), so use
# host networking; Claude Code then uses ANTHROPIC_BASE_URL=http://127.0.0.1:8080.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
COPY eventstore ./eventstore
COPY actors ./actors
COPY lynkr ./lynkr
RUN pip install -c requirements.lock . \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin lynkr \
 && mkdir -p /data /workspace \
 && chown lynkr:lynkr /data /workspace

USER lynkr
ENV HOST=127.0.0.1 \
    PORT=8080 \
    LYNKR_DATA_DIR=/data \
    WORKSPACE_ROOT=/workspace
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=4)" || exit 1

CMD ["lynkr", "serve"]
