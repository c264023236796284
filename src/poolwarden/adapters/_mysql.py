"""What the MySQL/MariaDB drivers share, sync and asyncio: error codes and their meaning,
in one place."""

from __future__ import annotations

import os
import socket
from typing import Any, ClassVar

from .._net.url import URL
from ._proxies import is_transient_proxysql_error
from ._roles import MYSQL_ROLE_QUERY, mysql_read_only_error, mysql_role_of
from .base import Adapter, BaseAdapter, coerce_options

__all__ = [
    "CONNECT_RETRYABLE",
    "DISCONNECT",
    "IDLE_TIMEOUT_QUERY",
    "MySQLAdapter",
    "MySQLBase",
    "closing_packet",
    "idle_timeout_of",
    "login_kwargs",
    "socket_says_closed",
]

#: Errors after which the connection is gone (client codes 2xxx, server codes otherwise).
DISCONNECT: frozenset[int] = frozenset(
    {
        1053,  # ER_SERVER_SHUTDOWN: server shutdown in progress
        1927,  # ER_CONNECTION_KILLED (MariaDB): connection was killed
        2002,  # CR_CONNECTION_ERROR: can't connect through socket
        2003,  # CR_CONN_HOST_ERROR: can't connect to server
        2006,  # CR_SERVER_GONE_ERROR: MySQL server has gone away
        2013,  # CR_SERVER_LOST: lost connection during query
        2014,  # CR_COMMANDS_OUT_OF_SYNC: protocol state unknown, unusable
        2045,  # CR_NAMEDPIPEOPEN_ERROR / shared memory: transport failed
        2048,  # CR_INVALID_CONN_HANDLE (mysql-connector)
        2055,  # CR_SERVER_LOST_EXTENDED: lost connection at '...'
        4031,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8): closed for inactivity
        10053,  # WSAECONNABORTED (Windows): software caused connection abort
        10054,  # WSAECONNRESET (Windows): forcibly closed by the remote host
    }
)

#: Connect errors that may go away by themselves: keep waiters waiting and retry.
CONNECT_RETRYABLE: frozenset[int] = DISCONNECT | frozenset(
    {
        1040,  # ER_CON_COUNT_ERROR: too many connections
        1203,  # ER_TOO_MANY_USER_CONNECTIONS: user over max_user_connections
        1226,  # ER_USER_LIMIT_REACHED: user resource limit (max_user_connections)
    }
)

#: What the connection-limit errors mean for whoever sizes pools.
CONNECT_LIMITS = {
    1040: "the server refused: Too many connections (1040) - its max_connections is used up; "
    "all processes' pool_size + max_overflow together must stay below it",
    1203: "the server refused: max_user_connections (1203) for this account is used up",
    1226: "the server refused: this account exceeded its max_user_connections resource (1226)",
}

#: Lower-cased message fragments drivers use for a closed connection without a useful code.
DISCONNECT_MESSAGES: tuple[str, ...] = (
    "already closed",
    "connection was killed",
    "lost connection",
    "server has gone away",
    "connection not available",
    "connection to mysql is not available",
    "(0, '')",
)

#: Server errors sent, unasked, just before the server closes a connection.
CLOSING_ERRORS: frozenset[int] = frozenset({1053, 1927, 4031})

#: SERVER_STATUS flags from the MySQL protocol's OK/EOF packets.
SERVER_STATUS_IN_TRANS = 0x0001
SERVER_STATUS_AUTOCOMMIT = 0x0002


def login_kwargs(url: URL) -> dict[str, Any]:
    """host, port, user, password and database as all three drivers name them, with
    utf8mb4 (full Unicode) unless the URL asks for another charset."""
    kwargs: dict[str, Any] = {"host": url.host or "localhost", "charset": "utf8mb4"}
    parts = {"port": url.port, "user": url.username, "password": url.password}
    kwargs.update({key: value for key, value in parts.items() if value is not None})
    if url.database is not None:
        kwargs["database"] = url.database
    return kwargs


#: ``@@session.wait_timeout``: what this session gets, including a value set by an init
#: command or by the user's account (the global one may differ).
IDLE_TIMEOUT_QUERY = "SELECT @@session.wait_timeout"


def idle_timeout_of(row: Any) -> float | None:
    """The idle timeout in the row :data:`IDLE_TIMEOUT_QUERY` returned (0: none)."""
    return float(row[0]) if row and row[0] else None


def closing_packet(head: bytes) -> bool:
    """Whether the first bytes of an unread packet are an error the server sends just
    before it closes the connection (MySQL 8's 4031, MariaDB's 1927, a shutdown's 1053)."""
    # A packet: 3-byte length, sequence id, then 0xFF and a 2-byte code for an error.
    if len(head) < 7 or head[4] != 0xFF:
        return False
    return int.from_bytes(head[5:7], "little") in CLOSING_ERRORS


