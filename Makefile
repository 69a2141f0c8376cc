# Two commands on a fresh machine (Python 3.11; Node.js with npm for the end-to-end tests):
#
#   make serve    set up .venv on first use, then run the gateway   (make serve ARGS="--port 9090")
#   make test     set up .venv and the Claude Code CLI on first use, then run the suite
#                                                                    (make test ARGS="tests/lynkr/cli -x")
#
# Set-up runs once: .venv/.installed is a stamp, redone only when pyproject.toml or
# requirements.lock change, and the Claude Code CLI is installed into the git-ignored
# tools/.node/ only when it is not there. `.ci/run` ends with `make test`.

PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV := .venv
STAMP := $(VENV)/.installed
CLAUDE := tools/.node/node_modules/.bin/claude
CLAUDE_CODE := @anthropic-ai/claude-code@2.1.330

.PHONY: serve test setup

serve: $(STAMP)
	exec $(VENV)/bin/lynkr serve $(ARGS)

test: setup
	$(VENV)/bin/python -m pytest $(ARGS)

setup: $(STAMP) $(CLAUDE)

$(STAMP): pyproject.toml requirements.lock
	@echo "== python environment in $(VENV) ($(PYTHON); once, until pyproject.toml or requirements.lock change)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -c requirements.lock -e '.[test]'
	@touch $@

$(CLAUDE):
	@echo "== Claude Code CLI $(CLAUDE_CODE) for the end-to-end tests (into tools/.node, git-ignored)"
	npm install --silent --no-audit --no-fund --prefix tools/.node $(CLAUDE_CODE) >/dev/null
