"""What psycopg 3 and psycopg2 share: PostgreSQL's error classes and libpq's messages."""

from __future__ import annotations

import select
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

from .._url import URL
from ._options import libpq_keywords, signature_options
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

    def is_retryable_connect_error(self, exc: BaseException) -> bool:
        """Server down, starting, shutting down or full; not a wrong password or database."""
        if not self._is_driver_error(exc):
            return False
        state = self._sqlstate(exc) or ""
        if state.startswith("08") or state in CONNECT_RETRYABLE_SQLSTATES:
            return True
        text = str(exc).lower()
        return any(fragment in text for fragment in CONNECT_RETRYABLE_MESSAGES)

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
