"""`lynkr config [--json]`: every documented setting with its effective value.

One row per variable of README's "Settings" tables, in their order (a test parses the
README and compares, so the two cannot drift). Secrets show only their last four
characters (`lynkr.config.mask`). A backend that is not configured shows its
variables empty: none of them is in effect. `--json` prints one object, variable →
value (numbers and booleans as JSON ones, unset as null).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lynkr.config import Settings
    from lynkr.providers import BackendSettings

__all__ = ["effective_settings", "register"]

_BACKEND_VARIABLES = {  # provider → its variables, in README order
    "databricks": ("DATABRICKS_API_BASE", "DATABRICKS_API_KEY", "DATABRICKS_ENDPOINT_PATH"),
    "azure-anthropic": ("AZURE_ANTHROPIC_ENDPOINT", "AZURE_ANTHROPIC_API_KEY",
                        "AZURE_ANTHROPIC_VERSION"),
    "openai": ("OPENAI_BASE_URL", "OPENAI_API_KEY"),
    "anthropic": ("ANTHROPIC_UPSTREAM_URL", "ANTHROPIC_UPSTREAM_API_KEY"),
}


def effective_settings(settings: Settings) -> list[tuple[str, Any]]:
    """Every documented setting as (NAME, value), secrets masked, in README order.

    Values keep their type (int, float, bool, str) and are None when unset; lists are
    joined as they are written in the environment.
    """
    from eventstore import redact_url

    server = settings.server
    rows: list[tuple[str, Any]] = [
        ("HOST", server.host), ("PORT", server.port), ("LYNKR_DATA_DIR", server.data_dir),
        ("WORKSPACE_ROOT", server.workspace_root), ("LOG_LEVEL", server.log_level),
        ("LOG_FORMAT", server.log_format), ("LYNKR_DURABILITY", server.durability),
        ("LYNKR_STORE_URL", redact_url(settings.store_url)),
        ("LYNKR_PROJECTOR", server.projector),
        ("LYNKR_MAX_LIVE_SESSIONS", server.max_live_sessions),
        ("LYNKR_SHUTDOWN_GRACE_S", server.shutdown_grace), *_auth_rows(settings),
    ]
    rows += _provider_rows(settings) + _cache_rows(settings) + _tool_rows(settings)
    rows += _mcp_rows(settings) + _gateway_rows(settings) + _tunnel_rows(settings)
    return [(name, str(value) if isinstance(value, Path) else value) for name, value in rows]


def _auth_rows(settings: Settings) -> list[tuple[str, Any]]:
    """The team gateway's authentication section, in README order."""
    from lynkr.config import mask

    auth, jwt = settings.auth, settings.auth.jwt
    return [
        ("LYNKR_AUTH", auth.describe()),
        ("LYNKR_KEYS_ROTATION_GRACE", auth.rotation_grace),
        ("LYNKR_KEYS_REFRESH", auth.refresh),
        ("LYNKR_JWT_SECRET", mask("LYNKR_JWT_SECRET", jwt.secret)),
        ("LYNKR_JWT_PUBLIC_KEY_FILE", jwt.public_key_file),
        ("LYNKR_JWT_JWKS_FILE", jwt.jwks_file), ("LYNKR_JWT_JWKS_URL", jwt.jwks_url),
        ("LYNKR_JWT_JWKS_TTL", jwt.jwks_ttl),
        ("LYNKR_JWT_ISSUER", jwt.issuer), ("LYNKR_JWT_AUDIENCE", jwt.audience),
        ("LYNKR_JWT_LEEWAY", jwt.leeway),
        ("LYNKR_JWT_USER_CLAIM", jwt.user_claim), ("LYNKR_JWT_TIER_CLAIM", jwt.tier_claim),
        ("LYNKR_JWT_SCOPES_CLAIM", jwt.scopes_claim),
        ("LYNKR_JWT_DEFAULT_TIER", jwt.default_tier),
        ("LYNKR_JWT_DEFAULT_SCOPES", ",".join(jwt.default_scopes)),
    ]


def _backend_rows(kind: str, backend: BackendSettings | None) -> list[tuple[str, Any]]:
    """One backend's variables; all None when it is not configured."""
    from lynkr.config import mask

    names = _BACKEND_VARIABLES[kind]
    if backend is None:
        return [(name, None) for name in names]
    where, key = names[0], names[1]
    values: list[tuple[str, Any]] = [(where, backend.base_url if kind in ("databricks", "openai")
                                      else backend.url), (key, mask(key, backend.api_key))]
    if kind == "databricks":
        values.append((names[2], backend.url.removeprefix(backend.base_url)))
    elif kind == "azure-anthropic":
        values.append((names[2], backend.api_version))
    return values


