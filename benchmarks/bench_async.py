"""The asyncio pools against their anchors, in one process run.

    python benchmarks/bench_async.py            # prints a markdown report (a few minutes)
    python benchmarks/bench_async.py --write    # ... and records it in benchmarks/README.md
    python benchmarks/bench_async.py --smoke    # a few iterations: checks the script runs

Part A times the pool alone: ``getconn`` + ``putconn`` (and the ``async with`` form) of a
connection nobody uses, for poolwarden's AsyncPool and psycopg_pool's AsyncConnectionPool
on PostgreSQL, and AsyncPool on MariaDB with asyncmy.

Part B times what an async web handler does through SQLAlchemy: ``async with
engine.connect()``, ``SELECT 1``, close, on engines that differ only in their pool:
AsyncWardenPool, AsyncAdaptedQueuePool as ``create_async_engine(url)`` gives it, and the same
with ``pool_pre_ping=True``; asyncmy and aiomysql; 1 task and 64 concurrent tasks over 16
connections. Contenders take turns within each round (the order rotating), each sample
runs for a fixed time, and the figures are medians over rounds: a machine whose speed
drifts slows every contender alike.

Part C runs 64 tasks on 16 connections for a few seconds and shows the slowest request and
the spread of requests per task: whether some tasks starve while others barge ahead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pool import record_results

import poolwarden

MYSQL = os.environ.get("POOLWARDEN_TEST_MYSQL", "root@127.0.0.1:3306/test")
POSTGRES = os.environ.get("POOLWARDEN_TEST_POSTGRES", "postgres@127.0.0.1:5432/test")
SIZE = 16
TASKS = 64

Op = Callable[[], Awaitable[None]]


class Settings:
    def __init__(self, smoke: bool) -> None:
        self.rounds = 2 if smoke else 15
        self.sample = 0.02 if smoke else 0.4  # seconds per contender per round


async def per_op_us(op: Op, seconds: float) -> float:
    """Mean µs per ``op`` over a sample of about ``seconds``, in batches of 50."""
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(50):
            await op()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return (now - started) / count * 1e6


async def per_second(op: Op, tasks: int, seconds: float) -> float:
    """Operations per second with ``tasks`` tasks running ``op`` for about ``seconds``."""
    done = [0] * tasks
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        while time.perf_counter() < deadline:  # checked at every request: no long tail
            await op()
            done[index] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(tasks)))
    return sum(done) / (time.perf_counter() - started)


async def interleaved(
    contenders: dict[str, Op], s: Settings, measure: Callable[[Op], Awaitable[float]]
) -> dict[str, float]:
    """Median of ``measure`` for each contender, taking turns in a rotating order."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(s.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(await measure(contenders[name]))
    return {name: statistics.median(values) for name, values in samples.items()}


# -- part A: the pool alone --------------------------------------------------------------
WARDEN_PG = "poolwarden AsyncPool (PostgreSQL psycopg, default settings)"
PSYCOPG_POOL = "psycopg_pool AsyncConnectionPool (PostgreSQL)"


async def part_pool(s: Settings) -> tuple[list[str], dict[str, float]]:
    from psycopg_pool import AsyncConnectionPool

    user, _, rest = POSTGRES.partition("@")
    hostport, _, db = rest.partition("/")
    host, _, port = hostport.partition(":")
    conninfo = f"host={host} port={port or 5432} user={user} dbname={db}"
    psycopg_pool = AsyncConnectionPool(conninfo, min_size=4, max_size=4, open=False)
    await psycopg_pool.open(wait=True)
    pools = {
        WARDEN_PG: poolwarden.AsyncPool(f"postgresql+psycopg://{POSTGRES}", pool_size=4),
        "poolwarden AsyncPool (MariaDB asyncmy, default settings)": poolwarden.AsyncPool(
            f"mysql+asyncmy://{MYSQL}", pool_size=4
        ),
    }
    for pool in pools.values():
        await (await pool.getconn()).close()

    def get_put(pool: Any) -> Op:
        async def op() -> None:
            await pool.putconn(await pool.getconn())

        return op

    def with_block(pool: Any) -> Op:
        async def op() -> None:
            async with pool.connection():
                pass

        return op

    contenders: dict[str, tuple[Op, Op]] = {
        name: (get_put(pool), with_block(pool)) for name, pool in pools.items()
    }
    contenders[PSYCOPG_POOL] = (get_put(psycopg_pool), with_block(psycopg_pool))
    get_put_us = await interleaved(
        {n: ops[0] for n, ops in contenders.items()}, s, lambda op: per_op_us(op, s.sample)
    )
    with_us = await interleaved(
        {n: ops[1] for n, ops in contenders.items()}, s, lambda op: per_op_us(op, s.sample)
    )
    for pool in pools.values():
        await pool.close()
    await psycopg_pool.close()
    rows = [
        "| pool | getconn+putconn (µs) | `async with` (µs) |",
        "|---|---:|---:|",
        *(f"| {n} | {get_put_us[n]:.2f} | {with_us[n]:.2f} |" for n in contenders),
        "",
        f"AsyncPool getconn+putconn / psycopg_pool's (both PostgreSQL): "
        f"**{get_put_us[WARDEN_PG] / get_put_us[PSYCOPG_POOL]:.2f}x** (goal <= 1.0x)",
    ]
    return rows, {"pool ratio": get_put_us[WARDEN_PG] / get_put_us[PSYCOPG_POOL]}


