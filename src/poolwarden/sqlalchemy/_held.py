"""The DB-API connection a ``WardenPool`` gives SQLAlchemy: the driver's, checked after pauses.

SQLAlchemy opens a new cursor for every statement and ends transactions with the DB-API
``commit()`` and ``rollback()``, so those three calls are where a connection kept across a
long pause in a ``Session`` or ``Connection`` is checked (see ``poolwarden._held``). A dead
one with no transaction open is replaced inside the same SQLAlchemy connection record —
its ``connect`` events run again on the new connection — and the statement proceeds; with a
transaction open, the statement raises ConnectionLost, which every dialect classifies as a
disconnect, so SQLAlchemy invalidates the connection and asks for a rollback.

Everything else is forwarded to the driver's connection, attributes included (dialects set
``autocommit`` and read ``info``, ``server_version`` and the like), and cursors are the
driver's own, so dialect code that inspects them sees no difference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._messages import lost_error
from ..adapters import BaseAdapter

if TYPE_CHECKING:
    from sqlalchemy.pool.base import _ConnectionRecord

    from .._entry import Entry
    from ._pool import WardenPool

__all__ = ["HeldConnection", "driver_connection", "unwrapped"]


#: ``time.monotonic``, read twice per request: one global lookup instead of two.
_monotonic = time.monotonic


class _State:
    """A HeldConnection's own fields, kept apart so that setting an attribute on the
    HeldConnection itself always reaches the driver's connection."""

    __slots__ = (
        "check_after",
        "entry",
        "inner",
        "last_op",
        "needs_rollback",
        "raw",
        "session_changed",
        "used",
    )

    def __init__(
        self,
        raw: Any,
        entry: Entry,
        check_after: float,
        driver: BaseAdapter,
        inner: Callable[[Any], Any],
    ) -> None:
        self.raw = raw
        self.entry = entry
        #: The pool's ``held_check_after`` (fixed for its life), read on every statement:
        #: kept here rather than looked up through the pools each time.
        self.check_after = check_after
        #: The driver adapter's ``needs_rollback`` (the driver is known from the first
        #: connection, opened before any record is checked out).
        self.needs_rollback = driver.needs_rollback
        #: The connection the driver's adapter speaks about, in ``raw`` (the same, but for
        #: SQLAlchemy's adapters around asyncio drivers' connections).
        self.inner = inner
        #: A driver method the wrapper does not know was called (select_db, set_session,
        #: ...): the session may differ from a new one's for the rest of its life.
        self.session_changed = False
        #: When the last statement or transaction end started, or the connection was
        #: checked out if later (monotonic seconds): the start of the current pause.
        self.last_op = _monotonic()
        #: A cursor was opened since the last commit or rollback: a transaction may be open.
        self.used = False


