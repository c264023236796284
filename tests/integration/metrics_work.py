"""The same known work on each of the four pool classes (one timeout included), for the
metrics tests to read back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import sqlalchemy
from sqlalchemy import text

import poolwarden
from poolwarden import PoolTimeout

T = TypeVar("T")

#: Checkouts each work function makes.
CHECKOUTS = 5


def sync_work(pool: poolwarden.Pool) -> None:
    for _ in range(4):
        with pool.connection() as conn:
            conn.cursor().execute("SELECT 1")
    held = pool.getconn()
    with pytest.raises(PoolTimeout):
        pool.getconn(timeout=0.05)
    pool.putconn(held)


def engine_work(engine: sqlalchemy.Engine) -> None:
    for _ in range(4):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    with engine.connect(), pytest.raises(sqlalchemy.exc.TimeoutError):
        engine.connect()


async def async_work(pool: poolwarden.AsyncPool) -> None:
    for _ in range(4):
        async with pool.connection() as conn:
            await (await conn.cursor()).execute("SELECT 1")
    held = await pool.getconn()
    with pytest.raises(PoolTimeout):
        await pool.getconn(timeout=0.05)
    await pool.putconn(held)


async def async_engine_work(engine: Any) -> None:
    for _ in range(4):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    async with engine.connect():
        with pytest.raises(sqlalchemy.exc.TimeoutError):
            await engine.connect()


def run_in_loop(work: Any, target: Any, read: Callable[[], T]) -> T:
    """Run ``work(target)`` in an event loop, then ``read()`` in a thread while the pool's
    loop still runs, as a live application's scrape or export would."""

    async def main() -> T:
        await work(target)
        return await asyncio.to_thread(read)

    return asyncio.run(main())
