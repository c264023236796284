"""Server addresses: resolving host names, and telling names from addresses.

A pool remembers the address (ip, port) each connection reached. When a host name is
re-resolved and no longer lists an address, the connections to it are retired (see
:meth:`poolwarden._core.PoolCore.moved`); a failover demotes one address
(:meth:`~poolwarden._core.PoolCore.demote`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .url_mask import authority_end

if TYPE_CHECKING:
    from ..adapters.base import BaseAdapter

__all__ = ["Resolver", "address_text", "check_resolver", "is_name", "resolve"]

#: ``resolver(host, port)`` -> the addresses ``(ip, port)`` the name stands for now.
Resolver = Callable[[str, int], Sequence[tuple[str, int]]]


def resolve(host: str, port: int) -> list[tuple[str, int]]:
    """The TCP addresses ``host`` resolves to now (what drivers connect to), in the
    resolver's order, without duplicates."""
    found: list[tuple[str, int]] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = (str(sockaddr[0]), int(sockaddr[1]))
        if address not in found:
            found.append(address)
    return found


def is_name(host: str | None) -> bool:
    """Whether ``host`` is a name that DNS may point elsewhere later (not an IP address,
    not a Unix socket directory)."""
    if not host or host.startswith("/"):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def address_text(host: str | None, port: int | None) -> str:
    """``host:port`` as messages show it (``[v6]:port`` for IPv6)."""
    shown = host or "localhost"
    if ":" in shown:
        shown = f"[{shown}]"
    return shown if port is None else f"{shown}:{port}"


def check_resolver(value: object) -> Resolver | None:
    """A resolver callable, or None; anything else is a ValueError naming the argument."""
    if value is None or callable(value):
        return value
    raise ValueError(
        "resolver must be a callable (host, port) -> [(ip, port), ...] or None, "
        f"got {type(value).__name__}"
    )


def watched_names(adapter: BaseAdapter) -> list[tuple[str, int]]:
    """The host names (with ports) of an adapter's URL that DNS may move: the ones a
    pool re-resolves. Empty for IP addresses, sockets and callable targets."""
    port = adapter.default_port
    return [(host, p or port) for host, p in adapter.hosts() if is_name(host) and (p or port)]


def with_hosts(target: object, hosts: Sequence[str]) -> str:
    """``target`` (a URL) with its host replaced by ``hosts`` (``"name"`` or
    ``"name:port"`` each); a ValueError names what is wrong."""
    if not isinstance(target, str):
        raise ValueError("hosts applies to URL targets only; the callable picks its server")
    if isinstance(hosts, str) or not hosts or not all(isinstance(h, str) and h for h in hosts):
        raise ValueError(
            f"hosts must be a non-empty list of 'host' or 'host:port' strings, got {hosts!r}"
        )
    scheme, _, rest = target.partition("://")
    netloc_end = authority_end(rest, 0)
    userinfo, at, _ = rest[:netloc_end].rpartition("@")
    return f"{scheme}://{userinfo}{at}{','.join(hosts)}{rest[netloc_end:]}"
