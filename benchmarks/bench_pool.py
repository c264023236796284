"""Pool overhead: poolwarden against its anchors, measured in one process run.

    python benchmarks/bench_pool.py            # full run (about a minute), prints markdown
    python benchmarks/bench_pool.py --write    # ... and records it in benchmarks/README.md
    python benchmarks/bench_pool.py --smoke    # a few iterations: checks the script runs

What is timed is the pool alone: a checkout and a checkin of a connection the borrower does
not use, so no pool has anything to reset or check. The connections are real (MariaDB via
PyMySQL; PostgreSQL via psycopg for psycopg_pool) but never spoken to inside the timed loop.
The machine is shared and noisy: contenders take turns in many short rounds, so a machine
whose speed drifts slows them alike, and each figure is the median over the rounds.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import platform
import re
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import poolwarden

MYSQL = os.environ.get("POOLWARDEN_TEST_MYSQL", "root@127.0.0.1:3306/test")
POSTGRES = os.environ.get("POOLWARDEN_TEST_POSTGRES", "postgres@127.0.0.1:5432/test")
SIZE = 16  # connections in each pool: enough that no thread ever waits in part A
NO_CHECKS = "poolwarden (MariaDB, no liveness checks, reset=None)"
PROBE = "poolwarden (MariaDB, socket probe, reset=None)"
QUEUEPOOL = "SQLAlchemy QueuePool raw, reset none"

Op = Callable[[], None]


class Settings:
    def __init__(self, smoke: bool) -> None:
        self.ops = 1_000 if smoke else 5_000
        self.rounds = 3 if smoke else 15
        self.threaded_ops = 100 if smoke else 600
        self.waiting_threads = 50 if smoke else 1_000
        self.waiting_ops = 2 if smoke else 10
        self.fair_seconds = 0.2 if smoke else 2.0


# -- timing ------------------------------------------------------------------------------
def per_op_us(op: Op, ops: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean µs per call of ``op``, in one thread. The
    garbage collector is paused while timing: its passes over every object alive (here,
    over a thousand pooled connections) would land on whichever contender runs then."""
    op()
    samples = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(ops):
                op()
            samples.append((time.perf_counter() - start) / ops * 1e6)
    finally:
        gc.enable()
    return statistics.median(samples)


def threaded_per_op_us(op: Op, threads: int, ops: int, repeats: int) -> float:
    """Median wall-clock µs per call with ``threads`` threads calling ``op`` at once."""

    def loop(_: int) -> None:
        for _ in range(ops):
            op()

    walls = [run_threads(threads, loop) for _ in range(repeats)]
    return statistics.median(walls) / (threads * ops) * 1e6


