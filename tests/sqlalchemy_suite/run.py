"""SQLAlchemy's own tests, run with QueuePool and with WardenPool in the same go, compared.

    python -m tests.sqlalchemy_suite.run pool         # test_pool.py, test_reconnect.py (mocks)
    python -m tests.sqlalchemy_suite.run mariadb      # engine, ORM, dialect and asyncio suites
    python -m tests.sqlalchemy_suite.run postgresql   # the same on PostgreSQL

For the SQLAlchemy installed beside the Python running this, its source distribution is
downloaded (``pip download``, cached in ``.cache/sqlalchemy-suite``) and the tier's test files
run twice through ``plugin.py``: as they are, then with QueuePool replaced by WardenPool and
AsyncAdaptedQueuePool by AsyncWardenPool. Every test that passes the first time must pass
the second, except those in ``differences.py``, which must not. The servers are the tests'
(``POOLWARDEN_TEST_MYSQL``, ``POOLWARDEN_TEST_POSTGRES``); one that cannot be reached fails
the tier. Exit status 0 when all holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from poolwarden import Pool
from tests.sqlalchemy_suite.differences import DIFFERENCES, Difference

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "sqlalchemy-suite"
MYSQL = os.environ.get("POOLWARDEN_TEST_MYSQL", "root@127.0.0.1:3306/test")
POSTGRES = os.environ.get("POOLWARDEN_TEST_POSTGRES", "postgres@127.0.0.1:5432/test")

#: The engine and ORM suites that talk to a real database, for both servers.
_REAL = (
    "test/engine/test_reconnect.py",
    "test/engine/test_execute.py",
    "test/engine/test_transaction.py",
    "test/orm/test_transaction.py",
    "test/ext/asyncio",
)


@dataclass(frozen=True)
class Tier:
    """Test files, and the databases they run against (none: SQLite and mocks)."""

    files: tuple[str, ...]
    dburis: tuple[str, ...] = ()


TIERS = {
    "pool": Tier(("test/engine/test_pool.py", "test/engine/test_reconnect.py")),
    "mariadb": Tier(
        (*_REAL, "test/dialect/mysql"),
        (f"mysql+pymysql://{MYSQL}?charset=utf8mb4", f"mysql+asyncmy://{MYSQL}?charset=utf8mb4"),
    ),
    "postgresql": Tier(
        (*_REAL, "test/dialect/postgresql/test_dialect.py"),
        (f"postgresql+psycopg://{POSTGRES}", f"postgresql+psycopg_async://{POSTGRES}"),
    ),
}


@dataclass
class Comparison:
    """What the WardenPool run did with what passed with QueuePool."""

    #: Passed with QueuePool, not with WardenPool, and not listed: incompatibilities.
    regressions: dict[str, str] = field(default_factory=dict)
    #: Listed differences that no longer hold (the test passes, or no longer exists).
    stale: list[Difference] = field(default_factory=list)
    #: Listed tests that failed with WardenPool, as expected.
    expected: list[str] = field(default_factory=list)
    #: Per test file: (tests, passed with QueuePool, passed with WardenPool).
    counts: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.regressions and not self.stale


def _file(test_id: str) -> str:
    return test_id.partition("::")[0]


def _listed(test_id: str, differences: Iterable[Difference]) -> Difference | None:
    return next((d for d in differences if fnmatch.fnmatchcase(test_id, d.test)), None)


def compare(
    queue_pool: Mapping[str, str],
    warden_pool: Mapping[str, str],
    differences: Iterable[Difference],
    files: Iterable[str],
) -> Comparison:
    """Compare the outcomes of one tier's two runs (test id -> outcome)."""
    result = Comparison()
    relevant = [d for d in differences if any(_file(d.test).startswith(f) for f in files)]
    holding: set[Difference] = set()
    per_file: dict[str, Counter[str]] = {}
    for test_id in sorted(set(queue_pool) | set(warden_pool)):
        counter = per_file.setdefault(_file(test_id), Counter())
        counter["tests"] += 1
        before, after = queue_pool.get(test_id, "missing"), warden_pool.get(test_id, "missing")
        counter["queue_pool"] += before == "passed"
        counter["warden_pool"] += after == "passed"
        if before != "passed":
            continue
        difference = _listed(test_id, relevant)
        if difference is None:
            if after != "passed":
                result.regressions[test_id] = after
        elif after == "passed":
            result.stale.append(difference)
        else:
            holding.add(difference)
            result.expected.append(test_id)
    result.stale += [d for d in relevant if d not in holding and d not in result.stale]
    result.counts = {
        name: (c["tests"], c["queue_pool"], c["warden_pool"]) for name, c in per_file.items()
    }
    return result


# -- the runs -------------------------------------------------------------------------------
def sqlalchemy_version() -> str:
    import sqlalchemy

    return str(sqlalchemy.__version__)


def source_tree(version: str) -> Path:
    """SQLAlchemy's source distribution for ``version``, downloaded once and unpacked."""
    tree = CACHE / f"sqlalchemy-{version}"
    if (tree / "test" / "conftest.py").exists():
        return tree
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"sqlalchemy-{version}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:"),
                *("--no-deps", "-d", str(CACHE), f"sqlalchemy=={version}"),
            ],
            check=True,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return tree


