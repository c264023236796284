"""Fixtures for the proxy suite: a disposable PostgreSQL for the session, PgBouncers of
the tests' own in front of it, and a table of what each scenario cost, printed at the end.

Under CI (``CI=true``) a missing pgbouncer binary or a server that cannot start fails the
tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from poolwarden.adapters._proxies import PGBOUNCER, ProxyInfo, psycopg_connect_overrides
from tests.proxies.pgbouncer import DisposablePgBouncer, pgbouncer_binary
from tests.servers import DisposablePostgres

#: The two modes a pool can work in with transactions (statement mode has a test of its own).
MODES = ("transaction", "session")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class Outcome:
    scenario: str
    mode: str
    errors: int
    expected: str
    recovery: float | None
    note: str = ""


RESULTS: list[Outcome] = []


def record(
    scenario: str,
    mode: str,
    errors: int,
    expected: str,
    recovery: float | None = None,
    note: str = "",
) -> None:
    """Note one scenario's outcome for the summary table."""
    RESULTS.append(Outcome(scenario, mode, errors, expected, recovery, note))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write("PgBouncer scenarios: user-visible errors (expected) and recovery time")
    write("| scenario | pool mode | errors (expected) | recovery (s) | note |")
    write("|---|---|---:|---:|---|")
    for r in RESULTS:
        recovery = "-" if r.recovery is None else f"{r.recovery:.2f}"
        write(f"| {r.scenario} | {r.mode} | {r.errors} ({r.expected}) | {recovery} | {r.note} |")


def _unavailable(message: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing proxy or server fails, never skips)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres() -> Iterator[DisposablePostgres]:
    """A disposable PostgreSQL (trust, database ``test``) that tests may restart."""
    base = Path(tempfile.mkdtemp(prefix="poolwarden-pgb-postgresql-"))
    try:
        server = DisposablePostgres(base, max_connections=60)
    except Exception as exc:
        shutil.rmtree(base, ignore_errors=True)
        _unavailable(f"cannot start a disposable PostgreSQL: {exc!r}")
    yield server
    server.destroy()


@pytest.fixture
def running_postgres(postgres: DisposablePostgres) -> Iterator[DisposablePostgres]:
    """The session's PostgreSQL, started again if an earlier test left it stopped."""
    if not (postgres.datadir / "postmaster.pid").exists():
        postgres.start()
    yield postgres
    if not (postgres.datadir / "postmaster.pid").exists():
        postgres.start()


BouncerFactory = Callable[..., DisposablePgBouncer]


@pytest.fixture
def make_bouncer(running_postgres: DisposablePostgres) -> Iterator[BouncerFactory]:
    """``make_bouncer(pool_mode, **settings)``: a PgBouncer in front of the session's
    PostgreSQL, removed after the test."""
    if pgbouncer_binary() is None:
        _unavailable("pgbouncer not installed (./scripts/setup.sh --tests installs it)")
    made: list[DisposablePgBouncer] = []

    def make(pool_mode: str = "transaction", **settings: Any) -> DisposablePgBouncer:
        users = settings.pop("users", ("postgres",))
        base = Path(tempfile.mkdtemp(prefix=f"poolwarden-pgbouncer-{pool_mode}-"))
        bouncer = DisposablePgBouncer(
            base,
            running_postgres.port,
            pool_mode=pool_mode,
            users=users,
            settings={"query_wait_timeout": 5, **settings},
        )
        made.append(bouncer)
        return bouncer

    yield make
    for bouncer in made:
        bouncer.destroy()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each pool mode a transactional pool can work in."""
    return str(request.param)


@pytest.fixture
def bouncer(make_bouncer: BouncerFactory, mode: str) -> DisposablePgBouncer:
    """A PgBouncer in ``mode`` with the suite's defaults."""
    return make_bouncer(mode)


def rules(mode: str) -> dict[str, Any]:
    """Pool keywords for PgBouncer in ``mode``: ``proxy="pgbouncer"``, and the connect
    overrides its rules give, spelled out (so the tests hold whether or not the pool
    applies them itself yet)."""
    overrides = psycopg_connect_overrides(ProxyInfo(PGBOUNCER, pool_mode=mode))
    return {"proxy": "pgbouncer", "connect_args": overrides}
