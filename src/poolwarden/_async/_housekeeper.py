"""The asyncio pool's timed work: a timer in the event loop, and a task only while it works.

The thread pool's housekeeper is a thread that sleeps on a queue
(``poolwarden._sync._housekeeper``).
Here a sleeping housekeeper is only a timer handle: no task waits between rounds, so an
application, a test or a framework that waits for the loop's tasks to finish (or warns of
tasks still pending when the loop closes) never waits for, or sees, the pool's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from typing import Protocol

__all__ = ["Housekeeper"]

log = logging.getLogger("poolwarden")


class _Maintained(Protocol):
    async def housekeep(self) -> float | None:
        """Do what is due; return seconds until something is due next (None: nothing)."""
        ...


class Housekeeper:
    """Runs the pool's rounds at its deadlines, or at once when woken; never polls.

    Holds only a weak reference to its pool, so an abandoned pool can be
    garbage-collected; its finaliser stops the timer.
    """

    #: Longest sleep, so that work whose deadline the pool could not predict (such as a
    #: refill after failed connects) is still looked at now and then.
    MAX_SLEEP = 30.0

    def __init__(self, pool: _Maintained, name: str) -> None:
        self._pool_ref = weakref.ref(pool)
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._timer: asyncio.TimerHandle | None = None
        #: The round under way, if any.
        self._round: asyncio.Task[None] | None = None
        #: A wake-up came during a round: run another right after it.
        self._again = False
        self._stopped = False
        weakref.finalize(pool, self.stop)

    def start(self) -> None:
        """Schedule the first round (RuntimeError outside a running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._schedule(0.0)

    def wake(self) -> None:
        """Run a round now (the pool's deadlines changed); from any thread."""
        self._call(self._schedule, 0.0)

    def stop(self) -> None:
        """Run no more rounds (the one under way, if any, finishes); from any thread,
        and from the garbage collector."""
        self._stopped = True
        self._call(self._cancel_timer)

    def _call(self, function: object, *args: object) -> None:
        """Call ``function`` in the loop's thread: now if this is it, else through it."""
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._thread:
            function(*args)  # type: ignore[operator]
            return
        try:
            loop.call_soon_threadsafe(function, *args)  # type: ignore[arg-type]
        except RuntimeError:  # the loop is closed: nothing runs any more
            pass

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self, delay: float) -> None:
        """The next round, ``delay`` seconds from now (or after the one under way)."""
        if self._stopped or self._loop is None:
            return
        if self._round is not None:
            self._again = self._again or delay == 0.0
            return
        self._cancel_timer()
        self._timer = self._loop.call_later(delay, self._start_round)

    def _start_round(self) -> None:
        self._timer = None
        if not self._stopped and self._loop is not None:
            self._round = self._loop.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        delay: float | None = None
        try:
            pool = self._pool_ref()
            if pool is None:
                return
            try:
                delay = await pool.housekeep()
            except Exception:
                log.exception("poolwarden housekeeping failed; retrying in %s s", self.MAX_SLEEP)
            del pool
        finally:
            self._round = None
        if self._again:
            self._again = False
            delay = 0.0
        self._schedule(self.MAX_SLEEP if delay is None else min(max(delay, 0.0), self.MAX_SLEEP))
