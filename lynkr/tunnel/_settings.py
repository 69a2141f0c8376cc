"""`TunnelSettings`: the gateway side of the callback tunnel (`LYNKR_TUNNEL_*`)."""

from __future__ import annotations

from dataclasses import dataclass

from lynkr._env import Env

__all__ = ["TunnelSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TunnelSettings:
    """How long tunnelled calls wait, how connectors are watched, which transports serve."""

    call_timeout: float = 30.0  # LYNKR_TUNNEL_CALL_TIMEOUT: a call's whole wait for its result
    ws: bool = True  # LYNKR_TUNNEL_WS: off refuses the WebSocket (connectors poll)
    heartbeat: float = 15.0  # LYNKR_TUNNEL_HEARTBEAT: seconds between pings
    grace: float = 60.0  # LYNKR_TUNNEL_GRACE: a gone connector's tools stay offered this long

    @classmethod
    def from_env(cls, env: Env) -> TunnelSettings:
        """Read LYNKR_TUNNEL_CALL_TIMEOUT, LYNKR_TUNNEL_WS, LYNKR_TUNNEL_HEARTBEAT and
        LYNKR_TUNNEL_GRACE."""
        grace = env.float("LYNKR_TUNNEL_GRACE", 60.0)
        if grace < 0:
            env.problems.append(f"LYNKR_TUNNEL_GRACE: {grace} is below 0")
            grace = 60.0
        return cls(call_timeout=env.positive("LYNKR_TUNNEL_CALL_TIMEOUT", 30.0),
                   ws=env.bool("LYNKR_TUNNEL_WS", True),
                   heartbeat=env.positive("LYNKR_TUNNEL_HEARTBEAT", 15.0), grace=grace)
