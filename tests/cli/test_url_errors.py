"""The command's one-line errors for malformed URLs, unknown URL options and a port that
belongs to the other kind of server: clear, and never a password."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given, settings

from poolwarden import parse_url
from poolwarden.cli import main
from tests.cli.conftest import Cli, one_error_line
from tests.conftest import with_port
from tests.unit.test_url_masking import BROKEN, SECRET, SECRETS, SHAPES


@pytest.mark.parametrize(("shape", "template", "says"), SHAPES, ids=[s[0] for s in SHAPES])
def test_each_malformed_shape(cli: Cli, shape: str, template: str, says: str) -> None:
    line = one_error_line(cli("doctor", template.format(s=SECRET)))
    assert says in line and "malformed database URL" in line
    assert SECRET not in line and "***" in line


def test_the_reported_url(cli: Cli) -> None:
    run = cli("doctor", "mysql+pymysql:/root:hunter2secret@127.0.0.1/test", "--debug")
    assert "hunter2secret" not in run.output
    assert "malformed database URL 'mysql+pymysql:/root:***@127.0.0.1/test'" in run.err


def doctor_output(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["doctor", *args])
    return status, out.getvalue() + err.getvalue()


@settings(max_examples=60, deadline=None)
@given(secret=SECRETS, template=BROKEN)
def test_no_generated_secret_reaches_the_output(secret: str, template: str) -> None:
    for extra in ((), ("--json",), ("--debug",)):
        status, output = doctor_output(template.format(s=secret), *extra)
        assert status == 2
        assert secret not in output
        assert "malformed database URL" in output


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_unknown_mysql_url_option(cli: Cli, mysql: str, driver: str) -> None:
    url = mysql.replace("+pymysql", f"+{driver}") + "?bogus_option=1"
    line = one_error_line(cli("doctor", url))
    assert f"unknown URL option 'bogus_option' for mysql+{driver}; allowed: " in line
    assert "charset" in line and "connect_timeout" in line


def test_unknown_postgres_url_option(cli: Cli, postgres: str) -> None:
    line = one_error_line(cli("doctor", postgres + "?bogus_option=1"))
    assert "unknown URL option 'bogus_option' for postgresql+psycopg; allowed: " in line
    assert "sslmode" in line and "application_name" in line  # libpq's own keywords


def test_postgres_url_at_the_mysql_port(cli: Cli, mysql: str, postgres: str) -> None:
    mysql_port = parse_url(mysql).port or 3306
    line = one_error_line(cli("doctor", with_port(postgres, mysql_port)))
    assert f"port {mysql_port} answers like MySQL (its greeting), not PostgreSQL" in line


def test_mysql_url_at_the_postgres_port(cli: Cli, mysql: str, postgres: str) -> None:
    postgres_port = parse_url(postgres).port or 5432
    url = with_port(mysql, postgres_port)
    line = one_error_line(cli("doctor", url, "--connect-timeout", "1"))
    assert f"port {postgres_port} answers like PostgreSQL, not MySQL" in line
