"""The proxy in front of the server, as doctor finds it: ProxySQL from its answer to
``select @@version_comment limit 1``, PgBouncer from its own cancel key, and PgBouncer's
pool mode and limits from its admin console (database ``pgbouncer``, with the URL's login
or the one ``--proxy-admin`` gives)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..adapters._proxies import (
    PGBOUNCER,
    PGBOUNCER_ADMIN_COMMANDS,
    PROXYSQL,
    ProxyInfo,
    admin_rows,
    pgbouncer_admin_kwargs,
    pgbouncer_info_from_admin,
)
from .errors import describe_connect_error, driver_message
from .target import Target
from .topology import ProxyFacts

__all__ = ["ADMIN_SETTINGS", "read_proxy"]

#: PgBouncer settings doctor shows (those that bound connections, and what decides the
#: rules); ``max_prepared_statements`` exists from 1.21.
ADMIN_SETTINGS = (
    "pool_mode",
    "max_client_conn",
    "default_pool_size",
    "reserve_pool_size",
    "max_db_connections",
    "max_user_connections",
    "max_prepared_statements",
    "client_idle_timeout",
    "server_reset_query",
)


def read_proxy(host: Target, detected: str | None, admin: Target | None) -> ProxyFacts | None:
    """The proxy at ``host`` (the target of one host), given what the host probe
    ``detected``; ``admin``: the ``--proxy-admin`` URL, which says PgBouncer is there."""
    if detected == PROXYSQL:
        return ProxyFacts(ProxyInfo(PROXYSQL, source="detected"))
    if detected != PGBOUNCER and admin is None:
        return None
    source = "detected" if detected == PGBOUNCER else "--proxy-admin"
    console = admin or host
    where = f"{console.url.scheme}://{console.url.host}:{console.url.port}/pgbouncer"
    try:
        shown = _admin_console(console)
    except Exception as exc:
        message = describe_connect_error(exc, where).removeprefix("cannot connect to ")
        if "not allowed" in driver_message(exc):
            user = console.url.username or "this login"
            message = f"{user} is not in PgBouncer's admin_users or stats_users ('not allowed')"
        return ProxyFacts(ProxyInfo(PGBOUNCER, source=source), admin_error=message)
    return _from_console(shown, host.url.database, host.url.username)


def _admin_console(console: Target) -> dict[str, list[dict[str, Any]]]:
    """Each of PGBOUNCER_ADMIN_COMMANDS's rows (a command PgBouncer refuses: none)."""
    kwargs = pgbouncer_admin_kwargs(console.adapter().kwargs)
    if console.url.driver == "psycopg":
        import psycopg

        raw: Any = psycopg.connect(**kwargs)
    else:
        import psycopg2

        kwargs.pop("autocommit")  # psycopg2 takes it as an attribute only
        raw = psycopg2.connect(**kwargs)
        raw.autocommit = True
    shown: dict[str, list[dict[str, Any]]] = {}
    try:
        for command in PGBOUNCER_ADMIN_COMMANDS:
            cursor = raw.cursor()
            try:
                cursor.execute(command)
                shown[command] = admin_rows(cursor.description, cursor.fetchall())
            except Exception:
                # An older PgBouncer lacks a command, a stats_users login some: what the
                # others said is still worth having.
                shown[command] = []
            finally:
                cursor.close()
    finally:
        raw.close()
    return shown


def _number(value: Any) -> int | None:
    """A PgBouncer count; 0 and negatives (unset) are None."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _row_for(rows: Sequence[dict[str, Any]], name: str | None) -> dict[str, Any]:
    """The database's row of SHOW DATABASES; PgBouncer's ``*`` (fallback) entry if the
    database has none of its own."""
    by_name = {str(row.get("name")): row for row in rows}
    return by_name.get(str(name)) or by_name.get("*") or {}


def _from_console(
    shown: dict[str, list[dict[str, Any]]], database: str | None, user: str | None
) -> ProxyFacts:
    info = pgbouncer_info_from_admin(shown, database, user)
    config = {str(row.get("key")): row.get("value") for row in shown.get("SHOW CONFIG", [])}
    row = _row_for(shown.get("SHOW DATABASES", []), database)
    # SHOW DATABASES shows the pool size in effect (default_pool_size unless the
    # database sets its own) and the database's own max_db_connections (0: the global).
    pool_size = _number(row.get("pool_size")) or _number(config.get("default_pool_size"))
    reserve = row.get("reserve_pool", config.get("reserve_pool_size"))
    settings = {name: config[name] for name in ADMIN_SETTINGS if name in config}
    if row:
        settings[f"pool_size ({row.get('name')})"] = row.get("pool_size")
    return ProxyFacts(
        info,
        max_client_conn=_number(config.get("max_client_conn")),
        pool_size=pool_size,
        reserve_pool=_number(reserve) or 0,
        max_db_connections=_number(row.get("max_connections"))
        or _number(config.get("max_db_connections")),
        max_user_connections=_number(config.get("max_user_connections")),
        settings=settings,
    )
