"""asyncio's own fault: tasks cancelled (``task.cancel()``, ``asyncio.wait_for``'s
deadline) in the middle of the pool's work during an outage. Whatever was cancelled, and
wherever, the pool's books must balance afterwards (nothing held, nobody waiting, no
connection slot lost) and new requests succeed once the server is reachable again."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest

from poolwarden import AsyncPool
from tests.faults._async._compat import bounded, until
from tests.faults._async.workload import request, run, warm
from tests.faults.conftest import Target, record
from tests.faults.proxy import FaultProxy
from tests.faults.sessions import sleep_sql

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

#: How long a cancelled task may take to finish. psycopg's AsyncConnection, cancelled
#: while a query runs, sends the server a cancel request and waits up to 5 s for the
#: query to end before it gives the connection up and lets the cancellation through.
CANCELLED_WITHIN = 20.0


async def cancel(task: asyncio.Task[Any]) -> BaseException | None:
    """``task.cancel()``; return what the task ended with once it has (bounded)."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=CANCELLED_WITHIN)
    assert done, f"a cancelled task was still running after {CANCELLED_WITHIN:g} s"
    return None if task.cancelled() else task.exception()


async def deadline(task: asyncio.Task[Any], seconds: float) -> BaseException | None:
    """Let ``asyncio.wait_for`` cancel ``task`` at its deadline; return what it raised."""
    try:
        await bounded(asyncio.wait_for(task, seconds), CANCELLED_WITHIN, "a cancellation")
    except BaseException as exc:
        return exc
    return None


@contextlib.contextmanager
def loop_errors() -> Iterator[list[dict[str, Any]]]:
    """Collect what the event loop reports to its exception handler meanwhile (such as
    "Task exception was never retrieved"): errors the pool's own tasks raised and nobody
    saw."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        yield reported
        gc.collect()  # a task's lost exception is reported when the task is collected
    finally:
        loop.set_exception_handler(previous)


def describe(reported: list[dict[str, Any]]) -> list[str]:
    return [f"{context.get('message')}: {context.get('exception')!r}" for context in reported]


def assert_balanced(pool: AsyncPool) -> Any:
    """Nothing held, nobody waiting, every checkout given back; return the stats."""
    stats = pool.stats()
    assert stats.in_use == 0 and stats.waiting == 0, stats
    assert stats.checkouts == stats.checkins, stats
    return stats


async def assert_full_capacity(pool: AsyncPool, size: int) -> None:
    """``size`` connections can be checked out at once: no slot was lost."""
    held = [await bounded(pool.getconn(timeout=10), 30, "a checkout") for _ in range(size)]
    for conn in held:
        await conn.close()


async def test_tasks_cancelled_during_an_outage(
    async_target: Target, async_proxy: FaultProxy
) -> None:
    """Two queries run on both connections; two more tasks wait for one. The network
    path goes silent under the queries and new connections are refused (the outage).
    The queries are cancelled (one by ``task.cancel()``, one by ``asyncio.wait_for``),
    which frees both slots: the waiters keep waiting while connecting fails and backs
    off, and are cancelled in turn, the same two ways."""
    server, driver, label = async_target
    url = server.url(driver, port=async_proxy.port)
    size = 2
    async with AsyncPool(url, pool_size=size, max_overflow=0, validation_timeout=1.0) as pool:
        await warm(pool, size)
        slow = sleep_sql(server.kind, 30)
        inflight = [asyncio.create_task(request(pool, slow)) for _ in range(size)]
        await until(lambda: pool.stats().in_use == size)
        await asyncio.sleep(0.3)  # the queries are on the server
        waiters = [asyncio.create_task(request(pool, timeout=30)) for _ in range(2)]
        await until(lambda: pool.stats().waiting == 2)

        async_proxy.refuse()
        assert async_proxy.blackhole() == size

        # Cancelled in flight: each connection is discarded, its slot freed.
        assert await cancel(inflight[0]) is None  # cancelled, and nothing else
        timed_out = await deadline(inflight[1], 0.5)
        assert isinstance(timed_out, asyncio.TimeoutError), repr(timed_out)
        mid = pool.stats()
        assert mid.in_use == 0 and mid.idle == 0 and mid.discards >= size, mid

        # The freed slots went to the waiters, who wait while connecting fails.
        await until(lambda: pool.stats().connect_failures >= 2)
        assert not any(task.done() for task in waiters), waiters
        assert pool.stats().waiting == 2

        # Cancelled while waiting: they leave the queue.
        assert await cancel(waiters[0]) is None
        timed_out = await deadline(waiters[1], 0.5)
        assert isinstance(timed_out, asyncio.TimeoutError), repr(timed_out)
        assert_balanced(pool)
        # Nobody wants a connection any more: the connector stops after its pause.
        await until(lambda: pool.stats().connecting == 0)

        async_proxy.accept()
        back = time.monotonic()
        errors = await run(pool, 6, workers=2)
        recovery = time.monotonic() - back
        await assert_full_capacity(pool, size)
        stats = assert_balanced(pool)
    note = "2 in flight + 2 waiting cancelled; books balanced after"
    record("tasks cancelled during an outage", label, len(errors), 0, recovery, note)
    assert errors == [], errors
    # (Each cancelled waiter is counted in stats.timeouts, as an interrupted wait is.)
    assert stats.open <= size, stats


async def test_task_cancelled_while_its_checkout_pings(
    async_target: Target, async_proxy: FaultProxy
) -> None:
    """The only idle connection sits on a black-holed path; the checkout pings it
    (validation_timeout 10 s) and the task is cancelled during that ping. The connection
    is dropped, not put back as if it had passed, and the slot is free again."""
    server, driver, label = async_target
    url = server.url(driver, port=async_proxy.port)
    async with AsyncPool(
        url, pool_size=1, max_overflow=0, ping_after_idle=0.2, validation_timeout=10.0
    ) as pool:
        await warm(pool, 1)
        assert async_proxy.blackhole() == 1
        await asyncio.sleep(0.3)
        with loop_errors() as reported:
            task = asyncio.create_task(request(pool))
            await asyncio.sleep(0.5)  # the ping is waiting for an answer
            assert not task.done()
            ended = await cancel(task)
            del task
        after_cancel = pool.stats()
        back = time.monotonic()
        errors = await run(pool, 3, workers=1)
        recovery = time.monotonic() - back
        await assert_full_capacity(pool, 1)
        assert_balanced(pool)
    lost = describe(reported)
    note = "cancelled mid-ping; the connection discarded, the slot free"
    if ended is not None:
        note = f"the cancellation became {ended!r}"
    elif lost:
        note = f"cancelled, but left behind: {'; '.join(lost)}"
    failures = len(errors) + (ended is not None) + len(lost)
    record("task cancelled while its checkout pings", label, failures, 0, recovery, note)
    # The cancellation reached the task, and nothing else went astray: the ping it cut
    # short must not end in an error nobody retrieves (nor, where wait_for runs the ping
    # in the caller's own task, as from Python 3.12, replace the cancellation).
    assert ended is None, f"cancelled, the checkout raised {ended!r} instead"
    assert lost == [], lost
    assert after_cancel.in_use == 0 and after_cancel.waiting == 0, after_cancel
    assert after_cancel.idle == 0 and after_cancel.discards == 1, after_cancel
    assert errors == [], errors
