"""``poolwarden doctor`` for fleets and several hosts, against real servers: each host of
a URL questioned on its own (role, read-only settings, limits), the pool's role against
them, ``--workers``, and the fleet's budget on every host a failover may send it to.

The read-only hosts are disposable servers of this module's own (``SET GLOBAL
read_only=1`` on a MariaDB, ``default_transaction_read_only`` on a PostgreSQL): the shared
test servers' globals are never changed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.cli.conftest import Cli, MySQLUser, one_error_line, table_row
from tests.cli.test_doctor import by_check, doctor_json, server_number
from tests.conftest import IN_CI, MYSQL, POSTGRES
from tests.servers import DisposableMariaDB, DisposablePostgres, free_port

T = TypeVar("T")


def start_disposable(kind: str, make: Callable[[Path], T]) -> T:
    """``make(base)`` in a new temporary directory; skip (locally) or fail (CI=true)
    when the server cannot be started."""
    base = Path(tempfile.mkdtemp(prefix=f"poolwarden-doctor-{kind}-"))
    os.chmod(base, 0o755)  # the postgres account (when run as root) must reach its data
    try:
        return make(base)
    except Exception as exc:
        shutil.rmtree(base, ignore_errors=True)
        message = f"cannot start a disposable {kind} server: {exc!r}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing server is a failure, not a skip)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def read_only_mariadb() -> Iterator[DisposableMariaDB]:
    """A MariaDB of this module's own (max_connections=60) with ``read_only=1``."""
    server = start_disposable("mysql", DisposableMariaDB)
    try:
        server.set_read_only(True)
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def read_only_postgres() -> Iterator[DisposablePostgres]:
    """A PostgreSQL of this module's own with ``default_transaction_read_only=on``."""
    server = start_disposable("postgresql", DisposablePostgres)
    try:
        server.set_read_only(True)
        yield server
    finally:
        server.destroy()


def _address(spec: str) -> str:
    """``127.0.0.1:3306`` from ``root@127.0.0.1:3306/test``."""
    return spec.rpartition("@")[2].partition("/")[0]


MYSQL_HOST = _address(MYSQL)
POSTGRES_HOST = _address(POSTGRES)


def hosts_url(url: str, *ports: int) -> str:
    """``url`` listing more hosts (127.0.0.1:PORT) after its own."""
    scheme, _, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    extra = "".join(f",127.0.0.1:{port}" for port in ports)
    return f"{scheme}://{netloc}{extra}{slash}{tail}"


def hosts_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{host['host']}:{host['port']}": host for host in report["hosts"]}


def test_workers_is_processes(cli: Cli, mysql: str) -> None:
    args = ("doctor", mysql, "--pool-size", "50")
    workers, processes = cli(*args, "--workers", "1000"), cli(*args, "--processes", "1000")
    assert workers.status == processes.status == 2, workers.output
    formula = "1000 process(es) x 1 instance(s) x (pool_size 50 + max_overflow 10) = 60000"
    assert formula in workers.flat and formula in processes.flat
    assert "--processes, --workers P" in cli("doctor", "--help").out


def test_single_host_is_reported(cli: Cli, mysql: str) -> None:
    max_connections = server_number(mysql, "SELECT @@max_connections")
    run = cli("doctor", mysql)
    assert run.status == 0, run.output
    cells = table_row(run.out, f"{MYSQL_HOST} *")
    assert cells[0] == "primary" and cells[1].startswith("MariaDB ")
    assert cells[2] == "read_only=OFF, innodb_read_only=OFF"
    assert cells[3:] == [str(max_connections), "-"]
    assert "proxy none detected" in run.flat
    assert "OK role='any': one host, no role check needed" in run.flat
    _, report = doctor_json(cli, mysql)
    (host,) = report["hosts"]
    assert host["reachable"] and host["role"] == "primary" and host["proxy"] is None
    assert host["settings"] == {"read_only": "OFF", "innodb_read_only": "OFF"}
    assert report["server"]["host"] == MYSQL_HOST and report["proxy"] is None


