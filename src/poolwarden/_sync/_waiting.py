# Generated from src/poolwarden/_async/_waiting.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""The checkouts that need I/O: waiting for a connection, or checking one properly.

Most checkouts end in ``PoolEngine.checkout_nowait``, with an idle connection that
passed the quick checks. The rest come here: none was idle (queue, fairly, first come first
served, while connectors open more), or the one taken failed a quick check (ping it, or
close it and take the next).
"""

from __future__ import annotations

from types import FrameType
from typing import Any, Protocol

from .._core import Verdict, Waiter
from .._core.activity import UNTOUCHED
from .._core.config import check_seconds
from .._core.entry import Entry
from .._core.messages import timeout_message
from .._core.settings import PoolSettings
from ..errors import PoolClosed, PoolTimeout, fresh_error
from ._background import Background, Orphans
from ._compat import new_signal, wait_signal
from ._shared import Shared

__all__ = ["Pending", "Waiting"]


class Pending:
    """A checkout :meth:`PoolEngine.checkout_nowait` could not finish without I/O:
    the connection it took (to check properly) or None (to wait for one)."""

    __slots__ = ("entry", "frame", "now")

    def __init__(self, entry: Entry | None, now: float, frame: FrameType) -> None:
        self.entry, self.now, self.frame = entry, now, frame


class _Returns(Protocol):
    """What waiting needs of the engine: returns (held weakly: no cycle through it)."""

    def give_back(self, entry: Entry, activity: int, saved: dict[str, Any] | None) -> None: ...

    def reclaim_orphans(self) -> None: ...


class Waiting:
    """One pool's slow path of checkouts."""

    def __init__(
        self,
        shared: Shared,
        background: Background,
        settings: PoolSettings,
        orphans: Orphans,
        engine: _Returns,
    ) -> None:
        self._shared = shared
        self._core = shared.core
        self._io = shared.io
        self._now = shared.now
        self._name = shared.name
        self._background = background
        self._orphans = orphans
        self._engine = engine
        self._timeout = settings.checkout_timeout
        #: The least a checkout that has a connection opened for it waits.
        self._connect_wait = settings.connect_wait_floor

    def finish(self, pending: Pending, timeout: float | None) -> Entry:
        """Finish a checkout ``PoolEngine.checkout_nowait`` began (``pending``):
        wait up to ``timeout`` seconds (None: the pool's) for a connection, or check the
        one it took properly, and replace it as often as needed."""
        limit = (
            self._timeout if timeout is None else check_seconds("timeout", timeout, zero_ok=True)
        )
        if pending.entry is None:
            return self._wait(limit, pending.now, pending.frame)
        return self._revalidate(pending.entry, limit, pending.now, pending.frame)

    def _revalidate(self, entry: Entry, limit: float, started: float, frame: FrameType) -> Entry:
        """An idle connection failed a quick check (or needs a ping): check it properly,
        and replace it, as often as needed, until one is fit or ``limit`` seconds passed."""
        deadline = started + limit
        core, io = self._core, self._io
        while True:
            now = self._now()
            try:
                verdict = core.verdict(entry, now)
                if verdict is not Verdict.RETIRE and io.looks_dead(entry):
                    verdict = Verdict.DEAD_BY_PROBE  # (probe=False: never "dead" here)
                elif verdict is Verdict.PING:
                    alive = io.ping(entry)
                    with self._shared.lock:
                        verdict = core.pinged(entry, alive, now)
            except BaseException:
                with self._shared.lock:
                    core.discard(entry)
                io.close(entry)
                raise
            if verdict is Verdict.OK:
                return entry
            with self._shared.lock:
                replacement = core.unfit(entry, verdict, now)
                if replacement is not None:
                    replacement.site_code = frame.f_code
                    replacement.site_lasti = frame.f_lasti
            io.close(entry)
            if replacement is None:
                return self._wait(max(deadline - now, 1e-3), started, frame)
            entry = replacement

    def _wait(self, wait: float, now: float, frame: FrameType) -> Entry:
        """Queue for a connection for up to ``wait`` seconds (infinity: no limit)."""
        if self._orphans:
            self._engine.reclaim_orphans()
        signal = new_signal()
        waiter = Waiter(now, signal)
        with self._shared.lock:
            core = self._core
            if core.closed:
                raise PoolClosed(f"the pool {self._name} is closed")
            entry = core.checkout(now)
            if entry is None:
                core.enqueue(waiter)
                opens = core.opens_wanted(now)
        if entry is not None:  # one came back meanwhile: it was just in use, so it is fit
            entry.site_code = frame.f_code
            entry.site_lasti = frame.f_lasti
            return entry
        self._background.start_connectors(opens)
        if opens:
            wait = max(wait, self._connect_wait)
        try:
            got = wait_signal(signal, wait)
        except BaseException:
            self._abandon(waiter)
            raise
        if not got:
            self._timed_out(waiter, wait, now)
        entry = waiter.entry
        if entry is None:
            raise fresh_error(waiter.error)
        entry.site_code = frame.f_code
        entry.site_lasti = frame.f_lasti
        return entry

    def _timed_out(self, waiter: Waiter, wait: float, now: float) -> None:
        """``waiter``'s time ran out: raise PoolTimeout, saying why, unless a connection
        or an error reached it meanwhile."""
        core, hint = self._core, ""
        if core.counters.connects == 0 and core.connecting:
            # Never connected, a connect still hanging: a driver waiting for a greeting
            # the server at that port will never send (PyMySQL at PostgreSQL's port)?
            hint = self._io.probe_server(None)
        with self._shared.lock:
            if core.give_up(waiter):
                return
            error = core.last_connect_error
            if core.last_connect_error_at < now:
                error = None
            message = timeout_message(
                self._name,
                core,
                self._io.describe_connect_error,
                wait,
                error,
                self._now(),
                hint if error is None else "",
            )
        raise PoolTimeout(message) from error

    def _abandon(self, waiter: Waiter) -> None:
        """The waiting thread was interrupted (or the task cancelled): leave the queue,
        giving back anything that reached it meanwhile, so no slot is lost."""
        with self._shared.lock:
            handed = self._core.give_up(waiter)
        if handed and waiter.entry is not None:
            self._engine.give_back(waiter.entry, UNTOUCHED, None)
