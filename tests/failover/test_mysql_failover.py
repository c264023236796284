"""MariaDB failover under write load: the primary goes read-only (its sessions stay open),
the standby becomes writable, and the address the pools use moves to it.

poolwarden's pools (``role="primary"``) must fail at most the writes in flight at the
switch and succeed again within a second plus one ping interval. SQLAlchemy's QueuePool
with ``pool_pre_ping=True`` is the anchor: its connections to the old server stay alive,
so pre-ping passes and its writes go on failing; its count is recorded, not asserted.
"""

from __future__ import annotations

import pytest
import sqlalchemy

import poolwarden
import poolwarden.sqlalchemy
from tests.failover.harness import run_tasks, run_threads
from tests.failover.pairs import MariaDBPair
from tests.failover.scenario import (
    ENGINE_ARGS,
    PING,
    POOL_ARGS,
    POOL_SIZE,
    TASKS,
    THREADS,
    async_pool_writer,
    engine_writer,
    pool_writer,
    verify,
)

pytestmark = pytest.mark.timeout(60)

SCENARIO = "mariadb read_only switch"
SYNC_DRIVERS = ("pymysql", "mysqldb")


@pytest.mark.parametrize("driver", SYNC_DRIVERS)
def test_pool_fails_over(mariadb_pair: MariaDBPair, driver: str) -> None:
    """poolwarden.Pool, 4 threads."""
    with poolwarden.Pool(mariadb_pair.url(driver), **POOL_ARGS) as pool:
        result = run_threads(
            pool_writer(pool), mariadb_pair.switch, workers=THREADS, concurrency=POOL_SIZE
        )
        stats = pool.stats()
    verify(mariadb_pair, result, SCENARIO, "Pool", driver, recovers=True, notes=True)
    # The read-only errors marked the old server demoted.
    assert stats.demotions >= 1 or not result.failed, stats


@pytest.mark.anyio
async def test_async_pool_fails_over(mariadb_pair: MariaDBPair) -> None:
    """poolwarden.AsyncPool on asyncmy, 8 tasks sharing 4 connections."""
    async with poolwarden.AsyncPool(mariadb_pair.url("asyncmy"), **POOL_ARGS) as pool:
        result = await run_tasks(
            async_pool_writer(pool), mariadb_pair.switch, workers=TASKS, concurrency=POOL_SIZE
        )
        stats = pool.stats()
    verify(mariadb_pair, result, SCENARIO, "AsyncPool", "asyncmy", recovers=True, notes=True)
    # The read-only errors marked the old server demoted.
    assert stats.demotions >= 1 or not result.failed, stats


@pytest.mark.parametrize("driver", SYNC_DRIVERS)
def test_queuepool_pre_ping_keeps_failing(mariadb_pair: MariaDBPair, driver: str) -> None:
    """The anchor: SQLAlchemy's QueuePool with pool_pre_ping=True (counts recorded)."""
    engine = sqlalchemy.create_engine(mariadb_pair.url(driver), pool_pre_ping=True, **ENGINE_ARGS)
    try:
        result = run_threads(
            engine_writer(engine), mariadb_pair.switch, workers=THREADS, concurrency=POOL_SIZE
        )
    finally:
        engine.dispose()
    verify(mariadb_pair, result, SCENARIO, "QueuePool+pre_ping", driver, recovers=False)


@pytest.mark.parametrize("driver", SYNC_DRIVERS)
def test_wardenpool_fails_over(mariadb_pair: MariaDBPair, driver: str) -> None:
    """poolwarden's WardenPool under SQLAlchemy (``poolwarden.sqlalchemy.create_engine``)."""
    engine = poolwarden.sqlalchemy.create_engine(
        mariadb_pair.url(driver), role="primary", ping_after_idle=PING, **ENGINE_ARGS
    )
    try:
        result = run_threads(
            engine_writer(engine), mariadb_pair.switch, workers=THREADS, concurrency=POOL_SIZE
        )
    finally:
        engine.dispose()
    verify(mariadb_pair, result, SCENARIO, "WardenPool", driver, recovers=True, notes=True)
