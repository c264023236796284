# Generated from src/poolwarden/_async/_detect.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""What stands between the pool and its server: PgBouncer or ProxySQL, found on the
pool's first connection (one query, once per pool), and PgBouncer's pool mode read from
its admin console when the pool's user may read it.

The knowledge (queries, what the answers mean, the rules each proxy needs) is in
:mod:`poolwarden.adapters._proxies`; this module only asks.
"""

from __future__ import annotations

import logging
from typing import Any

from ..adapters import Adapter
from ..adapters._proxies import (
    PGBOUNCER,
    PGBOUNCER_ADMIN_COMMANDS,
    PGBOUNCER_DETECTION_SQL,
    PROXYSQL,
    PROXYSQL_DETECTION_SQL,
    ProxyInfo,
    admin_rows,
    is_pgbouncer,
    is_proxysql,
    pgbouncer_admin_kwargs,
    pgbouncer_info_from_admin,
)

__all__ = ["detect_proxy"]

log = logging.getLogger("poolwarden")


def _done(value: Any) -> Any:
    """``value``: sync drivers return results."""
    return value


def detect_proxy(adapter: Adapter, raw: Any, setting: str | None) -> ProxyInfo | None:
    """The proxy in front of ``raw``'s server: as ``setting`` says (``"pgbouncer"``,
    ``"proxysql"``, ``None`` for none), or found out (``"auto"``). Errors are only
    logged: not knowing the proxy must not stop the pool."""
    if setting is None:
        return None
    try:
        kind = setting if setting != "auto" else _sniff(adapter, raw)
        if kind == PGBOUNCER:
            return _pgbouncer_info(adapter, "detected" if setting == "auto" else "configured")
        return None if kind is None else ProxyInfo(kind, source="detected")
    except Exception as exc:
        log.debug("detecting a proxy failed: %r", exc)
        return ProxyInfo(setting) if setting != "auto" else None


def _sniff(adapter: Adapter, raw: Any) -> str | None:
    """``"pgbouncer"``, ``"proxysql"`` or None, from one query on ``raw``."""
    if adapter.dialect == "postgresql":
        row = _first_row(adapter, raw, PGBOUNCER_DETECTION_SQL)
        return PGBOUNCER if is_pgbouncer(getattr(raw.info, "backend_pid", None), row) else None
    if adapter.dialect == "mysql":
        row = _first_row(adapter, raw, PROXYSQL_DETECTION_SQL)
        return PROXYSQL if is_proxysql(row) else None
    return None


def _first_row(adapter: Adapter, raw: Any, sql: str) -> Any:
    # PostgreSQL: outside a transaction block, which PgBouncer in statement mode refuses
    # (closing the connection), and which in transaction mode would pin a server.
    outside = adapter.dialect == "postgresql" and adapter.known_autocommit(raw) is False
    if outside:
        adapter.set_autocommit(raw, True)
    try:
        row = adapter.first_row(raw, sql)
        if adapter.needs_rollback(raw):
            adapter.rollback(raw)
    finally:
        if outside:
            adapter.set_autocommit(raw, False)
    return row


def _pgbouncer_info(adapter: Adapter, source: str) -> ProxyInfo:
    """PgBouncer's version and pool mode from its admin console (psycopg 3 only: the
    console speaks the simple query protocol, which ``Connection.execute`` uses without
    parameters); when the pool's user may not read it, the mode stays unknown and the
    rules of transaction mode apply."""
    connect = adapter._driver_connect
    if connect is None or adapter.name != "psycopg":
        return ProxyInfo(PGBOUNCER, source=source)
    try:
        conn = _done(connect(**pgbouncer_admin_kwargs(adapter.kwargs)))
    except Exception as exc:
        log.info(
            "PgBouncer in front of the server; its admin console is closed to this user "
            "(%s): its pool mode is unknown, so the rules of transaction mode apply",
            type(exc).__name__,
        )
        return ProxyInfo(PGBOUNCER, source=source)
    shown: dict[str, list[dict[str, Any]]] = {}
    try:
        for command in PGBOUNCER_ADMIN_COMMANDS:
            try:
                cursor = conn.execute(command)
                shown[command] = admin_rows(cursor.description, cursor.fetchall())
            except Exception as exc:
                log.debug("PgBouncer's %s failed: %r", command, exc)
    finally:
        _done(conn.close())
    return pgbouncer_info_from_admin(
        shown, adapter.kwargs.get("dbname"), adapter.kwargs.get("user")
    )