def socket_says_closed(fd: int | None) -> bool:
    """Peek at what waits on a connection's socket, without consuming it: end of stream, a
    reset, or an error packet the server sends before closing (MySQL 8's 4031, MariaDB's
    1927) mean the connection is gone; anything else is a result not read yet."""
    if fd is None:
        return True
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            head = sock.recv(7, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False  # nothing there after all: alive
    except OSError:
        return True  # reset by the server
    if not head:
        return True  # the server closed its end
    return closing_packet(head)


class MySQLBase(BaseAdapter):
    """What every MySQL driver adapter knows without I/O, sync or asyncio; subclasses say
    how to read codes and sockets."""

    dialect: ClassVar[str] = "mysql"
    autocommit_is_method: ClassVar[bool] = True

    #: URL query options converted before they reach the driver.
    INT_OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"connect_timeout", "read_timeout", "write_timeout", "client_flag", "max_allowed_packet"}
    )
    BOOL_OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"autocommit", "local_infile", "ssl_disabled", "ssl_verify_cert", "ssl_verify_identity"}
    )

    @classmethod
    def url_kwargs(cls, url: URL) -> dict[str, Any]:
        """host, port, user, password, database, then the query options (as PyMySQL and
        its asyncio ports take them)."""
        kwargs = login_kwargs(url)
        kwargs.update(
            coerce_options(url.scheme, url.query, ints=cls.INT_OPTIONS, bools=cls.BOOL_OPTIONS)
        )
        return kwargs

    def error_code(self, exc: BaseException) -> int | None:
        """The MySQL error number carried by ``exc``, if any."""
        args = getattr(exc, "args", ())
        if args and isinstance(args[0], BaseException):
            args = args[0].args
        if args and isinstance(args[0], int):
            return args[0]
        errno = getattr(exc, "errno", None)
        return errno if isinstance(errno, int) else None

    def _is_driver_error(self, exc: BaseException) -> bool:
        return self.dbapi is not None and isinstance(exc, self.dbapi.Error)

    def is_disconnect(self, exc: BaseException, raw: Any = None) -> bool:
        """MySQL codes first, then the drivers' messages for an already closed connection."""
        if not self._is_driver_error(exc):
            return False
        if self.error_code(exc) in DISCONNECT:
            return True
        text = str(exc).lower()
        return any(fragment in text for fragment in DISCONNECT_MESSAGES)

    def is_retryable_connect_error(self, exc: BaseException) -> bool:
        """Server unreachable, restarting, or out of connection slots; ProxySQL's 9001 and
        9002 (no server of its hostgroup reachable in time: a failover in progress)."""
        if not self._is_driver_error(exc):
            return False
        return self.error_code(exc) in CONNECT_RETRYABLE or is_transient_proxysql_error(exc)

    def is_connection_limit_error(self, exc: BaseException) -> bool:
        """Out of slots: 1040 (the server's max_connections, also ProxySQL's answer when
        its own limit is reached), 1203 and 1226 (the account's max_user_connections)."""
        if not self._is_driver_error(exc) or self.error_code(exc) not in CONNECT_LIMITS:
            return False
        # ProxySQL also answers 1040 for "User '...' can only connect locally".
        return "can only connect locally" not in str(exc).lower()

    def can_reset_session(self) -> bool:
        """COM_RESET_CONNECTION (or COM_CHANGE_USER) clears a MySQL session."""
        return True

    def explain_connect_error(self, exc: BaseException) -> str | None:
        """Name the limit behind 1040, 1203 and 1226."""
        return CONNECT_LIMITS.get(self.error_code(exc) or 0)

    def lost_error_args(self, message: str) -> tuple[Any, ...]:
        """``(2013, message)``: CR_SERVER_LOST, which every MySQL dialect and retry recipe
        already treats as a lost connection."""
        return (2013, message)

    def held_readable_means_dead(self, raw: Any) -> bool:
        """Peek at what is waiting (see :func:`socket_says_closed`)."""
        return socket_says_closed(self.fileno(raw))

    def get_autocommit(self, raw: Any) -> bool:
        """Autocommit as the server last reported it."""
        return bool(raw.get_autocommit())

    role_query: ClassVar[str | None] = MYSQL_ROLE_QUERY
    role_query_opens_transaction: ClassVar[bool] = False  # reads no table (@@in_transaction 0)
    default_port: ClassVar[int] = 3306
    picks_hosts: ClassVar[bool] = True

    def role_from_row(self, row: Any) -> str | None:
        """Read-only (``read_only``, ``super_read_only`` or ``innodb_read_only``): a standby."""
        return mysql_role_of(row)

    def read_only_error(self, exc: BaseException, raw: Any = None) -> str | None:
        """1290 naming read-only, 1836 and 1874 say so; 1792 may be the borrower's own
        READ ONLY transaction (see :data:`~poolwarden.adapters._roles.MYSQL_READ_ONLY_CODES`)."""
        if not self._is_driver_error(exc):
            return None
        return mysql_read_only_error(self.error_code(exc), str(exc))


class MySQLAdapter(MySQLBase, Adapter):
    """Shared I/O of the sync MySQL drivers."""

    def server_idle_timeout(self, raw: Any) -> float | None:
        """The session's ``wait_timeout`` (see :data:`IDLE_TIMEOUT_QUERY`)."""
        row = self.first_row(raw, IDLE_TIMEOUT_QUERY)
        raw.rollback()
        return idle_timeout_of(row)

    def set_autocommit(self, raw: Any, value: bool) -> None:
        """Set autocommit (one round trip)."""
        raw.autocommit(value)
