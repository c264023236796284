"""What a pool adds to an engine request, in client instructions counted by callgrind.

    python benchmarks/bench_instructions.py            # prints a markdown report (~2 minutes)
    python benchmarks/bench_instructions.py --write    # ... and records it in benchmarks/README.md
    python benchmarks/bench_instructions.py --smoke    # a few requests, no valgrind

Time on this machine drifts by 2x within minutes; instructions do not. Each contender runs
engine requests (``engine.connect()``, ``SELECT 1``, close) against MariaDB in a process of
its own under ``valgrind --tool=callgrind``, twice — a short run and a long one — and the
difference between the two totals, divided by the difference in requests, is what one
request costs the client (start-up, imports and connecting cancel out; the cyclic garbage
collector is off while requests are counted). The server is
another process: its work is not counted, and neither is the kernel's. The same requests
are then timed without valgrind in CPU seconds of the client process (``process_time``),
alternating contenders, to turn instructions into microseconds on this machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pool import record_results

MYSQL = os.environ.get("POOLWARDEN_TEST_MYSQL", "root@127.0.0.1:3306/test")

#: name -> create_engine keyword arguments (``poolclass`` named, so a child can build it).
CONTENDERS: dict[str, dict[str, Any]] = {
    "QueuePool default": {},
    "QueuePool pre_ping": {"pool_pre_ping": True},
    "WardenPool (default safety)": {"poolclass": "WardenPool"},
    "WardenPool, no socket probe": {"poolclass": "WardenPool", "probe": False},
    "WardenPool, no held-connection check": {
        "poolclass": "WardenPool",
        "held_check_after": None,
    },
}
BASELINE = "QueuePool default"
SHORT, LONG = 300, 1800


def make_engine(driver: str, name: str) -> Any:
    from sqlalchemy import create_engine

    from poolwarden.sqlalchemy import WardenPool

    kwargs = dict(CONTENDERS[name])
    if kwargs.get("poolclass") == "WardenPool":
        kwargs["poolclass"] = WardenPool
    engine = create_engine(f"mysql+{driver}://{MYSQL}", pool_size=4, max_overflow=0, **kwargs)
    with engine.connect() as conn:  # connected, dialect initialised, before counting
        conn.exec_driver_sql("SELECT 1")
    return engine


def requests(engine: Any) -> Callable[[int], None]:
    from sqlalchemy import text

    select = text("SELECT 1")

    def run(count: int) -> None:
        for _ in range(count):
            with engine.connect() as conn:
                conn.execute(select).scalar()

    return run


def child(driver: str, name: str, count: int) -> None:
    """Run in the process valgrind counts: ``count`` requests after a warm-up. The cyclic
    garbage collector is off meanwhile: when its passes over every object come depends
    on how many objects all the code before made, which would add noise of thousands of
    instructions per request between contenders."""
    run = requests(make_engine(driver, name))
    run(50)
    gc.collect()
    gc.disable()
    run(count)


def instructions(driver: str, name: str, count: int) -> int:
    """Client instructions of a whole child process doing ``count`` requests."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                *(sys.executable, __file__, "--child", driver, name, str(count)),
            ],
            check=True,
            # The same hash seed for every run: the counts then repeat to the instruction.
            env={**os.environ, "PYTHONHASHSEED": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
        assert totals is not None, "no totals in callgrind's output"
        return int(totals.group(1))


def per_request_instructions(driver: str, name: str) -> float:
    return (instructions(driver, name, LONG) - instructions(driver, name, SHORT)) / (LONG - SHORT)


def cpu_times(driver: str, rounds: int, count: int) -> dict[str, float]:
    """Median client CPU µs per request, contenders alternating round by round."""
    runs = {name: requests(make_engine(driver, name)) for name in CONTENDERS}
    for run in runs.values():
        run(200)
    samples: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    names = list(CONTENDERS)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.process_time()
            runs[name](count)
            samples[name].append((time.process_time() - started) / count * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(drivers: list[str], rounds: int, count: int) -> str:
    lines = [
        f"Run on {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, SQLAlchemy {version('SQLAlchemy')}, "
        f"PyMySQL {version('PyMySQL')}, mysqlclient {version('mysqlclient')}, MariaDB on "
        f"loopback; valgrind {LONG - SHORT} requests per contender; CPU time: median of "
        f"{rounds} rounds of {count} requests.",
        "",
        "### Client cost of one engine request (engine.connect(), SELECT 1, close)",
        "| driver | pool | instructions | vs QueuePool default | client CPU µs | added µs |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for driver in drivers:
        counted = {name: per_request_instructions(driver, name) for name in CONTENDERS}
        cpu = cpu_times(driver, rounds, count)
        base_count, base_cpu = counted[BASELINE], cpu[BASELINE]
        for name in CONTENDERS:
            lines.append(
                f"| {driver} | {name} | {counted[name]:,.0f} | "
                f"{counted[name] - base_count:+,.0f} | {cpu[name]:.1f} | "
                f"{cpu[name] - base_cpu:+.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="record in benchmarks/README.md")
    parser.add_argument("--smoke", action="store_true", help="a few requests, no valgrind")
    parser.add_argument("--child", nargs=3, metavar=("DRIVER", "CONTENDER", "COUNT"))
    args = parser.parse_args()
    if args.child:
        driver, name, count = args.child
        child(driver, name, int(count))
        return
    if args.smoke:
        for name in CONTENDERS:
            requests(make_engine("pymysql", name))(5)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian package valgrind)")
    text = report(["pymysql", "mysqldb"], rounds=15, count=1000)
    print(text)
    if args.write:
        record_results("bench_instructions", text)


if __name__ == "__main__":
    main()
