"""``poolwarden size`` against the real servers: a bounded load test, its table, its
report (loaded in headless Chromium to see the charts render) and its time budget."""

from __future__ import annotations

import base64
import json
import re
import statistics
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from poolwarden.cli.target import Target
from tests.cli.conftest import Cli, MySQLUser, one_error_line, table_row
from tests.conftest import MYSQL

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def rendered_charts(chromium: str, page: Path) -> dict[str, str]:
    """Load ``page`` in headless Chromium; each chart's ``data-rendered`` attribute, which
    the page's own script sets after load to the image's decoded size (or "failed")."""
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert 'data-charts-checked="yes"' in dom, dom[-2000:]
    return dict(
        re.findall(r'<img class="chart" id="chart-([a-z0-9]+)"[^>]*?data-rendered="([^"]+)"', dom)
    )


def size_table(output: str) -> dict[tuple[int, int], list[str]]:
    """The rows of size's table by (pool_size, clients): the cells after those two (the
    clients column is blank after a group's first row; ``*`` marks the recommended)."""
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("─")) + 1
    rows: dict[tuple[int, int], list[str]] = {}
    clients = 0
    for line in lines[start:]:
        if not re.match(r"^ +\*?[0-9]+ ", line):
            break
        size_text, rest = line[:9].strip(), line[9:]
        if rest[:9].strip():
            clients = int(rest[:9])
        cells = [cell for cell in re.split(r"\s{2,}", rest[9:].strip()) if cell]
        rows[int(size_text.lstrip("*")), clients] = cells
    return rows


def round_median(cell: dict[str, Any]) -> float:
    """The median of a JSON cell's rounds' throughputs (each rounded to 2 decimals)."""
    return float(statistics.median(r["throughput"] for r in cell["rounds"]))


def test_size_on_mariadb_with_report(cli: Cli, mysql: str, tmp_path: Path, chromium: str) -> None:
    (tmp_path / "out").mkdir()
    page = tmp_path / "out" / "report.html"
    began = time.perf_counter()
    run = cli(
        "size", mysql, "--query", "SELECT 1", "--concurrency", "1,4", "--pool-sizes", "1,2",
        "--duration", "5", "--report", str(page),
    )  # fmt: skip
    wall = time.perf_counter() - began
    assert run.status == 0, run.output
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    # The load test kept to its budget; the rest is connecting, the report and charts.
    assert data["elapsed"] <= 5.0 + 0.25
    assert wall < 5.0 + 6.0
    cells = {(c["pool_size"], c["concurrency"]): c for c in data["cells"]}
    assert sorted(cells) == [(1, 1), (1, 4), (2, 1), (2, 4)]
    # A pool of 2 cannot give 1 client more than 1 connection: skipped, and said why.
    skipped = cells[2, 1]
    assert skipped["status"] == "skipped" and skipped["throughput"] is None
    assert "larger than the 1 client(s)" in skipped["skipped"]
    assert data["skipped"] == [
        {"pool_size": 2, "concurrency": 1, "status": "skipped", "reason": skipped["skipped"]}
    ]
    measured = [cells[1, 1], cells[1, 4], cells[2, 4]]
    # 5 s: every cell's warm-up must fit its share, and connects cost 50 ms of CPU here.
    assert all(c["requests"] > 0 and c["errors"] == 0 for c in measured), run.out
    assert data["rounds"]["asked"] == 5 and 1 <= data["rounds"]["run"] <= 5
    for cell in measured:
        assert cell["latency_ms"]["p50"] <= cell["latency_ms"]["p95"] <= cell["latency_ms"]["p99"]
        # A run the time did not reach is left out: a cell may have a round less.
        assert 1 <= len(cell["rounds"]) <= data["rounds"]["run"]
        # The figure is the median of the rounds (rounded to 2 decimals in the JSON), and
        # its interval holds it.
        assert cell["throughput"] == pytest.approx(round_median(cell), abs=0.011)
        low, high = cell["throughput_ci"]
        assert low <= cell["throughput"] <= high
        assert cell["p99_ci_ms"][0] <= cell["p99_ms"] <= cell["p99_ci_ms"][1]
    advice = data["recommendation"]
    assert advice["pool_size"] in (1, 2) and advice["max_overflow"] >= 0
    assert advice["objective"] == "throughput"
    # The table shows each cell with the numbers of the JSON report, the skipped one with
    # its reason; the throughput is rounded to none there and to 2 decimals in the JSON.
    table = size_table(run.out)
    assert sorted(table) == sorted(cells)
    assert table[2, 1][0:2] == ["skipped", "-"] and table[2, 1][-1] == "pool > clients"
    for key in ((1, 1), (1, 4), (2, 4)):
        row, cell = table[key], cells[key]
        assert abs(float(row[0].replace(",", "")) - cell["throughput"]) <= 0.5 + 0.005
        low, high = (float(x.replace(",", "")) for x in row[1].split("-"))
        assert abs(low - cell["throughput_ci"][0]) <= 0.51
        assert abs(high - cell["throughput_ci"][1]) <= 0.51
    assert f"recommended: pool_size={advice['pool_size']}, max_overflow=" in run.out
    assert "skipped, pools larger than the clients" in run.flat
    assert "pool_size=2 with 1 client" in run.flat
    # Charts: PNG files beside the page, the same images embedded in it, rendered.
    html = page.read_text()
    assert "skipped: pool_size=2 is larger than the 1 client(s)" in html
    for name in ("throughput", "p99"):
        png = (tmp_path / "out" / f"report-{name}.png").read_bytes()
        assert png_size(png) == (700, 420)
        assert base64.b64encode(png).decode() in html
    assert "<script src" not in html and "http" not in html.split("<body>")[1]
    assert rendered_charts(chromium, page) == {"throughput": "700x420", "p99": "700x420"}
    # doctor reads the measured size back.
    doctor = cli(
        "doctor", mysql, "--pool-size", "50", "--size-report", str(page.with_suffix(".json"))
    )
    assert doctor.status == 1, doctor.output
    assert f"larger than the {advice['pool_size']} connections that still added" in doctor.flat


