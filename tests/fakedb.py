"""A scriptable fake DB-API driver: connections that fail on demand, with no server.

``server = FakeServer()`` stands in for a database; ``server.connect`` is the connect
callable to give a pool. Tell it to fail with ``server.fail("execute", times=1)`` (any of
connect, execute, rollback, commit, ping, close, reset), take it down with ``server.down()``
(connects fail with a retryable error, existing connections die) and bring it back with
``server.up()``.
"""

from __future__ import annotations

import itertools
import socket
import threading
from typing import Any

from poolwarden.adapters import Adapter, BaseAdapter


class Error(Exception):
    pass


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class OperationalError(DatabaseError):
    """args[0] is an error code: 2006 means the connection is gone, 2003 server down."""


class ProgrammingError(DatabaseError):
    pass


GONE = 2006
LOST = 2013
SERVER_DOWN = 2003
ACCESS_DENIED = 1045


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        self.conn._op("execute")
        self.conn.statements.append(sql)
        if sql.upper().startswith("SET @"):
            name, _, value = sql[5:].partition("=")
            self.conn.session[name.strip()] = value.strip()
            self.rows = []
        elif sql.upper().startswith("SELECT @"):
            self.rows = [(self.conn.session.get(sql[8:].strip()),)]
        else:
            self.rows = [(1,)]
        if not self.conn.autocommit:
            self.conn.in_transaction = True

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self.rows = self.rows, []
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows.pop(0) if self.rows else None

    def close(self) -> None:
        pass


class FakeConnection:
    def __init__(self, server: FakeServer, conn_id: int) -> None:
        self.server = server
        self.id = conn_id
        self.open = True
        self.alive = True
        self.autocommit = False
        self.isolation_level = "READ COMMITTED"
        self.in_transaction = False
        self.session: dict[str, Any] = {}
        self.statements: list[str] = []
        self.rollbacks = 0
        self.resets = 0
        #: Set by tests to the thread using it, to catch a connection handed to two holders.
        self.holder: Any = None
        self.pings = 0
        #: A real socket pair stands for the network connection: the pool's probe polls
        #: ``sock``; the "server" end is ``peer``.
        self.sock, self.peer = socket.socketpair()
        #: When True, a ping waits for an answer that never comes (a silent network drop).
        self.hang = False

    def server_closes(self) -> None:
        """The server ends the session (idle timeout, KILL, restart): the socket says so."""
        self.alive = False
        self.peer.close()

    def dies_silently(self) -> None:
        """The network path dies without a word: nothing shows locally; pings hang."""
        self.alive = False
        self.hang = True

    def _op(self, name: str) -> None:
        if not self.open:
            raise InterfaceError(0, "connection already closed")
        if not self.alive:
            raise OperationalError(GONE, "server has gone away")
        self.server._maybe_fail(name)

    def cursor(self) -> FakeCursor:
        self._op("cursor")
        return FakeCursor(self)

    def commit(self) -> None:
        self._op("commit")
        self.in_transaction = False

    def rollback(self) -> None:
        self._op("rollback")
        self.rollbacks += 1
        self.in_transaction = False

    def ping(self) -> None:
        self.pings += 1
        # A hung ping blocks until the pool's watchdog shuts the socket down.
        if self.hang and not self.sock.recv(1):
            raise OperationalError(2013, "Lost connection to server during query")
        self._op("ping")

    def reset(self) -> None:
        self._op("reset")
        self.resets += 1
        self.session.clear()
        self.in_transaction = False

    def close(self) -> None:
        if self.open:
            self.open = False
            self.sock.close()
            self.peer.close()
            with self.server.lock:
                self.server.closed_ids.append(self.id)
            self.server._maybe_fail("close")


class FakeServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.is_up = True
        self.connections: list[FakeConnection] = []
        self.closed_ids: list[int] = []
        self.connect_delay = 0.0
        #: What the fake server reports as its idle timeout for sessions (seconds).
        self.idle_timeout: float | None = None
        self._failures: dict[str, list[BaseException]] = {}
        self._ids = itertools.count(1)

    def fail(self, operation: str, error: BaseException | None = None, times: int = 1) -> None:
        exc = error if error is not None else OperationalError(GONE, f"{operation} failed")
        with self.lock:
            self._failures.setdefault(operation, []).extend([exc] * times)

    def _maybe_fail(self, operation: str) -> None:
        with self.lock:
            pending = self._failures.get(operation)
            exc = pending.pop(0) if pending else None
        if exc is not None:
            raise exc

    def connect(self) -> FakeConnection:
        if self.connect_delay:
            threading.Event().wait(self.connect_delay)
        if not self.is_up:
            raise OperationalError(SERVER_DOWN, "Can't connect to server (Connection refused)")
        self._maybe_fail("connect")
        conn = FakeConnection(self, next(self._ids))
        with self.lock:
            self.connections.append(conn)
        return conn

    def down(self) -> None:
        self.is_up = False
        for conn in self.connections:
            if conn.open:
                conn.server_closes()

    def up(self) -> None:
        self.is_up = True

    @property
    def open_connections(self) -> list[FakeConnection]:
        return [c for c in self.connections if c.open]


class FakeRules(BaseAdapter):
    """What poolwarden would know of this driver without I/O (both kinds of adapter)."""

    name = "fake"
    dialect = "fake"

    def is_closed(self, raw: Any) -> bool:
        return not raw.open

    def fileno(self, raw: Any) -> int | None:
        return raw.sock.fileno() if raw.open else None

    def needs_rollback(self, raw: Any) -> bool:
        return bool(raw.in_transaction)

    def can_reset_session(self) -> bool:
        return True

    def is_disconnect(self, exc: BaseException, raw: Any = None) -> bool:
        return (
            isinstance(exc, Error)
            and bool(exc.args)
            and exc.args[0] in (GONE, LOST, SERVER_DOWN, 0)
        )

    def is_retryable_connect_error(self, exc: BaseException) -> bool:
        return isinstance(exc, OperationalError) and exc.args[0] == SERVER_DOWN


class FakeAdapter(FakeRules, Adapter):
    """What poolwarden would know of this driver."""

    def __init__(self, server: FakeServer) -> None:
        import tests.fakedb as module

        super().__init__(module, server.connect)
        self.server = server

    def server_idle_timeout(self, raw: Any) -> float | None:
        return self.server.idle_timeout

    def ping(self, raw: Any) -> None:
        raw.ping()

    def reset_session(self, raw: Any) -> None:
        raw.reset()