def prepare_servers(dburis: Iterable[str]) -> None:
    """The schemas SQLAlchemy's suites expect beside the test database."""
    statements = {
        f"mysql+pymysql://{MYSQL}": "CREATE DATABASE IF NOT EXISTS {}",
        f"postgresql+psycopg://{POSTGRES}": "CREATE SCHEMA IF NOT EXISTS {}",
    }
    for url, sql in statements.items():
        if not any(uri.startswith(url.partition(":")[0] + ":") for uri in dburis):
            continue
        with Pool(url, pool_size=1, timeout=10) as pool, pool.connection() as conn:
            cursor = conn.cursor()
            for name in ("test_schema", "test_schema_2"):
                cursor.execute(sql.format(name))
            conn.commit()


def start_suite(tree: Path, tier: Tier, warden: bool, log: Path) -> subprocess.Popen[bytes]:
    """Start one run of the tier's files; its outcomes go next to ``log``."""
    outcomes = log.with_suffix(".json")
    outcomes.unlink(missing_ok=True)
    command = [sys.executable, "-s", "-m", "pytest", "-p", "tests.sqlalchemy_suite.plugin"]
    command += ["-p", "no:cacheprovider", "-q", "--tb=short", "--timeout=300"]
    command += ["--outcomes", str(outcomes), *(["--poolwarden"] if warden else [])]
    command += [f"--dburi={uri}" for uri in tier.dburis]
    command += list(tier.files)
    # -s (no user site) keeps SQLAlchemy's conftest from putting the sdist's lib/ first:
    # the installed SQLAlchemy, compiled extensions and all, is the one under test.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT)


def outcomes_of(run: subprocess.Popen[bytes], log: Path, what: str) -> dict[str, str]:
    """Wait for a run to end; the outcome of each of its tests."""
    try:
        run.wait(timeout=1800)
    except subprocess.TimeoutExpired:
        run.kill()
        raise SystemExit(f"the {what} run took more than 30 minutes") from None
    outcomes = log.with_suffix(".json")
    if not outcomes.exists():
        sys.stdout.write(log.read_text())
        raise SystemExit(f"the {what} run recorded nothing (exit status {run.returncode})")
    return dict(json.loads(outcomes.read_text()))


def run_tier(tree: Path, name: str, tier: Tier, logs: Path) -> tuple[dict[str, str], ...]:
    """The tier's two runs: side by side without a server (the tests share nothing then,
    and mostly wait), one after the other on a server (they share its tables)."""
    queue_log, warden_log = logs / f"{name}-queuepool.log", logs / f"{name}-wardenpool.log"
    queue_run = start_suite(tree, tier, False, queue_log)
    if tier.dburis:
        queue_pool = outcomes_of(queue_run, queue_log, "QueuePool")
        warden_run = start_suite(tree, tier, True, warden_log)
    else:
        warden_run = start_suite(tree, tier, True, warden_log)
        queue_pool = outcomes_of(queue_run, queue_log, "QueuePool")
    return queue_pool, outcomes_of(warden_run, warden_log, "WardenPool")


def report(name: str, version: str, result: Comparison, log: Path, out: TextIO) -> None:
    print(f"SQLAlchemy {version}'s own tests, tier {name!r}: tests passed", file=out)
    print(f"  {'file':<45} {'tests':>6} {'QueuePool':>10} {'WardenPool':>11}", file=out)
    for path, (tests, queue, warden) in sorted(result.counts.items()):
        print(f"  {path:<45} {tests:>6} {queue:>10} {warden:>11}", file=out)
    totals = [sum(column) for column in zip(*result.counts.values(), strict=True)] or [0, 0, 0]
    print(f"  {'all':<45} {totals[0]:>6} {totals[1]:>10} {totals[2]:>11}", file=out)
    for test_id in result.expected:
        print(f"  differs by design: {test_id}", file=out)
    for test_id, outcome in result.regressions.items():
        print(f"  INCOMPATIBLE: {test_id} passes with QueuePool, {outcome} with WardenPool",
              file=out)  # fmt: skip
    for difference in result.stale:
        print(f"  STALE: {difference.test} is listed in differences.py but does not fail",
              file=out)  # fmt: skip
    if result.regressions:
        print(f"--- the WardenPool run ({log}) ---", file=out)
        out.write(log.read_text())


def run_and_report(tree: Path, version: str, name: str) -> tuple[bool, str]:
    """One tier, compared: whether it holds, and its report."""
    tier = TIERS[name]
    prepare_servers(tier.dburis)
    started = time.monotonic()
    logs = CACHE / "logs" / version
    logs.mkdir(parents=True, exist_ok=True)
    queue_pool, warden_pool = run_tier(tree, name, tier, logs)
    result = compare(queue_pool, warden_pool, DIFFERENCES, tier.files)
    out = io.StringIO()  # not redirect_stdout: tiers run in threads, sys.stdout is global
    report(name, version, result, logs / f"{name}-wardenpool.log", out)
    print(f"  ({time.monotonic() - started:.0f} s)", file=out)
    return result.ok, out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tiers", nargs="+", choices=sorted(TIERS))
    args = parser.parse_args(argv)
    version = sqlalchemy_version()
    tree = source_tree(version)
    ok = True
    # The tiers on a server run side by side, each on its own server: their tests mostly
    # wait for it. The mock tier runs alone: its tests time waits and would be starved.
    mocks = [name for name in args.tiers if not TIERS[name].dburis]
    servers = [name for name in args.tiers if TIERS[name].dburis]
    for name in mocks:
        holds, text = run_and_report(tree, version, name)
        sys.stdout.write(text)
        ok = ok and holds
    if servers:
        with ThreadPoolExecutor(len(servers)) as workers:
            runs = [workers.submit(run_and_report, tree, version, name) for name in servers]
            for run in runs:
                holds, text = run.result()
                sys.stdout.write(text)
                ok = ok and holds
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
