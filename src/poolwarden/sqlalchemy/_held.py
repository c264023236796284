"""The connection a ``WardenPool`` checkout gives SQLAlchemy: its own proxy, checked after pauses.

SQLAlchemy wraps every checkout in a ``_ConnectionFairy`` (the ``PoolProxiedConnection`` that
``Connection`` and ``Session`` hold), opens a new cursor through it for every statement, and
ends transactions through it with the DB-API ``commit()`` and ``rollback()``. So those three
calls are where a connection kept across a long pause is checked (see ``poolwarden._sync._held``):
:class:`WardenFairy` is that proxy with the check added, and nothing else changed. The DB-API
connection inside (``dbapi_connection``) is the driver's own object, as with QueuePool.

A dead connection with no transaction open is replaced inside the same SQLAlchemy connection
record (its ``invalidate`` and ``connect`` events fire, as for any reconnect) and the statement
proceeds; with a transaction open, or session state a new connection would lack, the
statement raises ConnectionLost, which every dialect classifies as a disconnect, so
SQLAlchemy invalidates the connection and asks for a rollback.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from sqlalchemy.pool.base import _ConnectionFairy

from .._core.held import HeldAction, held_action
from .._sync._held import HeldVerdict, check_held

if TYPE_CHECKING:
    from sqlalchemy.pool.base import _ConnectionRecord

    from .._core.entry import Entry

__all__ = ["HeldHooks", "HeldState", "WardenFairy", "driver_connection"]


#: ``time.monotonic``, read twice per request: one global lookup instead of two.
_monotonic = time.monotonic


class HeldHooks:
    """What :class:`WardenFairy`'s check asks of its pool: the driver's view of a record's
    connection, the verdict on it, and the books. One per pool; ``AsyncWardenPool``'s
    subclass reaches the asyncio driver through ``await_only``."""

    #: The driver's connection inside SQLAlchemy's (None: the DB-API connection is it).
    unwrap: Callable[[Any], Any] | None = None

    def __init__(self, engine: Any, records: Any) -> None:
        self._engine = engine
        self._records = records

    @property
    def driver(self) -> Any:
        """The driver's adapter (known from the first connection)."""
        return self._records.driver

    def inner(self, dbapi_connection: Any) -> Any:
        """The connection the driver's adapter speaks about."""
        return dbapi_connection

    def verdict(self, conn: Any, probe: Any, used: bool) -> HeldVerdict | None:
        """Is the held connection ``conn`` dead? (See ``poolwarden._sync._held``.)"""
        timeout = self._engine.validation_timeout
        return check_held(self._records.driver, conn, probe, used, timeout)

    def set_autocommit(self, conn: Any, value: bool) -> None:
        """Set the driver connection's autocommit (as the dead one had it)."""
        self._records.driver.set_autocommit(conn, value)

    def lost(self, idle: float, open_transaction: bool, session_changed: bool) -> Exception:
        """Count the loss, and the ConnectionLost its statement raises."""
        driver = self._records.driver
        return self._engine.held_lost(idle, open_transaction, session_changed, driver)  # type: ignore[no-any-return]

    def renewed(self, entry: Entry, record: _ConnectionRecord, held: bool = False) -> None:
        """``record`` holds a new connection (SQLAlchemy reconnected it in place, or the
        held-connection check replaced a dead one): probe its socket, start its life."""
        self._records.connected(record)
        self._engine.renewed(entry, held)


class HeldState:
    """What a checkout's :class:`WardenFairy` knows of its connection's use. One per record,
    made on its first checkout and started afresh at every later one."""

    __slots__ = (
        "check_after",
        "entry",
        "hooks",
        "inner",
        "last_op",
        "needs_rollback",
        "session_changed",
        "used",
    )

    def __init__(
        self,
        entry: Entry,
        check_after: float,
        needs_rollback: Callable[[Any], bool],
        hooks: HeldHooks,
    ):
        self.entry = entry
        #: What the check asks of the pool (and, through it, of the driver).
        self.hooks = hooks
        #: The pool's ``held_check_after`` (fixed for its life), read on every statement.
        self.check_after = check_after
        #: The driver adapter's ``needs_rollback`` (the driver is known from the first
        #: connection, opened before any record is checked out).
        self.needs_rollback = needs_rollback
        #: The driver's connection in SQLAlchemy's adapter around an asyncio driver's
        #: (None: the DB-API connection is the driver's).
        self.inner = hooks.unwrap
        #: When the last statement or transaction end started, or the connection was
        #: checked out if later (monotonic seconds): the start of the current pause. Set
        #: at every checkout, with ``used``.
        self.last_op = entry.checkout_at
        #: A cursor was opened since the last commit or rollback: a transaction may be open.
        self.used = False
        #: A driver method the proxy does not know was called through it (select_db,
        #: set_session, ...): the session may differ from a new one's for the rest of the
        #: connection's life (the reset on return does not undo it), so this is cleared
        #: only when the connection is replaced.
        self.session_changed = False