def _provider_rows(settings: Settings) -> list[tuple[str, Any]]:
    providers = settings.providers
    res = providers.resilience
    rows: list[tuple[str, Any]] = [("MODEL_PROVIDER", providers.provider)]
    for kind in _BACKEND_VARIABLES:
        rows += _backend_rows(kind, providers.backends.get(kind))
    return [*rows,
        ("MODEL_DEFAULT", providers.models.default), ("MODEL_OPUS", providers.models.opus),
        ("MODEL_SONNET", providers.models.sonnet), ("MODEL_HAIKU", providers.models.haiku),
        ("MODEL_MAX_TOKENS", providers.max_tokens_cap),
        ("ANTHROPIC_BETA_DROP", ",".join(providers.drop_betas)),
        ("UPSTREAM_CONNECT_TIMEOUT", res.connect_timeout),
        ("UPSTREAM_READ_TIMEOUT", res.read_timeout),
        ("UPSTREAM_MAX_RETRIES", res.max_retries),
        ("UPSTREAM_RETRY_BASE_DELAY", res.retry_base_delay),
        ("UPSTREAM_RETRY_MAX_DELAY", res.retry_max_delay),
        ("UPSTREAM_POOL_SIZE", res.pool_size),
        ("CIRCUIT_BREAKER_THRESHOLD", res.breaker_threshold),
        ("CIRCUIT_BREAKER_RESET_SECONDS", res.breaker_reset),
        ("OPENAI_REASONING_REPLAY", providers.reasoning_replay),
        ("LOOP_GUARD_EMPTY_ANSWERS", _off(providers.loop_empty_answers)),
        ("LOOP_GUARD_REPEATS", _off(providers.loop_repeats)),
        ("LOOP_GUARD_WINDOW_S", providers.loop_window_s),
    ]


def _cache_rows(settings: Settings) -> list[tuple[str, Any]]:
    """The prompt cache section, in README order."""
    cache = settings.cache
    return [("PROMPT_CACHE_ENABLED", cache.enabled), ("PROMPT_CACHE_TTL_MS", cache.ttl_ms),
            ("PROMPT_CACHE_MAX_ENTRIES", cache.max_entries),
            ("PROMPT_CACHE_NONDETERMINISTIC", cache.nondeterministic)]


def _off(limit: int | None) -> int | str:
    return "off" if limit is None else limit


def _joined(values: Any, sep: str = ",") -> str:
    return sep.join(str(v) for v in values)


def _tool_rows(settings: Settings) -> list[tuple[str, Any]]:
    """The policy and indexer sections, in README order."""
    pol, idx = settings.policy, settings.indexer
    return [
        ("LYNKR_SERVER_TOOLS", settings.server_tools.describe()),
        ("POLICY_MAX_STEPS", pol.max_steps), ("TOOL_RESULT_MAX_BYTES", pol.result_max_bytes),
        ("POLICY_GIT_ALLOW_PUSH", pol.git_allow_push),
        ("POLICY_GIT_REQUIRE_TESTS", pol.git_require_tests),
        ("POLICY_GIT_TEST_COMMAND", pol.git_test_command),
        ("POLICY_GIT_TIMEOUT_MS", pol.git_timeout_ms),
        ("WORKSPACE_TEST_COMMAND", pol.test_command),
        ("WORKSPACE_TEST_TIMEOUT_MS", pol.test_timeout_ms),
        ("WORKSPACE_TEST_COVERAGE_FILES", _joined(pol.test_coverage_files)),
        ("WORKSPACE_FS_MAX_READ_BYTES", pol.fs_max_read_bytes),
        ("WORKSPACE_FS_MAX_WRITE_BYTES", pol.fs_max_write_bytes),
        ("WORKSPACE_FS_SEARCH_MAX_RESULTS", pol.fs_search_max_results),
        ("WEB_SEARCH_ALLOWED_HOSTS", _joined(pol.web_allowed_hosts)),
        ("WEB_FETCH_ALLOW_PRIVATE_HOSTS", _joined(pol.web_fetch_allow_private_hosts)),
        ("WEB_FETCH_MAX_BYTES", pol.web_fetch_max_bytes),
        ("WEB_FETCH_TIMEOUT_MS", pol.web_fetch_timeout_ms),
        ("WEB_FETCH_MAX_REDIRECTS", pol.web_fetch_max_redirects),
        ("WEB_FETCH_CA_BUNDLE", pol.web_fetch_ca_bundle),
        ("WEB_SEARCH_ENDPOINT", pol.web_search_endpoint),
        ("INDEXER_MAX_FILE_BYTES", idx.max_file_bytes),
        ("INDEXER_IGNORE", _joined(idx.ignore_globs)), ("INDEXER_WORKERS", idx.workers),
        ("INDEXER_CLAUDE_MD", idx.claude_md),
        ("INDEXER_VERIFY_CONTENT", idx.verify_content),
    ]


