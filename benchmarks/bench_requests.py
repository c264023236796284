"""Short requests with liveness checks: poolwarden's default safety against SQLAlchemy's
QueuePool as users run it (default, and with ``pool_pre_ping=True``), in one process run.

    python benchmarks/bench_requests.py            # prints a markdown report
    python benchmarks/bench_requests.py --write    # ... and records it in benchmarks/README.md
    python benchmarks/bench_requests.py --smoke    # a few iterations: checks the script runs

A request is what a web handler does: check out, ``SELECT 1``, fetch, give back. The
QueuePools are those of ``create_engine(url)`` and ``create_engine(url, pool_pre_ping=True)``
(so the pre-ping is the dialect's native ping), used directly, without the engine's own
overhead. Contenders take turns within each repeat, so a noisy machine slows them alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pool import record_results, run_threads

import poolwarden

MYSQL = os.environ.get("POOLWARDEN_TEST_MYSQL", "root@127.0.0.1:3306/test")
SIZE = 16

Request = Callable[[], None]


def warden_request(pool: poolwarden.Pool) -> Request:
    def request() -> None:
        with pool.connection() as conn:
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()

    return request


def sqlalchemy_request(pool: Any) -> Request:
    def request() -> None:
        conn = pool.connect()
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()
        finally:
            conn.close()

    return request


def engine_request(engine: Any) -> Request:
    from sqlalchemy import text

    select = text("SELECT 1")

    def request() -> None:
        with engine.connect() as conn:
            conn.execute(select).scalar()

    return request


def engine_contenders(driver: str) -> tuple[dict[str, Request], Callable[[], None]]:
    """Engines, as applications use them: WardenPool against QueuePool, plain and pre_ping."""
    from sqlalchemy import create_engine

    from poolwarden.sqlalchemy import WardenPool

    url = f"mysql+{driver}://{MYSQL}"
    engines = {
        "WardenPool (default safety)": create_engine(
            url, poolclass=WardenPool, pool_size=SIZE, max_overflow=0
        ),
        "QueuePool default": create_engine(url, pool_size=SIZE, max_overflow=0),
        "QueuePool pre_ping": create_engine(
            url, pool_size=SIZE, max_overflow=0, pool_pre_ping=True
        ),
    }
    found = {name: engine_request(engine) for name, engine in engines.items()}
    for engine in engines.values():  # open every connection first: hold SIZE at once
        held = [engine.connect() for _ in range(SIZE)]
        for conn in held:
            conn.close()

    def close() -> None:
        for engine in engines.values():
            engine.dispose()

    return found, close


def contenders(driver: str) -> tuple[dict[str, Request], Callable[[], None]]:
    """Raw pools: poolwarden.Pool against the QueuePools of two engines, used directly."""
    from sqlalchemy import create_engine

    url = f"mysql+{driver}://{MYSQL}"
    warden = poolwarden.Pool(url, pool_size=SIZE, max_overflow=0)
    plain = create_engine(url, pool_size=SIZE, max_overflow=0)
    pinged = create_engine(url, pool_size=SIZE, max_overflow=0, pool_pre_ping=True)
    found = {
        "poolwarden (default safety)": warden_request(warden),
        "QueuePool default": sqlalchemy_request(plain.pool),
        "QueuePool pre_ping": sqlalchemy_request(pinged.pool),
    }
    # Open every connection first, holding SIZE at once (a returned connection may serve
    # a waiting thread, so SIZE requests in parallel need not open SIZE connections).
    for checkout in (warden.getconn, plain.pool.connect, pinged.pool.connect):
        held = [checkout() for _ in range(SIZE)]
        for conn in held:
            conn.close()

    def close() -> None:
        warden.close()
        plain.dispose()
        pinged.dispose()

    return found, close


def one_thread_us(request: Request, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        request()
    return (time.perf_counter() - start) / count * 1e6


def threads_per_second(request: Request, threads: int, count: int) -> float:
    def loop(_: int) -> None:
        for _ in range(count):
            request()

    return threads * count / run_threads(threads, loop)


Contenders = Callable[[str], tuple[dict[str, Request], Callable[[], None]]]


def measure(driver: str, smoke: bool, build: Contenders) -> tuple[list[str], dict[str, float]]:
    """Many short rounds, the contenders' order rotating each round, medians over rounds:
    a machine whose speed drifts by the second slows every contender alike."""
    requests, close = build(driver)
    names = list(requests)
    rounds = 4 if smoke else 60
    single: dict[str, list[float]] = {name: [] for name in names}
    multi: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        turn = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in turn:
            single[name].append(one_thread_us(requests[name], 10 if smoke else 60))
        for name in turn:
            multi[name].append(threads_per_second(requests[name], 16, 2 if smoke else 8))
    close()
    rows = []
    figures: dict[str, float] = {}
    base = statistics.median(single["QueuePool default"])  # both sets name it so
    pinged_rate = statistics.median(multi["QueuePool pre_ping"])
    pinged_single = statistics.median(single["QueuePool pre_ping"])
    for name in names:
        us, rate = statistics.median(single[name]), statistics.median(multi[name])
        figures[f"{driver} {name} us"] = us
        figures[f"{driver} {name} rps16"] = rate
        rows.append(
            f"| {driver} | {name} | {us:.1f} | {us / base:.3f}x | {pinged_single / us:.2f}x "
            f"| {rate:.0f} | {rate / pinged_rate:.2f}x |"
        )
    return rows, figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few iterations only")
    parser.add_argument("--write", action="store_true", help="record in benchmarks/README.md")
    args = parser.parse_args()
    rows = [
        "| driver | pool | µs per request, 1 thread | vs QueuePool default "
        "| throughput vs pre_ping, 1 thread | requests/s, 16 threads "
        "| throughput vs pre_ping, 16 threads |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    engine_rows = list(rows)
    for driver in ("pymysql", "mysqldb"):
        rows += measure(driver, args.smoke, contenders)[0]
        engine_rows += measure(driver, args.smoke, engine_contenders)[0]
    packages = ", ".join(f"{n} {version(n)}" for n in ("SQLAlchemy", "PyMySQL", "mysqlclient"))
    text = "\n".join(
        [
            f"Run on {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, {packages}, MariaDB on loopback.",
            "",
            "### Short requests (checkout, SELECT 1, fetch, return), pools of 16",
            *rows,
            "",
            "### Engine requests (engine.connect(), SELECT 1, close), pools of 16",
            *engine_rows,
        ]
    )
    print(text)
    if args.write:
        record_results("bench_requests", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
