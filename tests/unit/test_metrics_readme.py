"""The README's metrics table is the exported table: every metric, its instrument, unit and
Prometheus name, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from poolwarden.metrics import METRICS

README = Path(__file__).resolve().parents[2] / "README.md"
KINDS = {"updowncounter": "UpDownCounter", "counter": "Counter", "histogram": "Histogram"}


def test_the_readme_lists_every_metric_as_exported() -> None:
    section = README.read_text().split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_.]+)`(.*?) \| (\w+) `([^`]+)` \| `([a-z_]+)", section, re.M)
    assert [row[0] for row in rows] == [metric.name for metric in METRICS]
    for (name, attributes, kind, unit, prometheus), metric in zip(rows, METRICS, strict=True):
        assert kind == KINDS[metric.kind], name
        assert unit == metric.unit, name
        suffix = "_bucket" if metric.kind == "histogram" else ""
        assert prometheus == metric.prometheus + suffix, name
        assert re.findall(r"`(\w+)`", attributes) == [
            attribute.split(".")[-1] for attribute in metric.attributes
        ], name
