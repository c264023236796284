"""``poolwarden size`` against the real servers: a bounded load test, its table, its
report (loaded in headless Chromium to see the charts render) and its time budget."""

from __future__ import annotations

import base64
import json
import re
import struct
import subprocess
import time
from pathlib import Path

from tests.cli.conftest import Cli

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


def test_size_on_mariadb_with_report(cli: Cli, mysql: str, tmp_path: Path, chromium: str) -> None:
    page = tmp_path / "out" / "report.html"
    began = time.perf_counter()
    run = cli(
        "size", mysql, "--query", "SELECT 1", "--concurrency", "1,4", "--pool-sizes", "1,2",
        "--duration", "3", "--report", str(page),
    )  # fmt: skip
    wall = time.perf_counter() - began
    assert run.status == 0, run.output
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    # The load test kept to its budget; the rest is connecting, the report and charts.
    assert data["elapsed"] <= 3.0 + 0.25
    assert wall < 3.0 + 6.0
    cells = data["cells"]
    assert sorted((c["pool_size"], c["concurrency"]) for c in cells) == [
        (1, 1), (1, 4), (2, 1), (2, 4),
    ]  # fmt: skip
    assert all(c["requests"] > 0 and c["errors"] == 0 for c in cells)
    for cell in cells:
        assert cell["latency_ms"]["p50"] <= cell["latency_ms"]["p95"] <= cell["latency_ms"]["p99"]
        assert abs(cell["throughput"] - cell["requests"] / cell["seconds"]) < 1
    advice = data["recommendation"]
    assert advice["pool_size"] in (1, 2) and advice["max_overflow"] >= 0
    # The table shows each measurement with the numbers of the JSON report.
    lines = run.out.splitlines()
    rule = next(n for n, line in enumerate(lines) if line.startswith("─"))
    end = next(n for n, line in enumerate(lines) if line.startswith("recommended:"))
    rows = [line.split() for line in lines[rule + 1 : end]]
    assert len(rows) == 4
    printed = {float(row[-7].replace(",", "")) for row in rows}
    assert printed == {float(f"{c['throughput']:.0f}") for c in cells}
    assert f"recommended: pool_size={advice['pool_size']}, max_overflow=" in run.out
    # Charts: PNG files beside the page, the same images embedded in it, rendered.
    html = page.read_text()
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


def test_size_never_runs_longer_than_asked(cli: Cli, mysql: str, tmp_path: Path) -> None:
    # Requests of 0.4 s each: the last ones cannot finish within their measurement; they
    # are not waited for past the budget.
    began = time.perf_counter()
    run = cli(
        "size", mysql, "--query", "SELECT SLEEP(0.4)", "--concurrency", "1,3", "--pool-sizes",
        "1,2", "--duration", "2", "--report", str(tmp_path / "r.html"),
    )  # fmt: skip
    wall = time.perf_counter() - began
    assert run.status == 0, run.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["elapsed"] <= 2.0 + 0.25
    assert wall < 2.0 + 6.0
    # A single request already takes longer than a whole measurement's share of 2 s:
    # it is stopped by the server, and the command says so.
    slow = cli("size", mysql, "--query", "SELECT SLEEP(5)", "--duration", "2",
               "--concurrency", "1", "--pool-sizes", "1")  # fmt: skip
    assert slow.status == 2
    assert "did not finish within the 2 s of --duration" in slow.err


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
