"""The pool's decisions, without I/O, threads or clocks.

Every method takes ``now`` (monotonic seconds) where time matters and returns what the I/O
shell must do: which waiter to wake, which connection to close, how many connections to open.
The shell calls these methods while holding its lock and performs the I/O after releasing it,
so the sync and asyncio pools can share this module and tests can drive it with a fake clock.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .entry import Entry
from .stats import Counters, MetricsReading, PoolStats, SampleCursor, Sampler, error_cause

if TYPE_CHECKING:
    from .storm import StormGate

__all__ = ["Backoff", "ConnectResult", "PoolCore", "Waiter"]

#: Distinct connect-failure causes kept apart; the rest count as ("other", ""), so that a
#: flood of odd errors cannot grow the books (or a metrics backend's label set) unbounded.
_MAX_CAUSES = 32


class Waiter:
    """A checkout queued for a connection; ``signal`` is the shell's wake-up handle."""

    __slots__ = ("entry", "error", "signal", "since")

    def __init__(self, since: float, signal: Any) -> None:
        self.since = since
        self.signal = signal
        self.entry: Entry | None = None
        self.error: BaseException | None = None


@dataclass
class ConnectResult:
    """What a finished connect attempt asks of the shell."""

    #: The waiter that received the new connection.
    wake: Waiter | None = None
    #: Waiters whose ``error`` was set to a connect error that retrying will not fix.
    fail: list[Waiter] = field(default_factory=list)
    #: A new connection the pool does not need (closed pool, no room).
    close: Entry | None = None
    #: ``None``: the connector is done. Otherwise seconds to wait before the next attempt.
    again: float | None = None