class HeldConnection:
    """The driver connection of one ``WardenPool`` record, as SQLAlchemy sees it."""

    __slots__ = ("_pool", "_record", "_state")

    def __init__(self, raw: Any, record: _ConnectionRecord, pool: WardenPool, entry: Entry):
        state = _State(
            raw, entry, pool._warden._held_check_after, pool._records.driver, pool._held_inner
        )
        object.__setattr__(self, "_state", state)
        object.__setattr__(self, "_record", record)
        object.__setattr__(self, "_pool", pool)

    @property
    def _raw(self) -> Any:
        return self._state.raw

    # -- what SQLAlchemy calls for statements and transaction ends ------------------------
    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """The driver's cursor, after the held-connection check if one is due."""
        state = self._state
        now = _monotonic()
        if now - state.last_op >= state.check_after:
            self._check(now, ending=False)
        state.last_op = now
        state.used = True
        if args or kwargs:
            return state.raw.cursor(*args, **kwargs)
        return state.raw.cursor()

    def commit(self) -> None:
        """The driver's commit (after the check: a lost transaction raises, not commits)."""
        state = self._state
        now = _monotonic()
        if now - state.last_op >= state.check_after:
            self._check(now, ending=False)
        state.last_op = now
        state.raw.commit()
        state.used = False

    def rollback(self) -> None:
        """The driver's rollback, skipped when the driver reports no transaction open (SQLAlchemy
        rolls back at every ``Connection.close()``: a round trip saved per request that did
        not open one). A dead connection is replaced instead: the server has already rolled
        its transaction back, and the new connection has nothing to roll back."""
        state = self._state
        now = _monotonic()
        if now - state.last_op >= state.check_after and self._check(now, ending=True):
            state.last_op = now
            return
        state.last_op = now
        raw = state.raw
        try:
            needed = state.needs_rollback(state.inner(raw))
        except Exception:
            needed = True  # let the driver's own rollback say what is wrong
        if needed:
            raw.rollback()
        state.used = False

    def close(self) -> None:
        """Close the driver's connection."""
        self._state.raw.close()

    def _check(self, now: float, ending: bool) -> bool:
        """The held-connection check; True if the connection was replaced."""
        if self._record.dbapi_connection is not self:
            return False  # detached from the pool (or invalidated): the holder's own now
        state, pool = self._state, self._pool
        warden, driver = pool._warden, pool._records.driver
        inner = pool._held_inner(state.raw)
        verdict = pool._held_verdict(inner, state.entry.probe, state.used)
        if verdict is None:
            return False
        error, open_transaction = verdict
        # SQLAlchemy changed this connection's characteristics (isolation level,
        # autocommit, ...) and will undo them on return: a new connection would lack them.
        session_changed = (
            state.session_changed
            or bool(self._record.finalize_callback)
            # A driver that does not keep the server's autocommit flag (mysql-connector):
            # a SET autocommit statement may have run, and cannot be carried over.
            or driver.known_autocommit(inner) is None
        )
        if (open_transaction or session_changed) and not ending:
            idle = now - state.last_op
            with warden._lock:
                warden._core.lost_held(now)
            raise lost_error(
                driver, idle, warden._server_idle_timeout, open_transaction, session_changed
            ) from error
        self._replace(error, driver.known_autocommit(inner))
        return True

    def _replace(self, error: BaseException, autocommit: bool | None) -> None:
        """Reconnect the record in place: SQLAlchemy's ``invalidate`` then ``connect``
        events fire as for any reconnect, and this object stays the record's connection,
        so the SQLAlchemy connection holding it needs to know nothing. ``autocommit``: the
        dead connection's, as the server last reported it, given to the new one."""
        state, record, warden = self._state, self._record, self._pool._warden
        record.invalidate(error)
        record.get_connection()
        state.raw = record.dbapi_connection
        state.used = False
        state.session_changed = False
        record.dbapi_connection = self
        probe = warden._io.make_probe(record)
        now = warden._now()
        with warden._lock:
            state.entry.probe = probe
            warden._core.replaced_held(state.entry, now)
        pool = self._pool
        inner = pool._held_inner(state.raw)
        if autocommit is not None and pool._records.driver.known_autocommit(inner) != autocommit:
            pool._held_set_autocommit(inner, autocommit)  # a SET autocommit statement's

    # -- everything else is the driver's --------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        state = self._state
        value = getattr(state.raw, name)
        if callable(value):
            state.session_changed = True
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._state.raw, name, value)

    def __repr__(self) -> str:
        return f"<HeldConnection {self._state.raw!r}>"


def driver_connection(conn: Any) -> Any:
    """The driver's own connection object inside ``conn``, for the few calls that check
    its type (``psycopg2.extras.register_uuid(conn)``, psycopg's ``TypeInfo.fetch``):
    WardenPool gives SQLAlchemy — and so pool events after ``connect`` and
    ``driver_connection`` — a wrapper that forwards everything else. Any other object is
    returned as it is. What is done through the driver's connection is out of the
    wrapper's sight, so from then on a dead connection is reported, never replaced."""
    if type(conn) is HeldConnection:
        state = conn._state
        state.used = state.session_changed = True
        return state.raw
    return conn


def unwrapped(conn: Any) -> Any:
    """The driver's connection inside ``conn``, for poolwarden's own checks (which do
    nothing a borrower would need to know about)."""
    return conn._state.raw if type(conn) is HeldConnection else conn
