"""The asyncio half of the primitives the I/O shell is written against (see ``_compat``).

The pool's lock stays a ``threading.Lock`` on both sides: PoolCore's decisions never await,
so a critical section never spans a suspension point (``tools/async_to_sync.py`` refuses an
``await`` under it), and a thread lock taken without contention costs less than an
``asyncio.Lock``. What differs is waiting, which must yield to the event loop, and
wake-ups, which may come from another thread or from the garbage collector.
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .._sync._watchdog import shut_down

if TYPE_CHECKING:
    from ..adapters import AsyncAdapter

__all__ = [
    "ASYNC",
    "Event",
    "bounded_ping",
    "current_name",
    "new_signal",
    "spawn",
    "wait_event",
    "wait_signal",
]

#: Marks ``if ASYNC:`` blocks, which the generator replaces with their ``else:`` block.
ASYNC = True


class Signal:
    """A one-shot wake-up for one waiting task; ``release()`` from anywhere."""

    __slots__ = ("_future", "_loop", "_thread")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._future: asyncio.Future[bool] = self._loop.create_future()

    def release(self) -> None:
        """Wake the waiter (from the loop's thread at once, else through the loop)."""
        if threading.get_ident() == self._thread:
            self._set(True)
        else:
            try:
                self._loop.call_soon_threadsafe(self._set, True)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _set(self, value: bool) -> None:
        if not self._future.done():
            self._future.set_result(value)


def new_signal() -> Signal:
    """A one-shot wake-up for the current task."""
    return Signal()


async def wait_signal(signal: Signal, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds (infinity: no limit) for ``signal.release()``;
    False on timeout.
    A cancellation always propagates, even when the wake-up raced it, and the pool then
    gives back whatever reached the waiter. (Not ``asyncio.wait_for``: up to Python 3.11
    it can swallow a cancellation that arrives as the awaited future completes.)"""
    if timeout == math.inf:
        return await signal._future  # no limit: no timer
    loop = signal._loop
    deadlines = _DEADLINES.get(loop)
    if deadlines is None:
        deadlines = _DEADLINES[loop] = Deadlines(loop)
    if deadlines.add(loop.time() + timeout, signal):
        return await signal._future
    expire = loop.call_later(timeout, signal._set, False)  # out of order: a timer of its own
    try:
        return await signal._future
    finally:
        expire.cancel()


class Deadlines:
    """The timeouts of one event loop's waiters, kept with one timer instead of one each
    (a timer costs two microseconds to set and cancel, and cancelled ones pile up in the
    loop's heap). Waiters come in with deadlines in the order they arrive, which is the
    order pools serve them in, so the front of the queue holds the next to expire and the
    waiters served already; the timer fires at the front's deadline, wakes whoever is past
    theirs, and re-arms for the next. A waiter whose deadline comes before the last one's
    (a shorter timeout than the others) is refused and keeps a timer of its own."""

    __slots__ = ("_armed", "_loop", "_queue", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: deque[tuple[float, Signal]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        #: When the timer fires (infinity while none is set).
        self._armed = float("inf")

    def add(self, deadline: float, signal: Signal) -> bool:
        """Wake ``signal`` with False at ``deadline`` unless released before; False when
        ``deadline`` is out of order."""
        queue = self._queue
        while queue and queue[0][1]._future.done():
            queue.popleft()  # served (or cancelled) before their deadline
        if queue and deadline < queue[-1][0]:
            return False
        queue.append((deadline, signal))
        if queue[0][0] < self._armed:  # the first to expire is due before the timer
            self._arm(queue[0][0])
        return True

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._expire)
        self._armed = when

    def _expire(self) -> None:
        self._timer, self._armed = None, float("inf")
        queue, now = self._queue, self._loop.time()
        while queue and (queue[0][0] <= now or queue[0][1]._future.done()):
            queue.popleft()[1]._set(False)  # no effect on a signal already released
        if queue:
            self._arm(queue[0][0])


#: One Deadlines per event loop (dropped with the loop).
_DEADLINES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = (
    weakref.WeakKeyDictionary()
)


class Event:
    """``threading.Event``'s ``set``/``is_set`` for one loop; ``set()`` from any thread."""

    __slots__ = ("_event", "_loop")

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def set(self) -> None:
        """Set the event, waking its waiters."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._event.set()
        else:
            loop.call_soon_threadsafe(self._event.set)

    def is_set(self) -> bool:
        """True once set."""
        return self._event.is_set()


async def wait_event(event: Event, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``event``; True if it is set."""
    event._loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(event._event.wait(), timeout)
    except asyncio.TimeoutError:
        return False
    return True


#: Strong references to running background tasks (the loop keeps only weak ones).
_tasks: set[asyncio.Task[Any]] = set()


def spawn(target: Callable[[], Coroutine[Any, Any, object]], name: str) -> asyncio.Task[Any]:
    """Run ``target()`` as a task of the running loop; RuntimeError without one."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(target(), name=name)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


def current_name() -> str:
    """Who is calling, for leak reports: the task, by name."""
    task: asyncio.Task[Any] | None
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop
        task = None
    if task is None:
        return f"thread {threading.current_thread().name!r}"
    return f"task {task.get_name()!r}"


async def bounded_ping(
    adapter: AsyncAdapter,
    raw: Any,
    timeout: float,
    call: Callable[[Any], Coroutine[Any, Any, object]] | None = None,
) -> BaseException | None:
    """Ping ``raw`` (or make another round trip, ``call(raw)``), cut off after ``timeout``
    seconds: None if it answered, else the driver's error (a ``TimeoutError`` when the
    deadline cut it off).

    Cancelling a driver's wait is not enough to end it promptly (psycopg, cancelled
    mid-query, first asks the server to cancel the query and waits for that): at the
    deadline the socket is shut down, as the thread pool's watchdog does, which ends any
    driver's wait at once; the ping is cancelled only if even that does not. The ping runs
    as a task of its own, so a cancellation of the caller is never mistaken for its result.
    """
    ping = asyncio.ensure_future(adapter.ping(raw) if call is None else call(raw))
    ping.add_done_callback(_retrieve)
    try:
        done, _ = await asyncio.wait({ping}, timeout=timeout)
        if not done:
            fd = adapter.fileno(raw)
            if fd is not None:
                shut_down(fd)
            await asyncio.wait({ping}, timeout=_PING_GRACE)
            return TimeoutError(f"no answer to a ping within {timeout:g} s")
    finally:
        if not ping.done():
            ping.cancel()
    return ping.exception()


#: Seconds a ping may still take once its socket is shut down, before it is cancelled.
_PING_GRACE = 1.0


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a finished ping's error as seen: a ping cut off or abandoned fails, and that is
    expected (asyncio would otherwise log "exception was never retrieved")."""
    if not task.cancelled():
        task.exception()
