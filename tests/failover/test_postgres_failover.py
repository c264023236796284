"""PostgreSQL failover under write load: the primary is demoted by
``default_transaction_read_only=on`` (its sessions stay open and get 25006 on writes), the
streaming standby catches up and is promoted, and the address the pools use moves to it.

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
from tests.failover.pairs import PostgresPair
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

SCENARIO = "postgres promote standby"


def test_pool_fails_over(postgres_pair: PostgresPair) -> None:
    """poolwarden.Pool on psycopg, 4 threads."""
    with poolwarden.Pool(postgres_pair.url("psycopg"), **POOL_ARGS) as pool:
        result = run_threads(
            pool_writer(pool), postgres_pair.switch, workers=THREADS, concurrency=POOL_SIZE
        )
        stats = pool.stats()
    verify(postgres_pair, result, SCENARIO, "Pool", "psycopg", recovers=True, notes=True)
    # The read-only errors marked the old server demoted.
    assert stats.demotions >= 1 or not result.failed, stats


@pytest.mark.anyio
async def test_async_pool_fails_over(postgres_pair: PostgresPair) -> None:
    """poolwarden.AsyncPool on psycopg, 8 tasks sharing 4 connections."""
    async with poolwarden.AsyncPool(postgres_pair.url("psycopg"), **POOL_ARGS) as pool:
        result = await run_tasks(
            async_pool_writer(pool), postgres_pair.switch, workers=TASKS, concurrency=POOL_SIZE
        )
        stats = pool.stats()
    verify(
        postgres_pair, result, SCENARIO, "AsyncPool", "psycopg-async", recovers=True, notes=True
    )
    assert stats.demotions >= 1 or not result.failed, stats


def test_queuepool_pre_ping_keeps_failing(postgres_pair: PostgresPair) -> None:
    """The anchor: SQLAlchemy's QueuePool with pool_pre_ping=True (counts recorded)."""
    engine = sqlalchemy.create_engine(
        postgres_pair.url("psycopg"), pool_pre_ping=True, **ENGINE_ARGS
    )
    try:
        result = run_threads(
            engine_writer(engine), postgres_pair.switch, workers=THREADS, concurrency=POOL_SIZE
        )
    finally:
        engine.dispose()
    verify(postgres_pair, result, SCENARIO, "QueuePool+pre_ping", "psycopg", recovers=False)


def test_wardenpool_fails_over(postgres_pair: PostgresPair) -> None:
    """poolwarden's WardenPool under SQLAlchemy (``poolwarden.sqlalchemy.create_engine``)."""
    engine = poolwarden.sqlalchemy.create_engine(
        postgres_pair.url("psycopg"), role="primary", ping_after_idle=PING, **ENGINE_ARGS
    )
    try:
        result = run_threads(
            engine_writer(engine), postgres_pair.switch, workers=THREADS, concurrency=POOL_SIZE
        )
    finally:
        engine.dispose()
    verify(postgres_pair, result, SCENARIO, "WardenPool", "psycopg", recovers=True, notes=True)