class Backoff:
    """Capped exponential backoff with jitter between failed connect attempts of one pool,
    and the storm gate its server shares with the process's other pools (see
    :mod:`poolwarden._core.storm`), which spaces attempts to a server out of connection slots."""

    INITIAL = 0.1
    FACTOR = 2.0
    CAP = 2.0
    JITTER = 0.1

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.failures = 0
        self.retry_at = float("-inf")
        #: The server's shared gate, set by the shell's first connector (None until then).
        self.gate: StormGate | None = None

    def holding(self, now: float) -> bool:
        """Whether connecting is paused: this pool's own backoff runs, or the server
        refused someone for lack of slots (its gate is open). Either way one connect
        attempt in flight is enough: more would only queue at the gate or fail alike."""
        gate = self.gate
        return now < self.retry_at or (gate is not None and gate.is_open)

    def failed(self, now: float) -> float:
        """Record a failure; return the delay before the next attempt."""
        base = min(self.CAP, self.INITIAL * self.FACTOR**self.failures)
        self.failures += 1
        delay = base * (1.0 + self._rng.uniform(-self.JITTER, self.JITTER))
        self.retry_at = now + delay
        return delay

    def succeeded(self) -> None:
        """Forget past failures."""
        self.failures = 0
        self.retry_at = float("-inf")


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
        rng: random.Random | None = None,
    ) -> None:
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.min_idle = min_idle
        self.max_connecting = max_connecting
        #: Idle connections, longest idle first (see the class docstring).
        self.idle: list[Entry] = []
        #: Hand out the connection idle longest instead of the most recently used one.
        self.fifo = False
        #: Holders in checkout order (dicts keep insertion order): the first is the oldest.
        self.in_use: dict[Entry, None] = {}
        self.waiters: deque[Waiter] = deque()
        self.connecting = 0
        self.closed = False
        #: Bumped in a forked child so entries inherited from the parent are recognised.
        self.generation = 0
        self.counters = Counters()
        #: The two counters touched on every checkout live here, one lookup closer.
        self.checkouts = 0
        self.checkins = 0
        self.wait_time = Sampler()
        self.hold_time = Sampler()
        #: Seconds each successful connect attempt took (connects are rare: a small ring).
        self.create_time = Sampler(1024)
        #: Failed connect attempts by cause (see :func:`error_cause`), for metrics.
        self.connect_errors: dict[tuple[str, str], int] = {}
        self.peak_in_use = 0
        self.peak_waiting = 0
        self._rng = rng or random.Random()
        self.backoff = Backoff(self._rng)
        #: Seconds a connection may live (before jitter), or None for no limit.
        self.lifetime: float | None = None
        #: Connections not checked since this moment are pinged before reuse: a disconnect
        #: seen on one connection makes the others of its age suspect.
        self.suspect_before = float("-inf")
        #: Idle connections taken out for a keepalive ping (still counted as open).
        self.maintaining = 0
        #: Set by a shrink that left more open than now allowed; returned connections then
        #: close until the count fits again.
        self.over_limit = False
        #: When each server (peer address) was last found read-only (see :meth:`demote`).
        self.demoted_at: dict[tuple[str, int] | None, float] = {}
        self.last_connect_error: BaseException | None = None
        self.last_connect_error_at = float("-inf")
        self._next_id = 1

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
        idle = self.idle
        if not idle:
            return None
        entry = idle.pop(0) if self.fifo else idle.pop()
        # _hand_out, inlined: this is the hottest path of the pool.
        in_use = self.in_use
        in_use[entry] = None
        entry.checkout_at = now
        entry.leak_reported = False
        self.checkouts += 1
        if len(in_use) > self.peak_in_use:
            self.peak_in_use = len(in_use)
        return entry

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
        self._set_expiry(entry)

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
        return self._place(entry, now)

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

    def _place(self, entry: Entry, now: float) -> tuple[Waiter | None, Entry | None]:
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

    # -- connecting ----------------------------------------------------------------------
    def _wanted(self) -> int:
        """Connections needed beyond those already being opened."""
        demand = len(self.waiters) + max(0, self.min_idle - len(self.idle))
        return min(
            demand - self.connecting,
            self.max_size - self.total(),
            self.max_connecting - self.connecting,
        )

    def opens_wanted(self, now: float) -> int:
        """Reserve and return how many new connect attempts the shell should start.

        While backing off after a failure, or while the server's storm gate is open, at
        most one attempt is in flight; the shell's connector waits until
        ``backoff.retry_at``, and then for the gate, before trying.
        """
        if self.closed:
            return 0
        wanted = max(0, self._wanted())
        if self.backoff.holding(now):
            wanted = min(wanted, 0 if self.connecting else 1)
        self.connecting += wanted
        return wanted

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
        self.connecting -= 1
        self.counters.connects += 1
        if open_seconds is not None:
            self.create_time.add_unmarked(open_seconds)
        self.backoff.succeeded()
        entry = Entry(raw, self._next_id, now, self.generation, probe)
        entry.peer, entry.host = peer, host
        self._next_id += 1
        self._set_expiry(entry)
        waiter, close = self._place(entry, now)
        result = ConnectResult(wake=waiter, close=close)
        if not self.closed and self._wanted() > 0:
            self.connecting += 1
            result.again = 0.0
        return result

    def connect_failed(self, error: BaseException, now: float, retryable: bool) -> ConnectResult:
        """A connect attempt raised ``error``.

        Waiters keep waiting through errors that retrying may fix (server down, too many
        connections); for any other error (bad password, unknown database) every waiter
        receives it now, so nobody sits out the timeout on a mistake only a person can fix.
        """
        self.connecting -= 1
        self.counters.connect_failures += 1
        cause = error_cause(error)
        if cause not in self.connect_errors and len(self.connect_errors) >= _MAX_CAUSES:
            cause = ("other", "")
        self.connect_errors[cause] = self.connect_errors.get(cause, 0) + 1
        self.last_connect_error = error
        self.last_connect_error_at = now
        delay = self.backoff.failed(now)
        result = ConnectResult()
        if not retryable:
            while self.waiters:
                waiter = self.waiters.popleft()
                waiter.error = error
                result.fail.append(waiter)
        if not self.closed and self._wanted() > 0:
            self.connecting += 1
            result.again = delay
        return result

    def resume_connecting(self) -> bool:
        """After a backoff pause: go on (True), or give the reserved slot back (False)."""
        self.connecting -= 1  # decide as if starting afresh
        if not self.closed and self._wanted() > 0:
            self.connecting += 1
            return True
        return False

    def abandon_connect(self) -> None:
        """Give back a reserved connect slot without an attempt (closing, shutting down)."""
        self.connecting -= 1

    # -- liveness ------------------------------------------------------------------------
    LIFETIME_SHARE = 0.8
    """Share of the server's idle timeout that an automatic lifetime uses."""
    LIFETIME_CAP = 3600.0
    """Longest automatic lifetime: servers with no (or a long) idle timeout still see
    connections renewed hourly, which spreads load after failovers and bounds leaks."""
    LIFETIME_JITTER = 0.1
    """Lifetimes are shortened by up to this share, so connections do not expire together."""

    @classmethod
    def auto_lifetime(cls, server_idle_timeout: float | None) -> float:
        """The lifetime ``max_lifetime="auto"`` picks for a server idle timeout."""
        if not server_idle_timeout:
            return cls.LIFETIME_CAP
        return min(cls.LIFETIME_CAP, server_idle_timeout * cls.LIFETIME_SHARE)

    def set_lifetime(self, lifetime: float | None) -> None:
        """Set the lifetime of connections, including those opened before it was known."""
        self.lifetime = lifetime
        for entry in (*self.idle, *self.in_use):
            self._set_expiry(entry)

    def _set_expiry(self, entry: Entry) -> None:
        if self.lifetime is None:
            entry.expires_at = float("inf")
        else:
            share = 1.0 - self._rng.uniform(0.0, self.LIFETIME_JITTER)
            entry.expires_at = entry.created_at + self.lifetime * share

    # -- servers: failover and DNS ------------------------------------------------------
    #: Longest spread of the retirement of connections to an address a host name no
    #: longer resolves to, so that a DNS change does not reconnect the pool in one burst
    #: (shorter when names are re-resolved more often: done before the next look).
    MOVE_SPREAD = 10.0

    def demote(self, peer: tuple[str, int] | None, checked_at: float, now: float) -> bool:
        """The server at ``peer`` was found read-only by a connection last verified at
        ``checked_at``: every connection to it verified no later retires — idle ones at
        the next look (checkout or housekeeping), held ones when they come back. Returns
        False when nothing was left to retire, or an earlier demotion of that server already
        covered this connection (the other writes in flight at a failover report the same
        news)."""
        if checked_at < self.demoted_at.get(peer, float("-inf")):
            return False
        self.demoted_at[peer] = now
        retired = 0
        for entry in (*self.idle, *self.in_use):
            if entry.peer == peer and entry.expires_at != float("-inf"):
                entry.expires_at = float("-inf")
                retired += 1
        self.counters.demotions += retired > 0
        return retired > 0

    def moved(self, host: str, addresses: set[tuple[str, int]], now: float, spread: float) -> int:
        """``host`` now resolves to ``addresses``: connections it opened to other addresses
        retire over the next ``spread`` seconds, like a lifetime. Returns how many were
        newly scheduled."""
        count = 0
        for entry in (*self.idle, *self.in_use):
            if entry.host != host or entry.peer is None or entry.peer in addresses:
                continue
            if entry.expires_at <= now + spread:
                continue  # retiring within the window already (scheduled by a past look)
            entry.expires_at = now + self._rng.uniform(0.0, spread)
            count += 1
        self.counters.moved += count
        return count

    def needs_ping(self, entry: Entry, now: float, ping_after_idle: float) -> bool:
        """Whether an idle connection must answer a ping before it is handed out: it sat
        idle too long for the socket probe alone to vouch for it (a silently dropped
        network path shows nothing locally), or a disconnect since its last check makes
        it suspect."""
        return now - entry.last_used >= ping_after_idle or entry.checked_at <= self.suspect_before

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
        """Idle connections to retire (past their lifetime, or idle past ``idle_timeout``
        beyond ``min_idle``) and to ping (the ``min_idle`` that must survive, unused for
        ``keepalive`` seconds). Both are taken off the idle list.

        Both go by the list's order (longest idle first), whichever end checkouts take
        from. With FIFO checkouts every connection is used in turn, so none is idle past
        ``idle_timeout`` until the load falls below one checkout per connection per
        ``idle_timeout``; then the pool shrinks until that many connections are left."""
        retire = [e for e in self.idle if now >= e.expires_at]
        keep = [e for e in self.idle if now < e.expires_at]
        if idle_timeout is not None:
            # The front holds the longest idle; keep the last min_idle regardless.
            spare = max(0, len(keep) - self.min_idle)
            stale = [e for e in keep[:spare] if now - e.last_used >= idle_timeout]
            retire += stale
            keep = [e for e in keep if e not in stale]
        ping: list[Entry] = []
        survivors = self.min_idle - self.maintaining  # some may be out being pinged already
        if keepalive is not None and survivors > 0:
            ping = [e for e in keep[-survivors:] if now - e.last_used >= keepalive]
            keep = [e for e in keep if e not in ping]
        self.idle = keep
        self.counters.retired += len(retire)
        self.counters.closes += len(retire)
        self.maintaining += len(ping)
        return retire, ping

    def maintained(
        self, entry: Entry, alive: bool, now: float
    ) -> tuple[Waiter | None, Entry | None]:
        """A keepalive ping ended; file the connection like a returned one."""
        self.maintaining -= 1
        if not alive:
            entry.broken = True
            self.counters.discards += 1
            self.counters.closes += 1
            return None, entry
        self.passed_check(entry, now)
        return self._place(entry, now)

    def next_maintenance(
        self, now: float, idle_timeout: float | None, keepalive: float | None
    ) -> float | None:
        """When the earliest idle connection falls due for retirement or a ping. Held
        connections count for retirement too, so that returning one (which may then sit
        idle until its lifetime ends) need not wake the housekeeper to re-plan."""
        due = [e.expires_at for e in (*self.idle, *self.in_use)]
        if idle_timeout is not None:
            due += [e.last_used + idle_timeout for e in self.idle[: -self.min_idle or None]]
        if keepalive is not None and self.min_idle:
            due += [e.last_used + keepalive for e in self.idle[-self.min_idle :]]
        finite = [d for d in due if d != float("inf")]
        return min(finite) if finite else None

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
        due = []
        for entry in self.in_use:
            if now - entry.checkout_at < threshold:
                break  # later holders checked out later still
            if not entry.leak_reported:
                entry.leak_reported = True
                self.counters.leaks += 1
                due.append(entry)
        return due

    def next_leak_check(self, threshold: float) -> float | None:
        """When the next unreported holder crosses ``threshold``."""
        for entry in self.in_use:
            if not entry.leak_reported:
                return entry.checkout_at + threshold
        return None

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
        """Gauges, counters and the time samples recorded after ``since``: O(new samples),
        no sorting, so that a metrics reader holds the lock only briefly."""
        hold, hold_lost = self.hold_time.since(since.hold)
        wait, wait_lost = self.wait_time.since(since.wait)
        create, create_lost = self.create_time.since(since.create)
        return MetricsReading(
            idle=len(self.idle),
            used=len(self.in_use),
            pending=len(self.waiters),
            max_size=self.max_size,
            pool_size=self.pool_size,
            min_idle=self.min_idle,
            counters=replace(self.counters),
            connect_errors=dict(self.connect_errors),
            cursor=SampleCursor(
                self.hold_time.count, self.wait_time.count, self.create_time.count, self.checkouts
            ),
            hold=hold,
            hold_lost=hold_lost,
            wait=wait,
            wait_lost=wait_lost,
            create=create,
            create_lost=create_lost,
        )

    def snapshot(self) -> PoolStats:
        """Sizes, counters and time summaries as one immutable value."""
        in_use = len(self.in_use)
        return PoolStats(
            **asdict(self.counters),
            pool_size=self.pool_size,
            max_overflow=self.max_overflow,
            min_idle=self.min_idle,
            idle=len(self.idle),
            in_use=in_use,
            waiting=len(self.waiters),
            connecting=self.connecting,
            overflow=max(0, len(self.idle) + in_use - self.pool_size),
            peak_in_use=self.peak_in_use,
            peak_waiting=self.peak_waiting,
            checkouts=self.checkouts,
            checkins=self.checkins,
            wait_time=self.wait_time.summary(events=self.checkouts),
            hold_time=self.hold_time.summary(),
        )
