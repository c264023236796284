"""``poolwarden doctor`` against the real servers: the findings it prints for deliberately
bad settings, compared with what the servers report to a direct connection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.cli.conftest import Cli, MySQLUser, one_error_line, query
from tests.conftest import mysql_address, with_port

MYSQL_SETTINGS = (
    "version",
    "wait_timeout (session)",
    "wait_timeout (global)",
    "interactive_timeout",
    "max_connections",
    "max_user_connections (session)",
    "max_user_connections (global)",
    "connect_timeout",
    "net_read_timeout",
    "net_write_timeout",
    "max_statement_time",
    "Threads_connected",
    "Max_used_connections",
    "Aborted_clients",
    "Aborted_connects",
)
POSTGRES_SETTINGS = (
    "max_connections",
    "superuser_reserved_connections",
    "idle_session_timeout",
    "idle_in_transaction_session_timeout",
    "statement_timeout",
    "tcp_keepalives_idle",
    "client backends",
)


def doctor_json(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    run = cli("doctor", *args, "--json")
    assert run.err == ""
    return run.status, json.loads(run.out)


def by_check(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {finding["check"]: finding for finding in report["findings"]}


def server_number(url: str, sql: str) -> int:
    return int(float(query(url, sql)[0][0]))


def test_bad_settings_on_mariadb(cli: Cli, mysql: str) -> None:
    wait_timeout = server_number(mysql, "SELECT @@session.wait_timeout")
    max_connections = server_number(mysql, "SELECT @@max_connections")
    run = cli(
        "doctor", mysql, "--pool-size", "50", "--pool-recycle", "999999", "--processes", "1000"
    )
    assert run.status == 2, run.output
    assert f"ERROR pool_recycle=999999 is not below wait_timeout={wait_timeout}" in run.flat
    assert f"fix: pool_recycle={min(3600, int(wait_timeout * 0.8))}" in run.flat
    assert (
        f"ERROR the fleet may open 60000 connections; the server accepts {max_connections}"
        in run.flat
    )
    assert "1000 process(es) x 1 instance(s) x (pool_size 50 + max_overflow 10) = 60000" in (
        run.flat
    )
    assert "exit status 2" in run.out.splitlines()[-1]
    for name in MYSQL_SETTINGS:
        assert name in run.out


def test_json_for_machines(cli: Cli, mysql: str) -> None:
    status, report = doctor_json(cli, mysql, "--pool-recycle", "999999", "--instances", "2")
    assert status == report["exit_status"] == 2
    assert set(MYSQL_SETTINGS) <= set(report["server"]["settings"])
    assert report["pool"]["fleet_connections"] == 2 * (5 + 10)
    assert report["pool"]["sources"]["pool_size"] == "default"
    findings = by_check(report)
    recycle = findings["recycle"]
    assert recycle["severity"] == "error"
    assert recycle["numbers"] == {
        "wait_timeout": server_number(mysql, "SELECT @@session.wait_timeout"),
        "pool_recycle": 999999,
    }
    assert findings["fleet"]["severity"] == "ok"
    # What the timeouts mean for long queries and held connections (MariaDB's names).
    assert "max_statement_time" in findings["statement-timeout"]["title"]
    assert "net_write_timeout" in findings["net-write-timeout"]["title"]
    assert "net_read_timeout" in findings["net-read-timeout"]["title"]
    assert "closed by the server" in findings["held-idle"]["title"]
    assert report["summary"]["error"] == 1


def test_session_timeouts_from_the_url(cli: Cli, mysql: str) -> None:
    # An init command gives this login's sessions their own limits, as an application's
    # own connect options would; doctor checks against what the session gets.
    init = quote("SET SESSION wait_timeout=60, max_statement_time=5")
    url = f"{mysql}?init_command={init}"
    status, report = doctor_json(cli, url, "--pool-recycle", "120")
    findings = by_check(report)
    assert status == 2
    assert findings["recycle"]["title"] == "pool_recycle=120 is not below wait_timeout=60"
    assert findings["recycle"]["fix"].startswith("pool_recycle=48 ")
    assert findings["session-timeout"]["numbers"]["wait_timeout (session)"] == 60
    statement = findings["statement-timeout"]
    assert statement["title"] == "a query running longer than max_statement_time=5 s is aborted"
    assert "error 1969" in statement["detail"]
    status, report = doctor_json(cli, url, "--pool-recycle", "30")
    assert status == 0 and by_check(report)["recycle"]["severity"] == "ok"


def test_sensible_settings_pass(cli: Cli, mysql: str) -> None:
    run = cli("doctor", mysql, "--pool-size", "5", "--max-overflow", "5", "--pool-recycle", "60")
    assert run.status == 0, run.output
    assert "ERROR" not in run.out and "WARNING" not in run.out
    assert "OK pool_recycle=60 is below wait_timeout=" in run.flat


def test_fleet_near_the_limit_is_a_warning(cli: Cli, mysql: str) -> None:
    limit = server_number(mysql, "SELECT @@max_connections")
    processes = int(limit * 0.9)
    run = cli(
        "doctor", mysql, "--pool-size", "1", "--max-overflow", "0", "--processes", str(processes)
    )
    assert run.status == 1, run.output
    assert f"WARNING the fleet may take {processes} of the server's {limit} connections" in (
        run.flat
    )


def test_per_user_limit(cli: Cli, limited_user: MySQLUser) -> None:
    run = cli("doctor", limited_user.url(), "--pool-size", "2", "--max-overflow", "2")
    assert run.status == 2, run.output
    assert "ERROR the fleet may open 4 connections; max_user_connections allows 3" in run.flat
    assert "1203" in run.out
    assert limited_user.password not in run.output
    assert f"{limited_user.name}:***@" in run.out
    # All 3 connections leave none for anything else: a warning, as for max_connections.
    full = cli("doctor", limited_user.url(), "--pool-size", "2", "--max-overflow", "1")
    assert full.status == 1, full.output
    assert "WARNING the fleet may take 3 of the 3 connections max_user_connections" in full.flat
    fits = cli("doctor", limited_user.url(), "--pool-size", "2", "--max-overflow", "0")
    assert fits.status == 0, fits.output


def test_password_as_a_query_option_is_never_shown(cli: Cli, password_user: MySQLUser) -> None:
    url = mysql_address(password_user.name, query=f"password={password_user.password}")
    run = cli("doctor", url, "--debug")
    assert run.status == 0, run.output
    assert f"at {url.partition('?')[0]}?password=***" in run.flat
    _, report = doctor_json(cli, url)
    assert report["url"].endswith("?password=***")
    for text in (run.output, json.dumps(report)):
        assert password_user.password not in text


def test_json_says_why_it_failed(cli: Cli, mysql: str) -> None:
    run = cli("doctor", with_port(mysql, 1), "--json")
    assert run.status == 2
    report = json.loads(run.out)
    assert report["exit_status"] == 2
    assert report["error"].startswith("cannot connect to ") and "refused" in report["error"]
    assert run.err.startswith("poolwarden: cannot connect to ")


def test_pool_recycle_zero_and_fractions(cli: Cli, mysql: str) -> None:
    run = cli("doctor", mysql, "--pool-recycle", "0", "--pool-size", "1", "--max-overflow", "0")
    assert run.status == 1, run.output
    assert "WARNING pool_recycle=0 reconnects at every checkout" in run.flat
    line = one_error_line(cli("doctor", mysql, "--pool-recycle", "-0.5"))
    assert "Invalid value for '--pool-recycle': -0.5: give -1 (off), 0" in line


def test_flask_config(cli: Cli, mysql: str, tmp_path: Path) -> None:
    uri = f"{mysql}?init_command={quote('SET SESSION wait_timeout=600')}"
    config = tmp_path / "config.py"
    config.write_text(
        f"SQLALCHEMY_DATABASE_URI = {uri!r}\n"
        "SQLALCHEMY_POOL_SIZE = 20\n"
        "SQLALCHEMY_MAX_OVERFLOW = 5\n"
        "SQLALCHEMY_ENGINE_OPTIONS = {'max_overflow': 5}\n"
    )
    status, report = doctor_json(cli, "--flask-config", str(config))
    legacy = [f for f in report["findings"] if f["check"] == "flask-legacy-key"]
    assert [(f["severity"], f["title"].split()[0]) for f in legacy] == [
        ("error", "SQLALCHEMY_POOL_SIZE"),
        ("warning", "SQLALCHEMY_MAX_OVERFLOW"),
    ]
    assert "SQLALCHEMY_ENGINE_OPTIONS = {'pool_size': 20}" in legacy[0]["detail"]
    # Flask-SQLAlchemy gives MySQL engines pool_recycle=7200 when none is configured.
    recycle = by_check(report)["recycle"]
    assert recycle["title"] == "pool_recycle=7200 is not below wait_timeout=600"
    assert report["pool"]["sources"] == {
        "pool_size": "default",
        "max_overflow": "SQLALCHEMY_ENGINE_OPTIONS",
        "pool_recycle": "Flask-SQLAlchemy's MySQL default",
    }
    assert status == 2


def test_broken_flask_config(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "config.py"
    config.write_text("SQLALCHEMY_POOL_SIZE = \n")
    line = one_error_line(cli("doctor", "--flask-config", str(config)))
    assert f"cannot load the Flask config file {config} (line 1): SyntaxError" in line


def test_size_report_sets_the_useful_pool_size(cli: Cli, mysql: str, tmp_path: Path) -> None:
    report = tmp_path / "size.json"
    report.write_text(
        json.dumps({"workload": "SELECT 1", "recommendation": {"pool_size": 3, "max_overflow": 1}})
    )
    run = cli("doctor", mysql, "--pool-size", "8", "--size-report", str(report))
    assert run.status == 1, run.output
    assert (
        "WARNING pool_size=8 is larger than the 3 connections that still added throughput"
        in run.flat
    )
    assert "fix: pool_size=3, max_overflow=1" in run.flat
    report.write_text("{}")
    line = one_error_line(cli("doctor", mysql, "--size-report", str(report)))
    assert "is not a report of 'poolwarden size'" in line


def test_bad_settings_on_postgres(cli: Cli, postgres: str) -> None:
    # libpq's options parameter sets this session's idle and statement timeouts.
    options = quote("-c idle_session_timeout=60000 -c statement_timeout=5000")
    url = f"{postgres}?options={options}"
    max_connections = server_number(postgres, "SHOW max_connections")
    reserved = server_number(postgres, "SHOW superuser_reserved_connections")
    status, report = doctor_json(
        cli, url, "--pool-recycle", "120", "--processes", "1000", "--pool-size", "50"
    )
    assert status == 2
    assert set(POSTGRES_SETTINGS) <= set(report["server"]["settings"])
    findings = by_check(report)
    assert findings["recycle"]["title"] == "pool_recycle=120 is not below idle_session_timeout=60"
    assert findings["fleet"]["title"] == (
        f"the fleet may open 60000 connections; the server accepts {max_connections - reserved}"
    )
    assert "too many clients" in findings["fleet"]["detail"]
    assert "statement_timeout=5 s" in findings["statement-timeout"]["title"]
    assert "57014" in findings["statement-timeout"]["detail"]
    assert "idle_in_transaction_session_timeout" in findings["idle-in-transaction"]["title"]
    run = cli("doctor", url, "--pool-recycle", "30")
    assert run.status == 0, run.output
    assert "OK pool_recycle=30 is below idle_session_timeout=60" in run.flat
