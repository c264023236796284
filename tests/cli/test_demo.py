"""``poolwarden demo`` for real, on MariaDB and PostgreSQL, and the entry points."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, MySQLUser, table_row

POOLS = ("QueuePool", "QueuePool+pre_ping", "poolwarden")


def failures(cell: str, of: int = 9) -> int:
    match = re.fullmatch(rf"(\d+) of {of} failed", cell)
    assert match, cell
    return int(match.group(1))


@pytest.mark.parametrize("server", ["mysql", "postgres"])
def test_demo(cli: Cli, server: str, request: pytest.FixtureRequest) -> None:
    # On MariaDB as an ordinary account with a password: no admin rights are needed, and
    # the password shows nowhere.
    user: MySQLUser | None = (
        request.getfixturevalue("password_user") if server == "mysql" else None
    )
    url = user.url() if user else request.getfixturevalue(server)
    began = time.perf_counter()
    run = cli("demo", url)
    took = time.perf_counter() - began
    assert run.status == 0, run.output
    assert took < 60
    if user is not None:
        assert user.password not in run.output and f"{user.name}:***@" in run.out
    assert run.err == ""
    idle_name = "wait_timeout" if server == "mysql" else "idle_session_timeout"
    assert f"[1/5] idle past {idle_name} (1 s, set per session)" in run.out
    for label in ("idle past timeout", "killed connections"):
        plain, pre_ping, warden = (failures(cell) for cell in table_row(run.out, label))
        # The three connections handed out at once were dead: a plain QueuePool passes
        # them on; pre_ping and poolwarden replace them first.
        assert plain == 3, run.out
        assert pre_ping == 0 and warden == 0, run.out
    # Jobs that keep their connections past the idle timeout: only poolwarden checks a
    # connection that never went back to the pool.
    held = [failures(cell, of=3) for cell in table_row(run.out, "held by long jobs")]
    assert held == [3, 3, 0], run.out
    assert table_row(run.out, "leaked connection") == [
        "not reported", "not reported", "reported + line",
    ]  # fmt: skip
    assert table_row(run.out, "pool ran out: error") == [
        "names nobody", "names nobody", "names holder",
    ]  # fmt: skip
    assert table_row(run.out, "errors seen") == ["9", "3", "0"]
    costs = table_row(run.out, "per-request cost")
    assert len(costs) == 3 and all(re.fullmatch(r"\d+ µs \(\d+\.\d\dx\)", c) for c in costs)
    assert costs[0].endswith("(1.00x)")
    # The leak report and the timeout error point at the handler's line.
    assert "it was checked out at demo_app.py:6:handler_that_forgets_to_return" in run.flat
    assert 'File "demo_app.py", line 6, in handler_that_forgets_to_return' in run.out
    assert "conn = engine.connect()" in run.out
    assert "The longest-held connection (#1) has been checked out for" in run.flat
    assert f"done in {took:.0f}" in run.out or "done in" in run.out


def test_the_entry_points(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "poolwarden"
    for command in ([str(script)], [sys.executable, "-m", "poolwarden"]):
        run = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True)
        assert "Usage: poolwarden [OPTIONS] COMMAND [ARGS]..." in run.stdout
        for name in ("demo", "doctor", "size"):
            assert re.search(rf"^  {name}\s+\S", run.stdout, re.MULTILINE), run.stdout


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("demo", "QueuePool with pool_pre_ping=True"),
        ("doctor", "--flask-config FILE"),
        ("size", "--pool-sizes N,N,..."),
    ],
)
def test_help(cli: Cli, command: str, expected: str) -> None:
    run = cli(command, "--help")
    assert run.status == 0 and run.err == ""
    assert run.out.startswith(f"Usage: poolwarden {command} [OPTIONS]")
    assert expected in run.flat
