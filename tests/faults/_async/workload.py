"""What the fault scenarios run through a pool: short requests, concurrent ones (tasks on
the asyncio side, threads on the sync side), counted errors, every wait bounded so that a
hang fails the test instead of stalling it."""

# mypy: disable-error-code="func-returns-value"
# (the sync copy passes a call's result to ``bounded``, which may be None)
from __future__ import annotations

import functools
import time
from typing import Any

from poolwarden import AsyncPool

from ._compat import ASYNC, HANG, Configure, Started, bounded, concurrently, start

__all__ = [
    "failures",
    "first_success_after",
    "request",
    "request_in_task",
    "run",
    "session_id",
    "session_idle_timeout",
    "warm",
]

#: The modules of the MySQL drivers' connections (the others are PostgreSQL's).
MYSQL_MODULES = ("asyncmy", "aiomysql", "pymysql", "MySQLdb", "mysql")


async def request(pool: AsyncPool, sql: str = "SELECT 1", timeout: float = 30.0) -> None:
    """One short request, as a web handler would make it."""
    async with pool.connection(timeout=timeout) as conn:
        async with conn.cursor() as cur:
            await cur.execute(sql)
            await cur.fetchall()
        await conn.commit()


async def run(
    pool: AsyncPool, count: int, workers: int = 3, sql: str = "SELECT 1", limit: float = HANG
) -> list[BaseException]:
    """``count`` requests spread over ``workers`` concurrent workers; return the errors users
    saw. All of them together must end within ``limit`` seconds."""
    errors: list[BaseException] = []
    per_worker = [count // workers + (i < count % workers) for i in range(workers)]

    async def worker(n: int) -> None:
        for _ in range(n):
            try:
                await request(pool, sql)
            except Exception as exc:
                errors.append(exc)

    await concurrently([functools.partial(worker, n) for n in per_worker], limit)
    return errors


def request_in_task(
    pool: AsyncPool, sql: str = "SELECT 1", timeout: float = 30.0
) -> Started[float | Exception]:
    """Start one request of its own; its outcome (``outcome_of``) is the monotonic time it
    succeeded, or the exception it raised."""

    async def work() -> float | Exception:
        try:
            await request(pool, sql, timeout)
        except Exception as exc:
            return exc
        return time.monotonic()

    return start(work)


def failures(outcome: float | Exception) -> list[BaseException]:
    """The exception among a request's outcome, if any."""
    return [outcome] if isinstance(outcome, Exception) else []


async def warm(pool: AsyncPool, count: int) -> list[int]:
    """Open ``count`` connections (all checked out at once, then returned); return their
    server session ids."""
    held = [await bounded(pool.getconn(), 30, "a checkout") for _ in range(count)]
    ids = [await session_id(conn) for conn in held]
    for conn in held:
        await conn.commit()
        await conn.close()
    return ids


async def session_id(conn: Any) -> int:
    mysql = type(conn.raw).__module__.split(".")[0] in MYSQL_MODULES
    async with conn.cursor() as cur:
        await cur.execute("SELECT CONNECTION_ID()" if mysql else "SELECT pg_backend_pid()")
        (value,) = await cur.fetchone()
        await cur.fetchall()
    return int(value)


def session_idle_timeout(kind: str, seconds: int) -> Configure:
    """A ``configure`` callback setting this session's idle timeout on the server."""
    sql = (
        f"SET SESSION wait_timeout = {seconds}"
        if kind == "mysql"
        else f"SET idle_session_timeout = '{seconds}s'"
    )

    async def configure(raw: Any) -> None:
        cur = raw.cursor()
        if ASYNC:
            if not hasattr(cur, "execute"):  # aiomysql: an awaitable giving the cursor
                cur = await cur
        await cur.execute(sql)
        await cur.close()
        await raw.commit()

    return configure


async def first_success_after(pool: AsyncPool, start: float, sql: str = "SELECT 1") -> float:
    """Run one request; return seconds from ``start`` until it succeeded."""
    await bounded(request(pool, sql))
    return time.monotonic() - start
