"""The asyncio half of what the fault scenarios are written against (``_sync/_compat.py``
is the thread half, with the same names): how work runs concurrently and is bounded, how a
blocking call is made, and what differs by driver. Written by hand on both sides; the
scenarios in this directory are generated into ``_sync/`` by ``tools/async_to_sync.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pytest

__all__ = [
    "ASYNC",
    "HANG",
    "MARKS",
    "SILENT_PATH_LIMITS",
    "Configure",
    "Started",
    "blocking",
    "bounded",
    "concurrently",
    "outcome_of",
    "sleep",
    "start",
    "until",
]

T = TypeVar("T")

#: Marks ``if ASYNC:`` blocks, which the generator replaces with their ``else:`` block.
ASYNC = True

#: The marks every scenario module carries on this side.
MARKS = [pytest.mark.anyio]

#: Longest any helper waits for requests before declaring a hang (seconds).
HANG = 30.0

#: What bounds a read on a silent network path, per asyncio driver, as a production
#: configuration should set it:
#:
#: - asyncmy has ``read_timeout`` (an ``asyncio.wait_for`` around each read; on expiry it
#:   closes the connection and raises OperationalError 2013);
#: - psycopg's AsyncConnection has no read timeout, but libpq's TCP keepalives and TCP user
#:   timeout apply to its socket as in the sync driver (the kernel ends the connection, the
#:   event loop sees the socket readable, libpq reports the error);
#: - aiomysql has neither (no read timeout, no keepalive options): only the caller's own
#:   deadline (``asyncio.wait_for`` / ``asyncio.timeout``) ends the read, by cancelling it.
SILENT_PATH_LIMITS = {
    "asyncmy": "read_timeout=3",
    "psycopg": "keepalives=1&keepalives_idle=1&keepalives_interval=1&keepalives_count=2"
    "&tcp_user_timeout=3000",
    "aiomysql": "",
}

#: A pool's ``configure`` callback on this side (a coroutine function here).
Configure = Callable[[Any], Awaitable[None]]

#: Work started by :func:`start`, collected with :func:`outcome_of`.
Started = asyncio.Task

sleep = asyncio.sleep


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking call (a server stopped, sessions killed) in a thread, the event loop
    running meanwhile as it would in a service."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def bounded(awaitable: Awaitable[T], limit: float = HANG, what: str = "a request") -> T:
    """``await awaitable``, failing the test if it takes longer than ``limit`` seconds (it
    is then cancelled). Its own exceptions, a ``TimeoutError`` included, propagate as
    they are."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=limit)
    except BaseException:
        task.cancel()
        raise
    if not done:
        task.cancel()
        raise AssertionError(f"{what} hung (still running after {limit:g} s)")
    return task.result()


def start(work: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
    """Run ``work()`` in a task of its own; :func:`outcome_of` collects it."""

    async def run() -> T:
        return await work()

    return asyncio.create_task(run())


async def outcome_of(task: asyncio.Task[T], limit: float = HANG) -> T:
    """What a :func:`start` task returned, waited for at most ``limit`` s."""
    return await bounded(task, limit)


async def concurrently(
    works: Sequence[Callable[[], Awaitable[None]]], limit: float = HANG, what: str = "a request"
) -> None:
    """Run every ``work()`` in concurrent tasks; all must end within ``limit`` seconds."""
    await bounded(asyncio.gather(*(work() for work in works)), limit, what)


async def until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    """Poll ``check`` (the event loop running meanwhile) until true; return how long it
    took."""
    loop = asyncio.get_running_loop()
    start_time = loop.time()
    while not check():
        if loop.time() - start_time > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
    return loop.time() - start_time
