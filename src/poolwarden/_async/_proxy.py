"""Per-checkout proxies: the connection and cursors a borrower holds.

A proxy lives for one checkout. It forwards everything to the driver's connection, notes
whether the borrower ran anything (so the reset on return can skip a needless rollback),
remembers connection attributes the borrower changed (so they are restored), sees every
error an operation raises (so a dead connection is never reused), and refuses to work once
the connection has gone back to the pool.

A connection the borrower kept unused for a while is checked before its next operation
(see ``_held``): if the server closed it meanwhile, it is replaced in place when nothing
can be lost, or the borrower gets :class:`~poolwarden.ConnectionLost` when a transaction
was open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Generic

from .._core.activity import IN_TRANSACTION, UNTOUCHED, USED, changes_session
from .._core.dbapi import ConnT
from .._core.held import HeldAction
from ..adapters.async_base import maybe_await
from ..errors import ConnectionReturned
from ._compat import ASYNC
from ._held import restore_settings

if TYPE_CHECKING:
    from types import TracebackType

    from .._core.entry import Entry
    from ._pool import AsyncPool

__all__ = ["IN_TRANSACTION", "UNTOUCHED", "USED", "AsyncPooledConnection", "AsyncPooledCursor"]


def _tracked(name: str) -> property:
    """A forwarded connection attribute whose original value is restored on return (set
    with ``await conn.set_<name>(value)`` on asyncio connections: their drivers change it
    with a coroutine)."""

    def get(self: AsyncPooledConnection) -> Any:
        return getattr(self._live(), name)

    def set_(self: AsyncPooledConnection, value: Any) -> None:
        if ASYNC:
            raise AttributeError(
                f"{name} of an asyncio connection is set with 'await conn.set_{name}(value)'"
            )
        else:
            raw = self._live()
            self._remember(name, lambda: getattr(raw, name), value)
            setattr(raw, name, value)

    return property(get, set_, doc=f"The driver's ``{name}``; restored when returned.")


class AsyncPooledConnection(Generic[ConnT]):
    """A DB-API connection checked out of a :class:`~poolwarden.AsyncPool`.

    Use it as the driver's connection: ``cursor()``, ``commit()``, ``rollback()`` and every
    other attribute are forwarded. ``close()`` — or leaving a ``with`` block — returns it to
    the pool; afterwards every use raises :class:`~poolwarden.ConnectionReturned`.
    """

    __slots__ = (
        "__weakref__",
        "_activity",
        "_applied",
        "_engine",
        "_entry",
        "_last_op",
        "_lost",
        "_pool",
        "_raw",
        "_saved",
        "_session_changed",
    )

    def __init__(self, pool: AsyncPool[ConnT], entry: Entry) -> None:
        self._pool = pool
        self._engine = pool.engine
        self._entry: Entry | None = entry
        #: The driver's connection (its type: the pool's ``ConnT``).
        self._raw: ConnT = entry.raw
        #: UNTOUCHED, USED (session may have changed) or IN_TRANSACTION (something ran since
        #: the last commit or rollback): the reset on return does only what this requires.
        self._activity = UNTOUCHED
        #: Original values of attributes the borrower changed, and the values it set
        #: (applied again to a connection that replaces a dead one).
        self._saved: dict[str, Any] | None = None
        self._applied: dict[str, Any] | None = None
        #: When the borrower last started an operation; minus infinity while ``_lost``.
        self._last_op = entry.checkout_at
        #: The message of the ConnectionLost raised, until the borrower rolls back.
        self._lost: str | None = None
        #: The session may hold state a new connection would not have (a SET or USE
        #: statement, a driver method the proxy does not know): never replace it unseen.
        self._session_changed = False

    # -- the DB-API surface --------------------------------------------------------------
    def cursor(self, *args: Any, **kwargs: Any) -> AsyncPooledCursor:
        """A cursor on the pooled connection (arguments go to the driver)."""
        if ASYNC:
            # No await here (``async with conn.cursor()`` is how asyncio drivers are used):
            # the held-connection check runs before the cursor's first statement instead.
            raw = self._live()
        else:
            raw = self._before_operation()
        try:
            cursor = self._engine.adapter.new_cursor(raw, args, kwargs)
        except BaseException as exc:
            self._failed(exc)
            raise
        return AsyncPooledCursor(self, cursor, raw, args, kwargs)

    async def commit(self) -> None:
        """Commit the current transaction."""
        await self._call("commit")
        self._activity = USED

    async def rollback(self) -> None:
        """Roll back the current transaction (no round trip when none is open). After
        :class:`~poolwarden.ConnectionLost` (the server already rolled it back), this
        replaces the dead connection."""
        raw = self._live()
        now = self._engine.now()
        if now - self._last_op >= self._engine.held_check_after:
            checked = await self._check_held(now, ending=True)
            if checked is not raw:  # replaced: the new connection has nothing to roll back
                self._last_op = now
                return
        self._last_op = now
        try:
            # A rollback with no transaction open is a no-op round trip: skip it when the
            # driver can tell (nothing ran since the last commit or rollback, or the
            # server reported no transaction).
            if self._activity == IN_TRANSACTION and self._engine.adapter.needs_rollback(raw):
                await raw.rollback()
        except BaseException as exc:
            self._failed(exc)
            raise
        self._activity = USED

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        """``Connection.execute`` of drivers that have one (psycopg 3, sqlite3)."""
        raw = await self._before_operation()
        self._activity = IN_TRANSACTION
        if args and changes_session(args[0]):
            self._session_changed = True
        try:
            return await raw.execute(*args, **kwargs)
        except BaseException as exc:
            self._failed(exc)
            raise

    async def close(self) -> None:
        """Give the connection back to the pool (it stays open there)."""
        await self._pool.putconn(self)

    def invalidate(self) -> None:
        """Mark the connection unusable: it is closed, not reused, when it goes back."""
        self._live()
        assert self._entry is not None
        self._entry.broken = True

    @property
    def raw(self) -> ConnT:
        """The driver's own connection, for what the proxy does not forward. Anything done
        through it is treated as having used the connection."""
        self._live()
        self._activity = IN_TRANSACTION
        self._session_changed = True
        return self._raw

    @property
    def closed(self) -> bool:
        """True once this proxy has been returned to the pool."""
        return self._entry is None

    @property
    def autocommit(self) -> Any:
        """The driver's autocommit: a value (psycopg, mysql-connector) or, for drivers where
        it is a method (PyMySQL, mysqlclient), a callable that sets it."""
        raw = self._live()
        adapter = self._engine.adapter
        if adapter.autocommit_is_method:
            return self._set_autocommit
        return raw.autocommit

    if not ASYNC:  # a setter cannot await: asyncio drivers take ``set_autocommit()``

        @autocommit.setter
        def autocommit(self, value: bool) -> None:
            self._set_autocommit(value)

    async def _set_autocommit(self, value: bool) -> None:
        raw = self._live()
        adapter = self._engine.adapter
        self._remember("autocommit", lambda: adapter.get_autocommit(raw), value)
        try:
            await adapter.set_autocommit(raw, value)
        except BaseException as exc:
            self._failed(exc)
            raise

    # Settings a borrower may change through the proxy, restored when the connection goes
    # back. (MySQL drivers keep such settings in SQL: ``reset="session"`` clears those.)
    isolation_level = _tracked("isolation_level")
    read_only = _tracked("read_only")
    readonly = _tracked("readonly")
    deferrable = _tracked("deferrable")

    if ASYNC:

        async def set_autocommit(self, value: bool) -> None:
            """Set autocommit (psycopg's coroutine); restored when returned."""
            await self._set_autocommit(value)

        async def set_isolation_level(self, value: Any) -> None:
            """Set the isolation level (psycopg's coroutine); restored when returned."""
            await self._set_tracked("isolation_level", value)

        async def set_read_only(self, value: Any) -> None:
            """Set read-only mode (psycopg's coroutine); restored when returned."""
            await self._set_tracked("read_only", value)

        async def set_deferrable(self, value: Any) -> None:
            """Set deferrable mode (psycopg's coroutine); restored when returned."""
            await self._set_tracked("deferrable", value)

        async def _set_tracked(self, name: str, value: Any) -> None:
            raw = self._live()
            self._remember(name, lambda: getattr(raw, name), value)
            try:
                await self._engine.adapter.set_attribute(raw, name, value)
            except BaseException as exc:
                self._failed(exc)
                raise

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the proxy does not define: forward to the driver. A
        # method the proxy does not know (select_db, set_session, ...) may change the
        # session or run statements.
        raw = self._live()
        self._activity = IN_TRANSACTION
        value = getattr(raw, name)
        if callable(value):
            self._session_changed = True
        return value

    async def __aenter__(self) -> AsyncPooledConnection[ConnT]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._entry is not None:
            await self._pool.putconn(self)

    def __del__(self) -> None:
        # Dropped without being returned: let the pool reclaim the connection. This runs
        # inside the garbage collector, possibly in any thread and under any lock, so the
        # pool only queues the entry for its housekeeper.
        entry = self._entry
        if entry is not None:
            self._entry = None
            try:
                self._engine.orphaned(entry, self._activity, self._saved)
            except Exception:
                pass  # interpreter shutdown: nothing left to reclaim into

    def __repr__(self) -> str:
        entry = self._entry
        name = type(self).__name__
        if entry is None:
            return f"<{name} (returned) of {self._pool!r}>"
        return f"<{name} #{entry.id} checked out at {entry.site()} of {self._pool!r}>"

    # -- helpers -------------------------------------------------------------------------
    def _live(self) -> Any:
        if self._entry is None:
            raise ConnectionReturned(
                "this connection was already returned to the pool and may not be used or "
                "returned again; check out another with pool.connection()"
            )
        return self._raw

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        raw = await self._before_operation()
        try:
            return await getattr(raw, method)(*args, **kwargs)
        except BaseException as exc:
            self._failed(exc)
            raise

    async def _before_operation(self) -> Any:
        """The driver connection to run the next operation on: checked first when the
        borrower left it unused long enough for the server to have closed it."""
        raw = self._live()
        now = self._engine.now()
        if now - self._last_op >= self._engine.held_check_after:
            raw = await self._check_held(now)
        self._last_op = now
        return raw

    async def _check_held(self, now: float, ending: bool = False) -> Any:
        """The held-connection check (a socket probe, no round trip). A dead connection is
        replaced in place when no transaction was open on it, or when the borrower is
        ``ending`` it with a rollback anyway, unless session state set on it would be lost;
        otherwise the borrower gets ConnectionLost, and again at each operation until it
        rolls back."""
        engine, entry = self._engine, self._entry
        assert entry is not None
        lost = self._lost
        action, error = await engine.held_check(
            entry, self._activity == IN_TRANSACTION, self._session_changed, ending, lost
        )
        if action is HeldAction.KEEP:
            return self._raw
        if action is HeldAction.STILL_LOST:
            raise engine.adapter.connection_lost(
                f"{lost} [this connection's session was lost: call rollback() first]"
            )
        if action is not HeldAction.REPLACE:  # LOST_TRANSACTION or LOST_SESSION
            idle = now - self._last_op
            entry.broken = True  # closed when it comes back
            lost_error = engine.held_lost(
                idle, action is HeldAction.LOST_TRANSACTION, self._session_changed, entry=entry
            )
            self._lost = lost_error.reason
            self._last_op = float("-inf")  # every operation comes back here
            raise lost_error from error
        autocommit = engine.adapter.known_autocommit(self._raw)
        try:
            raw = await engine.replace_held(entry)
        finally:
            self._raw = entry.raw  # in step with the entry, even if interrupted
        self._lost = None
        self._activity = UNTOUCHED
        self._session_changed = False
        await restore_settings(engine.adapter, raw, autocommit, self._applied)
        return raw

    def _remember(self, name: str, read: Callable[[], Any], value: Any) -> None:
        saved = self._saved
        if saved is None:
            saved = self._saved = {}
            self._applied = {}
        if name not in saved:
            saved[name] = read()
        assert self._applied is not None
        self._applied[name] = value

    def _failed(self, exc: BaseException) -> None:
        """An operation raised: the engine decides what that says about the connection (a
        dead or interrupted one is closed on return instead of reused)."""
        entry = self._entry
        if entry is not None:
            self._engine.operation_failed(entry, self._raw, exc)


class AsyncPooledCursor:
    """A driver cursor whose errors the pool sees; everything else is forwarded, attribute
    assignments (``arraysize``, ``row_factory``, …) included. If the connection under it is
    replaced (it died while held), the next statement runs on a new cursor of the new
    connection, made with the same arguments and given the same attributes."""

    __slots__ = ("_args", "_conn", "_cursor", "_kwargs", "_settings", "_source")

    def __init__(
        self,
        conn: AsyncPooledConnection[Any],
        cursor: Any,
        source: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        _set = object.__setattr__  # this class forwards its own attribute assignments
        _set(self, "_conn", conn)
        _set(self, "_cursor", cursor)
        #: The driver connection the cursor belongs to, how it was made, and the
        #: attributes the borrower set on it since.
        _set(self, "_source", source)
        _set(self, "_args", args)
        _set(self, "_kwargs", kwargs)
        _set(self, "_settings", None)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._cursor, name, value)
        settings = self._settings
        if settings is None:
            settings = {}
            object.__setattr__(self, "_settings", settings)
        settings[name] = value

    async def _run(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        conn = self._conn
        conn._live()
        conn._activity = IN_TRANSACTION
        try:
            if ASYNC:  # awaited if need be: psycopg's nextset() is a plain method
                return await maybe_await(getattr(self._cursor, method)(*args, **kwargs))
            else:
                return getattr(self._cursor, method)(*args, **kwargs)
        except BaseException as exc:
            conn._failed(exc)
            raise

    async def _send(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a statement: the server is about to be asked something."""
        conn = self._conn
        raw = await conn._before_operation()
        if args and changes_session(args[0]):
            conn._session_changed = True
        if raw is not self._source:
            cursor = conn._engine.adapter.new_cursor(raw, self._args, self._kwargs)
            for name, value in (self._settings or {}).items():
                setattr(cursor, name, value)
            object.__setattr__(self, "_cursor", cursor)
            object.__setattr__(self, "_source", raw)
        return await self._run(method, args, kwargs)

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Run one statement."""
        return await self._send("execute", args, kwargs)

    async def executemany(self, *args: Any, **kwargs: Any) -> Any:
        """Run one statement for each parameter set."""
        return await self._send("executemany", args, kwargs)

    async def callproc(self, *args: Any, **kwargs: Any) -> Any:
        """Call a stored procedure."""
        return await self._send("callproc", args, kwargs)

    async def fetchone(self) -> Any:
        """Next row, or ``None``."""
        return await self._run("fetchone", (), {})

    async def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        """Next rows."""
        return await self._run("fetchmany", args, kwargs)

    async def fetchall(self) -> Any:
        """All remaining rows."""
        return await self._run("fetchall", (), {})

    async def nextset(self) -> Any:
        """Move to the next result set."""
        return await self._run("nextset", (), {})

    async def close(self) -> None:
        """Close the cursor."""
        if ASYNC:
            await maybe_await(self._cursor.close())  # a coroutine in some drivers, not all
        else:
            self._cursor.close()

    @property
    def raw(self) -> Any:
        """The driver's own cursor. Anything done through it is treated as having used the
        connection."""
        conn = self._conn
        conn._activity = IN_TRANSACTION
        conn._session_changed = True
        return self._cursor

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._cursor, name)
        if callable(value):  # copy_from, copy, stream, scroll...: may write
            self._conn._activity = IN_TRANSACTION
        return value

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        row = await self._run("fetchone", (), {})
        if row is None:
            raise StopAsyncIteration
        return row

    async def __aenter__(self) -> AsyncPooledCursor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    if ASYNC:

        def __await__(self) -> Any:
            """``cur = await conn.cursor()``, as aiomysql's own cursors are made."""
            return self._ready().__await__()

        async def _ready(self) -> AsyncPooledCursor:
            return self
