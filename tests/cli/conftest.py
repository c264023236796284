"""Running the ``poolwarden`` command in tests, against the real servers.

Commands run in-process through :func:`poolwarden.cli.main` (what the ``poolwarden``
script calls), their output captured. Servers that cannot be reached skip the tests
locally and fail them under CI, as everywhere in this suite; so does a missing Chromium.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from poolwarden.cli import main
from poolwarden.cli.target import Target
from tests.conftest import IN_CI, _check, mysql_address, mysql_url, postgres_url


@dataclass
class Run:
    """A finished command: exit status and what it printed."""

    status: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err

    @property
    def flat(self) -> str:
        """stdout with lines joined and runs of blanks made one: wrapping does not matter."""
        return " ".join(self.out.split())


Cli = Callable[..., Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``poolwarden ARGS...`` and return its status and output."""

    def run(*args: str) -> Run:
        status = main(list(args))
        captured = capsys.readouterr()
        return Run(status, captured.out, captured.err)

    return run


@pytest.fixture
def mysql() -> str:
    """The test MariaDB's URL (PyMySQL)."""
    _check("mysql")
    return mysql_url("pymysql")


@pytest.fixture
def postgres() -> str:
    """The test PostgreSQL's URL (psycopg 3)."""
    _check("postgres")
    return postgres_url("psycopg")


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on a fresh connection to ``url`` (outside any pool)."""
    with Target(url).connection() as raw:
        cursor = raw.cursor()
        cursor.execute(sql)
        rows = [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        cursor.close()
        raw.commit()
        return rows


@dataclass
class MySQLUser:
    """A temporary MariaDB account (no admin rights) with a password."""

    name: str
    password: str

    def url(self, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return mysql_address(f"{self.name}:{secret}")


@contextmanager
def mysql_user(admin_url: str, max_connections: int = 0) -> Iterator[MySQLUser]:
    """A new account allowed ``max_connections`` connections (0: no limit of its own),
    dropped afterwards."""
    user = MySQLUser(f"pw_cli_{secrets.token_hex(3)}", f"Pw-{secrets.token_hex(8)}")
    account = f"'{user.name}'@'%'"
    query(
        admin_url,
        f"CREATE USER {account} IDENTIFIED BY '{user.password}' "
        f"WITH MAX_USER_CONNECTIONS {max_connections}",
    )
    try:
        query(admin_url, f"GRANT SELECT ON test.* TO {account}")
        yield user
    finally:
        query(admin_url, f"DROP USER IF EXISTS {account}")


@pytest.fixture
def limited_user(mysql: str) -> Iterator[MySQLUser]:
    """An account allowed 3 connections (``MAX_USER_CONNECTIONS 3``)."""
    with mysql_user(mysql, max_connections=3) as user:
        yield user


@pytest.fixture
def password_user(mysql: str) -> Iterator[MySQLUser]:
    """An ordinary account with a password."""
    with mysql_user(mysql) as user:
        yield user


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium (``scripts/setup.sh --browser`` installs it)."""
    path = shutil.which("chromium")
    if path is None:
        problem = "chromium is not installed (scripts/setup.sh --browser installs it)"
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: a missing browser is a failure, not a skip)")
        pytest.skip(problem)
    return path


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts TCP connections and never says a word, like a server
    that hangs or a firewall that swallows the handshake."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def one_error_line(run: Run) -> str:
    """The single ``poolwarden: ...`` line a failed command prints (asserting it is one)."""
    assert run.status == 2, run.output
    assert run.out == ""
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("poolwarden: ")
    assert "Traceback" not in run.err
    return lines[0]


def table_row(output: str, label: str) -> list[str]:
    """The cells of the row starting with ``label`` in a printed table."""
    import re

    for line in output.splitlines():
        if line.startswith(label):
            return [cell for cell in re.split(r"\s{2,}", line[len(label) :].strip()) if cell]
    raise AssertionError(f"no row {label!r} in:\n{output}")
