"""Who may see what in the session viewer.

With `LYNKR_AUTH=off` the gateway is bound to loopback and the viewer serves loopback
clients only (any other address is a 403 `permission_error`); they see everything.
With team auth on, a caller with the `admin` scope sees every session and row, and
anyone else only what their own user's keys recorded: `Viewer.user` is then the
user, and every query of the viewer filters on it (`_queries`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from lynkr.errors import PermissionDeniedError
from lynkr.gateway import Principal

__all__ = ["Viewer", "viewer_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Viewer:
    """What one caller of the viewer may see: everything (`user` None) or one user's."""

    user: str | None
    key_id: str | None  # the caller's own key (None with auth off)

    @property
    def sees_all(self) -> bool:
        """True for an admin, or a loopback client with auth off."""
        return self.user is None


def _is_loopback(remote_addr: str | None) -> bool:
    try:
        return ipaddress.ip_address((remote_addr or "").strip("[]")).is_loopback
    except ValueError:
        return False


def viewer_for(principal: Principal, *, auth_enabled: bool, remote_addr: str | None) -> Viewer:
    """The `Viewer` of an authenticated request (module docstring).

    Raises:
        PermissionDeniedError: auth is off and the client is not on loopback.
    """
    if not auth_enabled:
        if not _is_loopback(remote_addr):
            raise PermissionDeniedError("the session viewer is served to loopback clients "
                                        "only while LYNKR_AUTH is off")
        return Viewer(user=None, key_id=None)
    if principal.allows("admin"):
        return Viewer(user=None, key_id=principal.key_id)
    return Viewer(user=principal.user, key_id=principal.key_id)
