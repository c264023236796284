"""The command's plain parts without a server: doctor's checks, size's recommendation
and statistics, option parsing, workload files, error wording and redaction."""

from __future__ import annotations

from pathlib import Path

import click
import pymysql
import pytest

from poolwarden.cli.checks import SizeAdvice, run_checks, suggest_recycle
from poolwarden.cli.errors import (
    CommandError,
    describe_connect_error,
    passwords_in,
    redact,
)
from poolwarden.cli.findings import Finding, PoolPlan, Severity, exit_status
from poolwarden.cli.flask_config import load_flask_config
from poolwarden.cli.loadtest import CellResult, percentile, schedule
from poolwarden.cli.options import IntList
from poolwarden.cli.recommend import failed_share, recommend
from poolwarden.cli.server_settings import ServerFacts
from poolwarden.cli.workload import Workload


def mariadb(**changes: object) -> ServerFacts:
    facts = ServerFacts(
        kind="mysql",
        product="MariaDB 10.11.19",
        idle_timeout=600.0,
        idle_timeout_name="wait_timeout",
        global_idle_timeout=600.0,
        max_connections=100,
        reserved_connections=0,
        user_limit=None,
        user_limit_name="max_user_connections",
        statement_timeout_name="max_statement_time",
        net_read_timeout=30.0,
        net_write_timeout=60.0,
    )
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


def checks(
    plan: PoolPlan, facts: ServerFacts, advice: SizeAdvice | None = None
) -> dict[str, Finding]:
    return {finding.check: finding for finding in run_checks(plan, facts, advice)}


def test_recycle_against_the_idle_timeout() -> None:
    facts = mariadb()
    assert checks(PoolPlan(pool_recycle=600), facts)["recycle"].severity is Severity.ERROR
    assert checks(PoolPlan(pool_recycle=599), facts)["recycle"].severity is Severity.OK
    unset = checks(PoolPlan(), facts)["recycle"]
    assert unset.severity is Severity.INFO and f"pool_recycle={suggest_recycle(600)}" in unset.fix
    assert suggest_recycle(600) == 480 and suggest_recycle(28800) == 3600
    no_timeout = checks(PoolPlan(pool_recycle=10**6), mariadb(idle_timeout=None))
    assert no_timeout["recycle"].severity is Severity.OK


def test_fleet_against_max_connections() -> None:
    facts = mariadb()
    fits = PoolPlan(pool_size=5, max_overflow=5, processes=8)  # 80 of 100
    assert checks(fits, facts)["fleet"].severity is Severity.OK
    tight = PoolPlan(pool_size=5, max_overflow=5, processes=9)  # 90 of 100
    assert checks(tight, facts)["fleet"].severity is Severity.WARNING
    over = checks(PoolPlan(pool_size=5, max_overflow=10, processes=4, instances=2), facts)
    assert over["fleet"].severity is Severity.ERROR
    assert over["fleet"].numbers["fleet_connections"] == 120
    # 80% of 100 connections over 8 processes: 10 each.
    assert "at most 10 connections per process" in over["fleet"].fix
    assert "pool_size=5, max_overflow=5" in over["fleet"].fix


def test_account_limits_and_reserved_slots() -> None:
    limited = checks(PoolPlan(pool_size=2, max_overflow=2), mariadb(user_limit=3))
    assert limited["user-limit"].severity is Severity.ERROR
    postgres = mariadb(
        kind="postgresql", max_connections=100, reserved_connections=3, database_limit=10
    )
    found = checks(PoolPlan(pool_size=8, max_overflow=0, processes=1), postgres)
    assert found["database-limit"].severity is Severity.OK
    full = checks(PoolPlan(pool_size=10, max_overflow=0, processes=1), postgres)
    assert full["database-limit"].severity is Severity.WARNING
    assert checks(PoolPlan(pool_size=98, max_overflow=0), postgres)["fleet"].severity is (
        Severity.ERROR
    )


def raised_to(fix: str, name: str) -> int:
    """The value a finding's fix says to raise ``name`` to."""
    return int(fix.split(f"raise {name} to at least ")[1].split()[0])


def test_fleet_fix_counts_the_reserved_slots() -> None:
    # 3 x (20 + 10) = 90 on max_connections=100 with 3 reserved: 97 available, 90 > 80%.
    postgres = mariadb(kind="postgresql", max_connections=100, reserved_connections=3)
    plan = PoolPlan(pool_size=20, max_overflow=10, processes=3)
    fleet = checks(plan, postgres)["fleet"]
    assert fleet.severity is Severity.WARNING
    advised = raised_to(fleet.fix, "max_connections")
    assert advised == 116  # ceil(90 / 0.8) + 3
    # Following the advice leaves nothing to warn about; one less is not enough.
    assert (
        checks(plan, mariadb(kind="postgresql", max_connections=advised, reserved_connections=3))[
            "fleet"
        ].severity
        is Severity.OK
    )
    short = mariadb(kind="postgresql", max_connections=advised - 1, reserved_connections=3)
    assert checks(plan, short)["fleet"].severity is Severity.WARNING


