"""The pool's work off the callers' threads: connecting, and the housekeeper's rounds.

Connector threads (tasks, in the asyncio pool) open connections while the pool wants them,
backing off after failures;
the housekeeper retires connections before the server's idle timer would close them, pings
the ``min_idle`` ones that must survive quiet periods, tops ``min_idle`` up, reports leaks,
and reclaims connections whose proxies were garbage-collected unreturned.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .._callsite import format_stack
from .._core import PoolCore, Waiter
from .._entry import Entry
from ._compat import Event, spawn, wait_event
from ._housekeeper import Housekeeper
from ._io import ConnectionIO

__all__ = ["Background"]

log = logging.getLogger("poolwarden")


class Background:
    """Mixin of :class:`~poolwarden.AsyncPool`: its connector threads and housekeeping."""

    name: str
    _core: PoolCore
    _io: ConnectionIO
    _lock: threading.Lock
    _closing: Event
    _now: Callable[[], float]
    _housekeeper: Housekeeper | None
    _housekeeping_due: float
    _orphans: deque[tuple[Entry, int, dict[str, Any] | None]]
    _leak_threshold: float | None
    _idle_timeout: float | None
    _max_lifetime: float | str | None
    _keepalive_setting: float | str | None
    _keepalive: float | None
    _lifetime_pending: bool
    _server_idle_timeout: float | None

    async def _give_back(
        self,
        entry: Entry,
        activity: int,
        saved: dict[str, Any] | None,
    ) -> None:
        raise NotImplementedError

    # -- connecting ----------------------------------------------------------------------
    def _start_connectors(self, count: int) -> None:
        for started in range(count):
            try:
                spawn(self._connector, f"poolwarden-connect {self.name}")
            except RuntimeError:  # shutting down (no threads), or no running event loop
                with self._lock:
                    for _ in range(count - started):
                        self._core.abandon_connect()
                return

    async def _connector(self) -> None:
        """Open connections while the pool wants them, pausing after failures."""
        delay = self._core.backoff.retry_at - self._now()  # still backing off?
        while True:
            if delay > 0:
                if await wait_event(self._closing, delay):
                    with self._lock:
                        self._core.abandon_connect()
                    return
                with self._lock:
                    if not self._core.resume_connecting():
                        return
            started = self._now()
            try:
                raw, probe = await self._io.open()
                open_seconds = self._now() - started
                if self._lifetime_pending:
                    await self._learn_lifetime(raw)
            except Exception as exc:
                retryable = self._io.adapter.is_retryable_connect_error(exc)
                if self._core.counters.connects == 0:  # never connected: the wrong port?
                    await self._io.probe_server(exc)
                log.log(
                    logging.WARNING if self._core.backoff.failures == 0 else logging.DEBUG,
                    "connecting to %s failed: %s%s",
                    self.name,
                    self._io.describe_connect_error(exc),
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
                    result = self._core.connect_succeeded(raw, self._now(), probe, open_seconds)
                if self._housekeeper is None:
                    self._ensure_housekeeper()
                if result.wake is not None:
                    result.wake.signal.release()
                if result.close is not None:
                    await self._io.close(result.close)
            if result.again is None:
                return
            delay = result.again

    async def _learn_lifetime(self, raw: Any) -> None:
        """On the first connection: read the server's idle timeout and derive the
        automatic lifetime and keepalive interval from it."""
        timeout = await self._io.server_idle_timeout(raw)
        with self._lock:
            if not self._lifetime_pending:
                return
            self._lifetime_pending = False
            self._server_idle_timeout = timeout
            if self._max_lifetime == "auto":
                self._core.set_lifetime(PoolCore.auto_lifetime(timeout))
            if self._keepalive_setting == "auto" and timeout:
                self._keepalive = timeout / 2
        log.debug(
            "pool %s: server idle timeout %s s, lifetime %s s, keepalive %s s",
            self.name,
            timeout,
            self._core.lifetime,
            self._keepalive,
        )
        self._ensure_housekeeper()

    async def _close_and_refill(self, entry: Entry) -> None:
        """Close a connection the pool let go, then open others if waiters need them."""
        await self._io.close(entry)
        with self._lock:
            opens = self._core.opens_wanted(self._now())
        self._start_connectors(opens)

    async def _settle(self, waiter: Waiter | None, close: Entry | None) -> None:
        """Carry out a filing decision: wake the waiter, or close and maybe replace."""
        if waiter is not None:
            waiter.signal.release()
        if close is not None:
            await self._close_and_refill(close)

    # -- housekeeping --------------------------------------------------------------------
    def _needs_housekeeper(self) -> bool:
        core = self._core
        return (
            self._leak_threshold is not None
            or core.min_idle > 0
            or self._idle_timeout is not None
            or core.lifetime is not None
            or self._keepalive is not None
        )

    def _ensure_housekeeper(self) -> None:
        """Start the housekeeper once there is timed work and the pool is open."""
        with self._lock:
            if self._housekeeper is not None or self._core.closed:
                return
            if not self._needs_housekeeper():
                return
            housekeeper = self._housekeeper = Housekeeper(
                self, f"poolwarden-housekeeper {self.name}"
            )
        try:
            housekeeper.start()
        except RuntimeError:  # shutting down, or no running event loop: at the next chance
            self._housekeeper = None

    def _wake_housekeeper(self, now: float) -> None:
        if self._housekeeper is not None:
            self._housekeeping_due = now  # a round is coming: no need to wake it twice
            self._housekeeper.wake()

    async def _housekeep(self) -> float | None:
        """One round of timed work; returns seconds until the next is due."""
        if self._orphans:
            await self._reclaim_orphans()
        now = self._now()
        threshold, core = self._leak_threshold, self._core
        with self._lock:
            if core.closed:
                return None
            leaks = core.leaks_due(now, threshold) if threshold is not None else []
            retire, ping = core.due_for_maintenance(now, self._idle_timeout, self._keepalive)
            opens = core.opens_wanted(now)
        for entry in leaks:
            self._report_leak(entry, now)
        for entry in retire:
            await self._io.close(entry)
        for entry in ping:
            alive = await self._io.ping(entry)
            with self._lock:
                core.counters.pings += 1
                core.counters.ping_failures += not alive
                waiter, close = core.maintained(entry, alive, self._now())
            await self._settle(waiter, close)
        self._start_connectors(opens)
        with self._lock:
            due = [core.next_maintenance(now, self._idle_timeout, self._keepalive)]
            if threshold is not None:
                due.append(core.next_leak_check(threshold))
            if core.min_idle and len(core.idle) < core.min_idle:
                due.append(core.backoff.retry_at)
            upcoming = [d for d in due if d is not None]
            next_due = min(upcoming) if upcoming else None
        self._housekeeping_due = float("inf") if next_due is None else next_due
        return None if next_due is None else next_due - now

    def _report_leak(self, entry: Entry, now: float) -> None:
        log.warning(
            "connection #%d of pool %s has been checked out for %.1f s (leak_threshold=%g s) "
            "and not returned yet; it was checked out at %s%s:\n%s",
            entry.id,
            self.name,
            now - entry.checkout_at,
            self._leak_threshold,
            entry.site(),
            f" by {entry.thread_name}" if entry.thread_name else "",
            format_stack(entry.stack),
        )

    # -- reclaiming dropped connections --------------------------------------------------
    def _orphaned(self, entry: Entry, activity: int, saved: dict[str, Any] | None) -> None:
        """Called from a proxy's ``__del__``: queue only (deque.append takes no lock)."""
        self._orphans.append((entry, activity, saved))
        if self._housekeeper is not None:
            self._housekeeper.wake()

    async def _reclaim_orphans(self) -> None:
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
                "connection #%d of pool %s was garbage-collected without being returned; the "
                "pool reclaimed it. It was checked out at %s%s:\n%s",
                entry.id,
                self.name,
                entry.site(),
                f" by {entry.thread_name}" if entry.thread_name else "",
                format_stack(entry.stack),
            )
            await self._give_back(entry, activity, saved)
