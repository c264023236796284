"""The Grafana dashboard (examples/grafana/poolwarden-dashboard.json) asks only for metrics
and labels poolwarden exports, and scripts/render_dashboard.py computes its panels as
PromQL would. (No server needed.)"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from poolwarden.metrics import METRICS, POOL_NAME, SECONDS_BUCKETS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples" / "grafana" / "poolwarden-dashboard.json"
POOL_LABEL = POOL_NAME.replace(".", "_")
#: What the issue asked the dashboard to show.
TITLES = [
    "Connections by state",
    "Pending requests",
    "Wait time p99",
    "Use time p99",
    "Timeouts/s",
    "Dead connections caught/s",
]
#: PromQL words that look like metric names: keywords and the binary operators' modifiers.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}


def load_script() -> ModuleType:
    """scripts/render_dashboard.py as a module (scripts/ is not a package)."""
    path = ROOT / "scripts" / "render_dashboard.py"
    spec = importlib.util.spec_from_file_location("render_dashboard", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script()


def targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [target for panel in dashboard["panels"] for target in panel["targets"]]


def exported() -> dict[str, set[str]]:
    """Every series name a scrape can hold, with the labels its samples carry."""
    names: dict[str, set[str]] = {}
    for metric in METRICS:
        labels = {POOL_LABEL, *(a.replace(".", "_") for a in metric.attributes)}
        if metric.kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names[metric.prometheus + suffix] = labels | (
                    {"le"} if suffix == "_bucket" else set()
                )
        else:
            names[metric.prometheus] = labels
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers left once strings,
    label matchers, ranges, numbers and grouping clauses are taken out, that are not
    followed by ``(`` (functions and aggregations) and are not keywords."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\b\d+(?:\.\d*)?(?:[eE][+-]?\d+)?\b", "", expr)
    return {
        found[0]
        for found in re.finditer(r"[A-Za-z_:][\w:]*", expr)
        if not expr[found.end() :].lstrip().startswith("(") and found[0] not in KEYWORDS
    }


def label_names(target: dict[str, Any]) -> set[str]:
    """Labels a target groups by, matches on, or puts in its legend."""
    expr = target["expr"]
    used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", " ".join(re.findall(r"\{[^}]*\}", expr))))
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        used |= {label.strip() for label in group.split(",") if label.strip()}
    return used | set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))


def test_metric_names_finds_what_promql_selects() -> None:
    expr = 'histogram_quantile(0.99, sum by (le, x) (rate(a_bucket{x=~"$p"}[5m]))) / 1e3 + b'
    assert metric_names(expr) == {"a_bucket", "b"}
    assert metric_names("sum without (x) (c) > bool 0") == {"c"}


def test_dashboard_is_a_grafana_10_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 38  # Grafana 10.0's
    assert dashboard["title"] and dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    pool = variables["pool"]
    query = f"label_values(db_client_connection_count, {POOL_LABEL})"
    assert pool["type"] == "query" and pool["definition"] == query == pool["query"]["query"]
    assert pool["datasource"]["uid"] == "${DS_PROMETHEUS}"

    assert [panel["title"] for panel in dashboard["panels"]] == TITLES
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(TITLES)
    for panel in dashboard["panels"]:
        assert panel["type"] == "timeseries"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(set(refs)) == len(refs)
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == panel["datasource"]
            # Every query follows the pool picker.
            assert f'{POOL_LABEL}=~"$pool"' in target["expr"], target["expr"]


def test_every_metric_and_label_is_exported(dashboard: dict[str, Any]) -> None:
    """The dashboard cannot drift from poolwarden.metrics.METRICS: each name it selects
    is a series poolwarden exports, and each label it uses is one that series carries."""
    series = exported()
    for target in targets(dashboard):
        names = metric_names(target["expr"])
        assert names, target["expr"]
        assert names <= series.keys(), f"not exported: {names - series.keys()}"
        carried = set().union(*(series[name] for name in names))
        assert label_names(target) <= carried, f"{target['expr']}: {label_names(target) - carried}"
    counters = {m.prometheus for m in METRICS if m.kind == "counter"}
    for target in targets(dashboard):
        # A counter's value is only its rate; a histogram's buckets only through one too.
        for name in metric_names(target["expr"]) & (
            counters | {n for n in series if n.endswith("_bucket")}
        ):
            assert re.search(rf"rate\({name}\{{", target["expr"]), target["expr"]


# -- the script's PromQL ---------------------------------------------------------------
def test_histogram_quantile_interpolates_as_prometheus(script: ModuleType) -> None:
    quantile = script.histogram_quantile
    buckets = [(0.1, 50.0), (0.2, 100.0), (math.inf, 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.75, buckets) == pytest.approx(0.15)
    assert quantile(0.25, buckets) == pytest.approx(0.05)  # the first bucket starts at 0
    assert quantile(0.75, list(reversed(buckets))) == pytest.approx(0.15)  # any order
    # In the +Inf bucket: the highest finite bound.
    assert quantile(0.99, [(0.1, 10.0), (math.inf, 20.0)]) == 0.1
    # No observations, or no +Inf bucket: no answer. Out of range: infinities.
    assert math.isnan(quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]))
    assert math.isnan(quantile(0.5, [(0.1, 3.0), (0.2, 4.0)]))
    assert quantile(1.5, buckets) == math.inf and quantile(-1, buckets) == -math.inf


def test_histogram_quantile_lands_in_the_true_quantiles_bucket(script: ModuleType) -> None:
    """Samples filed into poolwarden's own bucket bounds: the estimate is inside the
    bucket that holds the true quantile."""
    values = [0.0002 * 1.01**i for i in range(800)]  # 0.2 ms to ~0.6 s
    bounds = [*SECONDS_BUCKETS, math.inf]
    buckets = [(le, float(sum(v <= le for v in values))) for le in bounds]
    for q in (0.5, 0.9, 0.99):
        true = sorted(values)[math.ceil(q * len(values)) - 1]
        upper = min(le for le in bounds if le >= true)
        lower = max([0.0, *(le for le in bounds if le < true)])
        assert lower <= script.histogram_quantile(q, buckets) <= upper


def fake_scrapes(script: ModuleType, count: int = 12) -> list[Any]:
    """Scrapes every half second of one pool: gauges at 3, every counter and histogram
    bucket growing by one per scrape per series (2/s), dead_caught with both labels."""
    pool = {POOL_LABEL: "db:3306/shop"}
    scrapes = []
    for i in range(count):
        samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for name, labels in exported().items():
            extra: list[dict[str, str]] = [{}]
            if "db_client_connection_state" in labels:
                extra = [{"db_client_connection_state": s} for s in ("idle", "used")]
            elif "poolwarden_caught_by" in labels:
                extra = [{"poolwarden_caught_by": s} for s in ("probe", "ping")]
            elif "le" in labels:
                extra = [{"le": le} for le in ("0.1", "0.5", "+Inf")]
            elif "error_type" in labels:
                continue  # no connect errors in this run
            for more in extra:
                value = 3.0 if "total" not in name and "bucket" not in name else float(i)
                samples[(name, frozenset({**pool, **more}.items()))] = value
        scrapes.append((i * script.SCRAPE_EVERY, samples))
    return scrapes


def test_rate_at_is_the_increase_per_second_over_the_window(script: ModuleType) -> None:
    scrapes = fake_scrapes(script)
    key = ("db_client_connection_timeouts_total", frozenset({POOL_LABEL: "db:3306/shop"}.items()))
    assert math.isnan(script.rate_at(scrapes, 0, key))  # one scrape is no rate
    assert [script.rate_at(scrapes, i, key) for i in range(1, 12)] == pytest.approx([2.0] * 11)


def test_script_evaluates_every_panel_query(dashboard: dict[str, Any], script: ModuleType) -> None:
    """Each query of the dashboard is one the script knows how to compute, and gives the
    series PromQL would: per state, per caught_by, and quantiles inside the buckets."""
    scrapes = fake_scrapes(script)
    results = {t["expr"]: script.evaluate(t["expr"], scrapes) for t in targets(dashboard)}
    by_title = {
        panel["title"]: [results[t["expr"]] for t in panel["targets"]]
        for panel in dashboard["panels"]
    }
    (states, limit) = by_title["Connections by state"]
    assert [labels["db_client_connection_state"] for labels, _ in states] == ["idle", "used"]
    assert all(values == [3.0] * 12 for _, values in states + limit)
    ((_, timeouts),) = by_title["Timeouts/s"][0]
    assert timeouts[1:] == pytest.approx([2.0] * 11)
    dead = by_title["Dead connections caught/s"][0]
    assert sorted(labels["poolwarden_caught_by"] for labels, _ in dead) == ["ping", "probe"]
    # Each bucket grows alike: every observation is in the first, (0, 0.1].
    ((labels, wait),) = by_title["Wait time p99"][0]
    assert labels == {POOL_LABEL: "db:3306/shop"}
    assert wait[1:] == pytest.approx([0.099] * 11)
    with pytest.raises(ValueError, match="cannot evaluate"):
        script.evaluate("avg(db_client_connection_max)", scrapes)


def test_legend_fills_in_labels(script: ModuleType) -> None:
    labels = {POOL_LABEL: "db:3306/shop", "db_client_connection_state": "idle"}
    template = "{{db_client_connection_pool_name}} {{ db_client_connection_state }}"
    assert script.legend(template, labels) == "db:3306/shop idle"
    assert [script.seconds_label(v) for v in (0, 0.0005, 0.25, 2)] == [
        "0",
        "500 µs",
        "250 ms",
        "2 s",
    ]
