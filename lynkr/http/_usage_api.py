"""`GET /api/v1/usage`, and the rate limit of the routes that cost nothing.

`/api/v1/usage?by=day|model|key|user|provider&key=&user=&since=&until=` answers the
`usage` projection (caught up first) with an estimated cost per row. A caller without
the `admin` scope sees only its own key's usage: asking for another key or user is a
403 `permission_error`. With auth off (loopback) the caller is an admin.

`/health`, `/v1/health`, `/v1/models` and `/v1/messages/count_tokens` are not counted
against requests/min unless `LYNKR_LIMITS_COUNT_FREE_ROUTES` is on; then an over-limit
call is a 429 like `/v1/messages` (this hook runs after authentication).
"""

from __future__ import annotations

import json
from typing import Any

from quart import Blueprint, Response, current_app, g, request

from lynkr.errors import LynkrError, PermissionDeniedError
from lynkr.gateway import ANONYMOUS, Principal, record_refusal, report_query, usage_filters
from lynkr.gateway import with_cost as priced
from lynkr.http._errors import error_response

__all__ = ["FREE_PATHS", "usage_api"]

usage_api = Blueprint("usage", __name__)

FREE_PATHS = frozenset({"/health", "/v1/health", "/v1/models", "/v1/messages/count_tokens"})
"""Routes that cost nothing upstream (not counted unless configured)."""


def _system() -> Any:
    return current_app.extensions["lynkr"]


def _principal() -> Principal:
    principal = g.get("principal")
    return principal if isinstance(principal, Principal) else ANONYMOUS


@usage_api.before_app_request
async def count_free_route() -> Response | None:
    """With `LYNKR_LIMITS_COUNT_FREE_ROUTES`: count a free route per minute (429 if over)."""
    if request.path not in FREE_PATHS:
        return None
    system = _system()
    limiter = system.limiter
    if limiter is None:
        return None
    principal = _principal()
    try:
        refused = await limiter.acount_free_route(principal)
    except LynkrError as exc:  # the shared limits store is down: fail closed
        return error_response(exc.status, exc.error_type, exc.message)
    if refused is None:
        return None
    record = g.get("request_log")
    await record_refusal(system.store, refused,
                         request_id=record.request_id if record is not None else "",
                         key_id=principal.key_id, route=request.path)
    response = error_response(429, "rate_limit_error", refused.message, refused.retry_after)
    for name, value in refused.headers:
        response.headers[name.decode()] = value.decode()
    return response


@usage_api.get("/api/v1/usage")
async def usage() -> Response:
    """The caller's usage (an admin's: anyone's), grouped and filtered by the query."""
    args = request.args
    key, user = args.get("key"), args.get("user")
    since, until = args.get("since"), args.get("until")
    by = usage_filters(by=args.get("by"), since=since, until=until)
    principal = _principal()
    if not principal.allows("admin"):
        if (key is not None and key != principal.key_id) or (
                user is not None and user != principal.user):
            raise PermissionDeniedError("a key without the admin scope sees only its own usage")
        key = principal.key_id
    system = _system()
    sql, sql_args = report_query(by=by, key=key, user=user, since=since, until=until)
    projections = system.projections
    await projections.catch_up_now()
    rows = await projections.query(sql, sql_args)
    body = {"by": by[0], "data": priced(rows, system.settings.prices, by),
            "cost": "estimate (USD, from the price table)"}
    return Response(json.dumps(body), content_type="application/json")
