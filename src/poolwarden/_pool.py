"""The thread-based pool: a thin I/O shell around :class:`~poolwarden._core.PoolCore`."""

from __future__ import annotations

import copy
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from . import _fork
from ._callsite import capture_stack, format_stack
from ._clock import Clock, MonotonicClock
from ._config import check_count, check_reset, check_seconds, check_sizes
from ._core import PoolCore, Waiter
from ._entry import Entry
from ._housekeeper import Housekeeper
from ._proxy import IN_TRANSACTION, UNTOUCHED, PooledConnection
from ._stats import PoolStats
from ._url import parse_url
from .adapters import Adapter, for_connection, for_url
from .errors import ConnectionReturned, PoolClosed, PoolError, PoolTimeout

__all__ = ["Pool"]

log = logging.getLogger("poolwarden")

_allocate_lock = threading.Lock


class Pool:
    """A thread-safe pool of DB-API connections.

    ``target`` is an SQLAlchemy-style URL (``mysql+pymysql://user:pw@host:3306/db``,
    ``postgresql+psycopg://…``, ``sqlite:///file.db``; query options go to the driver) or a
    zero-argument callable returning a new DB-API connection.

    Sizing follows SQLAlchemy's QueuePool: the pool starts empty, grows to ``pool_size``
    connections as needed, then opens up to ``max_overflow`` more, which are closed when
    returned. A checkout that finds nothing free waits up to ``timeout`` seconds, in
    first-come first-served order, then raises :class:`~poolwarden.PoolTimeout`.

    Args:
        pool_size: connections kept open once opened (>= 0).
        max_overflow: extra connections allowed under load, closed on return (>= 0).
        timeout: default seconds a checkout waits (> 0).
        min_idle: idle connections opened and kept ready in the background.
        reset: what happens when a connection comes back: ``"rollback"`` (default) ends any
            transaction that may be open, including a read snapshot; ``"session"`` also
            clears session state (variables, temporary tables, ``SET SESSION``) with
            COM_RESET_CONNECTION or ``DISCARD ALL``; ``None`` does nothing.
        leak_threshold: seconds after which a connection still checked out is logged, once,
            with the stack that checked it out (``None``: off).
        max_connecting: connect attempts allowed at the same time.
        connect_args: extra keyword arguments for the driver's ``connect()``.
        configure: called with each new DB-API connection before first use.
        adapter: a :class:`poolwarden.adapters.Adapter` for a driver poolwarden does not know.
        name: label for logs and ``repr`` (default: the URL without its password).
        clock: time source, for tests.
    """

    def __init__(
        self,
        target: str | Callable[[], Any],
        *,
        pool_size: int = 5,
        max_overflow: int = 10,
        timeout: float = 30.0,
        min_idle: int = 0,
        reset: str | None = "rollback",
        leak_threshold: float | None = None,
        max_connecting: int = 4,
        connect_args: Mapping[str, Any] | None = None,
        configure: Callable[[Any], None] | None = None,
        adapter: Adapter | None = None,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        pool_size, max_overflow, min_idle = check_sizes(pool_size, max_overflow, min_idle)
        self._timeout = check_seconds("timeout", timeout)
        self._reset_mode = check_reset(reset)
        self._leak_threshold = check_seconds("leak_threshold", leak_threshold, optional=True)
        max_connecting = check_count("max_connecting", max_connecting, minimum=1)
        if configure is not None and not callable(configure):
            raise ValueError(
                f"configure must be a callable taking a connection, got {configure!r}"
            )
        self._configure = configure
        self._adapter, self._detect_driver = self._make_adapter(target, connect_args, adapter)
        self.name = name or self._adapter.describe()
        self._now = (clock or MonotonicClock()).monotonic
        self._core = PoolCore(
            pool_size=pool_size,
            max_overflow=max_overflow,
            min_idle=min_idle,
            max_connecting=max_connecting,
        )
        self._lock = threading.Lock()
        self._closing = threading.Event()
        #: Entries of proxies the garbage collector dropped unreturned, with what they did.
        self._orphans: deque[tuple[Entry, int, dict[str, Any] | None]] = deque()
        self._housekeeper: Housekeeper | None = None
        #: When the housekeeper's next round is due (monotonic seconds).
        self._housekeeping_due = float("-inf")
        _fork.register(self)
        self._start_background()

    @staticmethod
    def _make_adapter(
        target: Any, connect_args: Mapping[str, Any] | None, adapter: Adapter | None
    ) -> tuple[Adapter, bool]:
        if connect_args is not None and not isinstance(connect_args, Mapping):
            raise ValueError(f"connect_args must be a mapping, got {type(connect_args).__name__}")
        if adapter is not None:
            if not isinstance(adapter, Adapter):
                raise ValueError("adapter must be a poolwarden.adapters.Adapter instance")
            return adapter, False
        if isinstance(target, str):
            return for_url(parse_url(target), connect_args or {}), False
        if callable(target):
            if connect_args:
                raise ValueError(
                    "connect_args applies to URL targets only; pass them to "
                    "your connect callable instead"
                )
            return Adapter(None, target), True
        raise ValueError(
            "target must be a database URL such as 'mysql+pymysql://user:pw@host/db' or a "
            f"zero-argument callable returning a DB-API connection, got {type(target).__name__}"
        )

    def _start_background(self) -> None:
        """Start timed work if the settings need it, and open ``min_idle`` connections."""
        if self._leak_threshold is not None or self._core.min_idle > 0:
            self._housekeeper = Housekeeper(self, f"poolwarden-housekeeper {self.name}")
            self._housekeeper.start()
        with self._lock:
            opens = self._core.opens_wanted(self._now())
        self._start_connectors(opens)

    # -- checkout ------------------------------------------------------------------------
    def getconn(self, timeout: float | None = None) -> PooledConnection:
        """Check out a connection; give it back with :meth:`putconn` or its ``close()``.

        Prefer :meth:`connection`, which cannot forget to give it back. Waits up to
        ``timeout`` seconds (default: the pool's) and raises :class:`PoolTimeout` then.
        """
        return self._checkout(timeout, sys._getframe(1))

    def connection(self, timeout: float | None = None) -> PooledConnection:
        """Check out a connection for a ``with`` block, which gives it back on exit::

        with pool.connection() as conn:
            cur = conn.cursor()
            cur.execute("SELECT 1")
        """
        return self._checkout(timeout, sys._getframe(1))

    def _checkout(self, timeout: float | None, frame: FrameType) -> PooledConnection:
        now = self._now()
        with self._lock:
            core = self._core
            if core.closed:
                raise PoolClosed(f"the pool {self.name} is closed")
            entry = core.checkout(now)
            if entry is not None:
                entry.site_code = frame.f_code
                entry.site_lasti = frame.f_lasti
            # Below min_idle and nothing being opened: have the housekeeper top it up.
            refill = (
                len(core.idle) < core.min_idle
                and not core.connecting
                and core.total() < core.max_size
            )
        if entry is None:
            entry = self._wait(timeout, now, frame)
        if self._leak_threshold is not None:
            entry.stack = capture_stack(frame)
            entry.thread_name = threading.current_thread().name
            refill = refill or now + self._leak_threshold < self._housekeeping_due
        if refill and self._housekeeper is not None:
            self._housekeeping_due = now  # a round is coming: no need to wake it twice
            self._housekeeper.wake()
        return PooledConnection(self, entry)

    def _wait(self, timeout: float | None, now: float, frame: FrameType) -> Entry:
        wait = self._timeout if timeout is None else check_seconds("timeout", timeout)
        assert wait is not None
        if self._orphans:
            self._reclaim_orphans()
        signal = _allocate_lock()
        signal.acquire()
        waiter = Waiter(now, signal)
        with self._lock:
            core = self._core
            if core.closed:
                raise PoolClosed(f"the pool {self.name} is closed")
            entry = core.checkout(now)
            if entry is None:
                core.enqueue(waiter)
                opens = core.opens_wanted(now)
        if entry is None:
            self._start_connectors(opens)
            try:
                got = signal.acquire(timeout=wait)
            except BaseException:
                self._abandon(waiter)
                raise
            with self._lock:
                if not got and not core.give_up(waiter):
                    error = core.last_connect_error
                    if core.last_connect_error_at < now:
                        error = None
                    raise PoolTimeout(self._timeout_message(wait, error)) from error
                entry = waiter.entry
        if entry is None:
            raise _fresh(waiter.error)
        entry.site_code = frame.f_code
        entry.site_lasti = frame.f_lasti
        return entry

    def _abandon(self, waiter: Waiter) -> None:
        """The waiting thread was interrupted: leave the queue, giving back anything that
        reached it meanwhile, so no slot is lost."""
        with self._lock:
            handed = self._core.give_up(waiter)
        if handed and waiter.entry is not None:
            self._give_back(waiter.entry, UNTOUCHED, None)

    def _timeout_message(self, waited: float, connect_error: BaseException | None) -> str:
        core = self._core
        in_use, waiting = len(core.in_use), len(core.waiters)
        text = (
            f"no connection available within {waited:g} s from pool {self.name}: "
            f"{in_use} of {core.max_size} connections in use "
            f"(pool_size={core.pool_size}, max_overflow={core.max_overflow}), "
            f"{waiting} other checkout(s) waiting"
        )
        if connect_error is not None:
            text += (
                f"; opening a new connection failed {core.backoff.failures} time(s) in a row, "
                f"last with: {self._redact(repr(connect_error))}"
            )
        oldest = core.oldest_holder()
        if oldest is not None:
            held = self._now() - oldest.checkout_at
            who = f" by thread {oldest.thread_name!r}" if oldest.thread_name else ""
            text += (
                f". The longest-held connection (#{oldest.id}) has been checked out for "
                f"{held:.1f} s, at {oldest.site()}{who}. Connections that are never given "
                "back exhaust the pool: use 'with pool.connection() as conn:' or return "
                "them in a 'finally:' block; set leak_threshold to log the stack of each "
                "connection held too long"
            )
        return text

    # -- checkin -------------------------------------------------------------------------
    def putconn(self, conn: PooledConnection) -> None:
        """Give back a connection from :meth:`getconn` (``conn.close()`` does the same)."""
        try:
            entry = conn._entry
        except AttributeError:
            entry = None
        if entry is None or conn._pool is not self:
            raise self._bad_return(conn)
        conn._entry = None
        if conn._activity or conn._saved is not None or entry.leak_reported or self._orphans:
            self._give_back(entry, conn._activity, conn._saved)
            if self._orphans:
                self._reclaim_orphans()
            return
        # Untouched and unremarkable: no reset to decide, nothing to log.
        now = self._now()
        with self._lock:
            core = self._core
            if entry.generation != core.generation:
                return  # inherited from the parent process: never touch it
            waiter, close = core.checkin(entry, now, True)
        if waiter is not None:
            waiter.signal.release()
        elif close is not None:
            self._close_and_refill(close)

    def _bad_return(self, conn: Any) -> Exception:
        if not isinstance(conn, PooledConnection):
            return PoolError(
                f"putconn() takes a connection checked out of this pool, got {conn!r}"
            )
        if conn._pool is not self:
            return PoolError(f"putconn(): {conn!r} belongs to another pool, not {self!r}")
        return ConnectionReturned("this connection was already returned to the pool")

    def _give_back(self, entry: Entry, activity: int, saved: dict[str, Any] | None) -> None:
        reusable, worked, interrupted = True, False, None
        if activity != UNTOUCHED or saved is not None:
            try:
                reusable, worked = self._reset(entry, activity, saved)
            except BaseException as exc:  # interrupted mid-reset: its state is unknown
                reusable, worked, interrupted = False, True, exc
        now = self._now()
        with self._lock:
            core = self._core
            if entry.generation == core.generation:  # else the parent's: never touch it
                if worked:
                    core.counters.resets += 1
                    core.counters.reset_failures += not reusable
                waiter, close = core.checkin(entry, now, reusable)
            else:
                waiter, close = None, None
        if waiter is not None:
            waiter.signal.release()
        if close is not None:
            self._close_and_refill(close)
        if entry.leak_reported:
            log.info(
                "connection #%d reported as possibly leaked was returned after %.1f s",
                entry.id,
                now - entry.checkout_at,
            )
        if interrupted is not None:
            raise interrupted

    def _close_and_refill(self, entry: Entry) -> None:
        """Close a connection the pool let go, then open others if waiters need them."""
        self._close_entry(entry)
        with self._lock:
            opens = self._core.opens_wanted(self._now())
        self._start_connectors(opens)

    def _reset(
        self, entry: Entry, activity: int, saved: dict[str, Any] | None
    ) -> tuple[bool, bool]:
        """Make a returned connection fit for the next borrower.

        Returns (reusable, worked): whether to keep it, and whether any reset was done.
        """
        if entry.broken:
            return False, False
        adapter, raw, mode = self._adapter, entry.raw, self._reset_mode
        worked = False
        try:
            if adapter.is_closed(raw):
                return False, False
            if mode == "session":
                if not adapter.can_reset_session():
                    return False, False  # cannot clear its state: a new connection is the reset
                adapter.reset_session(raw)
                worked = True
            elif mode == "rollback" and activity == IN_TRANSACTION and adapter.needs_rollback(raw):
                adapter.rollback(raw)
                worked = True
            for attribute, value in (saved or {}).items():
                worked = True
                if attribute == "autocommit":
                    adapter.set_autocommit(raw, value)
                else:
                    setattr(raw, attribute, value)
        except Exception as exc:
            disconnect = adapter.is_disconnect(exc, raw)
            log.log(
                logging.INFO if disconnect else logging.WARNING,
                "resetting connection #%d failed (%s); closing it",
                entry.id,
                self._redact(repr(exc)),
            )
            return False, True
        return True, worked

    # -- connecting ----------------------------------------------------------------------
    def _start_connectors(self, count: int) -> None:
        for started in range(count):
            thread = threading.Thread(
                target=self._connector, name=f"poolwarden-connect {self.name}", daemon=True
            )
            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down: no threads any more
                with self._lock:
                    for _ in range(count - started):
                        self._core.abandon_connect()
                return

    def _connector(self) -> None:
        """Open connections while the pool wants them, pausing after failures."""
        delay = self._core.backoff.retry_at - self._now()  # still backing off?
        while True:
            if delay > 0:
                if self._closing.wait(delay):
                    with self._lock:
                        self._core.abandon_connect()
                    return
                with self._lock:
                    if not self._core.resume_connecting():
                        return
            try:
                raw = self._open()
            except Exception as exc:
                retryable = self._adapter.is_retryable_connect_error(exc)
                log.log(
                    logging.WARNING if self._core.backoff.failures == 0 else logging.DEBUG,
                    "connecting to %s failed: %s%s",
                    self.name,
                    self._redact(repr(exc)),
                    " (will retry)" if retryable else "",
                )
                with self._lock:
                    result = self._core.connect_failed(exc, self._now(), retryable)
                for waiter in result.fail:
                    waiter.signal.release()
            except BaseException:
                with self._lock:
                    self._core.abandon_connect()
                raise
            else:
                with self._lock:
                    result = self._core.connect_succeeded(raw, self._now())
                if result.wake is not None:
                    result.wake.signal.release()
                if result.close is not None:
                    self._close_entry(result.close)
            if result.again is None:
                return
            delay = result.again

    def _open(self) -> Any:
        raw = self._adapter.connect()
        if self._detect_driver:
            self._adapter = for_connection(raw, self._adapter._connect)
            self._detect_driver = False
        if self._configure is not None:
            try:
                self._configure(raw)
            except BaseException:
                try:
                    self._adapter.close(raw)
                except Exception:
                    pass
                raise
        return raw

    def _close_entry(self, entry: Entry) -> None:
        try:
            self._adapter.close(entry.raw)
        except Exception as exc:
            log.debug("closing connection #%d failed: %r", entry.id, exc)

    # -- background ----------------------------------------------------------------------
    def _orphaned(self, entry: Entry, activity: int, saved: dict[str, Any] | None) -> None:
        """Called from a proxy's ``__del__``: queue only (deque.append takes no lock)."""
        self._orphans.append((entry, activity, saved))
        if self._housekeeper is not None:
            self._housekeeper.wake()

    def _reclaim_orphans(self) -> None:
        while True:
            try:
                entry, activity, saved = self._orphans.popleft()
            except IndexError:
                return
            with self._lock:
                core = self._core
                if entry.generation != core.generation or entry not in core.in_use:
                    continue
                core.counters.reclaimed += 1
                if not entry.leak_reported:
                    core.counters.leaks += 1
            log.warning(
                "connection #%d of pool %s was garbage-collected without being "
                "returned; the pool reclaimed it. It was checked out at %s%s:\n%s",
                entry.id,
                self.name,
                entry.site(),
                f" by thread {entry.thread_name!r}" if entry.thread_name else "",
                format_stack(entry.stack),
            )
            self._give_back(entry, activity, saved)

    def _housekeep(self) -> float | None:
        """One round of timed work; returns seconds until the next is due."""
        if self._orphans:
            self._reclaim_orphans()
        now = self._now()
        threshold = self._leak_threshold
        with self._lock:
            core = self._core
            if core.closed:
                return None
            leaks = core.leaks_due(now, threshold) if threshold is not None else []
            opens = core.opens_wanted(now)
            due = core.next_leak_check(threshold) if threshold is not None else None
            if core.min_idle and len(core.idle) < core.min_idle:
                retry = core.backoff.retry_at
                due = retry if due is None else min(due, retry)
        for entry in leaks:
            log.warning(
                "connection #%d of pool %s has been checked out for %.1f s "
                "(leak_threshold=%g s) and not returned yet; it was checked out at %s%s:\n%s",
                entry.id,
                self.name,
                now - entry.checkout_at,
                threshold,
                entry.site(),
                f" by thread {entry.thread_name!r}" if entry.thread_name else "",
                format_stack(entry.stack),
            )
        self._start_connectors(opens)
        self._housekeeping_due = float("inf") if due is None else due
        return None if due is None else due - now

    # -- management ----------------------------------------------------------------------
    def resize(
        self,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        min_idle: int | None = None,
    ) -> None:
        """Change the limits while the pool is in use. Surplus idle connections close now;
        surplus borrowed ones close when they come back; waiters get new room at once."""
        core = self._core
        size, overflow, idle = check_sizes(
            core.pool_size if pool_size is None else pool_size,
            core.max_overflow if max_overflow is None else max_overflow,
            core.min_idle if min_idle is None else min_idle,
        )
        with self._lock:
            core.min_idle = idle
            surplus = core.resize(size, overflow)
            opens = core.opens_wanted(self._now())
        for entry in surplus:
            self._close_entry(entry)
        self._start_connectors(opens)
        if idle and self._housekeeper is None and not core.closed:
            self._housekeeper = Housekeeper(self, f"poolwarden-housekeeper {self.name}")
            self._housekeeper.start()

    def stats(self) -> PoolStats:
        """A snapshot of sizes, counters and wait/hold time percentiles."""
        with self._lock:
            return self._core.snapshot()

    def close(self) -> None:
        """Close the pool: idle connections now, borrowed ones when they come back; threads
        waiting for a connection get :class:`PoolClosed`. Closing twice is harmless."""
        with self._lock:
            if self._core.closed:
                return
            idle, waiters = self._core.close()
        self._closing.set()
        for waiter in waiters:
            waiter.error = PoolClosed(f"the pool {self.name} was closed while waiting")
            waiter.signal.release()
        for entry in idle:
            self._close_entry(entry)
        if self._housekeeper is not None:
            self._housekeeper.stop()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._core.closed

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        core = self._core
        state = (
            "closed"
            if core.closed
            else (f"idle={len(core.idle)} in_use={len(core.in_use)} waiting={len(core.waiters)}")
        )
        return f"<Pool {self.name} size={core.pool_size}+{core.max_overflow} {state}>"

    # -- helpers -------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        password = self._adapter.kwargs.get("password")
        if password:
            text = text.replace(str(password), "***")
        return text

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's connections without touching them at the
        server, and start afresh with new locks and threads."""
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._orphans.clear()
        for entry in self._core.forget_all():
            self._adapter.detach(entry.raw)
        if self._core.closed:
            self._closing.set()
            self._housekeeper = None
            return
        self._housekeeper = None
        self._start_background()


def _fresh(error: BaseException | None) -> BaseException:
    """A copy of an error shared by several waiters, so each raise has its own traceback."""
    if error is None:
        return PoolError("internal error: woken without a connection or an error")
    try:
        clone = copy.copy(error)
    except Exception:
        return error
    return clone if type(clone) is type(error) else error
