"""Faults that strike during a query: that query fails, with the driver's own error, and
nothing after it does. Written once for both pools (the sync copy is generated)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from poolwarden import AsyncPool
from tests.conftest import unavailable
from tests.faults.conftest import Target, record
from tests.faults.proxy import FaultProxy, nft_available
from tests.faults.sessions import sleep_sql

from ._compat import ASYNC, MARKS, SILENT_PATH_LIMITS, blocking, outcome_of, sleep
from .workload import failures, request_in_task, run, warm

if ASYNC:
    import asyncio

    from .workload import request

pytestmark = [*MARKS, pytest.mark.timeout(120)]

REQUESTS = 9

#: aiomysql's only bound on a hung query: the caller's deadline.
CALLER_DEADLINE = 3.0


async def test_server_restart_mid_query(target: Target) -> None:
    server, driver, label = target
    async with AsyncPool(server.url(driver), pool_size=3) as pool:
        await warm(pool, 3)
        task = request_in_task(pool, sleep_sql(server.kind, 10))
        await sleep(0.5)
        await blocking(server.restart)
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


async def test_blackholed_network_mid_query(target: Target, proxy: FaultProxy) -> None:
    server, driver, label = target
    if server.kind == "postgresql" and not nft_available():
        # libpq's only bounds on a silent path are TCP-level; a proxy in user space still
        # acknowledges packets, so only dropping them in the kernel makes the fault real.
        message = "needs nftables (root) to drop packets for libpq's TCP keepalives"
        unavailable(message)
    caller_bound = driver == "aiomysql"
    url = server.url(driver, port=proxy.port, query=SILENT_PATH_LIMITS[driver])
    # aiomysql: the caller's deadline cancels the hung query; an interrupted query makes
    # the other connections suspect as a disconnect does, so those on the same dead path
    # are pinged (and found dead) before they are handed out, not left to hang as well.
    async with AsyncPool(url, pool_size=3, validation_timeout=1.0) as pool:
        await warm(pool, 3)
        started = time.monotonic()
        sql = sleep_sql(server.kind, 1)
        task: Any
        if ASYNC:
            if caller_bound:
                inner = request(pool, sql)
                task = asyncio.create_task(asyncio.wait_for(inner, CALLER_DEADLINE))
            else:
                task = request_in_task(pool, sql)
        else:
            task = request_in_task(pool, sql)
        await sleep(0.3)
        assert proxy.blackhole() == 3
        try:
            outcome: Any = await outcome_of(task, 30)
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
    if not caller_bound:
        assert adapter.is_disconnect(inflight[0]), repr(inflight[0])
    if ASYNC:
        if caller_bound:
            assert isinstance(inflight[0], asyncio.TimeoutError), repr(inflight[0])
            assert stats.discards >= 1, stats  # the cancelled connection was not reused
    # Each idle connection was found dead before reuse: by a ping that got no answer, or
    # by the socket probe once TCP keepalives (libpq) had given up on it.
    assert stats.ping_failures + stats.found_dead >= 2 and recovery < 10, stats


async def test_connections_closed_mid_query(target: Target, proxy: FaultProxy) -> None:
    """The path closes (FIN) under a running query, as a restarting proxy or balancer does."""
    server, driver, label = target
    async with AsyncPool(server.url(driver, port=proxy.port), pool_size=3) as pool:
        await warm(pool, 3)
        task = request_in_task(pool, sleep_sql(server.kind, 2))
        await sleep(0.3)
        proxy.close()
        inflight = failures(await outcome_of(task, 30))
        back = time.monotonic()
        errors = await run(pool, REQUESTS)
        recovery = time.monotonic() - back
        adapter = pool.engine.adapter
    record("connections closed mid-query", label, len(inflight) + len(errors), 1, recovery)
    assert len(inflight) == 1 and errors == [], (inflight, errors)
    assert adapter.is_disconnect(inflight[0]), repr(inflight[0])