def test_account_limit_thresholds_match_the_fleet_check() -> None:
    over = checks(PoolPlan(pool_size=11, max_overflow=0), mariadb(user_limit=10))["user-limit"]
    assert over.severity is Severity.ERROR
    assert "at most 8 connections per process" in over.fix
    advised = raised_to(over.fix, "max_user_connections")
    assert advised == 14
    following = checks(PoolPlan(pool_size=11, max_overflow=0), mariadb(user_limit=advised))
    assert following["user-limit"].severity is Severity.OK
    # Exactly at the limit leaves no room: the warning the fleet check gives there too.
    at_limit = checks(PoolPlan(pool_size=10, max_overflow=0), mariadb(user_limit=10))
    assert at_limit["user-limit"].severity is Severity.WARNING
    assert "raise max_user_connections to at least 13" in at_limit["user-limit"].fix
    assert (
        checks(PoolPlan(pool_size=8, max_overflow=0), mariadb(user_limit=10))[
            "user-limit"
        ].severity
        is Severity.OK
    )


def test_pool_recycle_zero_reconnects_at_every_checkout() -> None:
    found = checks(PoolPlan(pool_recycle=0), mariadb())["recycle"]
    assert found.severity is Severity.WARNING
    assert "every checkout" in found.title and found.fix.startswith("pool_recycle=480 ")
    no_timeout = checks(PoolPlan(pool_recycle=0), mariadb(idle_timeout=None))["recycle"]
    assert no_timeout.severity is Severity.WARNING and "pool_recycle=-1" in no_timeout.fix


def test_statement_limits_by_server() -> None:
    maria = checks(PoolPlan(), mariadb(statement_timeout=5.0))["statement-timeout"]
    assert "1969" in maria.detail and "query running longer" in maria.title
    mysql = mariadb(product="MySQL 8.0.36", statement_timeout=2.5)
    mysql.statement_timeout_name = "max_execution_time"
    found = checks(PoolPlan(), mysql)["statement-timeout"]
    assert "3024" in found.detail and "SELECT running longer than max_execution_time=2.5" in (
        found.title
    )


def test_exit_status_follows_the_worst_finding() -> None:
    facts = mariadb()
    assert exit_status(run_checks(PoolPlan(pool_recycle=60), facts)) == 0
    advice = SizeAdvice(pool_size=2, max_overflow=0, workload="SELECT 1", source="size.json")
    assert exit_status(run_checks(PoolPlan(pool_recycle=60), facts, advice)) == 1
    assert exit_status(run_checks(PoolPlan(pool_recycle=600), facts)) == 2


def cell(size: int, clients: int, throughput: float, p99: float = 1.0) -> CellResult:
    result = CellResult(size, clients, seconds=1.0, requests=int(throughput))
    result.latency_ms = {"p50": p99 / 2, "p95": p99 * 0.9, "p99": p99}
    return result


def test_recommendation_smallest_size_near_peak_and_overflow_for_bursts() -> None:
    cells = [
        cell(1, 1, 1000), cell(2, 1, 1300), cell(4, 1, 900),  # 2 and 4 cannot help 1 client
        cell(1, 8, 2000, p99=9.0), cell(2, 8, 3800, p99=5.0),
        cell(4, 8, 3900, p99=3.0), cell(8, 8, 4000, p99=2.9),
    ]  # fmt: skip
    advice = recommend(cells, mariadb())
    # 3800 is within 5% of the peak 4000; 4 connections bring p99 within 5% of the best.
    assert (advice.pool_size, advice.max_overflow, advice.concurrency) == (2, 2, 8)
    assert advice.budget_per_process == 80
    # A fleet of 30 processes may open 80% of 100 connections: 2 each.
    capped = recommend(cells, mariadb(), processes=10, instances=3)
    assert (capped.pool_size, capped.max_overflow) == (2, 0)
    assert any("capped" in reason for reason in capped.reasons)


