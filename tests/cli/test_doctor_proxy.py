"""``poolwarden doctor`` behind a real PgBouncer (the tests' own, in front of the shared
test PostgreSQL, whose settings it does not change): detection, the pool mode from the
admin console or unknown without it, the rules for ``reset`` and psycopg's prepared
statements, and the fleet's budget against PgBouncer's limits instead of the server's.

There is no ProxySQL to test against; its findings are checked from the facts (and the
real MariaDB must not be taken for one)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poolwarden.adapters._proxies import PROXYSQL, ProxyInfo
from poolwarden.cli.findings import PoolPlan
from poolwarden.cli.proxy_checks import check_proxy
from poolwarden.cli.server_settings import ServerFacts
from poolwarden.cli.topology import HostFacts, ProxyFacts, Topology
from tests.cli.conftest import Cli
from tests.cli.test_doctor import by_check, doctor_json, server_number
from tests.conftest import IN_CI, POSTGRES, _check
from tests.proxies.pgbouncer import DisposablePgBouncer, pgbouncer_binary

BACKEND_PORT = int(POSTGRES.rpartition("@")[2].partition("/")[0].rpartition(":")[2] or 5432)


def start_pgbouncer(**kwargs: Any) -> DisposablePgBouncer:
    """A PgBouncer in front of the test PostgreSQL; skip (locally) or fail (CI=true) when
    it cannot be started."""
    _check("postgres")
    if pgbouncer_binary() is None:
        message = "pgbouncer is not installed (scripts/setup.sh --tests installs it)"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing server is a failure, not a skip)")
        pytest.skip(message)
    base = Path(tempfile.mkdtemp(prefix="poolwarden-doctor-pgbouncer-"))
    os.chmod(base, 0o755)  # PgBouncer runs as the postgres account when the tests are root
    try:
        return DisposablePgBouncer(base, BACKEND_PORT, **kwargs)
    except Exception as exc:
        shutil.rmtree(base, ignore_errors=True)
        message = f"cannot start a PgBouncer: {exc!r}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def transaction_bouncer() -> Iterator[DisposablePgBouncer]:
    """PgBouncer in transaction mode; the login ``postgres`` may use its admin console."""
    bouncer = start_pgbouncer(pool_mode="transaction")
    yield bouncer
    bouncer.destroy()


@pytest.fixture(scope="module")
def closed_bouncer() -> Iterator[DisposablePgBouncer]:
    """PgBouncer in transaction mode whose admin console only ``pw_admin`` may use."""
    bouncer = start_pgbouncer(
        pool_mode="transaction",
        users=("pw_admin", "postgres"),
        settings={"admin_users": "pw_admin"},
    )
    yield bouncer
    bouncer.destroy()


def admin_url(bouncer: DisposablePgBouncer, user: str) -> str:
    return f"postgresql+psycopg://{user}@127.0.0.1:{bouncer.port}/pgbouncer"


def test_pgbouncer_mode_from_its_admin_console(
    cli: Cli, transaction_bouncer: DisposablePgBouncer
) -> None:
    url = transaction_bouncer.url("psycopg")
    run = cli("doctor", url, "--reset", "session")
    assert run.status == 2, run.output
    assert "proxy PgBouncer 1.18.0 in transaction mode (admin console): pool_mode=transaction" in (
        run.flat
    )
    assert "max_client_conn=100, default_pool_size=20" in run.flat
    assert "ERROR reset='session' is not possible behind PgBouncer in transaction mode" in (
        run.flat
    )
    assert "ERROR psycopg's prepared statements fail behind PgBouncer 1.18.0" in run.flat
    assert "prepare_threshold=None (no prepared statements)" in run.flat  # the rules
    status, report = doctor_json(cli, url, "--reset", "session")
    findings = by_check(report)
    assert hosts_proxy(report) == "pgbouncer"
    assert report["proxy"]["pool_mode"] == "transaction"
    assert report["proxy"]["version"] == "1.18.0"
    assert findings["proxy-reset"]["changes"] == {"reset": "rollback"}
    assert findings["proxy-prepared"]["changes"] == {"prepare_threshold": None}
    # The fixes together: nothing left to change about the proxy.
    status, report = doctor_json(cli, url, "--reset", "rollback", "--prepare-threshold", "none")
    assert status == 0
    assert {"proxy-reset", "proxy-prepared"} & set(by_check(report)) == set()
    # The URL's own prepare_threshold counts as well, and psycopg2 never prepares.
    _, report = doctor_json(cli, f"{url}?prepare_threshold=0")
    assert by_check(report)["proxy-prepared"]["numbers"]["prepare_threshold"] == 0
    _, report = doctor_json(cli, transaction_bouncer.url("psycopg2"))
    assert "proxy-prepared" not in by_check(report)
    assert report["proxy"]["pool_mode"] == "transaction"


def hosts_proxy(report: dict[str, Any]) -> Any:
    (host,) = report["hosts"]
    return host["proxy"]


def test_the_fleet_budget_is_pgbouncers(
    cli: Cli, postgres: str, transaction_bouncer: DisposablePgBouncer
) -> None:
    url = transaction_bouncer.url("psycopg")
    args = ("--prepare-threshold", "none", "--workers", "10", "--instances", "2")
    run = cli("doctor", url, *args)
    assert run.status == 2, run.output
    assert "ERROR the fleet may open 300 connections; PgBouncer's max_client_conn allows 100" in (
        run.flat
    )
    assert "fix: at most 4 connections per process (80% of 100 / 20 processes)" in run.flat
    available = server_number(postgres, "SHOW max_connections") - server_number(
        postgres, "SHOW superuser_reserved_connections"
    )
    assert (
        f"OK the server gets PgBouncer's connections, not the fleet's 300: at most 20 of its "
        f"{available}" in run.flat
    )
    _, report = doctor_json(cli, url, *args)
    findings = by_check(report)
    assert "fleet" not in findings  # the server never sees the fleet's 300
    assert findings["proxy-clients"]["changes"] == {"pool_size": 4, "max_overflow": 0}
    status, report = doctor_json(cli, url, *args, "--pool-size", "4", "--max-overflow", "0")
    assert status == 0 and by_check(report)["proxy-clients"]["severity"] == "ok"


def test_pgbouncers_pool_against_the_servers_limit(
    cli: Cli, postgres: str, transaction_bouncer: DisposablePgBouncer
) -> None:
    available = server_number(postgres, "SHOW max_connections") - server_number(
        postgres, "SHOW superuser_reserved_connections"
    )
    transaction_bouncer.configure(default_pool_size=available + 50)
    try:
        url = transaction_bouncer.url("psycopg")
        status, report = doctor_json(cli, url, "--prepare-threshold", "none")
        pool = by_check(report)["proxy-server-pool"]
        assert status == 2 and pool["severity"] == "error"
        assert pool["title"] == (
            f"PgBouncer may open {available + 50} server connections; the server accepts "
            f"{available}"
        )
        assert pool["changes"] == {"proxy.max_db_connections": int(available * 0.8)}
        transaction_bouncer.configure(max_db_connections=int(available * 0.8))
        status, report = doctor_json(cli, url, "--prepare-threshold", "none")
        assert status == 0 and by_check(report)["proxy-server-pool"]["severity"] == "ok"
    finally:
        transaction_bouncer.configure(default_pool_size=20, max_db_connections=0)


def test_pool_mode_unknown_without_the_admin_console(
    cli: Cli, closed_bouncer: DisposablePgBouncer
) -> None:
    url = closed_bouncer.url("psycopg")
    run = cli("doctor", url, "--reset", "session")
    assert run.status == 1, run.output
    assert "INFO PgBouncer in front of the server; its pool mode is unknown" in run.flat
    assert "postgres is not in PgBouncer's admin_users or stats_users" in run.flat
    assert "poolwarden's pools assume transaction mode" in run.flat
    assert "WARNING reset='session' is not possible behind PgBouncer in transaction mode " in (
        run.flat
    )
    assert "(assumed)" in run.flat
    _, report = doctor_json(cli, url)
    assert report["proxy"]["pool_mode"] is None
    assert report["proxy"]["mode_assumed"] == "transaction"
    assert by_check(report)["proxy-clients"]["severity"] == "info"
    # --proxy-admin with a login of admin_users: the mode is known.
    status, report = doctor_json(
        cli, url, "--proxy-admin", admin_url(closed_bouncer, "pw_admin"), "--reset", "session"
    )
    assert status == 2 and report["proxy"]["pool_mode"] == "transaction"
    assert by_check(report)["proxy-reset"]["severity"] == "error"


def test_session_mode_keeps_session_state(cli: Cli) -> None:
    bouncer = start_pgbouncer(pool_mode="session")
    try:
        status, report = doctor_json(cli, bouncer.url("psycopg"), "--reset", "session")
        assert report["proxy"]["pool_mode"] == "session"
        assert {"proxy-reset", "proxy-prepared"} & set(by_check(report)) == set()
        assert status == 0
    finally:
        bouncer.destroy()


def test_no_password_behind_pgbouncer(cli: Cli, closed_bouncer: DisposablePgBouncer) -> None:
    # auth_type=trust: PgBouncer and the server never ask for the password given.
    secret = "Pgb-Secret-71"
    url = closed_bouncer.url("psycopg").replace("postgres@", f"postgres:{secret}@")
    admin = admin_url(closed_bouncer, f"postgres:{secret}-admin")
    runs = [cli("doctor", url, "--debug"), cli("doctor", url, "--json", "--proxy-admin", admin)]
    assert runs[0].status == 1, runs[0].output
    report = json.loads(runs[1].out)
    assert "not in PgBouncer's admin_users" in report["proxy"]["admin_error"]
    for run in runs:
        assert secret not in run.output


def test_direct_servers_have_no_proxy(cli: Cli, postgres: str, mysql: str) -> None:
    for url in (postgres, mysql):
        _, report = doctor_json(cli, url)
        assert report["proxy"] is None and hosts_proxy(report) is None


def test_proxysql_findings() -> None:
    facts = ServerFacts(
        kind="mysql",
        product="MySQL 8.0.36",
        idle_timeout=28800.0,
        idle_timeout_name="wait_timeout",
        global_idle_timeout=28800.0,
        max_connections=151,
        reserved_connections=0,
        user_limit=None,
        user_limit_name="max_user_connections",
    )
    plan = PoolPlan(processes=4, instances=2)
    topology = Topology(
        (HostFacts("127.0.0.1", 6033, product="MySQL 8.0.36", role="primary", proxy=PROXYSQL),),
        "127.0.0.1:6033",
        ProxyFacts(ProxyInfo(PROXYSQL, source="detected")),
    )
    findings = {finding.check: finding for finding in check_proxy(plan, facts, topology)}
    assert findings["proxy"].title == "ProxySQL (detected)"
    assert findings["proxy-ping"].title == "a ping proves only that ProxySQL is alive"
    assert "9001" in findings["proxy-ping"].detail
    assert "mysql-max_connections" in findings["proxy-clients"].detail
    assert not topology.pooled  # the server's own budget check stays
