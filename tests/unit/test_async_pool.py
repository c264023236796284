"""The asyncio pool on the fake driver: the await forms, timeouts, cancellation, liveness,
held connections, event loops, URLs; what only it has or does its own way. What both pools
do alike is written once in ``_async/test_pool_behaviour.py`` and
``_async/test_pool_return.py`` (and generated into ``_sync/``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from poolwarden import (
    AsyncPool,
    ConnectionLost,
    PoolError,
    PoolTimeout,
)
from tests.clock import FakeClock
from tests.fakedb import FakeServer
from tests.fakedb_async import AsyncFakeAdapter, AsyncFakeServer

pytestmark = pytest.mark.anyio

MakePool = Callable[..., AsyncPool]


@pytest.fixture
def aserver(server: FakeServer) -> AsyncFakeServer:
    return AsyncFakeServer(server)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


async def test_await_forms_of_connection_and_cursor(make_apool: MakePool) -> None:
    """aiomysql's spellings: ``await pool.connection()`` (returned with ``putconn``) and
    ``await conn.cursor()``; explicit returns themselves are in ``_async/test_pool_return.py``."""
    pool = make_apool(pool_size=2)
    a = await pool.connection()
    b = await pool.getconn()
    cur = await a.cursor()  # aiomysql's spelling works too
    await cur.execute("SELECT 1")
    assert [row async for row in cur] == [(1,)]
    assert pool.stats().in_use == 2
    await pool.putconn(a)
    await b.close()
    assert pool.stats().idle == 2 and pool.stats().in_use == 0


async def test_created_outside_a_loop_starts_its_work_at_first_use(
    aserver: AsyncFakeServer, server: FakeServer
) -> None:
    pool = await asyncio.to_thread(
        lambda: AsyncPool(aserver.connect, adapter=AsyncFakeAdapter(aserver), min_idle=2)
    )
    assert server.connections == []  # no loop there: nothing started
    async with pool.connection():
        pass
    await until(lambda: pool.stats().idle >= 2)  # min_idle kept beside the one just used
    await pool.close()


async def test_cancelled_waiter_loses_nothing(make_apool: MakePool) -> None:
    pool = make_apool(pool_size=1, max_overflow=0)
    holder = await pool.getconn()
    waiter = asyncio.create_task(pool.getconn(timeout=10))
    await until(lambda: pool.stats().waiting == 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.stats().waiting == 0
    await holder.close()
    async with pool.connection(timeout=1):
        assert pool.stats().in_use == 1
    stats = pool.stats()
    assert (stats.idle, stats.in_use, stats.checkouts, stats.checkins) == (1, 0, 2, 2)


async def test_cancelled_as_the_connection_arrives_gives_it_back(make_apool: MakePool) -> None:
    """The hand-off and the cancellation race: the connection reached the waiter, whose
    task is cancelled before it runs again. It must go back, not vanish."""
    pool = make_apool(pool_size=1, max_overflow=0)
    holder = await pool.getconn()
    waiter = asyncio.create_task(pool.getconn(timeout=10))
    await until(lambda: pool.stats().waiting == 1)
    await holder.close()  # handed to the waiter, which has not run yet...
    waiter.cancel()  # ... and is cancelled before it does
    with pytest.raises(asyncio.CancelledError):
        await waiter
    stats = pool.stats()
    assert (stats.idle, stats.in_use, stats.waiting) == (1, 0, 0)


async def test_cancelled_mid_query_discards_the_connection(
    make_apool: MakePool, server: FakeServer
) -> None:
    pool = make_apool(pool_size=1, max_overflow=0)
    started = asyncio.Event()

    async def slow_query() -> None:
        async with pool.connection() as conn:
            cur = conn.cursor()
            started.set()
            await cur.execute("SLOW")

    task = asyncio.create_task(slow_query())
    await started.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The protocol state is unknown after an interrupted query: closed, never reused.
    assert not server.connections[0].open
    stats = pool.stats()
    assert (stats.in_use, stats.idle, stats.discards) == (0, 0, 1)
    async with pool.connection(timeout=1) as conn:
        assert conn.raw.sync is server.connections[1]


async def test_cancelled_between_queries_keeps_the_connection(
    make_apool: MakePool, server: FakeServer
) -> None:
    pool = make_apool(pool_size=1, max_overflow=0)
    started = asyncio.Event()

    async def handler() -> None:
        async with pool.connection() as conn:
            await conn.cursor().execute("UPDATE t SET x = 1")
            started.set()
            await asyncio.sleep(60)  # an upstream call, say: no query in flight

    task = asyncio.create_task(handler())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    raw = server.connections[0]
    assert raw.open and raw.rollbacks == 1  # its transaction ended, the connection kept
    assert pool.stats().idle == 1


async def test_timeout_via_wait_for_loses_nothing(make_apool: MakePool) -> None:
    pool = make_apool(pool_size=1, max_overflow=0)
    holder = await pool.getconn()
    for _ in range(3):
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pool.getconn(timeout=10), 0.02)
    await holder.close()
    stats = pool.stats()
    assert (stats.idle, stats.in_use, stats.waiting) == (1, 0, 0)


async def test_probe_replaces_a_connection_the_server_closed(
    make_apool: MakePool, server: FakeServer
) -> None:
    pool = make_apool(pool_size=2)
    async with pool.connection():
        pass
    server.connections[0].server_closes()
    async with pool.connection() as conn:
        assert conn.raw.sync is server.connections[1]
        await conn.cursor().execute("SELECT 1")
    assert pool.stats().found_dead == 1


async def test_silent_death_found_by_a_bounded_ping(
    make_apool: MakePool, server: FakeServer
) -> None:
    clock = FakeClock()
    pool = make_apool(pool_size=1, ping_after_idle=5.0, validation_timeout=0.1, clock=clock)
    async with pool.connection():
        pass
    server.connections[0].dies_silently()
    clock.advance(6.0)
    started = time.monotonic()
    async with pool.connection() as conn:
        assert conn.raw.sync is server.connections[1]
    assert time.monotonic() - started < 5.0  # the ping was cut off, not waited out
    stats = pool.stats()
    assert stats.pings == 1 and stats.ping_failures == 1


async def test_held_connection_dead_without_transaction_is_replaced(
    make_apool: MakePool, server: FakeServer
) -> None:
    clock = FakeClock()
    pool = make_apool(pool_size=1, held_check_after=1.0, clock=clock)
    async with pool.connection() as conn:
        cur = conn.cursor()
        await cur.execute("SELECT 1")
        await conn.commit()
        server.connections[0].server_closes()
        clock.advance(2.0)
        await cur.execute("SELECT 1")  # on a new cursor of a new connection
        assert await cur.fetchall() == [(1,)]
        assert conn.raw.sync is server.connections[1]
    assert pool.stats().held_replaced == 1


async def test_held_connection_dead_in_a_transaction_raises_until_rollback(
    make_apool: MakePool, server: FakeServer
) -> None:
    clock = FakeClock()
    pool = make_apool(pool_size=1, held_check_after=1.0, clock=clock)
    async with pool.connection() as conn:
        cur = conn.cursor()
        await cur.execute("UPDATE t SET x = 1")
        server.connections[0].server_closes()
        clock.advance(2.0)
        with pytest.raises(ConnectionLost, match="uncommitted work"):
            await cur.execute("UPDATE t SET x = 2")
        with pytest.raises(ConnectionLost):
            await conn.commit()
        await conn.rollback()  # a new connection: go on
        await cur.execute("UPDATE t SET x = 2")
        await conn.commit()
    assert pool.stats().held_lost == 1


def test_url_errors_point_to_the_other_pool() -> None:
    with pytest.raises(ValueError, match=r"mysql\+pymysql is a sync driver.*poolwarden.Pool"):
        AsyncPool("mysql+pymysql://u:secret@127.0.0.1/db")
    with pytest.raises(ValueError, match="no asyncio driver for sqlite"):
        AsyncPool("sqlite:///x.db")
    with pytest.raises(ValueError, match=r"asyncmy is an asyncio driver.*AsyncPool"):
        from poolwarden import Pool

        Pool("mysql+asyncmy://u:secret@127.0.0.1/db")


def test_a_pool_outlives_its_event_loop(aserver: AsyncFakeServer, server: FakeServer) -> None:
    """One event loop per test (or per asyncio.run) with one pool made once: the pool
    starts afresh in the next loop, since its connections belonged to the closed one."""
    pool = AsyncPool(aserver.connect, adapter=AsyncFakeAdapter(aserver), pool_size=2)

    async def request() -> Any:
        async with pool.connection() as conn:
            await conn.cursor().execute("SELECT 1")
            return conn.raw.sync

    first = asyncio.run(request())
    second = asyncio.run(request())
    assert second is not first and len(server.connections) == 2
    assert pool.stats().in_use == 0 and pool.stats().idle == 1
    asyncio.run(pool.close())
    assert server.open_connections == [first]  # detached, never used again nor closed


async def test_a_pool_refuses_a_second_running_loop(make_apool: MakePool) -> None:
    pool = make_apool(pool_size=1)
    async with pool.connection():
        pass

    def elsewhere() -> None:
        async def use() -> None:
            await pool.getconn()

        asyncio.run(use())

    with pytest.raises(PoolError, match="another event loop, which is still open"):
        await asyncio.to_thread(elsewhere)


async def test_timeouts_fire_on_time_whatever_came_before(make_apool: MakePool) -> None:
    """The waiters' deadlines share one timer: a short timeout must still fire on time,
    behind a waiter with a longer one and after waiters with longer ones were served."""
    from poolwarden._async._compat import _DEADLINES

    pool = make_apool(pool_size=1, max_overflow=0)
    holder = await pool.getconn(timeout=30)  # its 30 s deadline armed the timer first
    patient = asyncio.create_task(pool.getconn(timeout=30))
    await until(lambda: pool.stats().waiting == 1)
    started = time.monotonic()
    with pytest.raises(PoolTimeout):
        await pool.getconn(timeout=0.1)  # behind the 30 s waiter: out of order
    assert time.monotonic() - started < 2
    await holder.close()
    await (await patient).close()  # served long before its deadline
    holder = await pool.getconn()
    started = time.monotonic()
    with pytest.raises(PoolTimeout):
        await pool.getconn(timeout=0.1)  # earlier than every deadline seen so far
    assert time.monotonic() - started < 2
    for _ in range(200):  # served waiters leave nothing behind
        waiter = asyncio.create_task(pool.getconn(timeout=30))
        await until(lambda: pool.stats().waiting == 1)
        await holder.close()
        holder = await waiter
    deadlines = _DEADLINES[asyncio.get_running_loop()]
    assert len(deadlines._queue) <= 1
    await holder.close()