def test_report_directory_must_exist(cli: Cli, mysql: str, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    line = one_error_line(cli("size", mysql, "--query", "SELECT 1", "--report",
                              str(missing / "r.html")))  # fmt: skip
    assert line == f"poolwarden: --report: directory '{missing}' does not exist"
    assert not (tmp_path / "no").exists()


def test_size_never_runs_longer_than_asked(cli: Cli, mysql: str, tmp_path: Path) -> None:
    # Requests of three statements, 0.06 s in all: the last ones cannot finish within their
    # measurement and are not waited for past the budget; the report's charts fit in it.
    workload = tmp_path / "slow.sql"
    workload.write_text("SELECT SLEEP(0.02);\n" * 3)
    began = time.perf_counter()
    run = cli(
        "size", mysql, "--workload", str(workload), "--concurrency", "1,3", "--pool-sizes",
        "1,2", "--duration", "5", "--report", str(tmp_path / "r.html"),
    )  # fmt: skip
    wall = time.perf_counter() - began
    assert run.status == 0, run.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["elapsed"] <= 5.0
    assert wall < 5.0 + 0.5
    # The pool of 2 for 1 client is skipped; every other cell is measured.
    assert [c["status"] for c in data["cells"]].count("measured") == 3
    assert [c["status"] for c in data["cells"]].count("skipped") == 1
    # Five statements of 1.5 s each, 2 s in all: the first run of the workload stops at
    # the budget, not after 7.5 s.
    workload.write_text("SELECT SLEEP(1.5);\n" * 5)
    began = time.perf_counter()
    slow = cli("size", mysql, "--workload", str(workload), "--duration", "2",
               "--concurrency", "1", "--pool-sizes", "1")  # fmt: skip
    assert time.perf_counter() - began < 2.0 + 0.5
    assert slow.status == 2
    # What is left depends on how long connecting and the first statements took.
    assert re.search(r"did not finish within the [0-9.]+ s left of --duration \(2 s\)", slow.err)


def test_cells_skipped_or_not_measured_are_left_out(
    cli: Cli, limited_user: MySQLUser, tmp_path: Path
) -> None:
    # The account may open 3 connections: its fleet budget is 80% of them, 2, so a pool of
    # 8 is skipped. Two held here leave one: the pool of 2 cannot be opened (1203/1226).
    # 6 s: PyMySQL's connects (a TLS context each) took 50 ms of CPU here.
    with Target(limited_user.url()).connection(), Target(limited_user.url()).connection():
        run = cli(
            "size", limited_user.url(), "--query", "SELECT 1", "--pool-sizes", "1,2,8",
            "--concurrency", "2", "--duration", "6", "--report", str(tmp_path / "r.html"),
        )  # fmt: skip
    assert run.status == 0, run.output
    assert table_row(run.out, "        8")[:2] == ["skipped", "-"]
    assert table_row(run.out, "        8")[-1] == "over budget"
    assert table_row(run.out, "        2")[:2] == ["not measured", "-"]
    refused = r"not measured: pool_size=2 with 2 client\(s\): opening its 2 connection\(s\) "
    assert re.search(refused + r"failed: \((1203|1226)\)", run.flat), run.out
    assert "recommended: pool_size=1, max_overflow=0" in run.out
    assert "not measured, so left out: pool_size=2 with 2 clients" in run.flat
    assert "capped by the fleet budget (1 process(es) share 80% of 3 connections" in run.flat
    assert "so skipped: pool_size=8 with 2 clients" in run.flat
    assert "0.00 ms" not in run.out
    data = json.loads((tmp_path / "r.json").read_text())
    cells = {c["pool_size"]: c for c in data["cells"]}
    assert cells[1]["measured"] and cells[1]["throughput"] > 0
    assert cells[2]["status"] == "not measured" and cells[2]["throughput"] is None
    assert cells[8]["status"] == "skipped" and "over the fleet budget" in cells[8]["skipped"]
    assert {c["pool_size"]: c["status"] for c in data["skipped"]} == {
        2: "not measured",
        8: "skipped",
    }
    html = (tmp_path / "r.html").read_text()
    assert "not measured: opening its 2 connection(s) failed" in html
    assert "skipped: over the fleet budget" in html


def test_nothing_measured_is_no_recommendation(cli: Cli, postgres: str) -> None:
    # No request of 0.4 s fits in its share: every cell says so, and nothing is advised.
    run = cli("size", postgres, "--query", "SELECT pg_sleep(0.4)", "--duration", "2",
              "--pool-sizes", "1,2", "--concurrency", "1,3")  # fmt: skip
    assert run.status == 2
    # The pool of 2 for 1 client is skipped, not run.
    assert run.out.count("not measured: pool_size=") == 3 and "recommended" not in run.out
    assert run.err.strip().startswith("poolwarden: no measurement completed a request within")


def test_failed_requests_do_not_count(cli: Cli, mysql: str, tmp_path: Path) -> None:
    # About half the requests fail (error 1242): throughput counts the others only, and
    # with that many failures nothing is recommended.
    sql = "SELECT IF(RAND() < 0.5, 1, (SELECT 1 UNION SELECT 2))"
    report = tmp_path / "r.html"
    run = cli("size", mysql, "--query", sql, "--duration", "3", "--pool-sizes", "1",
              "--concurrency", "2", "--report", str(report))  # fmt: skip
    # The first run of the workload may fail already: then it is reported as such.
    if run.status == 2:
        assert "Subquery returns more than 1 row" in run.err
        return
    assert run.status == 1, run.output
    assert "NO RECOMMENDATION:" in run.out and "recommended:" not in run.out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["recommendation"] is None and "failed" in data["no_recommendation"]
    (cell,) = data["cells"]
    assert cell["errors"] > 0.2 * (cell["requests"] + cell["errors"])
    assert cell["throughput"] == pytest.approx(round_median(cell), abs=0.011)
    line = one_error_line(cli("doctor", mysql, "--size-report", str(report.with_suffix(".json"))))
    assert "holds no recommendation" in line


def test_size_report_never_holds_the_password(
    cli: Cli, password_user: MySQLUser, tmp_path: Path
) -> None:
    where = MYSQL.rpartition("@")[2]  # host:port/database of the test server
    url = f"mysql+pymysql://{password_user.name}@{where}?password={password_user.password}"
    # 3 s: on a slow machine connecting and the first run of the workload can take most of 1 s.
    run = cli("size", url, "--query", "SELECT 1", "--duration", "3", "--pool-sizes", "1",
              "--concurrency", "1", "--report", str(tmp_path / "r.html"), "--debug")  # fmt: skip
    assert run.status == 0, run.output
    assert password_user.password not in run.output
    written = sorted(tmp_path.iterdir())
    assert [path.name for path in written] == ["r-p99.png", "r-throughput.png", "r.html", "r.json"]
    for path in written:
        assert password_user.password.encode() not in path.read_bytes()
    assert json.loads((tmp_path / "r.json").read_text())["url"].endswith("?password=***")


def test_size_on_postgres_with_a_workload_file(cli: Cli, postgres: str, tmp_path: Path) -> None:
    workload = tmp_path / "request.sql"
    workload.write_text(
        "-- what one request does\n"
        "SELECT count(*) FROM pg_class\n  WHERE relkind = 'r';\n"
        "SELECT now();\n"
    )
    run = cli(
        "size", postgres, "--workload", str(workload), "--concurrency", "2", "--pool-sizes",
        "1,2", "--duration", "2", "--processes", "4", "--report", str(tmp_path / "pg.html"),
    )  # fmt: skip
    assert run.status == 0, run.output
    data = json.loads((tmp_path / "pg.json").read_text())
    assert data["workload"] == "request.sql (2 statement(s))"
    assert data["server"].startswith("PostgreSQL ")
    assert all(cell["requests"] > 0 for cell in data["cells"])
    assert data["recommendation"]["budget_per_process"] > 0
    assert "4 process(es) x" in run.flat