class WardenFairy(_ConnectionFairy):
    """SQLAlchemy's checkout proxy with poolwarden's held-connection check. WardenPool turns
    each proxy SQLAlchemy makes into one (it adds no fields, only methods)."""

    __slots__ = ()

    #: Kept in the proxy's ``__dict__`` (a subclass may add no slots to a class it
    #: replaces on a live object).
    _held: HeldState

    # -- what SQLAlchemy calls for statements and transaction ends ------------------------
    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """The driver's cursor, after the held-connection check if one is due."""
        state = self._held
        now = _monotonic()
        if now - state.last_op >= state.check_after:
            self._check(now, ending=False)
        state.last_op = now
        state.used = True
        if args or kwargs:
            return self.dbapi_connection.cursor(*args, **kwargs)
        return self.dbapi_connection.cursor()

    def commit(self) -> None:
        """The driver's commit (after the check: a lost transaction raises, not commits)."""
        state = self._held
        now = _monotonic()
        if now - state.last_op >= state.check_after:
            self._check(now, ending=False)
        state.last_op = now
        self.dbapi_connection.commit()
        state.used = False

    def rollback(self) -> None:
        """The driver's rollback, skipped when the driver reports no transaction open (SQLAlchemy
        rolls back at every ``Connection.close()``: a round trip saved per request that did
        not open one). A dead connection is replaced instead: the server has already rolled
        its transaction back, and the new connection has nothing to roll back."""
        state = self._held
        now = _monotonic()
        if now - state.last_op >= state.check_after and self._check(now, ending=True):
            state.last_op = now
            return
        state.last_op = now
        raw = self.dbapi_connection
        inner = state.inner
        try:
            needed = state.needs_rollback(raw if inner is None else inner(raw))
        except Exception:
            needed = True  # let the driver's own rollback say what is wrong
        if needed:
            raw.rollback()
        state.used = False

    def _check(self, now: float, ending: bool) -> bool:
        """The held-connection check; True if the connection was replaced."""
        record = self._connection_record
        raw = self.dbapi_connection
        if record is None or raw is None or record.dbapi_connection is not raw:
            return False  # detached from the pool, or invalidated: the holder's own now
        state = self._held
        hooks = state.hooks
        driver = hooks.driver
        inner = hooks.inner(raw)
        verdict = hooks.verdict(inner, state.entry.probe, state.used)
        if verdict is None:
            return False
        error, open_transaction = verdict
        session_changed = (
            state.session_changed
            # SQLAlchemy changed this connection's characteristics (isolation level,
            # autocommit, ...) and will undo them on return: a new one would lack them.
            or bool(record.finalize_callback)
            # A driver that does not keep the server's autocommit flag (mysql-connector):
            # a SET autocommit statement may have run, and cannot be carried over.
            or driver.known_autocommit(inner) is None
            # Settings changed on the driver's connection itself, out of the proxy's sight.
            or driver.session_state(inner) != session_state_at_connect(record)
        )
        action = held_action(
            dead=True,
            open_transaction=open_transaction,
            session_changed=session_changed,
            ending=ending,
            # SQLAlchemy's rollback is also its reset at Connection.close(), where the
            # session ends: see poolwarden._core.held.
            session_outlives_rollback=False,
        )
        if action is not HeldAction.REPLACE:  # LOST_TRANSACTION or LOST_SESSION
            idle = now - state.last_op
            lost = action is HeldAction.LOST_TRANSACTION
            raise hooks.lost(idle, lost, session_changed) from error
        self._replace(record, error, driver.known_autocommit(inner))
        return True

    def _replace(
        self, record: _ConnectionRecord, error: BaseException, autocommit: bool | None
    ) -> None:
        """Reconnect the record in place: SQLAlchemy's ``invalidate`` then ``connect``
        events fire as for any reconnect, and this proxy keeps serving the SQLAlchemy
        connection holding it, which needs to know nothing. ``autocommit``: the dead
        connection's, as the server last reported it, given to the new one."""
        state = self._held
        hooks = state.hooks
        record.invalidate(error)
        self.dbapi_connection = raw = record.get_connection()
        state.used = state.session_changed = False
        hooks.renewed(state.entry, record, held=True)
        inner = hooks.inner(raw)
        if autocommit is not None and hooks.driver.known_autocommit(inner) != autocommit:
            hooks.set_autocommit(inner, autocommit)  # a SET autocommit statement's

    # -- everything else is the driver's --------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        value = getattr(self.dbapi_connection, name)
        if callable(value):
            self._held.session_changed = True
        return value


def session_state_at_connect(record: _ConnectionRecord) -> Hashable:
    """The driver-side session settings of the record's connection when it was made."""
    return record.__dict__.get("_poolwarden_session")


def driver_connection(conn: Any) -> Any:
    """The driver's own connection object in ``conn``: a checkout proxy's
    ``dbapi_connection``; any other object is returned as it is. (WardenPool's connections
    are the driver's objects, as QueuePool's are: no unwrapping is needed any more; kept
    for code written against earlier versions.)"""
    if isinstance(conn, _ConnectionFairy):
        return conn.dbapi_connection
    return conn
