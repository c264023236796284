"""The pool's work off the callers' threads: connecting, and the housekeeper's rounds.

Connector threads (tasks, in the asyncio pool) open connections while the pool wants them,
backing off after failures;
the housekeeper retires connections before the server's idle timer would close them, pings
the ``min_idle`` ones that must survive quiet periods, tops ``min_idle`` up, reports leaks,
re-resolves host names, and reclaims connections whose proxies were garbage-collected
unreturned.

The housekeeper holds this object only weakly, and this object holds the engine only through
a weak method (its ``give_back``): an abandoned pool is freed by reference counting, which stops
its housekeeper.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from .._core import ConnectResult
from .._core.callsite import format_stack
from .._core.entry import Entry
from .._core.expiry import Expiry
from .._core.settings import PoolSettings
from .._core.storm import StormGate, gate_for, is_limit_error
from .._net.servers import address_text, resolve, watched_names
from ..errors import WrongRole
from ._compat import ASYNC, spawn, wait_event
from ._housekeeper import Housekeeper
from ._rules import ServerRules
from ._shared import Shared

__all__ = ["Background", "Orphans"]

log = logging.getLogger("poolwarden")

#: Entries of proxies the garbage collector dropped unreturned, with what they did.
Orphans = deque[tuple[Entry, int, "dict[str, Any] | None"]]


class Background:
    """One pool's connectors and housekeeper."""

    def __init__(
        self,
        shared: Shared,
        settings: PoolSettings,
        rules: ServerRules,
        orphans: Orphans,
        give_back: Callable[[], Callable[..., Any] | None],
    ) -> None:
        self._shared = shared
        self._core = shared.core
        self._io = shared.io
        self._now = shared.now
        self._name = shared.name
        self._rules = rules
        self._orphans = orphans
        #: The engine's ``give_back``, held weakly (see the module docstring).
        self._give_back = give_back
        self._leak_threshold = settings.leak_threshold
        self._idle_timeout = settings.idle_timeout
        #: Seconds between re-resolutions of the hosts' names (None: never).
        self._dns_refresh = settings.dns_refresh
        #: Host names to re-resolve, and when next.
        adapter = shared.io.adapter
        self._watched = watched_names(adapter) if settings.dns_refresh is not None else []
        self._dns_due = -float("inf") if self._watched else float("inf")
        self._housekeeper: Housekeeper | None = None
        #: When the housekeeper's next round is due (monotonic seconds).
        self.housekeeping_due = float("inf")

    # -- connecting ----------------------------------------------------------------------
    def start_connectors(self, count: int) -> None:
        """Start ``count`` connect attempts the books reserved (``opens_wanted``)."""
        for started in range(count):
            try:
                spawn(self._connector, f"poolwarden-connect {self._name}")
            except RuntimeError:  # shutting down (no threads), or no running event loop
                with self._shared.lock:
                    for _ in range(count - started):
                        self._core.abandon_connect()
                return

    async def _connector(self) -> None:
        """Open connections while the pool wants them, pausing after failures."""
        core, shared = self._core, self._shared
        delay = core.backoff.retry_at - self._now()  # still backing off?
        while True:
            if delay > 0:
                if await wait_event(shared.closing, delay):
                    with shared.lock:
                        core.abandon_connect()
                    return
                with shared.lock:
                    if not core.resume_connecting():
                        return
            # The storm guard: while the server refuses for lack of slots, the whole
            # process sends it one attempt at a time, spaced (see poolwarden._core.storm).
            gate = core.backoff.gate or self._find_gate()
            ticket = await self._through_gate(gate)
            if not ticket:
                return
            again = await self._attempt(gate, ticket)
            if again is None:
                return
            delay = again

    async def _attempt(self, gate: StormGate, ticket: int) -> float | None:
        """One connect attempt through ``gate``; None, or seconds until the next one."""
        core, shared, io = self._core, self._shared, self._io
        started = self._now()
        try:
            opened = await io.open()
            open_seconds = self._now() - started
            learned = await self._rules.after_open(opened.raw)
        except Exception as exc:
            result = await self._failed(exc, gate, ticket)
        except BaseException:
            gate.cancel(ticket)
            with shared.lock:
                core.abandon_connect()
            raise
        else:
            if learned:
                self.ensure_housekeeper()
            gate.succeeded(ticket, self._now())
            with shared.lock:
                result = core.connect_succeeded(
                    opened.raw, self._now(), opened.probe, open_seconds, opened.peer, opened.host
                )
            if self._housekeeper is None:
                self.ensure_housekeeper()
            if result.wake is not None:
                result.wake.signal.release()
            if result.close is not None:
                await io.close(result.close)
        return result.again

    async def _failed(self, exc: Exception, gate: StormGate, ticket: int) -> ConnectResult:
        """A connect attempt raised ``exc``: back off, tell the gate, maybe fail waiters."""
        core, shared, io = self._core, self._shared, self._io
        # A server of the wrong role may be mid-failover: retried like one down.
        adapter = io.adapter
        wrong_role = isinstance(exc, WrongRole) or adapter.is_wrong_role_error(exc)
        # Out of slots: a full server clears by itself, and it was the right one.
        full = is_limit_error(adapter, exc)
        retryable = full or wrong_role or adapter.is_retryable_connect_error(exc)
        if wrong_role:
            with shared.lock:  # its old connections to those servers retire too
                core.wrong_role(getattr(exc, "peers", ()), self._now())
        if core.counters.connects == 0 and not full:  # the wrong port?
            await io.probe_server(exc)
        described = io.describe_connect_error(exc)  # with the probe's hint
        if full:
            gate.refused(ticket, self._now(), described)
        else:
            gate.failed(ticket, self._now())
        log.log(
            logging.WARNING if core.backoff.failures == 0 else logging.DEBUG,
            "connecting to %s failed: %s%s",
            self._name,
            described,
            " (the server is out of connection slots: every pool of this process "
            "connecting to it backs off, one attempt at a time)"
            if full
            else " (will retry)"
            if retryable
            else "",
        )
        with shared.lock:
            result = core.connect_failed(exc, self._now(), retryable)
        for waiter in result.fail:
            waiter.signal.release()
        return result

    def _find_gate(self) -> StormGate:
        """The storm gate of the pool's server, looked up once (the pool's first attempt)."""
        gate = self._core.backoff.gate = gate_for(self._io.adapter)
        return gate

    async def _through_gate(self, gate: StormGate) -> int:
        """Wait until ``gate`` admits a connect attempt; its ticket, or 0 if the pool no
        longer wants the connection (closing, or its waiters gave up meanwhile). Waits in
        the pool's usual way, so an asyncio pool's event loop is never blocked."""
        core, shared = self._core, self._shared
        ticket, wait = gate.enter(self._now())
        if ticket:
            return ticket
        gate.waited()
        with shared.lock:
            core.storm_waited()
        while not ticket:
            if await wait_event(shared.closing, wait):
                with shared.lock:
                    core.abandon_connect()
                return 0
            ticket, wait = gate.enter(self._now())
        with shared.lock:
            if core.resume_connecting():
                return ticket
        gate.cancel(ticket)
        return 0

    async def close_and_refill(self, entry: Entry) -> None:
        """Close a connection the pool let go, then open others if waiters need them."""
        await self._io.close(entry)
        with self._shared.lock:
            opens = self._core.opens_wanted(self._now())
        self.start_connectors(opens)

    # -- the housekeeper -----------------------------------------------------------------
    def _needs_housekeeper(self) -> bool:
        core = self._core
        return (
            self._leak_threshold is not None
            or core.min_idle > 0
            or self._idle_timeout is not None
            or core.lifetime is not None
            or core.keepalive is not None
            or bool(self._watched)
        )

    def ensure_housekeeper(self) -> None:
        """Start the housekeeper once there is timed work and the pool is open."""
        with self._shared.lock:
            if self._housekeeper is not None or self._core.closed:
                return
            if not self._needs_housekeeper():
                return
            housekeeper = self._housekeeper = Housekeeper(
                self, f"poolwarden-housekeeper {self._name}"
            )
        try:
            housekeeper.start()
        except RuntimeError:  # shutting down, or no running event loop: at the next chance
            self._housekeeper = None

    def wake_housekeeper(self, now: float) -> None:
        """Have the running housekeeper do a round now (its plan changed)."""
        if self._housekeeper is not None:
            self.housekeeping_due = now  # a round is coming: no need to wake it twice
            self._housekeeper.wake()

    def housekeep_soon(self, now: float) -> None:
        """Have the housekeeper do a round now (close retired idle connections, refill),
        starting it if it was paused (by :meth:`pause`) or never started."""
        if self._housekeeper is None:
            self.ensure_housekeeper()
        else:
            self.wake_housekeeper(now)

    def pause(self) -> None:
        """Stop the housekeeper until the next connect or checkout that needs it (an
        engine that drops the pool after a dispose must not find it refilling)."""
        with self._shared.lock:
            housekeeper, self._housekeeper = self._housekeeper, None
            self.housekeeping_due = float("inf")
        if housekeeper is not None:
            housekeeper.stop()

    def stop(self) -> None:
        """The pool closed: no more rounds."""
        if self._housekeeper is not None:
            self._housekeeper.stop()

    def forget(self) -> None:
        """In a forked child: the parent's housekeeper does not run here."""
        self._housekeeper = None

    def orphaned(self) -> None:
        """A proxy was dropped unreturned (its entry is queued): wake the housekeeper."""
        if self._housekeeper is not None:
            self._housekeeper.wake()

    # -- a round -------------------------------------------------------------------------
    async def housekeep(self) -> float | None:
        """One round of timed work; returns seconds until the next is due."""
        if self._orphans:
            await self.reclaim_orphans()
        now = self._now()
        threshold, core = self._leak_threshold, self._core
        with self._shared.lock:
            if core.closed:
                return None
            leaks = core.leaks_due(now, threshold) if threshold is not None else []
            retire, ping = core.due_for_maintenance(now, self._idle_timeout, core.keepalive)
            opens = core.opens_wanted(now)
        if now >= self._dns_due:
            await self._refresh_dns(now)
        for entry in leaks:
            self._report_leak(entry, now)
        for entry in retire:
            await self._io.close(entry)
        for entry in ping:
            alive = await self._io.ping(entry)
            with self._shared.lock:
                waiter, close = core.maintained(entry, alive, self._now())
            if waiter is not None:
                waiter.signal.release()
            if close is not None:
                await self.close_and_refill(close)
        self.start_connectors(opens)
        next_due = self._next_due(now)
        self.housekeeping_due = float("inf") if next_due is None else next_due
        return None if next_due is None else next_due - now

    async def reclaim_orphans(self) -> None:
        """Take back the connections of proxies the garbage collector dropped unreturned."""
        while True:
            give_back = self._give_back()  # None once the engine is gone
            if give_back is None:
                return
            try:
                entry, activity, saved = self._orphans.popleft()
            except IndexError:
                return
            with self._shared.lock:
                if not self._core.reclaim(entry):
                    continue
            log.warning(
                "connection #%d of pool %s was garbage-collected without being returned; the "
                "pool reclaimed it. It was checked out at %s%s:\n%s",
                entry.id,
                self._name,
                entry.site(),
                f" by {entry.thread_name}" if entry.thread_name else "",
                format_stack(entry.stack),
            )
            await give_back(entry, activity, saved)

    def _next_due(self, now: float) -> float | None:
        """When the next round is due (None: nothing timed is left)."""
        core, threshold = self._core, self._leak_threshold
        with self._shared.lock:
            due = [core.next_maintenance(now, self._idle_timeout, core.keepalive)]
            if threshold is not None:
                due.append(core.next_leak_check(threshold))
            if core.min_idle and len(core.idle) < core.min_idle:
                due.append(core.backoff.retry_at)
            if self._watched:
                due.append(self._dns_due)
        upcoming = [d for d in due if d is not None]
        return min(upcoming) if upcoming else None

    async def _refresh_dns(self, now: float) -> None:
        """Resolve the hosts' names again; connections to an address a name no longer
        resolves to retire over the next few seconds (a resolver error changes nothing:
        a name that does not resolve for a moment must not empty the pool)."""
        assert self._dns_refresh is not None
        self._dns_due = now + self._dns_refresh
        resolver = self._io.resolver or resolve
        spread = min(Expiry.MOVE_SPREAD, self._dns_refresh)
        for host, port in self._watched:
            try:
                if ASYNC:
                    addresses = await asyncio.to_thread(resolver, host, port)
                else:
                    addresses = resolver(host, port)
            except Exception as exc:
                log.debug("pool %s: resolving %s failed: %r", self._name, host, exc)
                continue
            if not addresses:
                continue
            with self._shared.lock:
                found = {(str(a), int(p)) for a, p in addresses}
                moved = self._core.moved(host, found, now, spread)
            if moved:
                log.info(
                    "pool %s: %s now resolves to %s; retiring %d connection(s) to its old "
                    "address over the next %g s",
                    self._name,
                    host,
                    ", ".join(address_text(a, p) for a, p in addresses),
                    moved,
                    spread,
                )

    def _report_leak(self, entry: Entry, now: float) -> None:
        log.warning(
            "connection #%d of pool %s has been checked out for %.1f s (leak_threshold=%g s) "
            "and not returned yet; it was checked out at %s%s:\n%s",
            entry.id,
            self._name,
            now - entry.checkout_at,
            self._leak_threshold,
            entry.site(),
            f" by {entry.thread_name}" if entry.thread_name else "",
            format_stack(entry.stack),
        )
