"""What psycopg 3 and psycopg2 share: PostgreSQL's error classes and libpq's messages."""

from __future__ import annotations

import select
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

from .._net.url import URL
from ._options import libpq_keywords, signature_options
from ._proxies import pgbouncer_error_kind
from ._roles import (
    POSTGRES_ROLE_QUERY,
    STANDBY,
    libpq_target,
    postgres_role_of,
    postgres_role_reported,
)
from .base import Adapter, BaseAdapter

__all__ = ["IDLE_TIMEOUT_QUERY", "PostgresAdapter", "PostgresBase", "idle_timeout_of"]

#: SQLSTATEs after which the session is gone: class 08 (connection exception) and the
#: operator-intervention codes for a server that is shutting down or killed the session.
DISCONNECT_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
#: Connect errors that may clear by themselves (starting up, full).
CONNECT_RETRYABLE_SQLSTATES = DISCONNECT_SQLSTATES | {"53300", "53400"}

#: libpq's messages for a lost connection (fe-misc.c, fe-secure.c, fe-connect.c).
DISCONNECT_MESSAGES = (
    "server closed the connection unexpectedly",
    "terminating connection",
    "connection not open",
    "connection already closed",
    "the connection is closed",
    "could not receive data from server",
    "could not send data to server",
    "connection has been closed unexpectedly",
    "ssl syscall error",
    "ssl connection has been closed unexpectedly",
    "consuming input failed",
    "lost synchronization with server",
    "connection is lost",
)
#: ... and for a server that cannot be reached right now.
CONNECT_RETRYABLE_MESSAGES = (
    *DISCONNECT_MESSAGES,
    "connection refused",
    "could not connect to server",
    "timeout expired",
    "connection timed out",
    "no route to host",
    "network is unreachable",
    "connection reset",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "too many clients",
    "too many connections",
    "remaining connection slots are reserved",
    "sorry, too many clients",
    *(
        LIBPQ_WRONG_ROLE := (
            # libpq's target_session_attrs refusals: a failover in progress, retried.
            "server is in hot standby mode",
            "server is not in hot standby mode",
            "session is read-only",
            "session is not read-only",
        )
    ),
)

#: Refusals for lack of connection slots, for the storm guard: SQLSTATE 53300
#: (too_many_connections: max_connections, the slots reserved for superusers, a role's or
#: a database's CONNECTION LIMIT), and the messages of servers and poolers that send no
#: such code (libpq's connect errors often carry none; PgBouncer says 08P01, Supavisor
#: XX000).
CONNECT_LIMIT_SQLSTATES = frozenset({"53300"})
CONNECT_LIMIT_MESSAGES = (
    "too many clients",
    "too many connections",
    "remaining connection slots are reserved",
    "no more connections allowed",  # PgBouncer: max_client_conn
    "max client connections reached",  # Supavisor
)

#: libpq transaction status values (identical in psycopg 3 and psycopg2).
TRANSACTION_IDLE = 0
TRANSACTION_ACTIVE = 1
TRANSACTION_UNKNOWN = 4


def read_unasked(fd: int | None, consume: Callable[[], Any], bad: Callable[[], bool]) -> bool:
    """Let the driver read what the server sent unasked; True if the connection is gone.

    A server ending a session (idle timeout, termination) sends a FATAL message and then
    closes; the message and the end of the stream may need separate reads, so read until
    the socket is quiet, a few times at most.
    """
    for _ in range(4):
        try:
            consume()
        except Exception:
            return True
        if bad():
            return True
        if fd is None or not select.select([fd], [], [], 0)[0]:
            return False
    return True  # it keeps talking unasked: not a connection to hand out


def conninfo_kwargs(url: URL) -> dict[str, Any]:
    """libpq keywords from the URL; query options pass through as libpq parameters."""
    parts = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }
    kwargs: dict[str, Any] = {key: value for key, value in parts.items() if value is not None}
    if url.hosts:  # libpq's own multi-host form: it tries them, by role if asked
        kwargs["host"] = ",".join(host for host, _ in url.hosts)
        kwargs["port"] = ",".join("" if port is None else str(port) for _, port in url.hosts)
    kwargs.update(url.query)
    return kwargs


#: ``idle_session_timeout`` (PostgreSQL 14+; 0 means none, and older servers have no row).
IDLE_TIMEOUT_QUERY = "SELECT setting FROM pg_settings WHERE name = 'idle_session_timeout'"


def idle_timeout_of(row: Any) -> float | None:
    """Seconds of the milliseconds in the row :data:`IDLE_TIMEOUT_QUERY` returned."""
    milliseconds = float(row[0]) if row else 0.0
    return milliseconds / 1000.0 or None


