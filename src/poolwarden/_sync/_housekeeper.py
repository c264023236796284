"""The thread pool's timed work: one background thread per pool, asleep between rounds.

The asyncio pool's housekeeper (``_async/_housekeeper.py``) is written apart: there a timer
in the event loop takes the thread's place.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Protocol

from ._compat import Queue, spawn

__all__ = ["Housekeeper"]

log = logging.getLogger("poolwarden")


class _Maintained(Protocol):
    def housekeep(self) -> float | None:
        """Do what is due; return seconds until something is due next (None: nothing)."""
        ...


class Housekeeper:
    """Sleeps until the pool's next deadline or a wake-up; never polls.

    The thread holds only a weak reference to its pool between rounds, so an abandoned
    pool can be garbage-collected; its finaliser stops the thread.
    """

    #: Longest sleep, so that work whose deadline the pool could not predict (such as a
    #: refill after failed connects) is still looked at now and then.
    MAX_SLEEP = 30.0
    _STOP = object()

    def __init__(self, pool: _Maintained, name: str) -> None:
        self._pool_ref = weakref.ref(pool)
        self._queue = Queue()
        self._name = name
        #: The thread (the task, for the asyncio pool) once started.
        self._runner: Any = None
        weakref.finalize(pool, self._queue.put, self._STOP)

    def start(self) -> None:
        """Start the thread (RuntimeError when none can start: interpreter shutdown, or
        no running event loop)."""
        self._runner = spawn(self._run, self._name)

    def wake(self) -> None:
        """Run a round now (the pool's deadlines changed)."""
        self._queue.put(None)

    def stop(self) -> None:
        """End the thread after its current round."""
        self._queue.put(self._STOP)

    def _run(self) -> None:
        delay: float | None = 0.0
        while True:
            item = self._queue.get(self.MAX_SLEEP if delay is None else delay)
            if item is self._STOP:
                return
            pool = self._pool_ref()
            if pool is None:
                return
            try:
                delay = pool.housekeep()
            except Exception:
                log.exception("poolwarden housekeeping failed; retrying in %s s", self.MAX_SLEEP)
                delay = None
            del pool
            if delay is not None:
                delay = min(max(delay, 0.0), self.MAX_SLEEP)
