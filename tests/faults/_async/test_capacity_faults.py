"""The server cannot take a connection for a while (full, or down): checkouts wait while
connecting is retried with backoff (by connector tasks on the asyncio side), and succeed
as soon as it can; if it never can, the timeout says why. Written once for both pools
(the sync copy is generated)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from poolwarden import AsyncPool, PoolTimeout
from tests.faults.conftest import Target, record
from tests.faults.sessions import fill_server, limited_account, occupy

from ._compat import MARKS, blocking, bounded, outcome_of, sleep
from .workload import request_in_task, run

pytestmark = [*MARKS, pytest.mark.timeout(120)]


async def test_connection_limit_reached_then_freed(target: Target) -> None:
    """The account's connection limit (MySQL 1203/1226, PostgreSQL's role CONNECTION
    LIMIT) is used up by others; the pool waits, then gets a connection once one is
    freed."""
    server, driver, label = target
    user = limited_account(server, 2)
    blockers = occupy(server, user, 2)
    try:
        async with AsyncPool(server.url(driver, user=user), pool_size=2) as pool:
            task = request_in_task(pool, timeout=20)
            await sleep(1.0)
            assert not task.done()  # still waiting, not failed
            blockers.pop().close()
            freed = time.monotonic()
            done = await outcome_of(task, 30)
            errors = await run(pool, 6, workers=2)
            stats = pool.stats()
    finally:
        for conn in blockers:
            conn.close()
    recovery = done - freed if isinstance(done, float) else None
    failures = int(not isinstance(done, float)) + len(errors)
    record("connection limit used up, then freed", label, failures, 0, recovery)
    assert isinstance(done, float), done
    assert errors == [] and stats.connect_failures >= 1, stats
    assert recovery is not None and recovery < 5


async def test_max_connections_exhausted_then_freed(target: Target) -> None:
    """The server's max_connections (MySQL 1040, PostgreSQL "too many clients") is used
    up; the pool waits and connects once a slot frees."""
    server, driver, label = target
    user = limited_account(server, 1000)
    if server.kind == "mysql":
        server.execute("SET GLOBAL max_connections = 10")  # MariaDB's minimum
    blockers: list[Any] = []
    try:
        blockers, refusal = fill_server(server, user)
        assert "1040" in str(refusal) or "connection slots" in str(refusal), refusal
        async with AsyncPool(server.url(driver, user=user), pool_size=2) as pool:
            task = request_in_task(pool, timeout=20)
            await sleep(1.0)
            assert not task.done()
            blockers.pop().close()
            freed = time.monotonic()
            done = await outcome_of(task, 30)
            stats = pool.stats()
    finally:
        for conn in blockers:
            conn.close()
        if server.kind == "mysql":
            server.execute("SET GLOBAL max_connections = 60")
    recovery = done - freed if isinstance(done, float) else None
    record(
        "max_connections used up, then freed",
        label,
        int(not isinstance(done, float)),
        0,
        recovery,
    )
    assert isinstance(done, float), done
    assert stats.connect_failures >= 1 and recovery is not None and recovery < 5, stats


@pytest.mark.parametrize("limit", ["account", "server"])
async def test_limit_never_freed_is_named(target: Target, limit: str) -> None:
    """Nothing frees a slot: the PoolTimeout names the limit that was hit."""
    server, driver, label = target
    user = limited_account(server, 1 if limit == "account" else 1000)
    if limit == "server" and server.kind == "mysql":
        server.execute("SET GLOBAL max_connections = 10")
    try:
        blockers = occupy(server, user, 1) if limit == "account" else fill_server(server, user)[0]
        try:
            async with AsyncPool(server.url(driver, user=user), pool_size=1) as pool:
                with pytest.raises(PoolTimeout) as info:
                    await bounded(pool.getconn(timeout=1.5), 30, "a checkout")
        finally:
            for conn in blockers:
                conn.close()
    finally:
        if limit == "server" and server.kind == "mysql":
            server.execute("SET GLOBAL max_connections = 60")
    text = str(info.value)
    if limit == "server":
        expected = "max_connections is used up"
    elif server.kind == "mysql":
        expected = "max_user_connections"  # MariaDB: 1226 for the account's own limit
    else:
        expected = "CONNECTION LIMIT is used up"
    record(f"{limit} connection limit never freed", label, 1, 1, None, "PoolTimeout names it")
    assert expected in text and "opening a new connection failed" in text, text
    assert info.value.__cause__ is not None


async def test_server_down_at_start_then_up(target: Target) -> None:
    """Several borrowers wait through the outage while connecting backs off; all get a
    connection soon after the server is back."""
    server, driver, label = target
    await blocking(server.stop)
    async with AsyncPool(server.url(driver), pool_size=2) as pool:
        tasks = [request_in_task(pool, timeout=30) for _ in range(3)]
        await sleep(1.5)
        assert not any(task.done() for task in tasks)
        assert pool.stats().waiting == 3
        await blocking(server.start)
        up = time.monotonic()
        outcomes = [await outcome_of(task, 40) for task in tasks]
        errors = await run(pool, 6, workers=2)
        stats = pool.stats()
    done = [item for item in outcomes if isinstance(item, float)]
    recovery = max(done) - up if len(done) == len(outcomes) else None
    failures = len(outcomes) - len(done) + len(errors)
    record("server down at start, up later", label, failures, 0, recovery, "3 waiting")
    assert len(done) == len(outcomes), outcomes
    assert errors == [] and stats.connect_failures >= 2, stats
    assert recovery is not None and recovery < 5  # the backoff is capped at 2 s


async def test_server_down_for_good_times_out_with_cause(target: Target) -> None:
    server, driver, label = target
    await blocking(server.stop)
    async with AsyncPool(server.url(driver), pool_size=2) as pool:
        with pytest.raises(PoolTimeout) as info:
            await bounded(pool.getconn(timeout=1.0), 30, "a checkout")
        stats = pool.stats()
    record("server down for good", label, 1, 1, None, "PoolTimeout with the connect error")
    assert info.value.__cause__ is not None
    assert pool.engine.adapter.is_retryable_connect_error(info.value.__cause__), (
        info.value.__cause__
    )
    assert stats.in_use == 0 and stats.waiting == 0 and stats.timeouts == 1, stats
