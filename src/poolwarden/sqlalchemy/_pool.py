"""``WardenPool``: SQLAlchemy's QueuePool, with poolwarden deciding who gets which connection."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.pool import Pool as SAPool
from sqlalchemy.pool import QueuePool
from sqlalchemy.pool.base import PoolProxiedConnection, _ConnectionFairy, _ConnectionRecord

from .._core.entry import Entry
from .._core.settings import SETTING_NAMES, PoolSettings
from .._core.stats import PoolStats
from .._sync._engine import PoolEngine
from ..errors import PoolTimeout
from ._frames import CallerFinder
from ._held import HeldHooks, HeldState, WardenFairy
from ._queue import ConnectionQueue
from ._records import RecordAdapter

__all__ = ["WardenPool", "WardenTimeout"]

#: QueuePool's "no limit" for pool_size=0 and max_overflow=-1.
UNLIMITED = 1 << 31


class WardenTimeout(sa_exc.TimeoutError, PoolTimeout):
    """No connection within the pool timeout: SQLAlchemy's ``TimeoutError`` (so existing
    ``except`` clauses still catch it) with poolwarden's explanation."""


class WardenPool(QueuePool):
    """A drop-in for SQLAlchemy's ``QueuePool`` that never hands out a dead connection::

        engine = create_engine(url, poolclass=WardenPool, pool_size=10, max_overflow=5)

    It accepts every argument QueuePool accepts (``pool_size``, ``max_overflow``,
    ``pool_timeout``, ``pool_recycle``, ``pool_pre_ping``, ``pool_use_lifo``,
    ``pool_reset_on_return``, events, …), keeps its methods (``status()``, ``size()``,
    ``checkedin()``, ``checkedout()``, ``overflow()``, ``dispose()``, ``recreate()``) and
    its events, and adds poolwarden's: a socket probe at every checkout, a bounded ping
    after idleness, a lifetime read from the server, keepalive, fair waiting, outage
    backoff, leak reports, ``stats()`` and fork safety. Differences from QueuePool:

    - Connections are opened in background threads (at most ``max_connecting`` at a
      time), so a hanging connect never holds a checkout for long: ``pool_timeout``
      bounds the wait for a connection someone else holds, as in QueuePool, and
      ``connect_wait`` (30 s, or ``pool_timeout`` if longer) the wait for one being
      opened. The ``creator`` and ``connect`` events run there, not in the thread asking.
    - While the database is down or full, checkouts wait up to ``pool_timeout`` while
      connecting is retried with backoff, instead of failing at once.
    - ``pool_recycle`` is kept, and the connections' lifetime is also set to it
      (shortened by up to 10% each, so they do not all expire together) and retired in
      the background; without it the lifetime comes from the server's idle timeout
      (``max_lifetime="auto"``).

    ``pool_pre_ping=True`` makes SQLAlchemy's own pre-ping the check at checkout, exactly
    as with QueuePool (its events, error handling and reconnects included); without it,
    poolwarden's socket probe and its bounded ping after idleness do that job, with no
    round trip on most checkouts.

    Idle connections are handed out in QueuePool's order: the one idle longest first
    (FIFO, the default), or with ``pool_use_lifo=True`` the most recently used. FIFO has
    a cost under light load: with fewer than one checkout per idle connection every
    ``ping_after_idle`` seconds (5 s), each connection has sat idle that long when its
    turn comes and is pinged at checkout (a round trip, which pre_ping pays on every
    checkout), and ``idle_timeout`` seldom finds one idle long enough to retire. LIFO
    keeps reusing the few most recently used connections, which need no ping, and
    leaves the rest idle until they are retired.

    A connection a ``Session`` or ``Connection`` keeps across a pause longer than
    ``held_check_after`` is checked before its next statement: if the server closed it, it
    is replaced in place when no transaction was open, and the statement raises
    :class:`poolwarden.ConnectionLost` (a disconnect to SQLAlchemy) when one was.

    Extra arguments (pass them to ``create_engine`` as they are): ``min_idle``,
    ``max_lifetime``, ``idle_timeout``, ``keepalive``, ``ping_after_idle``,
    ``validation_timeout``, ``probe``, ``leak_threshold``, ``max_connecting``,
    ``held_check_after``, ``connect_wait``, ``role`` — as for :class:`poolwarden.Pool`.
    With ``role="primary"``, a statement failing because the server became read-only (a
    failover) retires every connection to that server, as in :class:`poolwarden.Pool`.
    """

    #: SQLAlchemy names a pool's logger after its class's module; log where QueuePool logs
    #: instead, so that logging set up for ``sqlalchemy.pool`` (or ``echo_pool``) covers
    #: WardenPool too, and SQLAlchemy's pool messages stay out of the ``poolwarden`` logger.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.WardenPool"

    #: The connections, where QueuePool keeps its queue (see ``ConnectionQueue``).
    _pool: ConnectionQueue[PoolEngine, RecordAdapter]  # type: ignore[assignment]

    def __init__(
        self,
        creator: Any,
        pool_size: int = 5,
        max_overflow: int = 10,
        timeout: float | None = 30.0,
        use_lifo: bool = False,
        # Not keyword-only: create_engine() finds a pool's arguments among its positional
        # ones only.
        min_idle: int = 0,
        max_lifetime: float | str | None = "auto",
        idle_timeout: float | None = None,
        keepalive: float | str | None = "auto",
        ping_after_idle: float | None = 5.0,
        validation_timeout: float = 5.0,
        probe: bool = True,
        leak_threshold: float | None = None,
        max_connecting: int = 4,
        held_check_after: float | None = 1.0,
        connect_wait: float = 30.0,
        role: str = "any",
        **kw: Any,
    ) -> None:
        # Every argument of this signature, as given: recreate() passes them on.
        args = {k: v for k, v in locals().items() if k not in ("self", "creator", "kw")}
        recycle = kw.pop("recycle", -1)
        pre_ping = bool(kw.pop("pre_ping", False))
        # SQLAlchemy's own recycle and pre-ping work as in QueuePool; poolwarden's lifetime
        # retires connections before SQLAlchemy's recycle would reconnect them at checkout.
        SAPool.__init__(self, creator, recycle=recycle, pre_ping=pre_ping, **kw)
        self._warden_args: dict[str, Any] = {**args, "recycle": recycle, "pre_ping": pre_ping}
        if max_lifetime == "auto" and recycle is not None and recycle > -1:
            max_lifetime = float(recycle) or None  # QueuePool's pool_recycle, if given
        self._size = pool_size
        self._max_overflow = -1 if pool_size == 0 else max_overflow
        self._timeout = timeout  # type: ignore[assignment]  # None: no limit, as QueuePool
        dialect = getattr(self._dialect, "name", None)
        driver = getattr(self._dialect, "driver", None)
        label = self._orig_logging_name or (f"{dialect}+{driver}" if dialect else "sqlalchemy")
        # With pre-ping, SQLAlchemy's ping is the check at checkout, as with QueuePool.
        records = self._record_adapter(label, checkout_checks=not pre_ping)
        #: The inner engine's settings: QueuePool's arguments in poolwarden's terms.
        settings = {k: v for k, v in args.items() if k in SETTING_NAMES}
        settings.update(
            pool_size=pool_size or UNLIMITED,
            max_overflow=UNLIMITED if self._max_overflow == -1 else max_overflow,
            reset=None,  # SQLAlchemy resets on return (pool_reset_on_return)
            max_lifetime=max_lifetime,
            # SQLAlchemy's pre-ping pings every checkout: no ping of poolwarden's on top.
            ping_after_idle=None if pre_ping else ping_after_idle,
        )
        self._settings = PoolSettings(**settings)
        # QueuePool's order (FIFO unless use_lifo); poolwarden.Pool's own default is LIFO.
        engine = self._inner_engine(creator, records, label, not use_lifo)
        hooks = self._held_hooks(engine, records)
        self._pool = ConnectionQueue(engine, records, hooks, pool_size, use_lifo)
        self._held_checks = engine.held_check_after != math.inf

    def _record_adapter(self, label: str, checkout_checks: bool) -> RecordAdapter:
        """How the inner pool makes, checks and closes SQLAlchemy connection records."""
        return RecordAdapter(self, label, checkout_checks)

    def _inner_engine(self, creator: Any, records: Any, label: str, fifo: bool) -> PoolEngine:
        """The poolwarden engine deciding who gets which record."""
        name = f"WardenPool {label}"
        return PoolEngine(creator, self._settings, adapter=records, name=name, fifo=fifo)

    def _held_hooks(self, engine: Any, records: Any) -> HeldHooks:
        """What the held-connection check of this pool's proxies asks of the pool."""
        return HeldHooks(engine, records)

    @property
    def _warden(self) -> PoolEngine:
        """The poolwarden engine deciding who gets which record."""
        return self._pool.warden

    @property
    def _records(self) -> RecordAdapter:
        return self._pool.records

    # -- QueuePool's counters, for code that reads them ----------------------------------
    @property
    def _overflow(self) -> int:  # type: ignore[override]
        """Connections open or being opened beyond ``pool_size`` (negative while below it),
        as QueuePool counts them."""
        return self._pool.warden.sizes().open - self._size

    # -- checkout and checkin ------------------------------------------------------------
    def connect(self) -> PoolProxiedConnection:
        """Check a connection out, as QueuePool does (SQLAlchemy's checkout, with its
        events and pre-ping), with poolwarden's checks on the way and after pauses."""
        fairy = _ConnectionFairy._checkout(self)
        record = fairy._connection_record
        assert record is not None
        fields = record.__dict__
        entry: Entry = fields["_poolwarden_entry"]
        if fairy.dbapi_connection is not fields.get("_poolwarden_conn"):
            # SQLAlchemy reconnected the record on the way (an invalidated or recycled
            # one, or a disconnect raised by a checkout event).
            self._renewed(entry, record)
        if self._held_checks:
            state: HeldState | None = fields.get("_poolwarden_held")
            if state is None:
                state = fields["_poolwarden_held"] = self._held_state(entry)
            else:  # a new borrower: its pause starts now, and it has done nothing yet
                state.last_op = entry.checkout_at
                state.used = False
            # The held-connection check, on the proxy SQLAlchemy made (same fields).
            fairy.__class__ = WardenFairy
            fairy.__dict__["_held"] = state
        return fairy

    def _held_state(self, entry: Entry) -> HeldState:
        """What the checkouts of ``entry``'s record know about its use (made once)."""
        engine, driver = self._pool.warden, self._pool.records.driver
        return HeldState(entry, engine.held_check_after, driver.needs_rollback, self._pool.hooks)

    def _checkout_entry(self) -> Entry:
        """Check out an entry for whoever called ``connect``."""
        return self._pool.warden.checkout(None, _CALLERS.frame())

    def _checkin_entry(self, entry: Entry) -> None:
        self._pool.warden.release(entry)

    def _do_get(self) -> _ConnectionRecord:
        try:
            entry = self._checkout_entry()
        except PoolTimeout as error:
            raise WardenTimeout(
                f"QueuePool limit of size {self._size} overflow {self._max_overflow} reached, "
                f"connection timed out, timeout {self._timeout or 0:.2f}: {error}",
                code="3o7r",
            ) from error.__cause__
        record: _ConnectionRecord = entry.raw
        record._poolwarden_entry = entry  # type: ignore[attr-defined]
        return record

    def _do_return_conn(self, record: Any) -> None:
        entry = record.__dict__.pop("_poolwarden_entry", None)
        if entry is None:
            return  # not ours (a record from before recreate(), or returned twice)
        if record.dbapi_connection is None:
            # Invalidated or detached: reconnected at its next checkout. Let go of the old
            # connection, which SQLAlchemy leaves to the garbage collector.
            entry.probe = None
            record.__dict__.pop("_poolwarden_conn", None)
        self._checkin_entry(entry)

    def _renewed(self, entry: Entry, record: _ConnectionRecord, held: bool = False) -> None:
        """``record`` holds a new connection (SQLAlchemy reconnected it in place, or the
        held-connection check replaced a dead one): probe its socket, start its life."""
        self._pool.hooks.renewed(entry, record, held)

    def _dbapi_error(self, exc: BaseException, connection: Any) -> None:
        """A statement on ``connection`` (an engine Connection) raised ``exc``: tell the
        pool if it says the server became read-only (a failover)."""
        warden = self._warden
        if warden.role != "primary" or connection is None:
            return
        try:
            fairy = connection.connection
        except Exception:
            return  # closed or invalidated meanwhile: nothing of ours to retire
        record = getattr(fairy, "_connection_record", None)
        entry = None if record is None else record.__dict__.get("_poolwarden_entry")
        if entry is None:
            return
        verdict = self._records.read_only_error(exc, record)
        if verdict is not None:
            warden.read_only_seen(entry, exc, verdict)

    # -- QueuePool's public methods ------------------------------------------------------
    def recreate(self) -> WardenPool:
        """A new, empty pool with the same arguments and event listeners."""
        self.logger.info("Pool recreating")
        args = dict(self._warden_args)
        return self.__class__(
            self._creator,
            echo=self.echo,
            logging_name=self._orig_logging_name,
            reset_on_return=self._reset_on_return,
            _dispatch=self.dispatch,
            dialect=self._dialect,
            **args,
        )

    def dispose(self) -> None:
        """Close the idle connections; checked-out ones stay usable, as with QueuePool."""
        self._warden.close_idle()
        self.logger.info("Pool disposed. %s", self.status())

    def status(self) -> str:
        return (
            f"Pool size: {self.size()}  Connections in pool: {self.checkedin()} "
            f"Current Overflow: {self.overflow()} Current Checked out connections: "
            f"{self.checkedout()}"
        )

    def size(self) -> int:
        return self._size

    def timeout(self) -> float:
        return self._timeout  # None for no limit, as QueuePool's

    def checkedin(self) -> int:
        return self._warden.sizes().idle

    def checkedout(self) -> int:
        return self._warden.sizes().in_use

    def overflow(self) -> int:
        """Connections beyond ``pool_size`` (negative while below it, as QueuePool's)."""
        return self._overflow if self._size else 0

    def stats(self) -> PoolStats:
        """poolwarden's statistics: sizes, counters, wait and hold times."""
        return self._warden.stats()

    def close(self) -> None:
        """Close the pool for good (threads, idle connections); the engine then needs a
        new pool (``engine.dispose()`` makes one)."""
        self._warden.close()

    def __repr__(self) -> str:
        return f"<WardenPool {self._warden.describe()}>"


#: Who called WardenPool.connect (through SQLAlchemy's checkout chain).
_CALLERS = CallerFinder(WardenPool.connect.__code__)


@event.listens_for(Engine, "handle_error")
def _statement_failed(context: ExceptionContext) -> None:
    """Every engine's errors pass here (SQLAlchemy has no per-pool error event): those of
    engines on a WardenPool go to it, so a read-only error can retire the old primary's
    connections. Other engines pay one attribute read and an isinstance check per error."""
    pool = getattr(context.engine, "pool", None)
    if isinstance(pool, WardenPool):
        pool._dbapi_error(context.original_exception, context.connection)
