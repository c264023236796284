"""Fixtures for the failover tests: a MariaDB pair and a PostgreSQL primary + streaming
standby (session-wide, reset before each test), each behind a fault proxy the pools
connect to, and a table of what each switch cost, printed at the end of the run.

Outside CI a server that cannot be started (a missing binary) skips its tests; under
``CI=true`` it fails them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import unavailable
from tests.failover.harness import LoadResult
from tests.failover.pairs import MariaDBPair, PostgresPair
from tests.servers import DisposableMariaDB, DisposablePostgres

T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One line of the summary table."""

    scenario: str
    pool: str
    driver: str
    writes: int
    failed: int
    in_flight: int
    recovery: float | None
    switch: float


ROWS: list[Row] = []


def record(scenario: str, pool: str, driver: str, result: LoadResult) -> None:
    """Note one run's outcome for the summary table."""
    ROWS.append(
        Row(
            scenario, pool, driver, len(result.writes), len(result.failed), result.in_flight,
            result.recovery, result.switch.duration,
        )
    )  # fmt: skip


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    write = terminalreporter.write_line
    write("")
    write("Failover: failed writes after the switch, writes in flight at it, and time to")
    write("recover (from the new primary being reachable to the first write after which")
    write("none failed; 'never' = still failing when the run ended)")
    write("| scenario | pool | driver | writes | failed | in flight | recovery (s) | switch (s) |")
    write("|---|---|---|---:|---:|---:|---:|---:|")
    for r in ROWS:
        recovery = "never" if r.recovery is None else f"{r.recovery:.3f}"
        write(
            f"| {r.scenario} | {r.pool} | {r.driver} | {r.writes} | {r.failed} | "
            f"{r.in_flight} | {recovery} | {r.switch:.3f} |"
        )


def _start(kind: str, make: Callable[[Path], T]) -> T:
    """``make(base)`` in a new temporary directory; skip (locally) or fail (CI) if the
    server cannot be made."""
    base = Path(tempfile.mkdtemp(prefix=f"poolwarden-failover-{kind}-"))
    os.chmod(base, 0o755)  # the postgres account (when run as root) must reach its data
    try:
        return make(base)
    except Exception as exc:
        shutil.rmtree(base, ignore_errors=True)
        message = f"cannot start a disposable {kind} server for the failover tests: {exc!r}"
        unavailable(message)


@pytest.fixture(scope="session")
def _mariadb_servers() -> Iterator[MariaDBPair]:
    first = _start("mysql", DisposableMariaDB)
    try:
        second = _start("mysql", DisposableMariaDB)
    except BaseException:
        first.destroy()
        raise
    try:
        yield MariaDBPair(first, second)
    finally:
        first.destroy()
        second.destroy()


@pytest.fixture(scope="session")
def _postgres_servers() -> Iterator[PostgresPair]:
    made: list[DisposablePostgres] = []

    def standby_of(primary: DisposablePostgres) -> DisposablePostgres:
        server = _start("postgresql", lambda base: DisposablePostgres.standby_of(primary, base))
        made.append(server)
        return server

    primary = _start("postgresql", DisposablePostgres)
    made.append(primary)
    try:
        yield PostgresPair(primary, standby_of)
    finally:
        for server in made:
            server.destroy()


@pytest.fixture
def mariadb_pair(_mariadb_servers: MariaDBPair) -> Iterator[MariaDBPair]:
    """The MariaDB pair, reset: empty tables, primary writable, standby read-only, a new
    proxy in front of the primary."""
    _mariadb_servers.reset()
    yield _mariadb_servers
    _mariadb_servers.close_proxy()


@pytest.fixture
def postgres_pair(_postgres_servers: PostgresPair) -> Iterator[PostgresPair]:
    """The PostgreSQL pair, reset: empty table, a streaming standby, a new proxy in front
    of the primary."""
    _postgres_servers.reset()
    yield _postgres_servers
    _postgres_servers.close_proxy()
