"""What the fault scenarios run through a pool: short requests, counted errors."""

from __future__ import annotations

import threading
import time
from typing import Any

from poolwarden import Pool


def request(pool: Pool, sql: str = "SELECT 1", timeout: float = 30.0) -> None:
    """One short request, as a web handler would make it."""
    with pool.connection(timeout=timeout) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        cursor.fetchall()
        cursor.close()
        conn.commit()


def run(pool: Pool, count: int, threads: int = 3, sql: str = "SELECT 1") -> list[BaseException]:
    """``count`` requests spread over ``threads`` threads; return the errors users saw."""
    errors: list[BaseException] = []
    per_thread = [count // threads + (i < count % threads) for i in range(threads)]

    def worker(n: int) -> None:
        for _ in range(n):
            try:
                request(pool, sql)
            except Exception as exc:
                errors.append(exc)

    workers = [threading.Thread(target=worker, args=(n,)) for n in per_thread]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not any(w.is_alive() for w in workers), "a request hung"
    return errors


def request_in_thread(
    pool: Pool, sql: str = "SELECT 1", timeout: float = 30.0
) -> tuple[threading.Thread, list[Any]]:
    """Start one request in a thread; its outcome lands in the list: the monotonic time it
    succeeded, or the exception it raised."""
    outcome: list[Any] = []

    def work() -> None:
        try:
            request(pool, sql, timeout)
            outcome.append(time.monotonic())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    return thread, outcome


def warm(pool: Pool, count: int) -> list[int]:
    """Open ``count`` connections (all checked out at once, then returned); return their
    server session ids."""
    held = [pool.getconn() for _ in range(count)]
    ids = [session_id(conn) for conn in held]
    for conn in held:
        conn.commit()
        conn.close()
    return ids


def session_id(conn: Any) -> int:
    cursor = conn.cursor()
    mysql = type(conn.raw).__module__.split(".")[0] in ("pymysql", "MySQLdb", "mysql")
    cursor.execute("SELECT CONNECTION_ID()" if mysql else "SELECT pg_backend_pid()")
    (value,) = cursor.fetchone()
    cursor.fetchall()
    return int(value)


def sleep_sql(kind: str, seconds: float) -> str:
    return f"SELECT SLEEP({seconds})" if kind == "mysql" else f"SELECT pg_sleep({seconds})"


def session_idle_timeout(kind: str, seconds: int) -> Any:
    """A ``configure`` callback setting this session's idle timeout on the server."""
    sql = (
        f"SET SESSION wait_timeout = {seconds}"
        if kind == "mysql"
        else f"SET idle_session_timeout = '{seconds}s'"
    )

    def configure(raw: Any) -> None:
        cursor = raw.cursor()
        cursor.execute(sql)
        cursor.close()
        raw.commit()

    return configure


def first_success_after(pool: Pool, start: float, sql: str = "SELECT 1") -> float:
    """Run one request; return seconds from ``start`` until it succeeded."""
    request(pool, sql)
    return time.monotonic() - start