def run_threads(count: int, body: Callable[[int], None]) -> float:
    """Run ``body(i)`` in ``count`` threads released together; return the wall time."""
    barrier = threading.Barrier(count + 1)

    def worker(index: int) -> None:
        barrier.wait()
        body(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start


# -- the contenders ----------------------------------------------------------------------
def mysql_kwargs() -> dict[str, Any]:
    user, _, rest = MYSQL.partition("@")
    host, _, rest = rest.partition(":")
    port, _, db = rest.partition("/")
    return {"host": host, "port": int(port), "user": user, "database": db}


def contenders() -> dict[str, tuple[Op, Op, Callable[[], None]]]:
    """name -> (checkout+checkin op, context-manager op or same, cleanup)."""
    import psycopg
    import psycopg_pool
    import pymysql
    from dbutils.pooled_db import PooledDB
    from sqlalchemy.pool import QueuePool

    def make_mysql() -> Any:
        return pymysql.connect(**mysql_kwargs())

    found: dict[str, tuple[Op, Op, Callable[[], None]]] = {}

    lock = threading.Lock()
    items: collections.deque[int] = collections.deque(range(SIZE))

    def floor() -> None:
        with lock:
            item = items.pop()
        with lock:
            items.append(item)

    found["floor: lock + deque pop/append"] = (floor, floor, lambda: None)

    def warden(pool: poolwarden.Pool) -> tuple[Op, Op, Callable[[], None]]:
        held = [pool.getconn() for _ in range(SIZE)]
        for conn in held:
            conn.close()

        def get_put() -> None:
            pool.putconn(pool.getconn())

        def with_block() -> None:
            with pool.connection():
                pass

        return get_put, with_block, pool.close

    found[NO_CHECKS] = warden(
        poolwarden.Pool(
            make_mysql,
            pool_size=SIZE,
            max_overflow=0,
            reset=None,
            probe=False,
            max_lifetime=None,
            ping_after_idle=None,
            keepalive=None,
        )
    )
    found[PROBE] = warden(poolwarden.Pool(make_mysql, pool_size=SIZE, max_overflow=0, reset=None))
    found["poolwarden (MariaDB, default settings)"] = warden(
        poolwarden.Pool(make_mysql, pool_size=SIZE, max_overflow=0)
    )

    def queuepool(reset: str | None) -> tuple[Op, Op, Callable[[], None]]:
        pool = QueuePool(make_mysql, pool_size=SIZE, max_overflow=0, reset_on_return=reset)
        held = [pool.connect() for _ in range(SIZE)]
        for conn in held:
            conn.close()

        def op() -> None:
            pool.connect().close()

        return op, op, pool.dispose

    found[QUEUEPOOL] = queuepool(None)
    found["SQLAlchemy QueuePool raw, reset rollback"] = queuepool("rollback")

    dbutils = PooledDB(
        creator=pymysql,
        mincached=SIZE,
        maxcached=SIZE,
        maxconnections=SIZE,
        blocking=True,
        ping=0,
        reset=False,
        **mysql_kwargs(),
    )

    def dbutils_op() -> None:
        dbutils.connection().close()

    found["DBUtils PooledDB (ping=0, reset=False)"] = (dbutils_op, dbutils_op, dbutils.close)

    user, _, rest = POSTGRES.partition("@")
    host, _, rest = rest.partition(":")
    port, _, db = rest.partition("/")
    conninfo = f"host={host} port={port} user={user} dbname={db}"
    ppool = psycopg_pool.ConnectionPool(conninfo, min_size=SIZE, max_size=SIZE, open=True)
    ppool.wait()

    def psycopg_get_put() -> None:
        ppool.putconn(ppool.getconn())

    def psycopg_with() -> None:
        with ppool.connection():
            pass

    found["psycopg_pool ConnectionPool (PostgreSQL)"] = (
        psycopg_get_put,
        psycopg_with,
        ppool.close,
    )
    found["poolwarden (PostgreSQL psycopg, default reset)"] = warden(
        poolwarden.Pool(lambda: psycopg.connect(conninfo), pool_size=SIZE, max_overflow=0)
    )
    return found


# -- parts -------------------------------------------------------------------------------
def interleaved(
    ops: dict[str, Op], measure: Callable[[Op], float], rounds: int
) -> dict[str, float]:
    """Median of ``measure(op)`` per contender over ``rounds`` rounds, the contenders' order
    rotating each round: a machine whose speed drifts slows every contender alike."""
    names = list(ops)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(measure(ops[name]))
    return {name: statistics.median(values) for name, values in samples.items()}


def part_overhead(s: Settings) -> tuple[list[str], dict[str, float]]:
    rows = [
        "| pool | getconn+putconn, 1 thread (µs) | `with` block, 1 thread (µs) "
        "| getconn+putconn, 16 threads (µs/op) |",
        "|---|---:|---:|---:|",
    ]
    found = contenders()
    get_put = {name: ops[0] for name, ops in found.items()}
    with_block = {name: ops[1] for name, ops in found.items()}
    one = interleaved(get_put, lambda op: per_op_us(op, s.ops, 1), s.rounds)
    block = interleaved(with_block, lambda op: per_op_us(op, s.ops, 1), s.rounds)
    sixteen = interleaved(
        get_put, lambda op: threaded_per_op_us(op, 16, s.threaded_ops, 1), s.rounds
    )
    for name, (_, _, cleanup) in found.items():
        rows.append(f"| {name} | {one[name]:.2f} | {block[name]:.2f} | {sixteen[name]:.2f} |")
        cleanup()
    return rows, one


def sqlite_factory() -> Any:
    return sqlite3.connect(":memory:", check_same_thread=False)


def part_sizes(s: Settings) -> tuple[list[str], dict[int, float]]:
    rows = ["| idle connections in the pool | getconn+putconn (µs) |", "|---:|---:|"]
    pools: dict[str, poolwarden.Pool] = {}
    for size in (1, 10, 100, 1000):
        pool = poolwarden.Pool(
            sqlite_factory, pool_size=size, max_overflow=0, reset=None, max_connecting=8
        )
        held = [pool.getconn() for _ in range(size)]
        for conn in held:
            conn.close()
        assert pool.stats().idle == size
        pools[str(size)] = pool
    ops = {size: get_put_op(pool) for size, pool in pools.items()}
    medians = interleaved(ops, lambda op: per_op_us(op, s.ops, 1), s.rounds)
    costs = {int(size): cost for size, cost in medians.items()}
    for size, cost in costs.items():
        rows.append(f"| {size} | {cost:.2f} |")
    for pool in pools.values():
        pool.close()
    return rows, costs


def get_put_op(pool: poolwarden.Pool) -> Op:
    """One checkout and checkin of ``pool``."""

    def op() -> None:
        pool.putconn(pool.getconn())

    return op


HOLD = 0.0002  # seconds each checkout keeps its connection in part_waiting (GIL released)


Checkout = Callable[[], Callable[[], None]]  # check out; returns the give-back callable


def sqlite_pools(size: int) -> tuple[poolwarden.Pool, dict[str, Checkout], Callable[[], None]]:
    """poolwarden and QueuePool with ``size`` sqlite3 connections, no overflow, no reset."""
    from sqlalchemy.pool import QueuePool

    warden = poolwarden.Pool(
        sqlite_factory, pool_size=size, max_overflow=0, reset=None, timeout=300
    )
    queue = QueuePool(
        sqlite_factory, pool_size=size, max_overflow=0, reset_on_return=None, timeout=300
    )
    contenders: dict[str, Checkout] = {
        "poolwarden": lambda: warden.getconn().close,
        "SQLAlchemy QueuePool": lambda: queue.connect().close,
    }

    def close() -> None:
        warden.close()
        queue.dispose()

    return warden, contenders, close


def waiting_run(checkout: Checkout, threads: int, ops: int) -> tuple[float, list[float]]:
    """Each thread checks out ``ops`` times, holding HOLD seconds; return (wall, waits)."""
    waits: list[float] = []

    def body(_: int) -> None:
        for _ in range(ops):
            start = time.perf_counter()
            give_back = checkout()
            waits.append(time.perf_counter() - start)
            time.sleep(HOLD)
            give_back()

    return run_threads(threads, body), sorted(waits)


def part_waiting(s: Settings) -> list[str]:
    """Far more threads than connections, each holding its connection briefly (in a sleep,
    so the others run and queue): almost every checkout waits. The overhead is the wall
    time beyond the ideal of (checkouts x hold / connections), per checkout and slot."""
    total = s.waiting_threads * s.waiting_ops
    ideal = total * HOLD / 10
    rows = [
        f"| pool (10 connections, {s.waiting_threads} threads x {s.waiting_ops} checkouts, "
        f"{HOLD * 1e3:g} ms hold; ideal {ideal:.2f} s) | wall (s) | µs per checkout beyond "
        "ideal | max wait (ms) | p99 wait (ms) | waiting at peak |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    warden, contenders, close = sqlite_pools(10)
    for name, checkout in contenders.items():
        wall, waits = waiting_run(checkout, s.waiting_threads, s.waiting_ops)
        p99 = waits[int(len(waits) * 0.99) - 1]
        beyond = (wall - ideal) / total * 10 * 1e6
        peak = warden.stats().peak_waiting if name == "poolwarden" else "n/a"
        rows.append(
            f"| {name} | {wall:.2f} | {beyond:.1f} | {waits[-1] * 1e3:.0f} "
            f"| {p99 * 1e3:.0f} | {peak} |"
        )
    close()
    return rows


def fairness_run(checkout: Checkout, threads: int, seconds: float) -> tuple[list[int], float]:
    """Threads loop for ``seconds``, each holding ~1 ms; return (per-thread counts, max wait)."""
    done = [0] * threads
    worst = [0.0] * threads
    stop_at = time.perf_counter() + seconds + 0.05

    def body(index: int) -> None:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            give_back = checkout()
            worst[index] = max(worst[index], time.perf_counter() - start)
            end = time.perf_counter() + 0.001
            while time.perf_counter() < end:
                pass  # hold it ~1 ms, keeping the GIL as real work would
            give_back()
            done[index] += 1

    run_threads(threads, body)
    return done, max(worst)


def part_fairness(s: Settings) -> list[str]:
    """64 threads share 4 connections, holding each ~1 ms (DESIGN.md's contention case)."""
    rows = [
        f"| pool (4 connections, 64 threads, ~1 ms hold, {s.fair_seconds:g} s) | checkouts | "
        "max wait (ms) | per-thread checkouts min-max |",
        "|---|---:|---:|---:|",
    ]
    _, contenders, close = sqlite_pools(4)
    for name, checkout in contenders.items():
        done, worst = fairness_run(checkout, 64, s.fair_seconds)
        rows.append(f"| {name} | {sum(done)} | {worst * 1e3:.0f} | {min(done)}-{max(done)} |")
    close()
    return rows


def record_results(name: str, text: str) -> None:
    """Put ``text`` between ``<!-- name:start -->`` and ``<!-- name:end -->`` in
    benchmarks/README.md (appended the first time)."""
    readme = Path(__file__).with_name("README.md")
    current = readme.read_text()
    block = f"<!-- {name}:start -->\n{text}\n<!-- {name}:end -->"
    pattern = re.compile(rf"<!-- {name}:start -->.*<!-- {name}:end -->", re.S)
    if pattern.search(current):
        current = pattern.sub(lambda _: block, current)
    else:
        current += "\n" + block + "\n"
    readme.write_text(current)


def machine() -> list[str]:
    import pymysql

    conn = pymysql.connect(**mysql_kwargs())
    cur = conn.cursor()
    cur.execute("SELECT VERSION()")
    server = cur.fetchone()[0]
    conn.close()
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("SQLAlchemy", "PyMySQL", "psycopg", "psycopg-pool", "DBUtils")
    )
    return [
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        f"poolwarden {poolwarden.__version__}",
        f"- {packages}; MariaDB {server}, loopback",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few iterations only")
    parser.add_argument(
        "--write", action="store_true", help="record results in benchmarks/README.md"
    )
    args = parser.parse_args()
    s = Settings(args.smoke)

    overhead, figures = part_overhead(s)
    sizes, costs = part_sizes(s)
    ratio = figures[NO_CHECKS] / figures[QUEUEPOOL]
    probe_ratio = figures[PROBE] / figures[QUEUEPOOL]
    spread = max(costs.values()) / min(costs.values()) - 1
    out = [
        f"Run on {time.strftime('%Y-%m-%d')}:",
        *machine(),
        "",
        "### Checkout + checkin, nothing to reset (median µs per operation)",
        *overhead,
        "",
        f"poolwarden getconn+putconn / QueuePool raw checkout+checkin (both reset none): "
        f"**{ratio:.2f}x** without liveness checks (goal <= 0.5x), **{probe_ratio:.2f}x** with "
        "the socket probe (goal <= 0.6x)",
        "",
        "### poolwarden checkout cost against pool size (sqlite3 connections)",
        *sizes,
        "",
        f"Largest / smallest: **{spread * 100:+.0f}%** (goal within ±20%)",
        "",
        "### Many waiting threads",
        *part_waiting(s),
        "",
        "### Fairness under contention",
        *part_fairness(s),
    ]
    text = "\n".join(out)
    print(text)
    if args.write:
        record_results("bench_pool", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
