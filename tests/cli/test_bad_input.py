"""Bad input: one clear line on stderr, exit status 2, no traceback unless --debug, and
never a password."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from poolwarden.cli import main
from tests.cli.conftest import Cli, MySQLUser, one_error_line
from tests.conftest import mysql_address, with_port

SECRET = "Sekr3t-Pw"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql+pymysql//root@127.0.0.1/test", "malformed database URL"),
        (
            f"mysql+pymysql://root:{SECRET}@127.0.0.1:notaport/test",
            "port must be a number 1-65535, got 'notaport'",
        ),
        (f"mysql+nosuch://root:{SECRET}@127.0.0.1/test", "unknown driver 'nosuch' for mysql"),
        (f"oracle://root:{SECRET}@127.0.0.1/test", "unknown database dialect 'oracle'"),
        ("sqlite:///app.db", "has no server to check"),
    ],
)
def test_malformed_or_unsupported_urls(cli: Cli, url: str, expected: str) -> None:
    line = one_error_line(cli("doctor", url))
    assert expected in line
    assert SECRET not in line


def test_missing_driver_names_the_extra(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # as if mysqlclient were not installed
    line = one_error_line(cli("doctor", f"mysql+mysqldb://root:{SECRET}@127.0.0.1:3306/test"))
    assert "needs the 'MySQLdb' module" in line
    assert "pip install 'poolwarden[mysqlclient]'" in line
    assert SECRET not in line


def test_missing_cli_extra_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As if Click were not installed: the command group cannot be imported.
    monkeypatch.delitem(sys.modules, "poolwarden.cli.app")
    monkeypatch.setitem(sys.modules, "click", None)
    assert main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "poolwarden: the command needs the 'click' module, which is not installed; install "
        "the command's extra with: pip install 'poolwarden[cli]'"
    )


@pytest.mark.parametrize("server", ["mysql", "postgres"])
def test_connection_refused(cli: Cli, server: str, request: pytest.FixtureRequest) -> None:
    url = with_port(request.getfixturevalue(server), 1)
    url = url.replace("root@", f"root:{SECRET}@").replace("postgres@", f"postgres:{SECRET}@")
    line = one_error_line(cli("doctor", url))
    assert "cannot connect to" in line and "connection refused" in line.lower()
    assert f":{SECRET}@" not in line and ":***@127.0.0.1:1/" in line


@pytest.mark.parametrize("scheme", ["mysql+pymysql", "mysql+mysqldb", "postgresql+psycopg"])
def test_host_that_never_answers(cli: Cli, silent_port: int, scheme: str) -> None:
    url = f"{scheme}://app:{SECRET}@127.0.0.1:{silent_port}/test"
    line = one_error_line(cli("doctor", url, "--connect-timeout", "1"))
    assert "no answer in time" in line
    assert SECRET not in line


def test_wrong_password_and_unknown_user(cli: Cli, limited_user: MySQLUser) -> None:
    line = one_error_line(cli("doctor", limited_user.url(password=SECRET)))
    assert "the server refused the login (wrong user name or password?)" in line
    assert "(1045) Access denied" in line
    assert SECRET not in line and limited_user.password not in line


def test_wrong_password_as_a_query_option(cli: Cli, limited_user: MySQLUser) -> None:
    url = mysql_address(limited_user.name, query=f"password={SECRET}")
    run = cli("doctor", url, "--debug")
    assert run.status == 2
    line = run.err.splitlines()[-1]
    assert "the server refused the login" in line and "?password=***" in line
    assert SECRET not in run.output


def test_report_that_cannot_be_written_is_refused_first(
    cli: Cli, mysql: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    began = time.perf_counter()
    run = cli(
        "size", mysql, "--query", "SELECT 1", "--duration", "30", "--report",
        str(blocker / "size.html"),
    )  # fmt: skip
    assert time.perf_counter() - began < 5  # refused before the 30 s load test
    line = one_error_line(run)
    assert "Invalid value for '--report': cannot write the report" in line
    (tmp_path / "taken.json").mkdir()  # the JSON beside the page cannot be written
    line = one_error_line(
        cli("size", mysql, "--query", "SELECT 1", "--report", str(tmp_path / "taken.html"))
    )
    assert "cannot write the report" in line and "Is a directory" in line


def test_unknown_role_and_database_on_postgres(cli: Cli, postgres: str) -> None:
    role = one_error_line(cli("doctor", postgres.replace("postgres@", f"nobody:{SECRET}@")))
    assert "refused the login: no such user" in role and 'role "nobody" does not exist' in role
    database = one_error_line(cli("doctor", postgres.replace("/test", "/no_such_db")))
    assert "the database does not exist" in database


def test_unknown_database_on_mariadb(cli: Cli, mysql: str) -> None:
    line = one_error_line(cli("doctor", mysql.replace("/test", "/no_such_db")))
    assert "the database does not exist: (1049) Unknown database 'no_such_db'" in line


@pytest.mark.parametrize("server", ["mysql", "postgres"])
def test_failing_query(cli: Cli, server: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(server)
    line = one_error_line(cli("size", url, "--query", "SELEC 1"))
    assert line.startswith("poolwarden: the query 'SELEC 1' failed: ")
    assert "syntax" in line.lower()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--pool-sizes", "0,x"], "Invalid value for '--pool-sizes': '0,x': expected whole "),
        (["--concurrency", "4,,8"], "Invalid value for '--concurrency'"),
        (["--duration", "-1"], "Invalid value for '--duration': -1.0 is not in the range"),
        (["--duration", "1"], "1 s is too short for 20 measurements"),
        (["--report", "/"], "Invalid value for '--report'"),
    ],
)
def test_invalid_size_options(cli: Cli, mysql: str, args: list[str], expected: str) -> None:
    line = one_error_line(cli("size", mysql, "--query", "SELECT 1", *args))
    assert expected in line
    assert "(see 'poolwarden size --help')" in line


def test_size_needs_exactly_one_workload(cli: Cli, mysql: str, tmp_path: object) -> None:
    assert "give either --query SQL or --workload FILE" in one_error_line(cli("size", mysql))
    both = cli("size", mysql, "--query", "SELECT 1", "--workload", "w.sql")
    assert "give either --query SQL or --workload FILE" in one_error_line(both)


def test_invalid_doctor_options(cli: Cli) -> None:
    line = one_error_line(cli("doctor", "--pool-size", "0"))
    assert "Invalid value for '--pool-size': 0 is not in the range x>=1" in line
    assert "No such command 'nosuch'" in one_error_line(cli("nosuch"))


def test_debug_shows_the_traceback_without_the_password(cli: Cli, mysql: str) -> None:
    url = with_port(mysql.replace("root@", f"root:{SECRET}@"), 1)
    run = cli("doctor", url, "--debug")
    assert run.status == 2
    assert "Traceback (most recent call last)" in run.err
    assert run.err.splitlines()[-1].startswith("poolwarden: cannot connect to")
    assert SECRET not in run.err


def test_demo_on_a_bad_url(cli: Cli) -> None:
    line = one_error_line(cli("demo", "postgresql+psycopg://u:" + SECRET + "@127.0.0.1:1/x"))
    assert "connection refused" in line.lower() and SECRET not in line