# -- part B: engine requests -------------------------------------------------------------
WARDEN = "AsyncWardenPool (default safety)"
DEFAULT = "AsyncAdaptedQueuePool default"
PRE_PING = "AsyncAdaptedQueuePool pre_ping"


async def part_engines(s: Settings, driver: str) -> tuple[list[str], dict[str, float]]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from poolwarden.sqlalchemy import AsyncWardenPool

    url = f"mysql+{driver}://{MYSQL}"
    engines = {
        WARDEN: create_async_engine(
            url, poolclass=AsyncWardenPool, pool_size=SIZE, max_overflow=0
        ),
        DEFAULT: create_async_engine(url, pool_size=SIZE, max_overflow=0),
        PRE_PING: create_async_engine(url, pool_size=SIZE, max_overflow=0, pool_pre_ping=True),
    }
    select = text("SELECT 1")
    for engine in engines.values():  # open every connection first: hold SIZE at once
        held = [await engine.connect() for _ in range(SIZE)]
        for conn in held:
            await conn.close()

    def request(engine: Any) -> Op:
        async def op() -> None:
            async with engine.connect() as conn:
                await conn.execute(select)

        return op

    ops = {name: request(engine) for name, engine in engines.items()}
    single = await interleaved(ops, s, lambda op: per_op_us(op, s.sample))
    multi = await interleaved(ops, s, lambda op: per_second(op, TASKS, s.sample))
    for engine in engines.values():
        await engine.dispose()
    rows = []
    figures: dict[str, float] = {}
    for name in engines:
        us, rate = single[name], multi[name]
        figures[f"{driver} {name} us"] = us
        figures[f"{driver} {name} rps"] = rate
        rows.append(
            f"| {driver} | {name} | {us:.1f} | {us / single[DEFAULT]:.3f}x "
            f"| {single[PRE_PING] / us:.2f}x | {rate:.0f} | {rate / multi[PRE_PING]:.2f}x |"
        )
    return rows, figures


# -- part C: fairness under contention --------------------------------------------------
async def contend(engine: Any, select: Any, seconds: float) -> tuple[list[int], float]:
    """Requests each of ``TASKS`` tasks completed in ``seconds``, and the slowest one."""
    done = [0] * TASKS
    slowest = 0.0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal slowest
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with engine.connect() as conn:
                await conn.execute(select)
            slowest = max(slowest, time.perf_counter() - started)
            done[index] += 1

    await asyncio.gather(*(worker(i) for i in range(TASKS)))
    return done, slowest


async def part_fairness(s: Settings) -> list[str]:
    """64 tasks on 16 connections for a while: the slowest request and the spread of
    completed requests per task, which show whether some tasks starve."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from poolwarden.sqlalchemy import AsyncWardenPool

    url = f"mysql+asyncmy://{MYSQL}"
    engines = {
        WARDEN: create_async_engine(
            url, poolclass=AsyncWardenPool, pool_size=SIZE, max_overflow=0
        ),
        DEFAULT: create_async_engine(url, pool_size=SIZE, max_overflow=0),
    }
    select = text("SELECT 1")
    seconds = 0.2 if s.rounds < 5 else 3.0
    rows = [
        f"| pool ({SIZE} connections, {TASKS} tasks, {seconds:g} s) | requests "
        "| slowest request (ms) | requests per task, min-max |",
        "|---|---:|---:|---:|",
    ]
    for name, engine in engines.items():
        held = [await engine.connect() for _ in range(SIZE)]  # all open before the clock
        for conn in held:
            await conn.close()
        done, slowest = await contend(engine, select, seconds)
        rows.append(f"| {name} | {sum(done)} | {slowest * 1000:.0f} | {min(done)}-{max(done)} |")
        await engine.dispose()
    return rows


def header() -> str:
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("SQLAlchemy", "asyncmy", "aiomysql", "psycopg", "psycopg-pool", "greenlet")
    )
    return (
        f"Run on {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {packages}; MariaDB and PostgreSQL on loopback."
    )


async def run(s: Settings) -> str:
    pool_rows, _ = await part_pool(s)
    engine_rows = [
        "| driver | pool | µs per request, 1 task | vs default | throughput vs pre_ping, "
        f"1 task | requests/s, {TASKS} tasks | throughput vs pre_ping, {TASKS} tasks |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for driver in ("asyncmy", "aiomysql"):
        engine_rows += (await part_engines(s, driver))[0]
    return "\n".join(
        [
            header(),
            "",
            "### AsyncPool alone: checkout + checkin, nothing to reset (median µs)",
            *pool_rows,
            "",
            f"### Async engine requests (connect, SELECT 1, close), pools of {SIZE}",
            *engine_rows,
            "",
            "### Fairness under contention (asyncmy)",
            *await part_fairness(s),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few iterations only")
    parser.add_argument("--write", action="store_true", help="record in benchmarks/README.md")
    args = parser.parse_args()
    text = asyncio.run(run(Settings(args.smoke)))
    print(text)
    if args.write:
        record_results("bench_async", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
