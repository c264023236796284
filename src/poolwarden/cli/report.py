"""``size --report``: a self-contained HTML page (charts embedded as data: URIs), the same
charts as PNG files beside it, and a JSON file that ``doctor --size-report`` reads."""

from __future__ import annotations

import base64
import json
import tempfile
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from .cells import CellResult
from .charts import latency_chart, throughput_chart
from .errors import CommandError
from .recommend import Recommendation
from .size_output import ci_note

__all__ = ["SizeRun", "check_report_path", "check_writable", "report_paths", "write_report"]


@dataclass
class SizeRun:
    """Everything one ``size`` run measured and concluded (the URL without password)."""

    url: str
    server: str
    workload: str
    duration: float
    elapsed: float
    processes: int
    instances: int
    cells: list[CellResult]
    #: None when the measurements do not support one (too many requests failed).
    recommendation: Recommendation | None
    version: str
    started: str
    #: Why there is no recommendation, when there is none.
    withheld: str = ""
    #: Rounds asked for (--rounds) and run (as many as --duration allowed).
    rounds_asked: int = 1
    rounds_run: int = 1
    #: ``throughput`` or the p99 target; the target in seconds.
    objective: str = "throughput"
    p99_target: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON report."""
        skipped = [cell for cell in self.cells if cell.status != "measured"]
        return {
            "tool": f"poolwarden size {self.version}",
            "started": self.started,
            "url": self.url,
            "server": self.server,
            "workload": self.workload,
            "duration": self.duration,
            "elapsed": round(self.elapsed, 3),
            "processes": self.processes,
            "instances": self.instances,
            "objective": {"name": self.objective, "p99_target_seconds": self.p99_target},
            "rounds": {
                "asked": self.rounds_asked,
                "run": self.rounds_run,
                "order": "rotated: pairs of rounds forwards then backwards, each pair "
                "starting further along the grid",
                "ci": "order-statistic confidence interval of the median of the rounds",
                "measurable": "two cells differ only when their intervals do not overlap",
            },
            "recommendation": self.recommendation.as_dict() if self.recommendation else None,
            "no_recommendation": self.withheld or None,
            "skipped": [
                {
                    "pool_size": cell.pool_size,
                    "concurrency": cell.concurrency,
                    "status": cell.status,
                    "reason": cell.skipped or cell.not_measured,
                }
                for cell in skipped
            ],
            "cells": [cell.as_dict() for cell in self.cells],
        }


def report_paths(html_path: Path) -> list[Path]:
    """The files a report at ``html_path`` consists of: the page, its charts, its JSON."""
    stem = html_path.with_suffix("")
    charts = [stem.parent / f"{stem.name}-{name}.png" for name in ("throughput", "p99")]
    return [html_path, *charts, stem.with_suffix(".json")]


def check_report_path(html_path: Path) -> None:
    """CommandError when the report's directory does not exist: a typo there should not
    silently create a new tree of directories."""
    parent = html_path.parent
    if not parent.exists():
        raise CommandError(f"--report: directory '{parent}' does not exist")


def check_writable(html_path: Path) -> None:
    """Raise ``OSError`` unless every file of the report can be written: checked before
    the load test, so that its time is not spent for a report that cannot be saved.
    Leaves existing files as they are (opened to append, nothing written) and creates no
    new ones (a temporary file tries the folder)."""
    for path in report_paths(html_path):
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(path))
        if path.exists():
            path.open("ab").close()
    with tempfile.TemporaryFile(dir=html_path.parent):
        pass


def write_report(run: SizeRun, html_path: Path) -> list[Path]:
    """Write the HTML report, its PNG charts and its JSON; return the paths written."""
    stem = html_path.with_suffix("")
    recommended = run.recommendation.pool_size if run.recommendation else None
    charts = {
        "throughput": ("Throughput against pool size", throughput_chart(run.cells, recommended)),
        "p99": ("p99 latency against pool size", latency_chart(run.cells, recommended)),
    }
    written = []
    for name, (_, png) in charts.items():
        path = stem.parent / f"{stem.name}-{name}.png"
        path.write_bytes(png)
        written.append(path)
    json_path = stem.with_suffix(".json")
    json_path.write_text(json.dumps(run.as_dict(), indent=2) + "\n", encoding="utf-8")
    html_path.write_text(_html(run, charts, stem.name), encoding="utf-8")
    return [html_path, *written, json_path]


STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
code, td { font-family: ui-monospace, monospace; font-size: 0.92em; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.7em; text-align: right; }
th { border-bottom: 1px solid #888; } tr.recommended { background: #eef6e8; }
.advice { background: #f4f7fb; border-left: 4px solid #4a78b5; padding: 0.6em 1em; }
.advice.failed { background: #fbf0f0; border-left-color: #b54a4a; }
tr.unmeasured td { color: #888; } tr.unmeasured td[colspan] { text-align: left; }
figure { margin: 1em 0; } img.chart { max-width: 100%; border: 1px solid #ddd; }
"""

