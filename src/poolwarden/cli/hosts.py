"""Each host of a URL questioned over a connection of its own: whether it answers, its
version, its role and what the role was read from, its connection limit, and whether a
proxy answered instead of a server. All hosts at once, each within the connect timeout.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from ..adapters._proxies import (
    PGBOUNCER,
    PGBOUNCER_DETECTION_SQL,
    PROXYSQL,
    PROXYSQL_DETECTION_SQL,
    is_pgbouncer,
    is_proxysql,
)
from .errors import CommandError
from .target import Target, fetch_all
from .topology import HostFacts

__all__ = ["Probe", "probe_hosts"]

#: Time a host that accepted the connection gets for the few queries that follow.
QUERY_ALLOWANCE = 5.0

#: MySQL/MariaDB variables that make a server read-only (super_read_only: MySQL only).
MYSQL_ROLE_VARIABLES = ("read_only", "super_read_only", "innodb_read_only")

#: One round trip for PostgreSQL (``current_setting(name, true)`` is NULL where a
#: version lacks the setting: in_hot_standby before 14, reserved_connections before 16).
POSTGRES_HOST_QUERY = (
    "SELECT current_setting('server_version'), pg_catalog.pg_is_in_recovery(), "
    "current_setting('in_hot_standby', true), "
    "current_setting('default_transaction_read_only'), "
    "current_setting('max_connections'), current_setting('superuser_reserved_connections'), "
    "current_setting('reserved_connections', true)"
)


@dataclass(frozen=True)
class Probe:
    """One host's facts, and for a host that could not be questioned the one-line
    error doctor shows when no host answers."""

    facts: HostFacts
    failure: CommandError | None = None


def probe_hosts(target: Target) -> list[Probe]:
    """Question every host of ``target``'s URL, each over its own connection, all at the
    same time: a host that does not answer costs the connect timeout once, not per host."""
    hosts = target.hosts
    probes: list[Probe | None] = [None] * len(hosts)

    def run(index: int, host: str, port: int | None) -> None:
        probes[index] = probe_host(target, host, port)

    threads = [
        threading.Thread(target=run, args=(i, host, port), name="poolwarden-probe", daemon=True)
        for i, (host, port) in enumerate(hosts)
    ]
    for thread in threads:
        thread.start()
    # A host that hangs after the handshake is given up at the deadline; its daemon
    # thread ends with the command.
    deadline = time.monotonic() + target.connect_timeout + 0.5 + QUERY_ALLOWANCE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    done = []
    for (host, port), probe in zip(hosts, probes, strict=True):
        if probe is None:
            reason = f"no answer to doctor's queries within {QUERY_ALLOWANCE:g} s"
            probe = Probe(HostFacts(host, port, error=reason), CommandError(reason))
        done.append(probe)
    return done


def probe_host(target: Target, host: str, port: int | None) -> Probe:
    """Question one host of ``target``'s URL."""
    one = target.for_host(host, port)
    try:
        raw = one.connect()
    except CommandError as exc:
        reason = str(exc).removeprefix(f"cannot connect to {one}: ")
        return Probe(HostFacts(host, port, error=reason), exc)
    try:
        return Probe(_question(one, raw, host, port))
    except CommandError as exc:
        return Probe(HostFacts(host, port, error=str(exc)), exc)
    finally:
        try:
            raw.close()
        except Exception:
            pass


def _question(one: Target, raw: Any, host: str, port: int | None) -> HostFacts:
    try:
        role = one.adapter().server_role(raw)  # as the pool reads it
    except Exception:
        role = None
    try:
        if one.kind == "mysql":
            return _mysql(raw, host, port, role)
        return _postgres(raw, host, port, role)
    finally:
        try:
            raw.rollback()
        except Exception:
            pass


def mysql_product(version: str) -> str:
    """``MariaDB 10.11.6`` or ``MySQL 8.0.36`` from ``VERSION()``."""
    if "mariadb" in version.lower():
        return f"MariaDB {version.split('-')[0]}"
    return f"MySQL {version}"


def _mysql(raw: Any, host: str, port: int | None, role: str | None) -> HostFacts:
    # ProxySQL answers exactly this query itself (see adapters._proxies); a server with
    # its own version comment.
    detected = fetch_all(raw, PROXYSQL_DETECTION_SQL)
    proxy = PROXYSQL if is_proxysql(detected[0] if detected else None) else None
    version = str(fetch_all(raw, "SELECT VERSION()")[0][0])
    names = (*MYSQL_ROLE_VARIABLES, "max_connections")
    listed = ", ".join(f"'{name}'" for name in names)
    rows = fetch_all(raw, f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({listed})")
    found = {str(name): str(value) for name, value in rows}
    readings = {name: found[name] for name in MYSQL_ROLE_VARIABLES if name in found}
    limit = found.get("max_connections")
    return HostFacts(
        host,
        port,
        product=mysql_product(version),
        role=role,
        readings=readings,
        max_connections=int(limit) if limit and limit.isdigit() else None,
        proxy=proxy,
    )


def _postgres(raw: Any, host: str, port: int | None, role: str | None) -> HostFacts:
    # Behind PgBouncer the handshake's backend pid is PgBouncer's own key, not the
    # session's (see adapters._proxies.is_pgbouncer).
    try:
        key_pid = raw.info.backend_pid
    except Exception:
        key_pid = None
    session = fetch_all(raw, PGBOUNCER_DETECTION_SQL)
    proxy = PGBOUNCER if is_pgbouncer(key_pid, session[0] if session else None) else None
    version, recovery, hot_standby, read_only, limit, superuser, reserved = fetch_all(
        raw, POSTGRES_HOST_QUERY
    )[0]
    readings = {"pg_is_in_recovery()": str(bool(recovery)).lower()}
    if hot_standby is not None:
        readings["in_hot_standby"] = str(hot_standby)
    readings["default_transaction_read_only"] = str(read_only)
    held = int(superuser or 0) + int(reserved or 0)
    return HostFacts(
        host,
        port,
        product=f"PostgreSQL {str(version).split()[0]}",
        role=role,
        readings=readings,
        max_connections=max(0, int(limit) - held),
        reserved_connections=held,
        proxy=proxy,
    )
