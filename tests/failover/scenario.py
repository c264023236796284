"""The failover scenario's parts shared by the MariaDB and PostgreSQL tests: the pools'
settings, one write through each kind of pool, and the checks on a run."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy

from poolwarden import AsyncPool, Pool
from tests.failover.conftest import record
from tests.failover.harness import LoadResult
from tests.failover.pairs import INSERT, SQLALCHEMY_INSERT

__all__ = [
    "BOUND",
    "CHECKOUT_TIMEOUT",
    "PING",
    "POOL_SIZE",
    "TASKS",
    "THREADS",
    "async_pool_writer",
    "engine_writer",
    "pool_writer",
    "verify",
]

POOL_SIZE = 4
THREADS = 4
TASKS = 8
#: ping_after_idle of the poolwarden pools, shorter than the 5 s default so that the
#: recovery bound below stays short.
PING = 1.0
#: The bound on the time to recover: one second plus one ping interval.
BOUND = 1.0 + PING
#: A checkout waits at most this long: a pool that cannot find a primary fails the write
#: instead of hanging the run.
CHECKOUT_TIMEOUT = 5.0
#: poolwarden's arguments in every scenario (max_overflow=0: the pool is 4 connections).
POOL_ARGS: dict[str, Any] = {
    "role": "primary",
    "pool_size": POOL_SIZE,
    "max_overflow": 0,
    "ping_after_idle": PING,
    "timeout": CHECKOUT_TIMEOUT,
}
#: The same for SQLAlchemy's create_engine (QueuePool's names for the shared ones).
ENGINE_ARGS: dict[str, Any] = {
    "pool_size": POOL_SIZE,
    "max_overflow": 0,
    "pool_timeout": CHECKOUT_TIMEOUT,
}


def _params(worker: int, seq: int) -> tuple[int, int, float]:
    return (worker, seq, time.time())


def pool_writer(pool: Pool) -> Callable[[int, int], None]:
    """One write through a poolwarden ``Pool``: INSERT, commit."""

    def write(worker: int, seq: int) -> None:
        with pool.connection(timeout=CHECKOUT_TIMEOUT) as conn:
            cursor = conn.cursor()
            cursor.execute(INSERT, _params(worker, seq))
            cursor.close()
            conn.commit()

    return write


def async_pool_writer(pool: AsyncPool) -> Callable[[int, int], Awaitable[None]]:
    """One write through a poolwarden ``AsyncPool``: INSERT, commit."""

    async def write(worker: int, seq: int) -> None:
        async with pool.connection(timeout=CHECKOUT_TIMEOUT) as conn:
            async with conn.cursor() as cursor:
                await cursor.execute(INSERT, _params(worker, seq))
            await conn.commit()

    return write


def engine_writer(engine: sqlalchemy.Engine) -> Callable[[int, int], None]:
    """One write through a SQLAlchemy engine: ``engine.begin()``, INSERT, commit."""
    statement = sqlalchemy.text(SQLALCHEMY_INSERT)

    def write(worker: int, seq: int) -> None:
        with engine.begin() as conn:
            conn.execute(statement, {"worker": worker, "seq": seq, "at": time.time()})

    return write


def verify(
    pair: Any,
    result: LoadResult,
    scenario: str,
    pool: str,
    driver: str,
    recovers: bool,
    notes: bool = False,
) -> None:
    """Record the run, then check it.

    Every run: no write failed before the switch, and the rows on the two servers are
    exactly the writes that reported success (none lost, none stored that failed).
    ``recovers``: at most the writes in flight at the switch failed (and at most one per
    connection or worker), and writes succeeded again within :data:`BOUND` of the new
    primary being reachable. ``notes``: every read-only failure carries poolwarden's note
    saying the server became read-only.
    """
    record(scenario, pool, driver, result)
    report = result.describe()
    assert result.failed_before == [], report
    stored = pair.stored()
    assert stored == result.succeeded, (
        f"{len(result.succeeded - stored)} committed writes missing, "
        f"{len(stored - result.succeeded)} failed writes stored\n{report}"
    )
    if not recovers:
        return
    assert len(result.failed) <= min(result.in_flight, result.concurrency), report
    assert result.recovery is not None and result.recovery <= BOUND, report
    if notes:
        read_only = [w for w in result.failed if w.error and "read-only" in w.error]
        unexplained = [
            w.error
            for w in read_only
            if not any(n.startswith("poolwarden") and "read-only" in n for n in w.notes)
        ]
        assert unexplained == [], f"read-only errors without poolwarden's note\n{report}"