def test_two_hosts_one_read_only(
    cli: Cli, mysql: str, read_only_mariadb: DisposableMariaDB
) -> None:
    standby = f"127.0.0.1:{read_only_mariadb.port}"
    url = hosts_url(mysql, read_only_mariadb.port)
    run = cli("doctor", url)
    assert run.status == 1, run.output
    assert table_row(run.out, f"{MYSQL_HOST} *")[0] == "primary"
    cells = table_row(run.out, f"{standby} ")
    assert cells[0] == "standby" and cells[2] == "read_only=ON, innodb_read_only=OFF"
    assert cells[3] == "60"  # the disposable server's own max_connections
    assert "WARNING role='any' on a URL with several hosts: writes may go to a standby" in (
        run.flat
    )
    assert f"Hosts: {MYSQL_HOST} (primary), {standby} (standby: read_only=ON)" in run.flat
    status, report = doctor_json(cli, url)
    role = by_check(report)["role"]
    assert (status, role["severity"], role["changes"]) == (1, "warning", {"role": "primary"})
    # The fix: the primary is met by one host of two, which is worth a note only.
    status, report = doctor_json(cli, url, "--role", "primary")
    role = by_check(report)["role"]
    assert status == 0 and role["severity"] == "info"
    assert role["title"] == f"role='primary': only {MYSQL_HOST} of the 2 hosts accepts writes"
    assert report["server"]["host"] == MYSQL_HOST


def test_the_settings_come_from_the_host_the_role_picks(
    cli: Cli, mysql: str, read_only_mariadb: DisposableMariaDB
) -> None:
    standby = f"127.0.0.1:{read_only_mariadb.port}"
    url = hosts_url(mysql, read_only_mariadb.port)
    status, report = doctor_json(cli, url, "--role", "standby")
    assert status == 0 and report["server"]["host"] == standby
    assert report["server"]["settings"]["max_connections"] == "60"
    assert by_check(report)["fleet"]["numbers"]["max_connections"] == 60
    # Listed first, the standby is still not where a primary pool goes.
    reversed_url = f"mysql+pymysql://root@{standby},{MYSQL_HOST}/test"
    _, report = doctor_json(cli, reversed_url, "--role", "primary")
    assert report["server"]["host"] == MYSQL_HOST
    assert [host["role"] for host in report["hosts"]] == ["standby", "primary"]


def test_the_fleet_must_fit_every_host(
    cli: Cli, mysql: str, read_only_mariadb: DisposableMariaDB
) -> None:
    standby = f"127.0.0.1:{read_only_mariadb.port}"
    url = hosts_url(mysql, read_only_mariadb.port)
    run = cli("doctor", url, "--role", "primary", "--workers", "4")
    assert run.status == 1, run.output
    assert (
        f"WARNING after a failover to {standby} the fleet may open 60 connections; it "
        "accepts 60" in run.flat
    )
    assert "fix: at most 12 connections per process (80% of 60 / 4 processes)" in run.flat
    _, report = doctor_json(cli, url, "--role", "primary", "--workers", "4")
    budget = by_check(report)["failover-budget"]
    assert budget["changes"] == {"pool_size": 5, "max_overflow": 7}
    _, fixed = doctor_json(
        cli, url, "--role", "primary", "--workers", "4", "--pool-size", "5", "--max-overflow", "7"
    )
    assert by_check(fixed)["failover-budget"]["severity"] == "ok"


def test_no_host_has_the_role(cli: Cli, read_only_mariadb: DisposableMariaDB) -> None:
    url = read_only_mariadb.url("pymysql")
    address = f"127.0.0.1:{read_only_mariadb.port}"
    run = cli("doctor", url, "--role", "primary")
    assert run.status == 2, run.output
    assert "ERROR role='primary' cannot be met: no host accepts writes" in run.flat
    assert f"fix: add the primary to the URL, or promote {address}" in run.flat
    assert "SET GLOBAL read_only=0" in run.flat
    status, report = doctor_json(cli, url, "--role", "standby")
    assert status == 0 and by_check(report)["role"]["severity"] == "ok"
    # role 'any' on a single read-only host: a note that writes fail there.
    status, report = doctor_json(cli, url)
    role = by_check(report)["role"]
    assert (status, role["severity"]) == (0, "info")
    assert "writes fail there" in role["detail"]


