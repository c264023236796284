"""What the server says about connections: its limits, its timeouts and its counters.

Everything is read with statements any user may run (``SHOW VARIABLES``, ``SHOW STATUS``,
``pg_settings``, ``pg_stat_activity``, ``pg_roles``), so no admin rights are needed. The
session values are those of a connection made with the URL being checked, which are the
values the application's own connections get.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .target import fetch_all

__all__ = ["ServerFacts", "read_server_facts"]

MYSQL_VARIABLES = (
    "wait_timeout",
    "interactive_timeout",
    "max_connections",
    "max_user_connections",
    "connect_timeout",
    "net_read_timeout",
    "net_write_timeout",
    "max_statement_time",  # MariaDB, seconds
    "max_execution_time",  # MySQL 5.7.8+, milliseconds, SELECT only
)
MYSQL_STATUS = (
    "Threads_connected",
    "Threads_running",
    "Max_used_connections",
    "Aborted_clients",
    "Aborted_connects",
    "Connections",
    "Uptime",
)
POSTGRES_SETTINGS = (
    "max_connections",
    "superuser_reserved_connections",
    "reserved_connections",  # PostgreSQL 16+
    "idle_session_timeout",  # PostgreSQL 14+
    "idle_in_transaction_session_timeout",
    "statement_timeout",
    "tcp_keepalives_idle",
)


@dataclass
class ServerFacts:
    """The server's answers, in seconds and counts; None where a server has no such
    setting or the value means "no limit"."""

    kind: str
    product: str
    #: The idle timeout a pooled session gets: MySQL ``wait_timeout`` (session),
    #: PostgreSQL ``idle_session_timeout``.
    idle_timeout: float | None
    idle_timeout_name: str
    global_idle_timeout: float | None
    max_connections: int
    #: Slots ordinary users cannot take (PostgreSQL's superuser and reserved ones).
    reserved_connections: int
    #: Connections this account may open, if limited (MySQL ``max_user_connections``,
    #: PostgreSQL the role's ``CONNECTION LIMIT``).
    user_limit: int | None
    user_limit_name: str
    #: PostgreSQL's per-database ``CONNECTION LIMIT``.
    database_limit: int | None = None
    connected: int = 0
    running: int | None = None
    max_used: int | None = None
    uptime: float | None = None
    #: The statement time limit: MariaDB ``max_statement_time``, MySQL
    #: ``max_execution_time``, PostgreSQL ``statement_timeout``.
    statement_timeout: float | None = None
    statement_timeout_name: str = ""
    idle_in_transaction_timeout: float | None = None
    net_read_timeout: float | None = None
    net_write_timeout: float | None = None
    #: Every reading as the server named it, for display and ``--json``.
    readings: dict[str, Any] = field(default_factory=dict)

    @property
    def is_mariadb(self) -> bool:
        """MariaDB rather than MySQL (their statement limits and error codes differ)."""
        return self.product.startswith("MariaDB")

    @property
    def available_connections(self) -> int:
        """Connections ordinary clients may open, all accounts together."""
        return max(0, self.max_connections - self.reserved_connections)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _positive(value: float | None, scale: float = 1.0) -> float | None:
    """A timeout or limit where 0 (or less) means "none"."""
    return value * scale if value is not None and value > 0 else None


def read_server_facts(raw: Any, kind: str) -> ServerFacts:
    """Question the server behind the DB-API connection ``raw`` (``kind`` is the URL's
    dialect); ends with a rollback so nothing is left open."""
    try:
        return _read_mysql(raw) if kind == "mysql" else _read_postgres(raw)
    finally:
        try:
            raw.rollback()
        except Exception:
            pass


def _show(raw: Any, what: str, names: tuple[str, ...]) -> dict[str, str]:
    listed = ", ".join(f"'{name}'" for name in names)
    rows = fetch_all(raw, f"SHOW {what} WHERE Variable_name IN ({listed})")
    return {str(name): str(value) for name, value in rows}


def _read_mysql(raw: Any) -> ServerFacts:
    version = str(fetch_all(raw, "SELECT VERSION()")[0][0])
    session = _show(raw, "SESSION VARIABLES", MYSQL_VARIABLES)
    global_ = _show(raw, "GLOBAL VARIABLES", ("wait_timeout", "max_user_connections"))
    status = _show(raw, "GLOBAL STATUS", MYSQL_STATUS)
    mariadb = "mariadb" in version.lower()
    product = f"MariaDB {version.split('-')[0]}" if mariadb else f"MySQL {version}"
    readings: dict[str, Any] = {"version": version}
    readings["wait_timeout (session)"] = session.get("wait_timeout")
    readings["wait_timeout (global)"] = global_.get("wait_timeout")
    for name in MYSQL_VARIABLES[1:]:
        if name in session:
            label = f"{name} (session)" if name == "max_user_connections" else name
            readings[label] = session[name]
    readings["max_user_connections (global)"] = global_.get("max_user_connections")
    readings.update(status)
    # MariaDB's limit is in seconds, MySQL's in milliseconds.
    limit_name = "max_statement_time" if mariadb else "max_execution_time"
    limit = _positive(_number(session.get(limit_name)), 1.0 if mariadb else 0.001)
    user_limit = _positive(_number(session.get("max_user_connections")))

    def count(name: str) -> int | None:
        value = _number(status.get(name))
        return None if value is None else int(value)

    return ServerFacts(
        kind="mysql",
        product=product,
        idle_timeout=_positive(_number(session.get("wait_timeout"))),
        idle_timeout_name="wait_timeout",
        global_idle_timeout=_positive(_number(global_.get("wait_timeout"))),
        max_connections=int(_number(session.get("max_connections")) or 0),
        reserved_connections=0,
        user_limit=None if user_limit is None else int(user_limit),
        user_limit_name="max_user_connections",
        connected=count("Threads_connected") or 0,
        running=count("Threads_running"),
        max_used=count("Max_used_connections"),
        uptime=_number(status.get("Uptime")),
        statement_timeout=limit,
        statement_timeout_name=limit_name,
        net_read_timeout=_positive(_number(session.get("net_read_timeout"))),
        net_write_timeout=_positive(_number(session.get("net_write_timeout"))),
        readings=readings,
    )


#: pg_settings units -> seconds.
_PG_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0}


def _read_postgres(raw: Any) -> ServerFacts:
    version = str(fetch_all(raw, "SHOW server_version")[0][0])
    listed = ", ".join(f"'{name}'" for name in POSTGRES_SETTINGS)
    rows = fetch_all(raw, f"SELECT name, setting, unit FROM pg_settings WHERE name IN ({listed})")
    settings = {str(name): (str(value), unit) for name, value, unit in rows}

    def seconds(name: str) -> float | None:
        if name not in settings:
            return None
        value, unit = settings[name]
        return _positive(_number(value), _PG_UNITS.get(unit or "s", 1.0))

    def integer(name: str) -> int:
        return int(_number(settings.get(name, ("0", None))[0]) or 0)

    backends, active = fetch_all(
        raw,
        "SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
        "WHERE backend_type = 'client backend'",
    )[0]
    role_limit, superuser = fetch_all(
        raw, "SELECT rolconnlimit, rolsuper FROM pg_roles WHERE rolname = current_user"
    )[0]
    database_limit = fetch_all(
        raw, "SELECT datconnlimit FROM pg_database WHERE datname = current_database()"
    )[0][0]
    readings: dict[str, Any] = {"server_version": version}
    for name in POSTGRES_SETTINGS:
        if name in settings:
            value, unit = settings[name]
            readings[name] = f"{value} {unit}" if unit else value
    readings["client backends"] = backends
    readings["active backends"] = active
    readings["role connection limit"] = role_limit
    readings["role is superuser"] = bool(superuser)
    readings["database connection limit"] = database_limit
    reserved = integer("superuser_reserved_connections") + integer("reserved_connections")
    return ServerFacts(
        kind="postgresql",
        product=f"PostgreSQL {version.split()[0]}",
        idle_timeout=seconds("idle_session_timeout"),
        idle_timeout_name="idle_session_timeout",
        global_idle_timeout=seconds("idle_session_timeout"),
        max_connections=integer("max_connections"),
        reserved_connections=reserved,
        user_limit=int(role_limit) if role_limit is not None and role_limit >= 0 else None,
        user_limit_name="the role's CONNECTION LIMIT",
        database_limit=(
            int(database_limit) if database_limit is not None and database_limit >= 0 else None
        ),
        connected=int(backends),
        running=int(active),
        statement_timeout=seconds("statement_timeout"),
        statement_timeout_name="statement_timeout",
        idle_in_transaction_timeout=seconds("idle_in_transaction_session_timeout"),
        readings=readings,
    )
