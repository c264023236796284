"""The sync half of the primitives the I/O shell is written against.

``_async/_compat.py`` is the other half, with the same names: the generated sync modules
import from here, their async sources from there. Keep the two APIs in step.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _watchdog

if TYPE_CHECKING:
    from ..adapters import Adapter

__all__ = [
    "ASYNC",
    "Event",
    "Queue",
    "bounded_ping",
    "current_name",
    "new_signal",
    "spawn",
    "wait_event",
    "wait_signal",
]

#: The sync side of the generator's ``if ASYNC:`` switch (those blocks are gone here).
ASYNC = False

Event = threading.Event
_allocate_lock = threading.Lock


def new_signal() -> Any:
    """A one-shot wake-up for one waiter: ``release()`` it to wake the waiter."""
    signal = _allocate_lock()
    signal.acquire()
    return signal


def wait_signal(signal: Any, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds (infinity: no limit) for ``signal.release()``;
    False on timeout."""
    if timeout == math.inf:
        return signal.acquire()  # type: ignore[no-any-return]
    return signal.acquire(timeout=timeout)  # type: ignore[no-any-return]


def wait_event(event: threading.Event, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``event``; True if it is set."""
    return event.wait(timeout)


def spawn(target: Callable[[], object], name: str) -> threading.Thread:
    """Run ``target`` in the background (a daemon thread). RuntimeError at shutdown."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def current_name() -> str:
    """Who is calling, for leak reports: the thread, by name."""
    return f"thread {threading.current_thread().name!r}"


class Queue:
    """A wake-up queue whose ``put`` is safe from any thread and from ``__del__``."""

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()

    def put(self, item: object) -> None:
        self._queue.put(item)

    def get(self, timeout: float) -> object:
        """The next item, or None after ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None


def bounded_ping(
    adapter: Adapter, raw: Any, timeout: float, call: Callable[[Any], object] | None = None
) -> BaseException | None:
    """Ping ``raw`` through ``adapter`` (or make another round trip, ``call(raw)``), cut
    off after ``timeout`` seconds: None if it answered, else the driver's error (a
    ``TimeoutError`` when the deadline cut it off).
    A thread cannot be interrupted, so the watchdog shuts the socket down at the deadline."""
    fd = adapter.fileno(raw)
    ticket = _watchdog.guard(fd, time.monotonic() + timeout) if fd else None
    error: BaseException | None = None
    try:
        adapter.ping(raw) if call is None else call(raw)
    except Exception as exc:
        error = exc
    finally:
        if ticket is not None and _watchdog.release(ticket) and error is None:
            # Cut off by the deadline, even if an answer raced in.
            error = TimeoutError(f"no answer to a ping within {timeout:g} s")
    return error
