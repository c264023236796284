"""The in-flight and held-connection scenarios of ``test_inflight_faults`` and
``test_held_faults`` for the asyncio drivers.

In flight: that query fails, with the driver's own error, and nothing after it does.
Held unused: without a transaction the borrower sees no error; with one it is told
(ConnectionLost), never loses the work in silence.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from poolwarden import AsyncPool, AsyncPooledConnection, ConnectionLost
from tests.faults.async_workload import (
    bounded,
    outcome_of,
    request,
    request_in_task,
    run,
    sleep_sql,
    warm,
)
from tests.faults.conftest import IN_CI, AsyncTarget, record
from tests.faults.proxy import FaultProxy, nft_available

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

REQUESTS = 9

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

#: aiomysql's only bound on a hung query: the caller's deadline.
CALLER_DEADLINE = 3.0


def failures(outcome: float | Exception) -> list[Exception]:
    """The exception among a task's outcome, if any."""
    return [outcome] if isinstance(outcome, Exception) else []


async def test_server_restart_mid_query(async_target: AsyncTarget) -> None:
    server, driver, label = async_target
    async with AsyncPool(server.url(driver), pool_size=3) as pool:
        await warm(pool, 3)
        task = request_in_task(pool, sleep_sql(server.kind, 10))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(server.restart)
        back = time.monotonic()
        inflight = failures(await outcome_of(task, 30))
        errors = await run(pool, REQUESTS)
        recovery = time.monotonic() - back
        stats = pool.stats()
        adapter = pool.engine.adapter
        dbapi: Any = adapter.dbapi
    record("server restart mid-query", label, len(inflight) + len(errors), 1, recovery)
    assert len(inflight) == 1 and errors == [], (inflight, errors)
    error = inflight[0]
    assert isinstance(error, dbapi.Error), repr(error)  # the driver's own exception ...
    assert adapter.is_disconnect(error), repr(error)  # ... recognised as a disconnect
    assert stats.discards >= 1 and stats.found_dead >= 2, stats


async def test_blackholed_network_mid_query(
    async_target: AsyncTarget, async_proxy: FaultProxy
) -> None:
    server, driver, label = async_target
    if driver == "psycopg" and not nft_available():
        # libpq's only bounds on a silent path are TCP-level; a proxy in user space still
        # acknowledges packets, so only dropping them in the kernel makes the fault real.
        message = "needs nftables (root) to drop packets for libpq's TCP keepalives"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    caller_bound = driver == "aiomysql"
    url = server.url(driver, port=async_proxy.port, query=SILENT_PATH_LIMITS[driver])
    # aiomysql: the caller's deadline cancels the hung query; an interrupted query makes
    # the other connections suspect as a disconnect does, so those on the same dead path
    # are pinged (and found dead) before they are handed out, not left to hang as well.
    async with AsyncPool(url, pool_size=3, validation_timeout=1.0) as pool:
        await warm(pool, 3)
        started = time.monotonic()
        sql = sleep_sql(server.kind, 1)
        task: asyncio.Task[Any]
        if caller_bound:
            inner = request(pool, sql)
            task = asyncio.create_task(asyncio.wait_for(inner, CALLER_DEADLINE))
        else:
            task = request_in_task(pool, sql)
        await asyncio.sleep(0.3)
        assert async_proxy.blackhole() == 3
        try:
            outcome: Any = await bounded(task, 30)
        except Exception as exc:  # the caller's deadline (aiomysql)
            outcome = exc
        inflight = failures(outcome)
        failed_after = time.monotonic() - started
        # The failure (or the cancellation) made every idle connection suspect: each is
        # pinged (and found dead) before reuse instead of being handed out to hang.
        back = time.monotonic()
        errors = await run(pool, REQUESTS)
        recovery = time.monotonic() - back
        stats = pool.stats()
        adapter = pool.engine.adapter
    if caller_bound:
        note = (
            f"no read timeout in aiomysql: the caller's {CALLER_DEADLINE:g} s deadline "
            f"cancelled it after {failed_after:.1f} s"
        )
    else:
        note = f"in-flight query failed after {failed_after:.1f} s"
    record("black-holed network mid-query", label, len(inflight) + len(errors), 1, recovery, note)
    assert len(inflight) == 1 and errors == [], (inflight, errors)
    if caller_bound:
        assert isinstance(inflight[0], asyncio.TimeoutError), repr(inflight[0])
        assert stats.discards >= 1, stats  # the cancelled connection was not reused
    else:
        assert adapter.is_disconnect(inflight[0]), repr(inflight[0])
    # Each idle connection was found dead before reuse: by a ping that got no answer, or
    # by the socket probe once TCP keepalives (libpq) had given up on it.
    assert stats.ping_failures + stats.found_dead >= 2 and recovery < 10, stats


