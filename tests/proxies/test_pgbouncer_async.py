"""The PgBouncer scenarios for :class:`poolwarden.AsyncPool` with psycopg's
``AsyncConnection``, in transaction and session mode. PgBouncer and the server are
restarted in a thread, so the event loop keeps running through each fault, as in a
service."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

from poolwarden import AsyncPool
from poolwarden.adapters._proxies import (
    PGBOUNCER_DETECTION_SQL,
    is_pgbouncer,
    is_prepared_statement_mismatch,
)
from tests.faults._async._compat import bounded, outcome_of
from tests.faults._async.workload import first_success_after, request_in_task, run, warm
from tests.faults.sessions import sleep_sql
from tests.proxies.conftest import BouncerFactory, record, rules
from tests.proxies.pgbouncer import DisposablePgBouncer
from tests.servers import DisposablePostgres

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

REQUESTS = 9


def _pool(bouncer: DisposablePgBouncer, mode: str, **kwargs: Any) -> AsyncPool:
    kwargs.setdefault("pool_size", 3)
    return AsyncPool(bouncer.url("psycopg"), **rules(mode), **kwargs)


async def test_detection_async(bouncer: DisposablePgBouncer) -> None:
    conn = await psycopg.AsyncConnection.connect(
        host="127.0.0.1", port=bouncer.port, user="postgres", dbname="test"
    )
    try:
        cursor = await conn.execute(PGBOUNCER_DETECTION_SQL)
        row = await cursor.fetchone()
        detected = is_pgbouncer(conn.info.backend_pid, row)
    finally:
        await conn.close()
    assert detected


async def test_pgbouncer_restart_while_idle(bouncer: DisposablePgBouncer, mode: str) -> None:
    async with _pool(bouncer, mode) as pool:
        await warm(pool, 3)
        await asyncio.to_thread(bouncer.restart)
        recovery = await first_success_after(pool, time.monotonic())
        errors = await run(pool, REQUESTS)
        stats = pool.stats()
    record("PgBouncer restart while idle (async)", mode, len(errors), "0", recovery)
    assert errors == [] and stats.found_dead == 3, stats


async def test_admin_kill_while_idle(bouncer: DisposablePgBouncer, mode: str) -> None:
    async with _pool(bouncer, mode) as pool:
        await warm(pool, 3)
        await asyncio.to_thread(bouncer.admin, "KILL test")

        async def resume() -> None:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(bouncer.admin, "RESUME test")

        resumer = asyncio.create_task(resume())
        started = time.monotonic()
        errors = await run(pool, REQUESTS)
        recovery = time.monotonic() - started
        await bounded(resumer)
        stats = pool.stats()
    record("admin KILL + RESUME while idle (async)", mode, len(errors), "0", recovery)
    assert errors == [] and stats.found_dead == 3, stats


async def test_server_restart_mid_query(
    bouncer: DisposablePgBouncer, mode: str, running_postgres: DisposablePostgres
) -> None:
    async with _pool(bouncer, mode) as pool:
        await warm(pool, 3)
        task = request_in_task(pool, sleep_sql("postgresql", 10))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(running_postgres.restart)
        back = time.monotonic()
        inflight = await outcome_of(task)
        errors = await run(pool, REQUESTS)
        recovery = time.monotonic() - back
        adapter = pool.engine.adapter
    record("server restart mid-query (async)", mode, int(isinstance(inflight, Exception)) +
           len(errors), "1", recovery)  # fmt: skip
    assert isinstance(inflight, Exception) and errors == []
    assert adapter.is_disconnect(inflight), repr(inflight)


async def test_pgbouncer_restart_mid_query(bouncer: DisposablePgBouncer, mode: str) -> None:
    async with _pool(bouncer, mode) as pool:
        await warm(pool, 3)
        task = request_in_task(pool, sleep_sql("postgresql", 10))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(bouncer.restart)
        back = time.monotonic()
        inflight = await outcome_of(task)
        errors = await run(pool, REQUESTS)
        recovery = time.monotonic() - back
        adapter = pool.engine.adapter
    record("PgBouncer restart mid-query (async)", mode, int(isinstance(inflight, Exception)) +
           len(errors), "1", recovery)  # fmt: skip
    assert isinstance(inflight, Exception) and errors == []
    assert adapter.is_disconnect(inflight), repr(inflight)


async def _parameterised_load(pool: AsyncPool, tasks: int = 4, each: int = 40) -> list[Exception]:
    errors: list[Exception] = []

    async def work() -> None:
        for i in range(each):
            try:
                async with pool.connection() as conn, conn.cursor() as cur:
                    await cur.execute("SELECT %s::int, pg_sleep(0.001)", (i,))
                    await cur.fetchall()
                    await conn.commit()
            except Exception as exc:
                errors.append(exc)

    await bounded(asyncio.gather(*(work() for _ in range(tasks))), 60, "the requests")
    return errors


async def test_prepared_statements_in_transaction_mode(make_bouncer: BouncerFactory) -> None:
    bouncer = make_bouncer("transaction", default_pool_size=2)
    async with AsyncPool(bouncer.url("psycopg"), pool_size=4, proxy=None) as pool:  # rules off
        broken = await _parameterised_load(pool)
    async with AsyncPool(bouncer.url("psycopg"), pool_size=4, **rules("transaction")) as pool:
        fixed = await _parameterised_load(pool)
    record("prepared statements (async), threshold 5 / None", "transaction",
           len(broken) + len(fixed), ">0 / 0", None, f"{len(broken)} / {len(fixed)}")  # fmt: skip
    assert broken and all(is_prepared_statement_mismatch(exc) for exc in broken), broken[:3]
    assert fixed == []
