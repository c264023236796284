# Generated from src/poolwarden/_async/_engine.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""The machinery behind :class:`~poolwarden.Pool`: one engine per pool.

The pool applications hold (``Pool`` here) is the engine's face; SQLAlchemy's pools
put another face on an engine (``WardenPool`` on the thread pool's, ``AsyncWardenPool`` on
the asyncio one's), and the per-checkout proxies work through it. Those callers use only
this interface:

Checking out and returning
    :meth:`~PoolEngine.checkout` (the whole of a checkout);
    :meth:`~PoolEngine.checkout_nowait` and :meth:`~PoolEngine.finish_checkout`
    (its part without I/O, and the rest, for SQLAlchemy's asyncio pool, which must not go
    through the event loop when nothing waits); :meth:`~PoolEngine.give_back` (with
    the borrower's activity, for the reset) and :meth:`~PoolEngine.release` (untouched,
    or reset by the caller); :meth:`~PoolEngine.file_release`,
    :meth:`~PoolEngine.release_needs_io` and :meth:`~PoolEngine.close_and_refill`
    (the return split the same way).
A borrower's connection
    :meth:`~PoolEngine.held_check`, :meth:`~PoolEngine.held_lost`,
    :meth:`~PoolEngine.replace_held` (the check after a pause, see ``_held``);
    :meth:`~PoolEngine.renewed` (the caller replaced it);
    :meth:`~PoolEngine.operation_failed` (an operation on it raised);
    :meth:`~PoolEngine.read_only_seen` (its server became read-only: a failover?);
    :meth:`~PoolEngine.orphaned` (its proxy was garbage-collected unreturned) and
    :meth:`~PoolEngine.reclaim_orphans` (take those back now).
The pool
    :meth:`~PoolEngine.resize`, :meth:`~PoolEngine.close`,
    :meth:`~PoolEngine.close_idle`; readings: :meth:`~PoolEngine.stats`,
    :meth:`~PoolEngine.metrics_reading`, :meth:`~PoolEngine.sizes`,
    :meth:`~PoolEngine.idle_connections`, :meth:`~PoolEngine.describe` (for a
    repr); and the properties ``adapter``, ``role``, ``proxy``, ``closed``,
    ``held_check_after``, ``validation_timeout``, ``last_connect_error``, and ``now`` (the
    clock). :meth:`~PoolEngine.after_fork` is the fork registry's (``_core.fork``).

Inside, the decisions are :class:`~poolwarden._core.PoolCore`'s, taken under the engine's
lock; the engine carries them out with its parts, which share one :class:`~._shared.Shared`
(the books, their lock, the I/O, the clock) and never reference the engine itself:
``ConnectionIO`` (every driver call), ``Background`` (connectors, housekeeper),
``ServerRules`` (what the first connection teaches), ``Waiting`` (checkouts that need I/O),
``Failover`` (what a borrower's error means) and ``HeldConnections``.
"""

from __future__ import annotations

import logging
import weakref
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import Any

from .._core import PoolCore
from .._core import fork as _fork
from .._core.activity import UNTOUCHED
from .._core.callsite import capture_stack
from .._core.clock import Clock, MonotonicClock
from .._core.config import check_sizes
from .._core.entry import Entry
from .._core.held import HeldAction
from .._core.readings import Sizes
from .._core.settings import PoolSettings
from .._core.stats import MetricsReading, PoolStats, SampleCursor
from .._net.servers import Resolver
from ..adapters import Adapter
from ..adapters._proxies import ProxyInfo
from ..adapters.base import BaseAdapter
from ..errors import ConnectionLost, PoolClosed
from ._background import Background, Orphans
from ._compat import current_name
from ._failover import Failover
from ._held import HeldConnections
from ._io import ConnectionIO
from ._rules import ServerRules
from ._shared import Shared
from ._waiting import Pending, Waiting

__all__ = ["PoolEngine"]

log = logging.getLogger("poolwarden")


class PoolEngine:
    """One pool's machinery (see the module docstring for the interface).

    ``target``, ``connect_args``, ``adapter``: what to connect to, as for Pool;
    ``fifo``: hand out the connection idle longest first (QueuePool's order) instead of the
    most recently used.
    """

    def __init__(
        self,
        target: Any,
        settings: PoolSettings,
        *,
        connect_args: Any = None,
        configure: Callable[[Any], Any] | None = None,
        adapter: Adapter | BaseAdapter | None = None,
        resolver: Resolver | None = None,
        name: str | None = None,
        clock: Clock | None = None,
        fifo: bool = False,
    ) -> None:
        self._io = io = ConnectionIO.for_target(
            target, settings, connect_args, configure, adapter, resolver
        )
        adapter = io.adapter
        self.name = name or adapter.describe()
        self.now: Callable[[], float] = (clock or MonotonicClock()).monotonic
        keepalive = settings.keepalive
        self._core = core = PoolCore(
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            min_idle=settings.min_idle,
            max_connecting=settings.max_connecting,
            fifo=fifo,
            ping_after_idle=settings.ping_interval,
            keepalive=keepalive if isinstance(keepalive, float) else None,
        )
        if isinstance(settings.max_lifetime, float):
            core.set_lifetime(settings.max_lifetime)
        self._timeout = settings.checkout_timeout
        #: The least a checkout that has a connection opened for it waits.
        self._connect_wait = settings.connect_wait_floor
        self._leak_threshold = settings.leak_threshold
        #: Seconds a borrower may leave its connection unused before the next operation
        #: first checks it (infinity: never).
        self.held_check_after = settings.held_check_interval
        self._shared = shared = Shared(core, io, self.now, self.name)
        self._lock = shared.lock
        self._rules = ServerRules(shared, settings)
        self._held = HeldConnections(shared, self._rules)
        self._orphans: Orphans = deque()
        give_back = weakref.WeakMethod(self._give_back)
        self._background = background = Background(
            shared, settings, self._rules, self._orphans, give_back
        )
        self._failover = Failover(shared, self._rules, background)
        io.on_wrong_role = self._failover.wrong_role_seen
        self._waiting = Waiting(shared, background, settings, self._orphans, weakref.proxy(self))
        _fork.register(self)
        self._start_background()

    def _start_background(self) -> None:
        """Open ``min_idle`` connections (with the housekeeper to keep them). Other timed
        work waits for the first connection, so that merely creating a pool, say at import
        time before a server forks its workers, starts no thread."""
        if self._core.min_idle:
            self._background.ensure_housekeeper()
        with self._lock:
            opens = self._core.opens_wanted(self.now())
        self._background.start_connectors(opens)

    # -- what the engine is --------------------------------------------------------------
    @property
    def adapter(self) -> Adapter:
        """The driver adapter: how this pool connects, checks, resets and closes (a
        callable target's is recognised from its first connection)."""
        return self._io.adapter

    @property
    def role(self) -> str:
        """The server role the pool needs (``"any"``, ``"primary"``, ...)."""
        return self._io.role

    @property
    def validation_timeout(self) -> float:
        """Seconds a ping may take before the connection counts as dead."""
        return self._io.validation_timeout

    @property
    def proxy(self) -> ProxyInfo | None:
        """The proxy in front of the server, once known (None: none)."""
        return self._rules.proxy

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._core.closed

    @property
    def last_connect_error(self) -> BaseException | None:
        """The error of the latest failed connect attempt, if any."""
        return self._core.last_connect_error

    # -- checkout ------------------------------------------------------------------------
    def checkout(self, timeout: float | None, frame: FrameType) -> Entry:
        """Check out an entry for the caller at ``frame`` (for leak reports), waiting up to
        ``timeout`` seconds (None: the pool's)."""
        got = self.checkout_nowait(frame)
        if got.__class__ is Entry:  # not isinstance(): a call costs on the hot path
            return got
        return self.finish_checkout(got, timeout)  # type: ignore[arg-type]

    def checkout_nowait(self, frame: FrameType) -> Entry | Pending:
        """The part of a checkout that needs no I/O, the whole of it most times: an idle
        connection that passed the quick checks (the books and the socket probe), or what
        :meth:`finish_checkout` must finish."""
        now = self.now()
        core = self._core
        with self._lock:
            if core.closed:
                raise PoolClosed(f"the pool {self.name} is closed")
            entry, fit = core.checkout_checked(now)
        if entry is None:
            return Pending(None, now, frame)
        entry.site_code = frame.f_code
        entry.site_lasti = frame.f_lasti
        # Only a connection that fails a quick check costs more.
        if not fit or (entry.probe is not None and entry.probe()):
            return Pending(entry, now, frame)
        if core.min_idle or self._leak_threshold is not None:
            self._after_checkout(entry, now, frame)  # leak reports, refills
        return entry

    def finish_checkout(self, pending: Pending, timeout: float | None) -> Entry:
        """Finish what :meth:`checkout_nowait` began: wait for a connection, or check the
        one it took properly (and replace it as often as needed)."""
        entry = self._waiting.finish(pending, timeout)
        if self._core.min_idle or self._leak_threshold is not None:
            self._after_checkout(entry, pending.now, pending.frame)
        return entry

    def _after_checkout(self, entry: Entry, now: float, frame: FrameType) -> None:
        """Leak-detection bookkeeping, and waking the housekeeper when it has work."""
        refill = self._core.wants_refill()
        if self._leak_threshold is not None:
            entry.stack = capture_stack(frame)
            entry.thread_name = current_name()
            due = self._background.housekeeping_due
            refill = refill or now + self._leak_threshold < due
        if refill:
            self._background.housekeep_soon(now)

    # -- checkin -------------------------------------------------------------------------
    def release(self, entry: Entry) -> None:
        """Give back an entry that needs no reset: untouched by its borrower, or reset by
        the caller (SQLAlchemy's pools reset their records themselves)."""
        if entry.leak_reported or self._orphans:  # release_needs_io, inlined: hot path
            self.give_back(entry, UNTOUCHED, None)
            return
        close = self.file_release(entry)
        if close is not None:
            self._background.close_and_refill(close)

    def release_needs_io(self, entry: Entry) -> bool:
        """Whether returning an untouched ``entry`` needs more than :meth:`file_release`:
        a leak report to close, or connections of cancelled tasks to reclaim."""
        return entry.leak_reported or bool(self._orphans)

    def file_release(self, entry: Entry) -> Entry | None:
        """The books of an unremarkable return, without I/O: the waiter it goes to is
        woken; returns the entry if it must be closed instead (see
        :meth:`close_and_refill`)."""
        now = self.now()
        with self._lock:
            core = self._core
            if entry.generation != core.generation:
                return None  # inherited from the parent process: never touch it
            waiter, close = core.checkin(entry, now, True)
        if waiter is not None:
            waiter.signal.release()
        elif close is None and entry.expires_at < self._background.housekeeping_due:
            self._background.wake_housekeeper(now)  # its plan missed this retirement
        return close

    def close_and_refill(self, entry: Entry) -> None:
        """Close a connection the pool let go, then open others if waiters need them."""
        self._background.close_and_refill(entry)

    def give_back(self, entry: Entry, activity: int, saved: dict[str, Any] | None) -> None:
        """Give back ``entry`` after its borrower's ``activity`` (see ``_core.activity``),
        restoring the connection attributes in ``saved`` (their original values); then
        reclaim what the garbage collector dropped meanwhile."""
        self._give_back(entry, activity, saved)
        if self._orphans:
            self.reclaim_orphans()

    def _give_back(self, entry: Entry, activity: int, saved: dict[str, Any] | None) -> None:
        reusable, worked, interrupted = True, False, None
        if activity != UNTOUCHED or saved is not None:
            try:
                reusable, worked = self._io.reset(entry, activity, saved)
            except BaseException as exc:  # interrupted mid-reset: its state is unknown
                reusable, worked, interrupted = False, True, exc
        now = self.now()
        with self._lock:
            core = self._core
            if entry.generation == core.generation:  # else the parent's: never touch it
                if worked:
                    core.reset_done(reusable)
                waiter, close = core.checkin(entry, now, reusable)
            else:
                waiter, close = None, None
        if waiter is not None:
            waiter.signal.release()
        if close is not None:
            self._background.close_and_refill(close)
        if entry.leak_reported:
            log.info(
                "connection #%d reported as possibly leaked was returned after %.1f s",
                entry.id,
                now - entry.checkout_at,
            )
        if interrupted is not None:
            raise interrupted

    # -- a borrower's connection ---------------------------------------------------------
    def held_check(
        self, entry: Entry, used: bool, session_changed: bool, ending: bool, lost: str | None
    ) -> tuple[HeldAction, BaseException | None]:
        """What to do with the connection a borrower kept unused, after a pause (see
        ``HeldConnections.check``)."""
        return self._held.check(entry, used, session_changed, ending, lost)

    def held_lost(
        self,
        idle: float,
        open_transaction: bool,
        session_changed: bool,
        adapter: BaseAdapter | None = None,
        entry: Entry | None = None,
    ) -> ConnectionLost:
        """Count a held connection lost with work or state, and return the error its
        borrower gets (see ``HeldConnections.lost``)."""
        return self._held.lost(idle, open_transaction, session_changed, adapter, entry)

    def replace_held(self, entry: Entry) -> Any:
        """Put a new connection in the place of ``entry``'s dead one, in the borrower's
        hands; returns the new driver connection."""
        return self._held.replace(entry)

    def renewed(self, entry: Entry, held: bool = False) -> None:
        """``entry``'s holder replaced the connection inside it (SQLAlchemy reconnects an
        invalidated or recycled record in place; ``held``: a dead one found in the
        borrower's hands): probe the new socket, restart its lifetime."""
        now = self.now()
        probe = self._io.make_probe(entry.raw)
        with self._lock:
            entry.probe = probe
            if held:
                self._core.replaced_held(entry, now)
            else:
                self._core.renewed(entry, now)

    def read_only_seen(self, entry: Entry, exc: BaseException, verdict: str) -> None:
        """An operation on ``entry`` failed because its server is read-only (``verdict``
        ``"server"``), or perhaps is (``"maybe"``); see ``Failover.read_only_seen``."""
        self._failover.read_only_seen(entry, exc, verdict)

    def operation_failed(self, entry: Entry, raw: Any, exc: BaseException) -> None:
        """A borrower's operation on ``entry`` (driver connection ``raw``) raised ``exc``:
        retire the connection, or suspect others, as it says (see ``Failover``)."""
        self._failover.operation_failed(entry, raw, exc)

    def orphaned(self, entry: Entry, activity: int, saved: dict[str, Any] | None) -> None:
        """Called from a proxy's ``__del__``: queue only (deque.append takes no lock)."""
        self._orphans.append((entry, activity, saved))
        self._background.orphaned()

    def reclaim_orphans(self) -> None:
        """Take back the connections of proxies the garbage collector dropped unreturned."""
        self._background.reclaim_orphans()

    # -- the pool ------------------------------------------------------------------------
    def resize(
        self,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        min_idle: int | None = None,
    ) -> None:
        """Change the limits while the pool is in use (see ``Pool.resize``)."""
        core = self._core
        size, overflow, idle = check_sizes(
            core.pool_size if pool_size is None else pool_size,
            core.max_overflow if max_overflow is None else max_overflow,
            core.min_idle if min_idle is None else min_idle,
        )
        with self._lock:
            surplus = core.resize(size, overflow, idle)
            opens = core.opens_wanted(self.now())
        for entry in surplus:
            self._io.close(entry)
        self._background.start_connectors(opens)
        self._background.ensure_housekeeper()

    def close_idle(self) -> None:
        """Close every idle connection now, and pause the background work until the next
        connect or checkout that needs it; the pool stays open (SQLAlchemy's dispose,
        after which an engine usually drops the pool for a new one: its housekeeper must
        not keep it alive, nor refill it)."""
        with self._lock:
            idle = self._core.drain_idle()
        self._background.pause()
        for entry in idle:
            self._io.close(entry)

    def close(self) -> None:
        """Close the pool: idle connections now, borrowed ones when they come back;
        waiters get :class:`PoolClosed`. Closing twice is harmless."""
        with self._lock:
            if self._core.closed:
                return
            idle, waiters = self._core.close()
        self._shared.closing.set()
        for waiter in waiters:
            waiter.error = PoolClosed(f"the pool {self.name} was closed while waiting")
            waiter.signal.release()
        for entry in idle:
            self._io.close(entry)
        self._background.stop()

    def stats(self) -> PoolStats:
        """A snapshot of sizes, counters and wait/hold time percentiles."""
        with self._lock:
            return self._core.snapshot()

    def metrics_reading(self, since: SampleCursor) -> MetricsReading:
        """What :mod:`poolwarden.metrics` reads: gauges, counters and the new samples."""
        with self._lock:
            return self._core.metrics_reading(since)

    def sizes(self) -> Sizes:
        """The counts QueuePool's ``checkedin()`` and friends report, read cheaply."""
        core = self._core
        return Sizes(
            len(core.idle),
            len(core.in_use),
            core.total(),
            len(core.waiters),
            core.pool_size,
            core.max_overflow,
        )

    def describe(self) -> str:
        """``name size=5+10 idle=.. in_use=.. waiting=..`` (or ``closed``), for reprs."""
        n = self.sizes()
        state = "closed" if self.closed else f"idle={n.idle} in_use={n.in_use} waiting={n.waiting}"
        return f"{self.name} size={n.pool_size}+{n.max_overflow} {state}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    def idle_connections(self) -> list[Any]:
        """The idle connections, longest idle first (a copy)."""
        with self._lock:
            return [entry.raw for entry in self._core.idle]

    # -- process and event loop ----------------------------------------------------------
    def after_fork(self) -> None:
        """In a forked child: forget the parent's connections without touching them at the
        server, and start afresh with new locks and threads."""
        self._shared.renew_after_fork()
        self._lock = self._shared.lock
        self._orphans.clear()
        self._background.forget()
        for entry in self._core.forget_all():
            self._io.adapter.detach(entry.raw)
        if self._core.closed:
            self._shared.closing.set()
            return
        self._start_background()