def test_recommendation_leaves_out_cells_not_measured() -> None:
    unmeasured = CellResult(32, 32, seconds=0.0, not_measured="opening connection 4 failed")
    empty = CellResult(8, 32, seconds=1.0)  # no request finished in time: p99 "0"
    empty.latency_ms = {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    cells = [cell(1, 32, 5000, p99=6.0), cell(4, 32, 5100, p99=5.0), empty, unmeasured]
    advice = recommend(cells, mariadb())
    # max_overflow comes from the measured p99s, not from a cell's missing figures.
    assert (advice.pool_size, advice.max_overflow) == (1, 3)
    assert not any("0.00 ms" in reason for reason in advice.reasons)
    assert "not measured, so left out: pool_size=8 with 32 clients, pool_size=32" in (
        " ".join(advice.reasons)
    )
    with pytest.raises(ValueError, match="no measured cell"):
        recommend([empty, unmeasured], mariadb())
    assert unmeasured.as_dict()["throughput"] is None and not unmeasured.as_dict()["measured"]


def test_failed_share_counts_requests_that_ended() -> None:
    ok, failing = cell(1, 1, 97), cell(2, 1, 0)
    failing.errors = 3
    assert failed_share([ok, failing]) == pytest.approx(0.03)
    assert failed_share([]) == 0.0


def test_percentile_nearest_rank() -> None:
    values = sorted(float(n) for n in range(1, 101))
    assert (percentile(values, 0.5), percentile(values, 0.99)) == (50.0, 99.0)
    assert percentile([7.0], 0.99) == 7.0 and percentile([], 0.5) == 0.0


def test_int_list_option() -> None:
    kind = IntList(1, 64, "1,4")
    assert kind.convert("16, 1,4,4", None, None) == [1, 4, 16]
    for bad in ("0", "1,x", "", "65", "-1"):
        with pytest.raises(click.BadParameter, match="expected whole numbers from 1 to 64"):
            kind.convert(bad, None, None)


def test_workload_file(tmp_path: Path) -> None:
    path = tmp_path / "w.sql"
    path.write_text("-- comment\nSELECT a\n  FROM t;\nUPDATE t SET a = 1;\nSELECT 2\n")
    assert Workload.from_file(str(path)).statements == (
        "SELECT a\n  FROM t",
        "UPDATE t SET a = 1",
        "SELECT 2",
    )
    path.write_text("-- nothing\n")
    with pytest.raises(CommandError, match="holds no SQL statement"):
        Workload.from_file(str(path))


def test_flask_config_values(tmp_path: Path) -> None:
    path = tmp_path / "config.py"
    path.write_text(
        "import os\nSQLALCHEMY_DATABASE_URI = 'mysql+pymysql://u@h/db'\n"
        "SQLALCHEMY_POOL_TIMEOUT = 5\nlowercase = 1\n"
    )
    config = load_flask_config(str(path))
    assert config.uri == "mysql+pymysql://u@h/db" and "lowercase" not in config.values
    assert config.pool_setting("pool_recycle", "mysql") == 7200
    assert config.pool_setting("pool_recycle", "postgresql") is None
    assert [f.title.split()[0] for f in config.findings] == ["SQLALCHEMY_POOL_TIMEOUT"]
    with pytest.raises(CommandError, match="cannot read the Flask config file"):
        load_flask_config(str(tmp_path / "missing.py"))


def test_passwords_are_found_and_hidden() -> None:
    for url in ("mysql://u:p%40ss@h/db", "mysql://u:p%40ss@h:bad/db", "weird://u:p%40ss@x"):
        assert "p@ss" in passwords_in(url) and "p%40ss" in passwords_in(url)
        assert redact(f"failed: {url} (p@ss)", passwords_in(url)) == (
            f"failed: {url.replace('p%40ss', '***')} (***)"
        )
    assert passwords_in("mysql://u@h/db") == set()
    # Passwords given as query options, in a URL that parses and in one that does not.
    for url in ("mysql://u@h/db?charset=utf8&password=p%40ss", "mysql://u@h:bad/db?PWD=p%40ss"):
        assert {"p@ss", "p%40ss"} <= passwords_in(url)
        assert "p@ss" not in redact(f"{url} said p@ss", passwords_in(url))
    assert {"k1", "k2"} <= passwords_in("postgresql://u:k1@h/db?sslpassword=k2")


def test_connect_errors_are_named() -> None:
    where = "mysql+pymysql://u:***@h/db"
    timed_out = pymysql.err.OperationalError(2003, "Can't connect to MySQL server (timed out)")
    assert "no answer in time" in describe_connect_error(timed_out, where)
    refused = pymysql.err.OperationalError(1045, "Access denied for user 'u'@'h'")
    assert describe_connect_error(refused, where) == (
        f"cannot connect to {where}: the server refused the login (wrong user name or "
        "password?): (1045) Access denied for user 'u'@'h'"
    )
    full = pymysql.err.OperationalError(1040, "Too many connections")
    assert "out of connection slots" in describe_connect_error(full, where)


def test_schedule_measures_twice_in_both_directions_when_time_allows() -> None:
    grid = [(1, 1), (2, 1), (1, 4)]
    assert schedule(grid, 1.5) == grid + grid[::-1]  # 0.25 s per run
    assert schedule(grid, 1.4) == grid