def test_unreachable_host_in_the_list(cli: Cli, mysql: str) -> None:
    closed = free_port()
    url = hosts_url(mysql, closed)
    run = cli("doctor", url, "--role", "primary", "--connect-timeout", "1")
    assert run.status == 1, run.output
    assert table_row(run.out, f"127.0.0.1:{closed} ")[0] == "unreachable"
    assert f"127.0.0.1:{closed}: connection refused" in run.flat
    assert f"WARNING 127.0.0.1:{closed} cannot be reached" in run.flat
    _, report = doctor_json(cli, url, "--role", "primary")
    down = hosts_of(report)[f"127.0.0.1:{closed}"]
    assert not down["reachable"] and "refused" in down["error"]
    host = [f for f in report["findings"] if f["check"] == "host"]
    assert [f["changes"] for f in host] == [{"hosts.drop": f"127.0.0.1:{closed}"}]


def test_no_host_answers(cli: Cli, mysql: str) -> None:
    first, second = free_port(), free_port()
    url = f"mysql+pymysql://root@127.0.0.1:{first},127.0.0.1:{second}/test"
    line = one_error_line(cli("doctor", url, "--connect-timeout", "1"))
    assert line.startswith(f"poolwarden: cannot connect to any host of {url}: 127.0.0.1:{first}")
    assert line.count("connection refused") == 2


def test_postgres_hosts_and_target_session_attrs(
    cli: Cli, postgres: str, read_only_postgres: DisposablePostgres
) -> None:
    standby = f"127.0.0.1:{read_only_postgres.port}"
    url = hosts_url(postgres, read_only_postgres.port)
    status, report = doctor_json(cli, f"{url}?target_session_attrs=read-write")
    hosts = hosts_of(report)
    assert hosts[POSTGRES_HOST]["role"] == "primary"
    assert hosts[standby]["role"] == "standby"
    assert hosts[standby]["settings"]["default_transaction_read_only"] == "on"
    assert hosts[standby]["settings"]["pg_is_in_recovery()"] == "false"
    reserved = server_number(postgres, "SHOW superuser_reserved_connections")
    assert hosts[POSTGRES_HOST]["reserved_connections"] == reserved
    assert report["pool"]["role"] == "primary"
    assert report["pool"]["role_source"] == "the URL's target_session_attrs"
    assert status == 0 and by_check(report)["role"]["severity"] == "info"
    # libpq's 'standby' on the read-write server alone: nothing meets it.
    run = cli("doctor", f"{postgres}?target_session_attrs=standby")
    assert run.status == 2, run.output
    assert "ERROR role='standby' cannot be met: no host is read-only" in run.flat
    assert "fix: role='prefer-standby'" in run.flat
    cells = table_row(run.out, f"{POSTGRES_HOST} *")
    assert cells[0] == "primary" and cells[1].startswith("PostgreSQL ")
    assert cells[2] == (
        "pg_is_in_recovery()=false, in_hot_standby=off, default_transaction_read_only=off"
    )


def test_no_password_in_the_hosts_report(
    cli: Cli, password_user: MySQLUser, read_only_mariadb: DisposableMariaDB
) -> None:
    read_only_mariadb.add_user(password_user.name, password_user.password)
    closed = free_port()
    url = hosts_url(password_user.url(), read_only_mariadb.port, closed)
    wrong = hosts_url(password_user.url("Not-the-Pw-9"), read_only_mariadb.port)
    runs = [
        cli("doctor", url, "--role", "primary", "--debug", "--connect-timeout", "1"),
        cli("doctor", url, "--json", "--connect-timeout", "1"),
        cli("doctor", wrong, "--json"),  # refused on both hosts
    ]
    assert runs[0].status == 1 and runs[1].status == 1, runs[0].output
    report = json.loads(runs[1].out)
    assert len(report["hosts"]) == 3 and report["url"].startswith(
        f"mysql+pymysql://{password_user.name}:***@"
    )
    assert runs[2].status == 2 and "refused the login" in json.loads(runs[2].out)["error"]
    for run in runs:
        assert password_user.password not in run.output
        assert "Not-the-Pw-9" not in run.output