async def test_connections_closed_mid_query(
    async_target: AsyncTarget, async_proxy: FaultProxy
) -> None:
    """The path closes (FIN) under a running query, as a restarting proxy or balancer does."""
    server, driver, label = async_target
    async with AsyncPool(server.url(driver, port=async_proxy.port), pool_size=3) as pool:
        await warm(pool, 3)
        task = request_in_task(pool, sleep_sql(server.kind, 2))
        await asyncio.sleep(0.3)
        async_proxy.close()
        inflight = failures(await outcome_of(task, 30))
        back = time.monotonic()
        errors = await run(pool, REQUESTS)
        recovery = time.monotonic() - back
        adapter = pool.engine.adapter
    record("connections closed mid-query", label, len(inflight) + len(errors), 1, recovery)
    assert len(inflight) == 1 and errors == [], (inflight, errors)
    assert adapter.is_disconnect(inflight[0]), repr(inflight[0])


# -- connections held unused by their borrowers ------------------------------------------
HELD_NOTE = "no transaction: went on; in a transaction: ConnectionLost, then rollback"


async def statement(conn: AsyncPooledConnection) -> None:
    async with conn.cursor() as cur:
        await cur.execute("SELECT 1")
        await cur.fetchall()


async def hold_both(pool: AsyncPool) -> tuple[AsyncPooledConnection, AsyncPooledConnection]:
    """Two borrowers: one committed before its pause, one has a transaction open."""
    idle, busy = await pool.getconn(timeout=10), await pool.getconn(timeout=10)
    await statement(idle)
    await idle.commit()
    async with busy.cursor() as cur:
        await cur.execute("CREATE TEMPORARY TABLE held_work (id INT)")
        await cur.execute("INSERT INTO held_work VALUES (1)")
    return idle, busy


async def resume(
    idle: AsyncPooledConnection, busy: AsyncPooledConnection, started: float
) -> tuple[int, int, float]:
    """Both borrowers go on after the fault: (errors without a transaction, ConnectionLost
    raised with one, seconds until the first went on)."""
    errors = lost = 0
    try:
        await bounded(statement(idle), 30, "a statement")
    except Exception:
        errors += 1
    recovery = time.monotonic() - started
    try:
        await bounded(statement(busy), 30, "a statement")
    except ConnectionLost:
        lost += 1
        await bounded(busy.rollback(), 30, "a rollback")
        await bounded(statement(busy), 30, "a statement")  # a working connection now
    await idle.close()
    await busy.close()
    return errors, lost, recovery


async def test_server_restart_while_held(async_target: AsyncTarget) -> None:
    server, driver, label = async_target
    async with AsyncPool(server.url(driver), pool_size=2, held_check_after=0.5) as pool:
        idle, busy = await hold_both(pool)
        await asyncio.to_thread(server.restart)
        await asyncio.sleep(0.5)
        errors, lost, recovery = await resume(idle, busy, time.monotonic())
        stats = pool.stats()
    record("server restart while held", label, errors, 0, recovery, HELD_NOTE)
    assert errors == 0 and lost == 1, (errors, lost)
    assert stats.held_replaced == 2 and stats.held_lost == 1, stats


async def test_connections_reset_while_held(
    async_target: AsyncTarget, async_proxy: FaultProxy
) -> None:
    server, driver, label = async_target
    url = server.url(driver, port=async_proxy.port)
    async with AsyncPool(url, pool_size=2, held_check_after=0.5) as pool:
        idle, busy = await hold_both(pool)
        assert async_proxy.reset() == 2
        await asyncio.sleep(0.6)
        errors, lost, recovery = await resume(idle, busy, time.monotonic())
        stats = pool.stats()
    record("connections reset (RST) while held", label, errors, 0, recovery, HELD_NOTE)
    assert errors == 0 and lost == 1, (errors, lost)
    assert stats.held_replaced == 2 and stats.held_lost == 1, stats
