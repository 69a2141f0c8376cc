"""The SSRF guard of the web tools: host allow-list and address checks, as decisions.

`decide_url` checks the scheme and the host against WEB_SEARCH_ALLOWED_HOSTS
(exact names, ``*.suffix`` wildcards, or ``*`` for any host). `decide_addresses`
checks every address a host resolved to: loopback, private, link-local, cloud
metadata, unspecified, multicast and other non-global addresses are refused unless
the host is named in WEB_FETCH_ALLOW_PRIVATE_HOSTS (the explicit lift). The fetcher
then connects to the checked address itself, so DNS cannot change it afterwards.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

from lynkr.tools import Decision, PolicySettings

__all__ = ["address_problem", "decide_addresses", "decide_url", "host_allowed"]

_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"),
                       ipaddress.ip_address("100.100.100.200"),
                       ipaddress.ip_address("fd00:ec2::254")})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_problem(ip: str) -> str | None:
    """Why `ip` must not be fetched from, or None for a public address."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        elif addr in _NAT64:
            addr = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    checks = ((addr in _METADATA, "a cloud metadata address"),
              (addr.is_loopback, "a loopback address"),
              (addr.is_unspecified, "the unspecified address"),
              (addr.is_link_local, "a link-local address"),
              (addr.is_multicast, "a multicast address"),
              (addr.is_private, "a private address"),
              (not addr.is_global, "not a globally routable address"))
    return next((why for hit, why in checks if hit), None)


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether `host` matches an entry of the allow-list."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        if entry == "*" or entry == host:
            return True
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
    return False


def decide_url(settings: PolicySettings, url: str) -> tuple[Decision, SplitResult | None]:
    """The scheme and host-allow-list decision for `url`, and its parts when allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return Decision.deny("web", "web.url.valid", "the URL cannot be parsed", url=url), None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return Decision.deny("web", "web.url.valid", "only http(s) URLs with a host are fetched",
                             url=url), None
    if parts.username or parts.password:
        return Decision.deny("web", "web.url.valid", "URLs with credentials are refused",
                             host=host), None
    if not host_allowed(host, settings.web_allowed_hosts):
        return Decision.deny(
            "web", "web.host.allowed", f"{host} is not on the allow-list",
            setting=f"WEB_SEARCH_ALLOWED_HOSTS (add {host})", host=host, port=port), None
    return Decision.allow("web", "web.host.allowed", f"{host} is on the allow-list",
                          host=host, port=port), parts


def decide_addresses(settings: PolicySettings, host: str, ips: list[str]) -> Decision:
    """Allow only when every address of `host` is public, or the host is lifted."""
    if host.lower() in settings.web_fetch_allow_private_hosts:
        return Decision.allow("web", "web.address.lifted",
                              f"WEB_FETCH_ALLOW_PRIVATE_HOSTS lifts the address check for {host}",
                              host=host, addresses=tuple(ips))
    for ip in ips:
        problem = address_problem(ip)
        if problem is not None:
            return Decision.deny(
                "web", "web.address.public", f"{host} resolves to {ip}, {problem}",
                setting=f"WEB_FETCH_ALLOW_PRIVATE_HOSTS={host}", host=host, address=ip)
    return Decision.allow("web", "web.address.public", f"every address of {host} is public",
                          host=host, addresses=tuple(ips))
