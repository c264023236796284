"""The pool's decisions, without I/O, threads or clocks.

Every method takes ``now`` (monotonic seconds) where time matters and returns what the I/O
shell must do: which waiter to wake, which connection to close, how many connections to open.
The shell calls these methods while holding its lock and performs the I/O after releasing it,
so the sync and asyncio pools can share this module and tests can drive it with a fake clock.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from typing import Any

from . import connecting, maintenance, readings
from .connecting import Backoff, ConnectResult, Waiter
from .entry import Entry
from .expiry import Expiry
from .stats import Counters, MetricsReading, PoolStats, SampleCursor, Sampler
from .verdicts import Verdict

__all__ = ["Backoff", "ConnectResult", "PoolCore", "Waiter"]


class PoolCore:
    """Books of one pool: idle connections, holders, waiters, connects in flight, counters.

    Idle connections are kept in the order they became idle (returned, opened or pinged):
    the first has been idle longest. By default a checkout takes the last one, the most
    recently used (LIFO), so that under light load surplus connections stay idle long
    enough to be retired. With ``fifo`` set a checkout takes the first one, the idle
    longest, and so rotates through every connection as SQLAlchemy's QueuePool does by
    default. Retirement and keepalive rely only on that order, so they work for both:
    ``idle_timeout`` retires from the front (the longest idle), keepalive pings the last
    ``min_idle`` (the ones retirement spares). Waiters form a FIFO queue; a connection
    that comes back, or a new one, goes to the oldest waiter, and nothing is idle while
    anyone waits.
    """

    def __init__(
        self,
        *,
        pool_size: int,
        max_overflow: int,
        min_idle: int,
        max_connecting: int,
        fifo: bool = False,
        ping_after_idle: float = float("inf"),
        keepalive: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.min_idle = min_idle
        self.max_connecting = max_connecting
        #: Idle connections, longest idle first (see the class docstring).
        self.idle: list[Entry] = []
        #: Hand out the connection idle longest instead of the most recently used one.
        self.fifo = fifo
        #: Seconds of idleness after which a connection must answer a ping before it is
        #: handed out (0: every time; infinity: never).
        self.ping_after_idle = ping_after_idle
        #: Seconds of idleness after which the ``min_idle`` connections are pinged in the
        #: background (None: never); an automatic one is set by :meth:`learned_idle_timeout`.
        self.keepalive = keepalive
        #: Holders in checkout order (dicts keep insertion order): the first is the oldest.
        self.in_use: dict[Entry, None] = {}
        self.waiters: deque[Waiter] = deque()
        self.connecting = 0
        self.closed = False
        #: Bumped in a forked child so entries inherited from the parent are recognised.
        self.generation = 0
        self.counters = Counters()
        #: The two counters touched on every checkout live here, one lookup closer.
        self.checkouts = self.checkins = 0
        self.wait_time = Sampler()
        self.hold_time = Sampler()
        #: Seconds each successful connect attempt took (connects are rare: a small ring).
        self.create_time = Sampler(1024)
        #: Failed connect attempts by cause (see :func:`error_cause`), for metrics.
        self.connect_errors: dict[tuple[str, str], int] = {}
        self.peak_in_use = self.peak_waiting = 0
        self._rng = rng or random.Random()
        self.backoff = Backoff(self._rng)
        #: When each connection retires (lifetime, failover, DNS).
        self.expiry = Expiry(self._rng)
        #: Connections not checked since this moment are pinged before reuse: a disconnect
        #: seen on one connection makes the others of its age suspect.
        self.suspect_before = float("-inf")
        #: Idle connections taken out for a keepalive ping (still counted as open).
        self.maintaining = 0
        #: Set by a shrink that left more open than now allowed; returned connections then
        #: close until the count fits again.
        self.over_limit = False
        self.last_connect_error: BaseException | None = None
        self.last_connect_error_at = float("-inf")
        #: The number the next new entry gets (ids count from 1 for the pool's life).
        self.next_id = 1

    # -- sizes ---------------------------------------------------------------------------
    @property
    def max_size(self) -> int:
        """The most connections that may be open at once."""
        return self.pool_size + self.max_overflow

    def total(self) -> int:
        """Connections open or being opened."""
        return len(self.idle) + len(self.in_use) + self.connecting + self.maintaining

    # -- checkout ------------------------------------------------------------------------
    def checkout(self, now: float) -> Entry | None:
        """Take an idle connection — the most recently used one, or with ``fifo`` the one
        idle longest — or ``None`` if there is none."""
        return self.checkout_checked(now)[0]

    def checkout_checked(self, now: float) -> tuple[Entry | None, bool]:
        """:meth:`checkout`, and whether the connection passed the quick checks, without
        I/O: within its lifetime, not idle so long that it needs a ping, not suspect. (The
        socket probe, a system call, is the shell's part of the quick checks.) This is the
        hottest path of the pool: it makes no call (one costs as much as the checks)."""
        idle = self.idle
        if not idle:
            return None, False
        entry = idle.pop(0) if self.fifo else idle.pop()
        # _hand_out, inlined.
        in_use = self.in_use
        in_use[entry] = None
        entry.checkout_at = now
        entry.leak_reported = False
        self.checkouts += 1
        if len(in_use) > self.peak_in_use:
            self.peak_in_use = len(in_use)
        return entry, (
            now < entry.expires_at
            and now - entry.last_used < self.ping_after_idle
            and entry.checked_at > self.suspect_before
        )

    def _hand_out(self, entry: Entry, now: float) -> None:
        self.in_use[entry] = None
        entry.checkout_at = now
        entry.leak_reported = False
        self.checkouts += 1
        if len(self.in_use) > self.peak_in_use:
            self.peak_in_use = len(self.in_use)

    def enqueue(self, waiter: Waiter) -> None:
        """Queue a checkout that found nothing idle."""
        self.waiters.append(waiter)
        if len(self.waiters) > self.peak_waiting:
            self.peak_waiting = len(self.waiters)

    def give_up(self, waiter: Waiter) -> bool:
        """A waiter's time ran out. Return False if it leaves empty-handed (a timeout);
        True if a connection or an error reached it meanwhile, which it must then take."""
        if waiter.entry is not None or waiter.error is not None:
            return True
        self.waiters.remove(waiter)
        self.counters.timeouts += 1
        return False

    # -- connections held by borrowers ---------------------------------------------------
    def renewed(self, entry: Entry, now: float) -> None:
        """The holder put a new connection in the entry's place (SQLAlchemy reconnecting a
        record): one close and one connect; the entry's clock and lifetime start again."""
        self.counters.connects += 1
        self.counters.closes += 1
        entry.created_at = entry.checked_at = entry.last_used = now
        self.expiry.stamp(entry)

    def replaced_held(self, entry: Entry, now: float) -> None:
        """A borrower's dead connection was replaced in place: a renewal whose old
        connection was dead, so older idle connections are suspect."""
        self.renewed(entry, now)
        self.counters.discards += 1
        self.counters.held_replaced += 1
        self.suspect_all(now)

    def lost_held(self, now: float) -> None:
        """A borrower's dead connection had work or state that is gone: it was reported."""
        self.counters.held_lost += 1
        self.suspect_all(now)

    # -- checkin -------------------------------------------------------------------------
    def checkin(
        self, entry: Entry, now: float, reusable: bool
    ) -> tuple[Waiter | None, Entry | None]:
        """A holder gave ``entry`` back. Return (waiter to wake, entry to close)."""
        del self.in_use[entry]
        self.checkins += 1
        self.hold_time.add_unmarked(now - entry.checkout_at)
        entry.last_used = now
        if not reusable or entry.broken:
            self.counters.discards += 1
            self.counters.invalidated += 1
            self.counters.closes += 1
            return None, entry
        if now >= entry.expires_at:
            self.counters.retired += 1
            self.counters.closes += 1
            return None, entry
        if (
            not self.waiters
            and len(self.idle) < self.pool_size
            and not self.closed
            and not self.over_limit
        ):
            self.idle.append(entry)  # the common case, decided without the general rules
            return None, None
        return self.place(entry, now)

    def discard(self, entry: Entry, retired: bool = False) -> None:
        """Forget a connection taken from the idle list that the shell found unusable (or
        too old) before handing it out, and is closing: that checkout did not happen."""
        del self.in_use[entry]
        self.checkouts -= 1
        if retired:
            self.counters.retired += 1
        else:
            self.counters.discards += 1
        self.counters.closes += 1

    def place(self, entry: Entry, now: float) -> tuple[Waiter | None, Entry | None]:
        """Route a usable connection: to the oldest waiter, to the idle list, or closed."""
        count = self.total() + 1  # ``entry`` too: it is in no list right now
        if self.closed or count > self.max_size:
            self.counters.closes += 1
            return None, entry
        self.over_limit = False
        if self.waiters:
            waiter = self.waiters.popleft()
            waiter.entry = entry
            self._hand_out(entry, now)
            self.wait_time.add(now - waiter.since, self.checkouts)
            return waiter, None
        if len(self.idle) >= max(self.pool_size, self.min_idle):
            # Enough are idle already: this one is overflow. Close it, as QueuePool does.
            self.counters.closes += 1
            return None, entry
        self.idle.append(entry)
        return None, None

    # -- connecting (the rules are poolwarden._core.connecting's) ------------------------
    def opens_wanted(self, now: float) -> int:
        """Reserve and return how many new connect attempts the shell should start."""
        return connecting.opens_wanted(self, now)

    def connect_succeeded(
        self,
        raw: Any,
        now: float,
        probe: Any = None,
        open_seconds: float | None = None,
        peer: tuple[str, int] | None = None,
        host: str | None = None,
    ) -> ConnectResult:
        """A connect attempt returned ``raw`` (connected to ``peer``, opened for ``host``)
        after ``open_seconds``; file it and say whether to open another."""
        return connecting.connect_succeeded(self, raw, now, probe, open_seconds, peer, host)

    def connect_failed(self, error: BaseException, now: float, retryable: bool) -> ConnectResult:
        """A connect attempt raised ``error``."""
        return connecting.connect_failed(self, error, now, retryable)

    def resume_connecting(
        self,
    ) -> bool:
        """After a backoff pause: go on (True), or give the reserved slot back (False)."""
        return connecting.resume_connecting(self)

    def abandon_connect(
        self,
    ) -> None:
        """Give back a reserved connect slot without an attempt (closing, shutting down)."""
        return connecting.abandon_connect(self)

    # -- lifetimes, failover and DNS (the rules are Expiry's) -----------------------------
    auto_lifetime = staticmethod(Expiry.auto_lifetime)

    @property
    def lifetime(self) -> float | None:
        """Seconds a connection may live (before jitter), or None for no limit."""
        return self.expiry.lifetime

    def learned_idle_timeout(
        self, timeout: float | None, lifetime: float | str | None, keepalive: float | str | None
    ) -> None:
        """The server's idle timeout for a session (None: it has none) was read on the
        first connection: the ``"auto"`` ones among the ``lifetime`` and ``keepalive``
        settings follow from it."""
        if lifetime == "auto":
            self.set_lifetime(Expiry.auto_lifetime(timeout))
        if keepalive == "auto" and timeout:
            self.keepalive = timeout * Expiry.KEEPALIVE_SHARE

    def set_lifetime(self, lifetime: float | None) -> None:
        """Set the lifetime of connections, including those opened before it was known."""
        self.expiry.lifetime = lifetime
        for entry in (*self.idle, *self.in_use):
            self.expiry.stamp(entry)

    def demote(self, peer: tuple[str, int] | None, checked_at: float, now: float) -> bool:
        """The server at ``peer`` was found read-only (see :meth:`Expiry.demote`): its
        connections retire. False if nothing was left to retire."""
        demoted = self.expiry.demote((*self.idle, *self.in_use), peer, checked_at, now)
        self.counters.demotions += demoted
        return demoted

    def moved(self, host: str, addresses: set[tuple[str, int]], now: float, spread: float) -> int:
        """``host`` now resolves to ``addresses`` (see :meth:`Expiry.moved`); returns how
        many connections were newly scheduled to retire."""
        count = self.expiry.moved((*self.idle, *self.in_use), host, addresses, now, spread)
        self.counters.moved += count
        return count

    def needs_ping(self, entry: Entry, now: float) -> bool:
        """Whether an idle connection must answer a ping before it is handed out: it sat
        idle too long for the socket probe alone to vouch for it (a silently dropped
        network path shows nothing locally), or a disconnect since its last check makes
        it suspect."""
        return (
            now - entry.last_used >= self.ping_after_idle
            or entry.checked_at <= self.suspect_before
        )

    def verdict(self, entry: Entry, now: float) -> Verdict:
        """What a connection that failed the quick checks needs: ``RETIRE`` (past its
        lifetime), ``PING`` (see :meth:`needs_ping`) or ``OK`` (only its probe can still
        condemn it: the shell turns ``PING`` or ``OK`` into ``DEAD_BY_PROBE`` then)."""
        if now >= entry.expires_at:
            return Verdict.RETIRE
        return Verdict.PING if self.needs_ping(entry, now) else Verdict.OK

    def pinged(self, entry: Entry, alive: bool, now: float) -> Verdict:
        """A checkout's ping of ``entry`` ended: ``OK``, or ``DEAD`` (and every connection
        not checked since becomes suspect)."""
        self.counters.pings += 1
        if alive:
            self.passed_check(entry, now)
            return Verdict.OK
        self.counters.ping_failures += 1
        self.suspect_all(now)
        return Verdict.DEAD

    def unfit(self, entry: Entry, verdict: Verdict, now: float) -> Entry | None:
        """``entry``, checked out, turned out unfit (``verdict``): forget it — the shell
        closes it, and that checkout did not happen — and check out the next idle one for
        the same caller, if any."""
        entry.broken = verdict is not Verdict.RETIRE
        self.discard(entry, retired=not entry.broken)
        self.counters.found_dead += entry.broken
        self.counters.dead_by_probe += verdict is Verdict.DEAD_BY_PROBE
        return self.checkout(now)

    def wants_refill(self) -> bool:
        """After a checkout: fewer than ``min_idle`` are idle, none is being opened and
        there is room for more, so the housekeeper should top the idle ones up."""
        return (
            self.min_idle > len(self.idle) and not self.connecting and self.total() < self.max_size
        )

    def suspect_all(self, now: float) -> None:
        """A connection turned out dead: check every connection not checked since."""
        self.suspect_before = now

    def passed_check(self, entry: Entry, now: float) -> None:
        """``entry`` answered a ping."""
        entry.checked_at = now
        entry.last_used = now

    def due_for_maintenance(
        self, now: float, idle_timeout: float | None, keepalive: float | None
    ) -> tuple[list[Entry], list[Entry]]:
        """Idle connections to retire and to ping, taken off the idle list (see
        :func:`poolwarden._core.maintenance.due_for_maintenance`)."""
        return maintenance.due_for_maintenance(self, now, idle_timeout, keepalive)

    def maintained(
        self, entry: Entry, alive: bool, now: float
    ) -> tuple[Waiter | None, Entry | None]:
        """A keepalive ping ended; file the connection like a returned one."""
        self.maintaining -= 1
        self.counters.pings += 1
        self.counters.ping_failures += not alive
        if not alive:
            entry.broken = True
            self.counters.discards += 1
            self.counters.closes += 1
            return None, entry
        self.passed_check(entry, now)
        return self.place(entry, now)

    def next_maintenance(
        self, now: float, idle_timeout: float | None, keepalive: float | None
    ) -> float | None:
        """When the earliest connection falls due for retirement or a ping (see
        :func:`poolwarden._core.maintenance.next_maintenance`)."""
        return maintenance.next_maintenance(self, now, idle_timeout, keepalive)

    # -- maintenance ---------------------------------------------------------------------
    def resize(
        self, pool_size: int, max_overflow: int, min_idle: int | None = None
    ) -> list[Entry]:
        """Change the limits; return idle connections that no longer fit."""
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        if min_idle is not None:
            self.min_idle = min_idle
        surplus: list[Entry] = []
        keep = max(self.pool_size, self.min_idle)
        while self.idle and (self.total() > self.max_size or len(self.idle) > keep):
            # Longest idle first: the front of the list.
            surplus.append(self.idle.pop(0))
        self.over_limit = self.total() > self.max_size
        self.counters.closes += len(surplus)
        return surplus

    def leaks_due(self, now: float, threshold: float) -> list[Entry]:
        """Holders past ``threshold`` not reported yet; marks them reported."""
        return maintenance.leaks_due(self, now, threshold)

    def next_leak_check(self, threshold: float) -> float | None:
        """When the next unreported holder crosses ``threshold``."""
        return maintenance.next_leak_check(self, threshold)

    def drain_idle(self) -> list[Entry]:
        """Take every idle connection for closing (the pool stays open)."""
        idle, self.idle = self.idle, []
        self.counters.closes += len(idle)
        return idle

    def reset_done(self, reusable: bool) -> None:
        """A returned connection was reset (rollback or session reset); ``reusable``: it
        worked."""
        self.counters.resets += 1
        self.counters.reset_failures += not reusable

    def reclaim(self, entry: Entry) -> bool:
        """A proxy was garbage-collected holding ``entry``: True if the entry is still this
        pool's to take back (counted as reclaimed, and as a leak unless reported)."""
        if entry.generation != self.generation or entry not in self.in_use:
            return False
        self.counters.reclaimed += 1
        if not entry.leak_reported:
            self.counters.leaks += 1
        return True

    def wrong_role(self, peers: Iterable[tuple[str, int] | None], now: float) -> None:
        """A connect reached servers of the wrong role (``peers``): count it, and retire
        what the pool still holds on them (their old connections)."""
        self.counters.wrong_role += 1
        for peer in peers:
            self.demote(peer, now, now)

    def storm_waited(self) -> None:
        """A connect attempt waited at the server's storm gate."""
        self.counters.storm_waits += 1

    def close(self) -> tuple[list[Entry], list[Waiter]]:
        """Close the pool: return idle connections to close and waiters to fail."""
        self.closed = True
        idle, self.idle = self.idle, []
        waiters = list(self.waiters)
        self.waiters.clear()
        self.counters.closes += len(idle)
        return idle, waiters

    def forget_all(self) -> list[Entry]:
        """Start afresh (in a forked child): return every inherited entry, keep counters."""
        self.generation += 1
        entries = self.idle + list(self.in_use)
        self.idle = []
        self.in_use = {}
        self.waiters.clear()
        self.connecting = 0
        self.maintaining = 0
        self.backoff.succeeded()
        return entries

    def oldest_holder(self) -> Entry | None:
        """The connection checked out longest ago, if any."""
        return next(iter(self.in_use), None)

    def metrics_reading(self, since: SampleCursor) -> MetricsReading:
        """Gauges, counters and the time samples recorded after ``since`` (see
        :mod:`poolwarden._core.readings`)."""
        return readings.metrics_reading(self, since)

    def snapshot(self) -> PoolStats:
        """Sizes, counters and time summaries as one immutable value."""
        return readings.snapshot(self)
