"""Fixtures for the fault-injection suite: disposable servers, a fault proxy, and a table
of what each scenario cost (user-visible errors, recovery time), printed at the end.

The scenarios common to both pools are written once, for asyncio, in ``_async/``; their
copies for the thread pool in ``_sync/`` are generated (``tools/async_to_sync.py``). Both
take the fixture ``target``: here for every sync driver, overridden in
``_async/conftest.py`` for every asyncio driver (``async_target``, which the asyncio-only
tests here use too).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.conftest import unavailable
from tests.faults.proxy import FaultProxy
from tests.servers import DisposableMariaDB, DisposablePostgres

MYSQL_DRIVERS = ("pymysql", "mysqldb", "mysqlconnector")
POSTGRES_DRIVERS = ("psycopg", "psycopg2")


@dataclass
class Outcome:
    scenario: str
    driver: str
    errors: int
    expected: int
    recovery: float | None
    note: str = ""


RESULTS: list[Outcome] = []


def record(
    scenario: str, driver: str, errors: int, expected: int, recovery: float | None, note: str = ""
) -> None:
    """Note one scenario's outcome for the summary table."""
    RESULTS.append(Outcome(scenario, driver, errors, expected, recovery, note))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write("Fault scenarios: user-visible errors (expected) and recovery time")
    write("| scenario | driver | errors (expected) | recovery (s) | note |")
    write("|---|---|---:|---:|---|")
    for r in RESULTS:
        recovery = "-" if r.recovery is None else f"{r.recovery:.2f}"
        write(f"| {r.scenario} | {r.driver} | {r.errors} ({r.expected}) | {recovery} | {r.note} |")


def _start(kind: str) -> Any:
    base = Path(tempfile.mkdtemp(prefix=f"poolwarden-{kind}-"))
    try:
        return DisposableMariaDB(base) if kind == "mysql" else DisposablePostgres(base)
    except Exception as exc:
        shutil.rmtree(base, ignore_errors=True)
        message = f"cannot start a disposable {kind} server: {exc!r}"
        unavailable(message)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[DisposableMariaDB]:
    server = _start("mysql")
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def postgres() -> Iterator[DisposablePostgres]:
    server = _start("postgresql")
    yield server
    server.destroy()


def _running(kind: str, server: Any) -> None:
    """Start ``server`` again if an earlier test left it stopped."""
    if kind == "mysql" and server.process is None:
        server.start()
    if kind == "postgresql" and not (server.datadir / "postmaster.pid").exists():
        server.start()


class Target(NamedTuple):
    """A running disposable server, a driver for it, and the driver's label in the summary
    table."""

    server: Any
    driver: str
    label: str


@pytest.fixture(
    params=[f"mysql+{d}" for d in MYSQL_DRIVERS] + [f"postgresql+{d}" for d in POSTGRES_DRIVERS],
)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """(running disposable server, driver, label) for every supported sync driver."""
    kind, _, driver = str(request.param).partition("+")
    server = request.getfixturevalue("mariadb" if kind == "mysql" else "postgres")
    _running(kind, server)
    yield Target(server, driver, driver)
    _running(kind, server)


#: The asyncio drivers (URL scheme) and their labels in the summary table: psycopg serves
#: both kinds of pool, so its asyncio side is told apart.
ASYNC_DRIVERS = {
    "mysql+asyncmy": "asyncmy",
    "mysql+aiomysql": "aiomysql",
    "postgresql+psycopg": "psycopg-async",
}


@pytest.fixture(params=list(ASYNC_DRIVERS), ids=list(ASYNC_DRIVERS.values()))
def async_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """(running disposable server, driver, label) for every supported asyncio driver, on
    the same session-wide servers as :func:`target`."""
    kind, _, driver = str(request.param).partition("+")
    server = request.getfixturevalue("mariadb" if kind == "mysql" else "postgres")
    _running(kind, server)
    yield Target(server, driver, ASYNC_DRIVERS[str(request.param)])
    _running(kind, server)


@pytest.fixture
def proxy(target: Target) -> Iterator[FaultProxy]:
    """A fault proxy in front of the target's server."""
    fault_proxy = FaultProxy(target.server.port)
    yield fault_proxy
    fault_proxy.stop()


@pytest.fixture
def async_proxy(async_target: Target) -> Iterator[FaultProxy]:
    """A fault proxy in front of the asyncio target's server."""
    fault_proxy = FaultProxy(async_target.server.port)
    yield fault_proxy
    fault_proxy.stop()


def wait_until(check: Any, timeout: float = 10.0) -> float:
    """Poll ``check`` until true; return how long it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)
    return time.monotonic() - start