def _mcp_rows(settings: Settings) -> list[tuple[str, Any]]:
    """The MCP section, in README order."""
    from lynkr.config import mask

    mcp = settings.mcp
    box, restart = mcp.sandbox, mcp.restart
    return [
        ("MCP_SERVER_MANIFEST", mcp.manifest),
        ("MCP_MANIFEST_DIRS", _joined(mcp.manifest_dirs, ";")),
        ("MCP_PROTOCOL_MODE", mcp.protocol_mode),
        ("MCP_REQUEST_TIMEOUT", mcp.request_timeout), ("MCP_START_TIMEOUT", mcp.start_timeout),
        ("MCP_RESTART_BASE_DELAY", restart.base_delay), ("MCP_RESTART_FACTOR", restart.factor),
        ("MCP_RESTART_MAX_DELAY", restart.max_delay),
        ("MCP_MAX_RESTARTS", restart.max_restarts), ("MCP_RESTART_WINDOW", restart.window),
        ("MCP_SHUTDOWN_GRACE", mcp.shutdown_grace), ("MCP_TERM_TIMEOUT", mcp.term_timeout),
        ("MCP_SANDBOX_ENABLED", box.enabled), ("MCP_SANDBOX_RUNTIME", box.runtime),
        ("MCP_SANDBOX_IMAGE", box.image), ("MCP_SANDBOX_WORKSPACE", box.workspace),
        ("MCP_SANDBOX_ALLOW_NETWORK", box.allow_network),
        ("MCP_SANDBOX_ENV_ALLOW", _joined(box.env_allow)),
        ("MCP_SANDBOX_RO_PATHS", _joined(box.ro_paths, ";")),
        ("LYNKR_ADMIN_TOKEN", mask("LYNKR_ADMIN_TOKEN", mcp.admin_token)),
    ]


def _gateway_rows(settings: Settings) -> list[tuple[str, Any]]:
    """Rate limits and routing by task, in README order."""
    from eventstore import redact_url

    limits, routing = settings.limits, settings.routing
    return [
        ("LYNKR_LIMITS_BY", limits.by), ("LYNKR_LIMITS_TZ", limits.tz),
        ("LYNKR_LIMITS_COUNT_FREE_ROUTES", limits.count_free_routes),
        ("LYNKR_LIMITS_STORE", redact_url(limits.store)),
        ("LYNKR_LIMITS_SLOT_TTL_S", limits.slot_ttl),
        ("ROUTER_BACKGROUND_MODEL", routing.background_model),
        ("ROUTER_THINK_MODEL", routing.think_model),
        ("ROUTER_LONG_CONTEXT_MODEL", routing.long_context_model),
        ("ROUTER_LONG_CONTEXT_THRESHOLD", routing.long_context_threshold),
        ("ROUTER_TASK_MODELS", routing.describe_tasks() or None),
    ]


def _tunnel_rows(settings: Settings) -> list[tuple[str, Any]]:
    """The callback tunnel's gateway side, in README order."""
    tunnel = settings.tunnel
    return [("LYNKR_TUNNEL_CALL_TIMEOUT", tunnel.call_timeout), ("LYNKR_TUNNEL_WS", tunnel.ws),
            ("LYNKR_TUNNEL_HEARTBEAT", tunnel.heartbeat), ("LYNKR_TUNNEL_GRACE", tunnel.grace)]


def _config(args: argparse.Namespace) -> int:
    from lynkr.config import load_settings

    settings = load_settings()
    rows = effective_settings(settings)
    missing = settings.providers.missing_message() if settings.providers.active is None else None
    if args.json:
        print(json.dumps(dict(rows), indent=2))
        if missing:
            print(f"lynkr: note: {missing}", file=sys.stderr)
        return 0
    for name, value in rows:
        print(f"{name}={'' if value is None else value}")
    if missing:
        print(f"# {missing}")
    return 0


def register(subparsers: Any) -> None:
    """Add `config`."""
    config = subparsers.add_parser(
        "config", help="print every setting's effective value, secrets masked",
        description="Print every documented setting (README \"Settings\") with its effective "
                    "value, secrets masked.")
    config.add_argument("--json", action="store_true", help="print one JSON object")
    config.set_defaults(handler=_config)
