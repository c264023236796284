"""``size --workload``: a real SQL file and a real ``module:function`` against MariaDB,
the p99 objective, and the errors for workloads that cannot run."""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, one_error_line, query


@pytest.fixture
def table(mysql: str) -> Iterator[str]:
    """A fresh table the workloads insert into, dropped afterwards."""
    name = f"pw_size_{secrets.token_hex(3)}"
    query(mysql, f"CREATE TABLE {name} (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)")
    try:
        yield name
    finally:
        query(mysql, f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The current directory for the test, where workload modules are written; the
    modules imported from it are forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("pw_load_"):
            del sys.modules[name]


def rows(url: str, table: str, value: int) -> int:
    return int(query(url, f"SELECT COUNT(*) FROM {table} WHERE v = {value}")[0][0])


def test_sql_file_runs_each_request_and_commits(
    cli: Cli, mysql: str, table: str, tmp_path: Path
) -> None:
    workload = tmp_path / "request.sql"
    workload.write_text(
        f"-- what one request does\nINSERT INTO {table} (v) VALUES (1);\n"
        f"SELECT COUNT(*)\n  FROM {table};\n"
    )
    run = cli("size", mysql, "--workload", str(workload), "--concurrency", "2", "--pool-sizes",
              "1,2", "--duration", "2", "--report", str(tmp_path / "r.html"))  # fmt: skip
    assert run.status == 0, run.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["workload"] == "request.sql (2 statement(s))"
    counted = sum(cell["requests"] for cell in data["cells"])
    assert counted > 0
    # Every request counted inserted its row and committed (the first, trial, run was
    # rolled back; requests ending after their measurement commit but do not count).
    assert rows(mysql, table, 1) >= counted


def test_function_workload_and_p99_objective(
    cli: Cli, mysql: str, table: str, module_dir: Path
) -> None:
    name = f"pw_load_{secrets.token_hex(3)}"
    (module_dir / f"{name}.py").write_text(
        "def request(conn):\n"
        "    cursor = conn.cursor()\n"
        f"    cursor.execute('INSERT INTO {table} (v) VALUES (2)')\n"
        "    cursor.close()\n"
    )
    run = cli("size", mysql, "--workload", f"{name}:request", "--concurrency", "2",
              "--pool-sizes", "1,2", "--duration", "2", "--p99", "10s",
              "--report", str(module_dir / "r.html"))  # fmt: skip
    assert run.status == 0, run.output
    data = json.loads((module_dir / "r.json").read_text())
    assert data["workload"] == f"{name}:request"
    assert data["objective"] == {"name": "p99 <= 10000 ms at 2 clients", "p99_target_seconds": 10}
    # Any pool meets 10 s: the smallest measured is recommended.
    smallest = min(c["pool_size"] for c in data["cells"] if c["measured"])
    assert data["recommendation"]["pool_size"] == smallest
    assert "the smallest pool that meets p99 <= 10000 ms at 2 clients" in run.flat
    assert rows(mysql, table, 2) >= sum(cell["requests"] for cell in data["cells"]) > 0


def test_p99_target_not_met(cli: Cli, mysql: str) -> None:
    run = cli("size", mysql, "--query", "SELECT 1", "--concurrency", "1", "--pool-sizes", "1",
              "--duration", "1", "--p99", "1us")  # fmt: skip
    assert run.status == 1, run.output
    assert "recommended:" not in run.out
    assert "NO RECOMMENDATION: no pool size measured meets p99 <= 0.001 ms at 1 client" in (
        run.flat
    )
    assert "the best was pool_size=1 with p99" in run.flat


def test_workloads_that_cannot_run(cli: Cli, mysql: str, module_dir: Path) -> None:
    name = f"pw_load_{secrets.token_hex(3)}"
    (module_dir / f"{name}.py").write_text(
        "LIMIT = 3\n\ndef broken(conn):\n    raise RuntimeError('boom')\n"
    )
    (module_dir / "pw_load_raises.py").write_text("1 / 0\n")
    expected = {
        "pw_load_nowhere:run": "--workload pw_load_nowhere:run: cannot import the module "
        "'pw_load_nowhere': no such module in the current directory",
        f"{name}:missing": f"--workload {name}:missing: the module '{name}' has no 'missing'",
        f"{name}:LIMIT": f"--workload {name}:LIMIT: 'LIMIT' is not callable (its type is int)",
        "pw_load_raises:run": "--workload pw_load_raises:run: importing 'pw_load_raises' "
        "failed: ZeroDivisionError: division by zero",
        "missing.sql": "--workload: no such file 'missing.sql' (give a file of SQL statements, "
        "or module:function",
        f"{name}:broken": f"the workload {name}:broken failed on its first run: RuntimeError: "
        "boom",
    }
    for workload, message in expected.items():
        line = one_error_line(cli("size", mysql, "--workload", workload, "--duration", "5"))
        assert line.startswith(f"poolwarden: {message}"), line
