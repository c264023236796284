"""What doctor learns about where a pool's connections go: each host of the URL (reachable
or not, its role, its limits), the proxy in front of the server, and what the pool needs
(its ``role``, its ``reset``, psycopg's ``prepare_threshold``). Data only, no I/O: the
checks in :mod:`poolwarden.cli.topology_checks` are functions of it, and the fixes they
suggest are applied to it by :func:`apply_topology_changes`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..adapters._proxies import PGBOUNCER, ProxyInfo
from ..adapters._roles import PRIMARY, STANDBY, accepts
from .fixes import apply_changes
from .server_settings import ServerFacts

__all__ = [
    "HostFacts",
    "PoolNeeds",
    "ProxyFacts",
    "Topology",
    "apply_topology_changes",
    "choose_host",
]


@dataclass(frozen=True)
class HostFacts:
    """One host of the URL, as a connection of its own found it."""

    host: str
    port: int | None
    #: Why it could not be questioned (password-free); None: it answered.
    error: str | None = None
    product: str = ""
    #: ``"primary"``, ``"standby"``, or None (unknown).
    role: str | None = None
    #: What the role was read from (read_only, in_hot_standby, ...), as the server named it.
    readings: dict[str, Any] = field(default_factory=dict)
    #: Connections ordinary clients may open there (max_connections less reserved slots).
    max_connections: int | None = None
    #: PostgreSQL's slots for superusers (and ``reserved_connections``), not in the above.
    reserved_connections: int = 0
    #: ``"pgbouncer"``, ``"proxysql"`` or None: what answered at this address.
    proxy: str | None = None

    @property
    def address(self) -> str:
        """``host:port`` as written in URLs (an IPv6 address in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def reachable(self) -> bool:
        """Whether a connection to it worked."""
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """The host for ``--json``."""
        return {
            "host": self.host,
            "port": self.port,
            "reachable": self.reachable,
            "error": self.error,
            "server": self.product or None,
            "role": self.role,
            "settings": self.readings,
            "max_connections": None
            if self.max_connections is None
            else self.max_connections + self.reserved_connections,
            "reserved_connections": self.reserved_connections,
            "proxy": self.proxy,
        }


@dataclass(frozen=True)
class ProxyFacts:
    """The proxy in front of the server doctor questioned, and its limits when known
    (PgBouncer's admin console); ``info`` is what poolwarden's pools go by."""

    info: ProxyInfo
    #: Why the admin console could not be read (None: it was, or it was not tried).
    admin_error: str | None = None
    #: PgBouncer's ``max_client_conn``: client connections it accepts, all clients together.
    max_client_conn: int | None = None
    #: The server connections of the pool for this database and user: the database's
    #: ``pool_size`` (``default_pool_size`` unless the database sets one) and ``reserve_pool``.
    pool_size: int | None = None
    reserve_pool: int = 0
    #: ``max_db_connections`` (the database's ``max_db_connections`` if it sets one) and
    #: ``max_user_connections``; None: no limit (0).
    max_db_connections: int | None = None
    max_user_connections: int | None = None
    #: Every setting read, for display and ``--json``.
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"pgbouncer"`` or ``"proxysql"``."""
        return self.info.kind

    @property
    def is_pgbouncer(self) -> bool:
        """Whether it is PgBouncer (whose limits doctor can read)."""
        return self.info.kind == PGBOUNCER

    @property
    def server_connections(self) -> int | None:
        """The most server connections PgBouncer opens for this database and user: its
        pool (and reserve pool), capped by ``max_db_connections`` and
        ``max_user_connections``; None when not known."""
        if self.pool_size is None:
            return None
        caps = [self.pool_size + self.reserve_pool, self.max_db_connections]
        caps.append(self.max_user_connections)
        return min(cap for cap in caps if cap is not None)

    def as_dict(self) -> dict[str, Any]:
        """The proxy for ``--json``."""
        return {
            "kind": self.kind,
            "pool_mode": self.info.pool_mode,
            "mode_assumed": self.info.mode if self.info.pool_mode is None else None,
            "version": ".".join(map(str, self.info.version)) if self.info.version else None,
            "source": self.info.source,
            "admin_error": self.admin_error,
            "max_client_conn": self.max_client_conn,
            "server_connections": self.server_connections,
            "settings": self.settings,
        }


@dataclass(frozen=True)
class PoolNeeds:
    """What the pool asks of the servers and of a proxy, and where each came from."""

    role: str = "any"
    role_source: str = "default"
    reset: str | None = "rollback"
    #: psycopg's prepare_threshold (None: it never prepares); only psycopg 3 prepares.
    prepare_threshold: int | None = 5
    prepare_source: str = "psycopg's default"
    driver: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The settings for ``--json``."""
        found: dict[str, Any] = {"role": self.role, "reset": self.reset}
        if self.driver == "psycopg":
            found["prepare_threshold"] = self.prepare_threshold
        return found


@dataclass(frozen=True)
class Topology:
    """The hosts, the one doctor read the server's settings from, and the proxy there."""

    hosts: tuple[HostFacts, ...]
    #: The address of the host doctor read the server's settings from.
    chosen: str | None = None
    proxy: ProxyFacts | None = None
    needs: PoolNeeds = PoolNeeds()

    @property
    def multi_host(self) -> bool:
        """Whether the URL lists several hosts."""
        return len(self.hosts) > 1

    @property
    def reachable(self) -> list[HostFacts]:
        """The hosts that answered."""
        return [host for host in self.hosts if host.reachable]

    @property
    def pooled(self) -> bool:
        """Behind PgBouncer: the server sees PgBouncer's connections, not the fleet's."""
        return self.proxy is not None and self.proxy.is_pgbouncer


def choose_host(hosts: list[HostFacts] | tuple[HostFacts, ...], role: str) -> HostFacts | None:
    """The host a pool needing ``role`` connects to first (as poolwarden tries them, in
    order): the first reachable host of that role (a standby first for
    ``prefer-standby``), else the first reachable one; None if none answered."""
    reachable = [host for host in hosts if host.reachable]
    wanted = STANDBY if role == "prefer-standby" else role
    for host in reachable:
        if accepts(wanted, host.role):
            return host
    return reachable[0] if reachable else None


def _with_host(topology: Topology, address: str, **changes: Any) -> Topology:
    hosts = tuple(
        dataclasses.replace(host, **changes) if host.address == address else host
        for host in topology.hosts
    )
    return dataclasses.replace(topology, hosts=hosts)


def apply_topology_changes(
    changes: dict[str, Any],
    settings: dict[str, Any],
    topology: Topology,
    facts: ServerFacts,
) -> tuple[dict[str, Any], Topology, ServerFacts]:
    """``changes`` (a finding's fix) applied to copies of the pool ``settings``, the
    ``topology`` and the server's ``facts``. Besides the keys of
    :func:`poolwarden.cli.fixes.apply_changes`: ``role``, ``reset``,
    ``prepare_threshold`` (the pool's); ``hosts.promote`` / ``hosts.drop`` (a host made
    a primary / removed from the URL); ``host.ADDRESS.max_connections``; ``proxy.NAME``
    (a PgBouncer setting)."""
    rest: dict[str, Any] = {}
    needs = topology.needs
    for name, value in changes.items():
        if name in ("role", "reset", "prepare_threshold"):
            needs = dataclasses.replace(needs, **{name: value})
        elif name == "hosts.promote":
            topology = _with_host(topology, value, role=PRIMARY)
        elif name == "hosts.drop":
            kept = tuple(host for host in topology.hosts if host.address != value)
            topology = dataclasses.replace(topology, hosts=kept)
        elif name.startswith("host.") and name.endswith(".max_connections"):
            address = name.removeprefix("host.").removesuffix(".max_connections")
            topology = _with_host(topology, address, max_connections=value)
        elif name.startswith("proxy."):
            assert topology.proxy is not None, f"{name} with no proxy"
            proxy = dataclasses.replace(topology.proxy, **{name.removeprefix("proxy."): value})
            topology = dataclasses.replace(topology, proxy=proxy)
        else:
            rest[name] = value
    settings, _, facts = apply_changes(rest, settings, None, facts)
    return settings, dataclasses.replace(topology, needs=needs), facts
