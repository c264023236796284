# Generated from tests/faults/_async/workload.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""What the fault scenarios run through a pool: short requests, concurrent ones (tasks on
the asyncio side, threads on the sync side), counted errors, every wait bounded so that a
hang fails the test instead of stalling it."""

# mypy: disable-error-code="func-returns-value"
# (the sync copy passes a call's result to ``bounded``, which may be None)
from __future__ import annotations

import functools
import time
from typing import Any

from poolwarden import Pool

from ._compat import HANG, Configure, Started, bounded, concurrently, start

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


def request(pool: Pool, sql: str = "SELECT 1", timeout: float = 30.0) -> None:
    """One short request, as a web handler would make it."""
    with pool.connection(timeout=timeout) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
        conn.commit()


def run(
    pool: Pool, count: int, workers: int = 3, sql: str = "SELECT 1", limit: float = HANG
) -> list[BaseException]:
    """``count`` requests spread over ``workers`` concurrent workers; return the errors users
    saw. All of them together must end within ``limit`` seconds."""
    errors: list[BaseException] = []
    per_worker = [count // workers + (i < count % workers) for i in range(workers)]

    def worker(n: int) -> None:
        for _ in range(n):
            try:
                request(pool, sql)
            except Exception as exc:
                errors.append(exc)

    concurrently([functools.partial(worker, n) for n in per_worker], limit)
    return errors


def request_in_task(
    pool: Pool, sql: str = "SELECT 1", timeout: float = 30.0
) -> Started[float | Exception]:
    """Start one request of its own; its outcome (``outcome_of``) is the monotonic time it
    succeeded, or the exception it raised."""

    def work() -> float | Exception:
        try:
            request(pool, sql, timeout)
        except Exception as exc:
            return exc
        return time.monotonic()

    return start(work)


def failures(outcome: float | Exception) -> list[BaseException]:
    """The exception among a request's outcome, if any."""
    return [outcome] if isinstance(outcome, Exception) else []


def warm(pool: Pool, count: int) -> list[int]:
    """Open ``count`` connections (all checked out at once, then returned); return their
    server session ids."""
    held = [bounded(pool.getconn(), 30, "a checkout") for _ in range(count)]
    ids = [session_id(conn) for conn in held]
    for conn in held:
        conn.commit()
        conn.close()
    return ids


def session_id(conn: Any) -> int:
    mysql = type(conn.raw).__module__.split(".")[0] in MYSQL_MODULES
    with conn.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()" if mysql else "SELECT pg_backend_pid()")
        (value,) = cur.fetchone()
        cur.fetchall()
    return int(value)


def session_idle_timeout(kind: str, seconds: int) -> Configure:
    """A ``configure`` callback setting this session's idle timeout on the server."""
    sql = (
        f"SET SESSION wait_timeout = {seconds}"
        if kind == "mysql"
        else f"SET idle_session_timeout = '{seconds}s'"
    )

    def configure(raw: Any) -> None:
        cur = raw.cursor()
        cur.execute(sql)
        cur.close()
        raw.commit()

    return configure


def first_success_after(pool: Pool, start: float, sql: str = "SELECT 1") -> float:
    """Run one request; return seconds from ``start`` until it succeeded."""
    bounded(request(pool, sql))
    return time.monotonic() - start