#: After load, each chart records whether it decoded (its natural size) on the element,
#: so a headless browser's DOM dump shows that the charts render.
RENDER_CHECK = """
window.addEventListener("load", function () {
  document.querySelectorAll("img.chart").forEach(function (img) {
    img.setAttribute("data-rendered", img.complete && img.naturalWidth > 0
      ? img.naturalWidth + "x" + img.naturalHeight : "failed");
  });
  document.body.setAttribute("data-charts-checked", "yes");
});
"""


def _row(cell: CellResult, advice: Recommendation | None) -> str:
    marked = advice is not None and (cell.pool_size, cell.concurrency) == (
        advice.pool_size,
        advice.concurrency,
    )
    head = f"<td>{cell.pool_size}</td><td>{cell.concurrency}</td>"
    tail = f"<td>{cell.errors}</td>"
    if cell.skipped:
        why = f"<td colspan=8>skipped: {escape(cell.skipped)}</td>"
        return f"<tr class=unmeasured>{head}{why}<td>-</td></tr>"
    if not cell.measured:
        why = f"<td colspan=8>not measured: {escape(cell.not_measured or '')}</td>"
        return f"<tr class=unmeasured>{head}{why}{tail}</tr>"
    speed, p99 = cell.throughput_interval(), cell.p99_interval()
    values = [
        f"{speed.median:,.0f}",
        f"{speed.low:,.0f}-{speed.high:,.0f}",
        f"{cell.latency_ms.get('p50', 0):.2f}",
        f"{cell.latency_ms.get('p95', 0):.2f}",
        f"{p99.median:.2f}",
        f"{p99.low:.2f}-{p99.high:.2f}",
        f"{cell.wait_ms.get('mean', 0):.2f}",
        f"{cell.wait_share:.0%}",
    ]
    figures = "".join(f"<td>{escape(value)}</td>" for value in values)
    return f"<tr{' class=recommended' if marked else ''}>{head}{figures}{tail}</tr>"


def _advice(run: SizeRun) -> str:
    advice = run.recommendation
    if advice is None:
        return (
            '<div class="advice failed"><p><strong>No recommendation:</strong> '
            f"{escape(run.withheld)}</p></div>"
        )
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in advice.reasons)
    return f"""<div class="advice">
<p><strong>Recommended: <code>pool_size={advice.pool_size},
max_overflow={advice.max_overflow}</code></strong></p>
<ul>{reasons}</ul>
</div>"""


def _html(run: SizeRun, charts: dict[str, tuple[str, bytes]], stem: str) -> str:
    advice = run.recommendation
    rows = "\n".join(
        _row(cell, advice)
        for cell in sorted(run.cells, key=lambda c: (c.concurrency, c.pool_size))
    )
    figures = "\n".join(
        f'<figure><img class="chart" id="chart-{name}" alt="{escape(title)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        f"<figcaption>{escape(title)} ({escape(stem)}-{escape(name)}.png beside this file)"
        "</figcaption></figure>"
        for name, (title, png) in charts.items()
    )
    errors = [cell.first_error for cell in run.cells if cell.first_error]
    error_note = f"<p><strong>Errors:</strong> {escape(errors[0])}</p>" if errors else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>poolwarden size: {escape(run.url)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Pool size for <code>{escape(run.url)}</code></h1>
<p>{escape(run.server)}; workload <code>{escape(run.workload)}</code>; measured
{escape(run.started)} for {run.elapsed:.1f} s (budget {run.duration:g} s) by poolwarden
{escape(run.version)}; objective: {escape(run.objective)}. Each row is one process:
client threads sharing one pool
(max_overflow=0), every request a checkout, the workload, a commit and the return.</p>
{_advice(run)}
{figures}
<h2>Measurements</h2>
<table>
<tr><th>pool_size</th><th>clients</th><th>req/s</th><th>req/s CI</th><th>p50 ms</th>
<th>p95 ms</th><th>p99 ms</th><th>p99 CI</th><th>wait ms</th><th>waiting</th>
<th>errors</th></tr>
{rows}
</table>
<p>{escape(ci_note(run.cells))} {run.rounds_run} of {run.rounds_asked} round(s) asked
for fit in the time. req/s and p99 are medians of the rounds; p50 and p95 are of all
rounds' requests together. Latency includes the wait for a connection; "wait ms" is its
mean and "waiting" its share of the requests' time.</p>
{error_note}
<script>{RENDER_CHECK}</script>
</body>
</html>
"""
