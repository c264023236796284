"""What both pools do alike on the fake driver: checkout and reuse, discards, connect
errors, timeouts, fair hand-off, close and resize, ``configure``, ``repr``. Written once for
AsyncPool (the copy for Pool in ``_sync/`` is generated); what happens to a connection
that goes back (or never does) is in ``test_pool_return.py``, and what only one pool has
is tested in ``tests/unit/test_pool.py`` (threads) and ``test_async_pool.py`` (tasks,
loops)."""

from __future__ import annotations

import functools
import time
from typing import Any

import pytest

from poolwarden import AsyncPooledConnection, PoolClosed, PoolTimeout
from tests.fakedb import ACCESS_DENIED, FakeServer, OperationalError

from ._compat import MARKS, appending, fake, outcome_of, sleep, start, until

pytestmark = MARKS


async def test_lazy_growth_and_reuse(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool(pool_size=3)
    assert server.connections == []
    async with pool.connection() as conn:
        assert isinstance(conn, AsyncPooledConnection)
        async with conn.cursor() as cur:
            await cur.execute("SELECT 1")
            assert await cur.fetchall() == [(1,)]
        await conn.commit()
    async with pool.connection() as again:
        assert fake(again.raw) is server.connections[0]
    assert len(server.connections) == 1
    stats = pool.stats()
    assert (stats.connects, stats.checkouts, stats.checkins, stats.idle) == (1, 2, 2, 1)


async def test_disconnect_during_query_discards_connection(
    make_pool: Any, server: FakeServer
) -> None:
    pool = make_pool(pool_size=1, max_overflow=0)
    async with pool.connection() as conn:
        first = fake(conn.raw)
        server.fail("execute", OperationalError(2006, "MySQL server has gone away"))
        with pytest.raises(OperationalError) as info:
            await conn.cursor().execute("SELECT 1")
        assert info.value.args[0] == 2006  # the driver's own error, code intact
    assert not first.open
    async with pool.connection() as conn:
        assert fake(conn.raw) is not first
    stats = pool.stats()
    assert stats.discards == 1 and stats.connects == 2


async def test_disconnect_raised_out_of_the_block_discards(
    make_pool: Any, server: FakeServer
) -> None:
    pool = make_pool(pool_size=1)
    server.fail("execute", OperationalError(2013, "Lost connection"))
    with pytest.raises(OperationalError):
        async with pool.connection() as conn:
            await conn.cursor().execute("SELECT 1")
    assert not server.connections[0].open and pool.stats().discards == 1


async def test_permanent_connect_error_raised_immediately(
    make_pool: Any, server: FakeServer
) -> None:
    pool = make_pool(timeout=30)
    server.fail("connect", OperationalError(ACCESS_DENIED, "Access denied for user 'app'"))
    started = time.monotonic()
    with pytest.raises(OperationalError, match="Access denied") as info:
        await pool.getconn()
    assert info.value.args[0] == ACCESS_DENIED
    assert time.monotonic() - started < 5
    assert pool.stats().connect_failures == 1


async def test_timeout_message_names_limits_and_holder(make_pool: Any) -> None:
    pool = make_pool(pool_size=1, max_overflow=1)
    held = [await pool.getconn(), await pool.getconn()]  # the holders' call site is this line
    line = test_timeout_message_names_limits_and_holder.__code__.co_firstlineno + 2
    started = time.monotonic()
    with pytest.raises(PoolTimeout) as info:
        await pool.getconn(timeout=0.1)
    assert time.monotonic() - started >= 0.09
    text = str(info.value)
    assert "within 0.1 s" in text
    assert "2 of 2 connections in use (pool_size=1, max_overflow=1)" in text
    assert f"test_pool_behaviour.py:{line}:test_timeout_message_names_limits_and_holder" in text
    assert isinstance(info.value, TimeoutError)
    assert pool.stats().timeouts == 1 and pool.stats().waiting == 0
    for conn in held:
        await conn.close()


async def test_fifo_hand_off_between_waiters(make_pool: Any) -> None:
    """Waiters are served in the order they came; a newcomer may not barge past them."""
    pool = make_pool(pool_size=1, max_overflow=0)
    holder = await pool.getconn()
    order: list[int] = []

    async def wait(i: int) -> None:
        async with pool.connection(timeout=5):
            order.append(i)
            await sleep(0)

    waiters = []
    for i in range(5):
        waiters.append(start(functools.partial(wait, i)))
        await until(lambda: pool.stats().waiting == len(waiters))
    await holder.close()
    newcomer = start(functools.partial(wait, 99))
    for waiter in [*waiters, newcomer]:
        await outcome_of(waiter, 5)
    assert order == [0, 1, 2, 3, 4, 99]
    assert pool.stats().peak_waiting >= 5


async def test_close_wakes_waiters_and_closes_borrowed_on_return(make_pool: Any) -> None:
    pool = make_pool(pool_size=1, max_overflow=0)
    borrowed = await pool.getconn()
    waiter = start(functools.partial(pool.getconn, timeout=10))
    await until(lambda: pool.stats().waiting == 1)
    await pool.close()
    with pytest.raises(PoolClosed):
        await outcome_of(waiter, 5)
    raw = borrowed.raw
    assert raw.open  # the holder keeps working until it gives it back
    await borrowed.close()
    assert not raw.open
    with pytest.raises(PoolClosed):
        await pool.getconn()
    await pool.close()  # twice is fine


async def test_resize_while_in_use(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool(pool_size=2, max_overflow=0)
    held = [await pool.getconn(), await pool.getconn()]
    waiter = start(functools.partial(pool.getconn, timeout=5))
    await until(lambda: pool.stats().waiting == 1)
    await pool.resize(pool_size=3)  # room for the waiter at once
    got = await outcome_of(waiter, 5)
    assert pool.stats().in_use == 3
    await pool.resize(pool_size=1, max_overflow=0)
    for conn in [*held, got]:
        await conn.close()
    stats = pool.stats()
    assert stats.idle == 1 and stats.in_use == 0 and len(server.open_connections) == 1


async def test_resize_gives_waiters_room(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool(pool_size=1, max_overflow=0)
    held = await pool.getconn()
    waiter = start(functools.partial(pool.getconn, timeout=5))
    await until(lambda: pool.stats().waiting == 1)
    await pool.resize(pool_size=2)
    extra = await outcome_of(waiter, 5)
    await extra.close()
    await held.close()
    await pool.resize(pool_size=1)
    assert pool.stats().idle == 1 and len(server.open_connections) == 1


async def test_server_down_waits_then_timeout_carries_cause(
    make_pool: Any, server: FakeServer
) -> None:
    pool = make_pool()
    server.down()
    with pytest.raises(PoolTimeout) as info:
        await pool.getconn(timeout=0.5)
    assert isinstance(info.value.__cause__, OperationalError)
    assert "opening a new connection failed" in str(info.value)
    assert "Connection refused" in str(info.value)
    assert pool.stats().connect_failures >= 2  # retried with backoff meanwhile


async def test_server_down_waits_then_recovers(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool(pool_size=1)
    server.down()
    checkout = start(functools.partial(pool.getconn, timeout=5))
    await until(lambda: pool.stats().connect_failures >= 2)
    server.up()
    conn = await outcome_of(checkout, 10)
    await conn.close()
    with pytest.raises(PoolTimeout) as info:
        server.down()
        server.connections[-1].server_closes()
        await pool.getconn(timeout=0.3)
    assert isinstance(info.value.__cause__, OperationalError)


async def test_configure_runs_on_each_new_connection(make_pool: Any, server: FakeServer) -> None:
    """``configure`` runs once on every new connection, before its first checkout (on the
    asyncio side ``appending`` gives a coroutine function, which the pool awaits)."""
    seen: list[Any] = []
    async with make_pool(configure=appending(seen)) as pool:
        async with pool.connection() as a, pool.connection() as b:
            assert seen == [a.raw, b.raw]
            assert [fake(raw) for raw in seen] == server.connections
        async with pool.connection():
            pass  # an idle one reused: not configured again
        assert len(seen) == 2
    assert pool.closed


async def test_repr_shows_state(make_pool: Any) -> None:
    pool = make_pool(pool_size=2, max_overflow=3, name="orders-db")
    assert repr(pool) == "<AsyncPool orders-db size=2+3 idle=0 in_use=0 waiting=0>"
    async with pool.connection() as conn:
        assert repr(pool) == "<AsyncPool orders-db size=2+3 idle=0 in_use=1 waiting=0>"
        assert repr(conn).startswith("<AsyncPooledConnection #1 checked out at ")
        assert repr(conn).endswith(f" of {pool!r}>")
    assert repr(conn) == f"<AsyncPooledConnection (returned) of {pool!r}>"
    await pool.close()
    assert repr(pool) == "<AsyncPool orders-db size=2+3 closed>"