class PostgresBase(BaseAdapter):
    """What the PostgreSQL driver adapters know without I/O, sync or asyncio."""

    dialect: ClassVar[str] = "postgresql"
    reports_transaction: ClassVar[bool] = True
    has_fileno: ClassVar[bool] = True  # psycopg's and psycopg2's connections, both kinds

    @classmethod
    def driver_options(cls, dbapi: ModuleType) -> frozenset[str] | None:
        """The connect function's own parameters, and libpq's keywords, which both
        drivers pass on in the connection string."""
        own = signature_options(cls.connect_function(dbapi)) or frozenset()
        return own | libpq_keywords()

    def known_autocommit(self, raw: Any) -> bool | None:
        """A client-side setting in both drivers (PostgreSQL has no SQL for it)."""
        return bool(raw.autocommit)

    def _sqlstate(self, exc: BaseException) -> str | None:
        raise NotImplementedError

    def _is_driver_error(self, exc: BaseException) -> bool:
        return self.dbapi is not None and isinstance(exc, self.dbapi.Error)

    def is_disconnect(self, exc: BaseException, raw: Any = None) -> bool:
        """Class 08 or 57P0x, a connection the driver marks closed/broken, or libpq's
        messages for a lost connection."""
        if not self._is_driver_error(exc):
            return False
        state = self._sqlstate(exc) or ""
        if state.startswith("08") or state in DISCONNECT_SQLSTATES:
            return True
        if raw is not None and self.is_closed(raw):
            return True
        text = str(exc).lower()
        return any(fragment in text for fragment in DISCONNECT_MESSAGES)

    def is_connection_limit_error(self, exc: BaseException) -> bool:
        """SQLSTATE 53300, or a refusal for lack of slots by its message (PgBouncer's "no
        more connections allowed" included)."""
        if not self._is_driver_error(exc):
            return False
        if self._sqlstate(exc) in CONNECT_LIMIT_SQLSTATES:
            return True
        text = str(exc).lower()
        return any(fragment in text for fragment in CONNECT_LIMIT_MESSAGES)

    def is_retryable_connect_error(self, exc: BaseException) -> bool:
        """Server down, starting, shutting down or full; not a wrong password or database
        (nor PgBouncer's configuration errors, which it sends as 08P01 too)."""
        if not self._is_driver_error(exc) or pgbouncer_error_kind(exc) == "config":
            return False
        state = self._sqlstate(exc) or ""
        if state.startswith("08") or state in CONNECT_RETRYABLE_SQLSTATES:
            return True
        text = str(exc).lower()
        if any(fragment in text for fragment in CONNECT_RETRYABLE_MESSAGES):
            return True
        if pgbouncer_error_kind(exc) in ("retryable", "limit"):
            return True  # PgBouncer cannot reach the server now (login retry, queue wait)
        return self.is_connection_limit_error(exc)  # a pooler's "full", without SQLSTATE

    role_query: ClassVar[str | None] = POSTGRES_ROLE_QUERY
    default_port: ClassVar[int] = 5432

    def host_of(self, raw: Any) -> str | None:
        """The host libpq connected to, of the URL's list."""
        try:
            return str(raw.info.host) or None
        except Exception:
            return None

    def apply_role(self, role: str, load_balance: bool) -> None:
        """libpq's ``target_session_attrs`` and ``load_balance_hosts``, unless the URL
        sets them already."""
        kwargs = self.kwargs
        assert isinstance(kwargs, dict)
        if role != "any":
            kwargs.setdefault("target_session_attrs", libpq_target(role))
        if load_balance:
            kwargs.setdefault("load_balance_hosts", "random")

    def connect_kwargs_for(
        self, host: str, port: int | None, address: str | None = None
    ) -> dict[str, Any]:
        """libpq takes the address apart from the name (``hostaddr``), so TLS still
        checks the name."""
        kwargs = {**self.kwargs, "host": host}
        if address is not None:
            kwargs["hostaddr"] = address
        if port is not None:
            kwargs["port"] = port
        return kwargs

    def role_from_row(self, row: Any) -> str | None:
        """In recovery, or read-only by default: a standby."""
        return postgres_role_of(row)

    def known_role(self, raw: Any) -> str | None:
        """From ``in_hot_standby`` and ``default_transaction_read_only``, which PostgreSQL
        14+ reports to every session when they change (no round trip)."""
        try:
            return postgres_role_reported(raw.info.parameter_status)
        except Exception:
            return None

    def read_only_error(self, exc: BaseException, raw: Any = None) -> str | None:
        """25006 is the server's only when it reports itself read-only; a transaction
        the borrower began READ ONLY raises it too."""
        if not self._is_driver_error(exc) or self._sqlstate(exc) != "25006":
            return None
        role = self.known_role(raw) if raw is not None else None
        if role is None:
            return "maybe"
        return "server" if role == STANDBY else None

    def is_wrong_role_error(self, exc: BaseException) -> bool:
        """libpq refused every host for its role (``target_session_attrs``)."""
        text = str(exc).lower()
        return self._is_driver_error(exc) and any(m in text for m in LIBPQ_WRONG_ROLE)

    def _status(self, raw: Any) -> int:
        return int(raw.info.transaction_status)

    def needs_rollback(self, raw: Any) -> bool:
        """libpq reports the server's transaction state after every message."""
        return self._status(raw) != TRANSACTION_IDLE

    def can_reset_session(self) -> bool:
        """``DISCARD ALL`` clears a PostgreSQL session."""
        return True

    def explain_connect_error(self, exc: BaseException) -> str | None:
        """Name the limit behind "too many clients"."""
        text = str(exc).lower()
        if "too many connections for role" in text:
            return "the server refused: this role's CONNECTION LIMIT is used up"
        if "too many clients" in text or "remaining connection slots" in text:
            return (
                "the server refused: its max_connections is used up; all processes' "
                "pool_size + max_overflow together must stay below it"
            )
        return None


class PostgresAdapter(PostgresBase, Adapter):
    """Shared I/O of the sync PostgreSQL drivers."""

    def server_idle_timeout(self, raw: Any) -> float | None:
        """The server's ``idle_session_timeout`` (see :data:`IDLE_TIMEOUT_QUERY`)."""
        row = self.first_row(raw, IDLE_TIMEOUT_QUERY)
        if self.needs_rollback(raw):
            raw.rollback()
        return idle_timeout_of(row)
