"""What the asyncio fault scenarios run through an AsyncPool: short requests in concurrent
tasks, counted errors, every wait bounded so that a hang fails the test instead of
stalling it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from poolwarden import AsyncPool
from tests.faults.workload import sleep_sql

__all__ = [
    "bounded",
    "first_success_after",
    "outcome_of",
    "request",
    "request_in_task",
    "run",
    "session_id",
    "session_idle_timeout",
    "sleep_sql",
    "until",
    "warm",
]

T = TypeVar("T")

#: Longest any helper waits for requests before declaring a hang (seconds).
HANG = 30.0


async def bounded(awaitable: Awaitable[T], limit: float = HANG, what: str = "a request") -> T:
    """``await awaitable``, failing the test if it takes longer than ``limit`` seconds (it
    is then cancelled). Its own exceptions, a ``TimeoutError`` included, propagate as
    they are."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=limit)
    except BaseException:
        task.cancel()
        raise
    if not done:
        task.cancel()
        raise AssertionError(f"{what} hung (still running after {limit:g} s)")
    return task.result()


async def request(pool: AsyncPool, sql: str = "SELECT 1", timeout: float = 30.0) -> None:
    """One short request, as a web handler would make it."""
    async with pool.connection(timeout=timeout) as conn:
        async with conn.cursor() as cur:
            await cur.execute(sql)
            await cur.fetchall()
        await conn.commit()


async def run(
    pool: AsyncPool, count: int, tasks: int = 3, sql: str = "SELECT 1", limit: float = HANG
) -> list[BaseException]:
    """``count`` requests spread over ``tasks`` concurrent tasks; return the errors users
    saw. All of them together must end within ``limit`` seconds."""
    errors: list[BaseException] = []
    per_task = [count // tasks + (i < count % tasks) for i in range(tasks)]

    async def worker(n: int) -> None:
        for _ in range(n):
            try:
                await request(pool, sql)
            except Exception as exc:
                errors.append(exc)

    await bounded(asyncio.gather(*(worker(n) for n in per_task)), limit, "a request")
    return errors


def request_in_task(
    pool: AsyncPool, sql: str = "SELECT 1", timeout: float = 30.0
) -> asyncio.Task[float | Exception]:
    """Start one request in a task; its result is the monotonic time it succeeded, or
    the exception it raised (a cancellation propagates)."""

    async def work() -> float | Exception:
        try:
            await request(pool, sql, timeout)
        except Exception as exc:
            return exc
        return time.monotonic()

    return asyncio.create_task(work())


async def outcome_of(
    task: asyncio.Task[float | Exception], limit: float = HANG
) -> float | Exception:
    """The outcome of a :func:`request_in_task` task, waited for at most ``limit`` s."""
    return await bounded(task, limit)


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
    mysql = type(conn.raw).__module__.split(".")[0] in ("asyncmy", "aiomysql")
    async with conn.cursor() as cur:
        await cur.execute("SELECT CONNECTION_ID()" if mysql else "SELECT pg_backend_pid()")
        (value,) = await cur.fetchone()
        await cur.fetchall()
    return int(value)


def session_idle_timeout(kind: str, seconds: int) -> Callable[[Any], Awaitable[None]]:
    """A coroutine ``configure`` setting this session's idle timeout on the server."""
    sql = (
        f"SET SESSION wait_timeout = {seconds}"
        if kind == "mysql"
        else f"SET idle_session_timeout = '{seconds}s'"
    )

    async def configure(raw: Any) -> None:
        cur = raw.cursor()
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


async def until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    """Poll ``check`` (the event loop running meanwhile) until true; return how long it
    took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - start
