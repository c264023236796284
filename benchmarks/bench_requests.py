"""Short requests with liveness checks: poolwarden's default safety against SQLAlchemy's
QueuePool as users run it (default, and with ``pool_pre_ping=True``), in one process run.

    python benchmarks/bench_requests.py            # prints a markdown report (a few minutes)
    python benchmarks/bench_requests.py --write    # ... and records it in benchmarks/README.md
    python benchmarks/bench_requests.py --smoke    # a few iterations: checks the script runs

A request is what a web handler does: check out, ``SELECT 1``, fetch, give back. The
QueuePools are those of ``create_engine(url)`` and ``create_engine(url, pool_pre_ping=True)``
(so the pre-ping is the dialect's native ping), used directly, without the engine's own
overhead; the engine requests then go through whole engines.

Each sample runs requests for a fixed time: in one thread, and in 16 threads started
before the clock and released together, so thread start-up is not timed; requests that
end in a short warm-up at the start are not counted. Contenders take turns in many rounds,
the order rotating each round, and each ratio is the median of the per-round ratios: a
machine whose speed drifts from one second to the next slows the contenders of one round
alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pool import record_results

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


class Settings:
    """How long each sample runs and how many rounds there are."""

    def __init__(self, smoke: bool, rounds: int | None) -> None:
        self.rounds = rounds or (2 if smoke else 30)
        self.single_seconds = 0.02 if smoke else 0.25
        self.threaded_seconds = 0.02 if smoke else 0.5
        self.threads = 16
        #: Requests ending this early in a sample are not counted (caches, first waits).
        self.warmup = 0.005 if smoke else 0.05


def one_thread_us(request: Request, seconds: float, warmup: float) -> float:
    """Mean µs per request over ``seconds``, after ``warmup`` seconds not counted."""
    begin = time.perf_counter() + warmup
    while time.perf_counter() < begin:
        request()
    stop = begin + seconds
    count = 0
    now = begin
    while now < stop:
        request()
        count += 1
        now = time.perf_counter()
    return (now - begin) / count * 1e6


def threads_per_second(request: Request, threads: int, seconds: float, warmup: float) -> float:
    """Requests per second in ``threads`` threads over ``seconds``: the threads start
    first and are released together; requests ending before ``warmup`` seconds have passed,
    or after the window, are not counted."""
    counts = [0] * threads
    errors: list[BaseException] = []
    window: list[float] = []
    release = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        release.wait()
        begin, stop = window
        count = 0
        try:
            while True:
                request()
                now = time.perf_counter()
                if now >= stop:
                    break
                count += now >= begin
        except BaseException as exc:  # reported by the caller, not lost in the thread
            errors.append(exc)
        counts[index] = count

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    begin = time.perf_counter() + warmup
    window[:] = [begin, begin + seconds]
    release.wait()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return sum(counts) / seconds


Contenders = Callable[[str], tuple[dict[str, Request], Callable[[], None]]]


def measure(
    driver: str, settings: Settings, build: Contenders
) -> tuple[list[str], dict[str, float]]:
    """Rounds of fixed-time samples, the contenders' order rotating each round; medians
    over rounds, ratios as medians of the per-round ratios."""
    requests, close = build(driver)
    names = list(requests)
    single: dict[str, list[float]] = {name: [] for name in names}
    multi: dict[str, list[float]] = {name: [] for name in names}
    try:
        for name in names:  # warm every pool and code path before the first round
            one_thread_us(requests[name], settings.warmup, 0.0)
        for round_ in range(settings.rounds):
            turn = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in turn:
                single[name].append(
                    one_thread_us(requests[name], settings.single_seconds, settings.warmup)
                )
            for name in turn:
                multi[name].append(
                    threads_per_second(
                        requests[name],
                        settings.threads,
                        settings.threaded_seconds,
                        settings.warmup,
                    )
                )
    finally:
        close()

    def paired(samples: dict[str, list[float]], name: str, base: str) -> float:
        return statistics.median(a / b for a, b in zip(samples[name], samples[base], strict=True))

    rows = []
    figures: dict[str, float] = {}
    default, pinged = "QueuePool default", "QueuePool pre_ping"  # both sets name them so
    for name in names:
        us, rate = statistics.median(single[name]), statistics.median(multi[name])
        figures[f"{driver} {name} us"] = us
        figures[f"{driver} {name} rps16"] = rate
        rows.append(
            f"| {driver} | {name} | {us:.1f} | {paired(single, name, default):.3f}x "
            f"| {paired(single, pinged, name):.2f}x "
            f"| {rate:.0f} | {paired(multi, name, pinged):.2f}x |"
        )
    return rows, figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few iterations only")
    parser.add_argument("--write", action="store_true", help="record in benchmarks/README.md")
    parser.add_argument("--rounds", type=int, help="rounds per table (default 30)")
    args = parser.parse_args()
    settings = Settings(args.smoke, args.rounds)
    rows = [
        "| driver | pool | µs per request, 1 thread | vs QueuePool default "
        "| throughput vs pre_ping, 1 thread | requests/s, 16 threads "
        "| throughput vs pre_ping, 16 threads |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    engine_rows = list(rows)
    for driver in ("pymysql", "mysqldb"):
        rows += measure(driver, settings, contenders)[0]
        engine_rows += measure(driver, settings, engine_contenders)[0]
    packages = ", ".join(f"{n} {version(n)}" for n in ("SQLAlchemy", "PyMySQL", "mysqlclient"))
    text = "\n".join(
        [
            f"Run on {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, {packages}, MariaDB on loopback. "
            f"{settings.rounds} rounds of {settings.single_seconds:g} s in one thread and "
            f"{settings.threaded_seconds:g} s in {settings.threads} threads per contender; "
            "medians, ratios as medians of per-round ratios.",
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
