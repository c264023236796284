"""Render ``docs/metrics-dashboard.png``: the Grafana dashboard of
``examples/grafana/poolwarden-dashboard.json``, drawn from a real run.

    .venv/bin/python scripts/render_dashboard.py [--url mysql+pymysql://root@127.0.0.1:3306/test]

A poolwarden engine on the database is put through four phases (steady load; a burst of
more threads than connections, so checkouts wait and a few time out; steady load while
the pool's idle connections are KILLed at the server, so the probe catches them; idle).
A PrometheusCollector is served by ``prometheus_client.start_http_server`` and scraped
over HTTP every half second, as Prometheus would. Each panel's queries are then evaluated
over the scrapes with PromQL's meaning (``rate``, ``sum by``, ``histogram_quantile``) and
drawn with matplotlib in the dashboard's own grid, titles, units and legends. About 30 s.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "examples" / "grafana" / "poolwarden-dashboard.json"
OUTPUT = ROOT / "docs" / "metrics-dashboard.png"
DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/test"

SCRAPE_EVERY = 0.5
#: Grafana's $__rate_interval: four scrape intervals.
RATE_WINDOW = 4 * SCRAPE_EVERY

#: One scrape: when (seconds since the start), and each sample's value by its name and
#: labels.
Labels = frozenset[tuple[str, str]]
Scrape = tuple[float, dict[tuple[str, Labels], float]]


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """PromQL's ``histogram_quantile``: the ``q``-quantile of cumulative ``(le, count)``
    buckets, interpolated linearly inside the bucket it falls in. NaN without data or
    without a ``+Inf`` bucket; a quantile in the ``+Inf`` bucket is the highest finite
    bound, as Prometheus answers."""
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]) or ordered[-1][1] <= 0:
        return math.nan
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for i, (le, count) in enumerate(ordered):
        if count >= rank:
            if math.isinf(le):
                return ordered[i - 1][0]
            if i == 0 and le <= 0:
                return le
            return lower + (le - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = le, count
    return math.nan  # unreachable: the +Inf bucket holds every observation


def rate_at(scrapes: Sequence[Scrape], i: int, key: tuple[str, Labels]) -> float:
    """PromQL's ``rate()`` of one counter at scrape ``i``: its increase per second over
    the :data:`RATE_WINDOW` ending there (without Prometheus's extrapolation to the
    window's edges; NaN until the window holds two scrapes)."""
    t, now = scrapes[i]
    j = i
    # A quarter interval of slack: scrapes drift, and the window should still span four.
    while j > 0 and scrapes[j - 1][0] >= t - RATE_WINDOW - SCRAPE_EVERY / 4:
        j -= 1
    if j == i or key not in now or key not in scrapes[j][1]:
        return math.nan
    return max(now[key] - scrapes[j][1][key], 0.0) / (t - scrapes[j][0])


# -- the panels' queries, the shapes the dashboard uses --------------------------------
_MATCH = r"\{[^}]*\}"  # the $pool filter: every sample here is of the one pool
_SHAPES = {
    "gauge": re.compile(rf"sum by \(([\w, ]+)\) \((\w+){_MATCH}\)"),
    "rate": re.compile(rf"sum by \(([\w, ]+)\) \(rate\((\w+){_MATCH}\[\$__rate_interval\]\)\)"),
    "quantile": re.compile(
        rf"histogram_quantile\(([\d.]+), sum by \(([\w, ]+)\) "
        rf"\(rate\((\w+){_MATCH}\[\$__rate_interval\]\)\)\)"
    ),
}

#: One series of a panel: its labels (for the legend), and a value per scrape.
Series = tuple[dict[str, str], list[float]]


def _parse(expr: str) -> tuple[str, re.Match[str]]:
    for shape, pattern in _SHAPES.items():
        found = pattern.fullmatch(expr)
        if found:
            return shape, found
    raise ValueError(f"render_dashboard.py cannot evaluate {expr!r}")


def evaluate(expr: str, scrapes: Sequence[Scrape]) -> list[Series]:
    """The series ``expr`` gives over ``scrapes``; an expression of a shape not known
    here is an error, so that the picture cannot quietly show something else."""
    shape, found = _parse(expr)
    q = float(found[1]) if shape == "quantile" else 0.0
    by_text, name = found.groups()[-2:]
    by = [label.strip() for label in by_text.split(",") if label.strip() != "le"]
    keys = sorted({key for _, samples in scrapes for key in samples if key[0] == name})
    groups: dict[tuple[str, ...], list[tuple[str, Labels]]] = {}
    for key in keys:
        labels = dict(key[1])
        groups.setdefault(tuple(labels.get(label, "") for label in by), []).append(key)
    out: list[Series] = []
    for group, members in sorted(groups.items()):
        values = []
        for i, (_, samples) in enumerate(scrapes):
            if shape == "gauge":
                values.append(sum(samples.get(k, math.nan) for k in members))
            elif shape == "rate":
                values.append(sum(rate_at(scrapes, i, k) for k in members))
            else:
                per_le: dict[float, float] = {}
                for k in members:
                    le = float(dict(k[1])["le"])
                    per_le[le] = per_le.get(le, 0.0) + rate_at(scrapes, i, k)
                values.append(histogram_quantile(q, list(per_le.items())))
        out.append((dict(zip(by, group, strict=True)), values))
    return out


# -- the run ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Phase:
    """A stretch of load: ``threads`` each checking out, holding for ``hold`` seconds (a
    range) and pausing ``think`` seconds; ``kills`` at these offsets into the phase."""

    name: str
    seconds: float
    threads: int
    hold: tuple[float, float] = (0.005, 0.03)
    think: float = 0.03
    kills: tuple[float, ...] = ()


PHASES = (
    Phase("steady", 7, threads=4),
    # More threads than the pool's 8 connections, each holding longer: checkouts queue,
    # and the slowest of them reach the pool's timeout.
    Phase("burst", 7, threads=24, hold=(0.05, 0.2), think=0.0),
    Phase("server kills", 7, threads=4, kills=(1.0, 4.0)),
    Phase("idle", 3, threads=0),
)
POOL_OPTIONS: dict[str, Any] = {"pool_size": 4, "max_overflow": 4, "pool_timeout": 0.3}


class Load:
    """Worker threads on ``engine`` for one phase at a time, and the connections' server
    ids they have seen (so that only this pool's connections are ever killed)."""

    def __init__(self, engine: Any, seed: int = 7) -> None:
        self.engine = engine
        self.ids: set[int] = set()
        self.errors: dict[str, int] = {}
        self.paused = threading.Event()
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def run(self, phase: Phase, started: float, kill: Callable[[], None]) -> None:
        """Run ``phase`` to its end (``kill()`` at each of its kill offsets)."""
        from sqlalchemy import text

        end = time.monotonic() + phase.seconds
        query = text("SELECT CONNECTION_ID(), SLEEP(:hold)")
        holds = [self._random.uniform(*phase.hold) for _ in range(512)]

        def work(n: int) -> None:
            i = n
            while time.monotonic() < end:
                if self.paused.is_set():
                    time.sleep(0.01)
                    continue
                i += 1
                try:
                    with self.engine.connect() as conn:
                        hold = {"hold": holds[i % len(holds)]}
                        cid = int(conn.execute(query, hold).first()[0])
                    with self._lock:
                        self.ids.add(cid)
                except Exception as exc:  # timeouts are part of the show: count them
                    with self._lock:
                        kind = type(exc).__name__
                        self.errors[kind] = self.errors.get(kind, 0) + 1
                    time.sleep(0.05)  # back off, as a client would
                time.sleep(phase.think)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(phase.threads)]
        for thread in threads:
            thread.start()
        for offset in phase.kills:
            time.sleep(max(0.0, started + offset - time.monotonic()))
            kill()
        time.sleep(max(0.0, end - time.monotonic()))
        for thread in threads:
            thread.join()


def kill_idle(load: Load, admin: Any) -> int:
    """Pause the workers, KILL this pool's connections at the server while they sit idle
    in the pool, wait until the server has closed them, resume. Returns how many."""
    load.paused.set()
    try:
        deadline = time.monotonic() + 2
        while load.engine.pool.stats().in_use and time.monotonic() < deadline:
            time.sleep(0.005)
        cursor = admin.cursor()
        cursor.execute("SELECT id FROM information_schema.processlist")
        alive = {row[0] for row in cursor.fetchall()} & load.ids
        for cid in alive:
            cursor.execute(f"KILL {int(cid)}")
        while alive and time.monotonic() < deadline + 2:
            cursor.execute("SELECT id FROM information_schema.processlist")
            if not {row[0] for row in cursor.fetchall()} & alive:
                break
            time.sleep(0.01)
        return len(alive)
    finally:
        load.paused.clear()


def record(url: str) -> tuple[list[Scrape], list[tuple[float, str]], str]:
    """Run :data:`PHASES` on a pool at ``url`` while scraping its metrics endpoint: the
    scrapes, the phases' start times, and the pool's metric name."""
    import pymysql
    import sqlalchemy
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.parser import text_string_to_metric_families

    from poolwarden.metrics import PrometheusCollector
    from poolwarden.sqlalchemy import WardenPool, create_engine

    engine = create_engine(url, **POOL_OPTIONS)
    registry = CollectorRegistry()
    collector = PrometheusCollector(engine)
    registry.register(collector)
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    endpoint = f"http://127.0.0.1:{server.server_port}/metrics"
    u = sqlalchemy.make_url(url)
    admin = pymysql.connect(
        host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
        database=u.database, autocommit=True,
    )  # fmt: skip
    scrapes: list[Scrape] = []
    done = threading.Event()
    t0 = time.monotonic()

    def scrape_forever() -> None:
        while not done.is_set():
            at = time.monotonic()
            with urllib.request.urlopen(endpoint, timeout=5) as response:
                body = response.read().decode()
            samples = {
                (s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(body)
                for s in family.samples
            }
            scrapes.append((at - t0, samples))
            done.wait(max(0.0, SCRAPE_EVERY - (time.monotonic() - at)))

    scraper = threading.Thread(target=scrape_forever, name="scraper")
    name = collector.names[0]
    load = Load(engine)
    starts: list[tuple[float, str]] = []
    try:
        scraper.start()
        for phase in PHASES:
            started = time.monotonic()
            starts.append((started - t0, phase.name))
            load.run(phase, started, lambda: print(f"killed {kill_idle(load, admin)}"))
        done.set()
        scraper.join()
        print(f"errors seen by the workers: {load.errors or 'none'}")
        pool = engine.pool
        assert isinstance(pool, WardenPool)
        print(pool.stats())
    finally:
        done.set()
        admin.close()
        server.shutdown()
        collector.close()
        engine.dispose()
    return scrapes, starts, name


# -- drawing ---------------------------------------------------------------------------
BACKGROUND, PANEL, BORDER, TEXT, DIM = "#111217", "#181b1f", "#2c3036", "#ccccdc", "#8e8e9e"
#: Grafana's classic palette, and the named colours the dashboard uses.
PALETTE = ("#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A6")
NAMED = {"red": "#F2495C", "green": "#73BF69", "yellow": "#FADE2A", "blue": "#5794F2"}


def legend(template: str, labels: dict[str, str]) -> str:
    """A target's ``legendFormat`` with the series' labels filled in."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template).strip()


def seconds_label(value: float, _: object = None) -> str:
    """An axis tick in seconds as Grafana writes it: µs, ms or s."""
    if value == 0:
        return "0"
    for scale, unit in ((1e-3, "µs"), (1.0, "ms")):
        if abs(value) < scale:
            return f"{value / scale * 1e3:.3g} {unit}"
    return f"{value:.3g} s"


def overrides(panel: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The panel's overrides by refId: ``stack``, ``fill``, ``dash`` and ``color``."""
    out: dict[str, dict[str, Any]] = {}
    for override in panel["fieldConfig"].get("overrides", []):
        if override["matcher"]["id"] != "byFrameRefID":
            continue
        props = out.setdefault(override["matcher"]["options"], {})
        for prop in override["properties"]:
            value = prop["value"]
            if prop["id"] == "custom.stacking":
                props["stack"] = value["mode"] != "none"
            elif prop["id"] == "custom.fillOpacity":
                props["fill"] = value / 100
            elif prop["id"] == "custom.lineStyle":
                props["dash"] = value.get("fill") == "dash"
            elif prop["id"] == "color" and value.get("mode") == "fixed":
                props["color"] = NAMED.get(value["fixedColor"], value["fixedColor"])
    return out


def draw_panel(ax: Any, panel: dict[str, Any], times: list[float], scrapes: list[Scrape],
               starts: Iterable[tuple[float, str]]) -> None:  # fmt: skip
    """One time-series panel: its targets evaluated and drawn as Grafana draws them."""
    import numpy as np
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    defaults = panel["fieldConfig"]["defaults"]
    custom = defaults.get("custom", {})
    stacked = custom.get("stacking", {}).get("mode") == "normal"
    fill = custom.get("fillOpacity", 10) / 100
    special = overrides(panel)
    x = np.array(times)
    base = np.zeros(len(times))
    handles, colors = [], iter(PALETTE)
    for target in panel["targets"]:
        props = special.get(target["refId"], {})
        for labels, values in evaluate(target["expr"], scrapes):
            y = np.array(values, dtype=float)
            color = props.get("color") or next(colors)
            if props.get("stack", stacked):
                # Stacked: each series drawn on top of the ones before it.
                bottom, base = base, base + np.nan_to_num(y)
                top = np.where(np.isnan(y), np.nan, base)
            else:
                bottom, top = np.zeros(len(times)), y
            alpha = props.get("fill", fill)
            if alpha:
                ax.fill_between(x, bottom, top, color=color, alpha=alpha, linewidth=0)
            (line,) = ax.plot(x, top, color=color, linewidth=1.2,
                              linestyle=(0, (4, 3)) if props.get("dash") else "-")  # fmt: skip
            line.set_label(legend(target.get("legendFormat", ""), labels))
            handles.append(line)
    for at, name in starts:
        ax.axvline(at, color="#5794F2", linewidth=0.8, linestyle=(0, (2, 3)), alpha=0.6)
        ax.text(at + 0.2, 1.0, name, transform=ax.get_xaxis_transform(), color="#5794F2",
                fontsize=7, va="top", alpha=0.85)  # fmt: skip
    ax.set_xlim(times[0], times[-1])
    ax.set_ylim(bottom=0)
    top = ax.get_ylim()[1]
    ax.set_ylim(0, top * 1.12 if top > 0 else 1)
    if defaults.get("unit") == "s":
        ax.yaxis.set_major_formatter(FuncFormatter(seconds_label))
    elif defaults.get("decimals") == 0:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda v, _: f"{int(v) // 60:02d}:{int(v) % 60:02d}")
    )
    ax.set_facecolor(PANEL)
    ax.grid(color=TEXT, alpha=0.08, linewidth=0.8)
    ax.tick_params(colors=DIM, labelsize=8, length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4,
              frameon=False, fontsize=8, labelcolor=TEXT, handlelength=1.2)  # fmt: skip


def render(dashboard: dict[str, Any], scrapes: list[Scrape], starts: list[tuple[float, str]],
           pool: str, out: Path) -> None:  # fmt: skip
    """Draw every panel where its gridPos puts it, under a Grafana-like header."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    width, unit, header = 1500, 34.0, 70.0  # pixels: figure, one grid row, the header
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    height = header + rows * unit + 10
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100, facecolor=BACKGROUND)
    fig.text(14 / width, 1 - 26 / height, f"Dashboards  /  {dashboard['title']}",
             color=TEXT, fontsize=13, va="center")  # fmt: skip
    x = 14.0
    for label, value in (("Data source", "Prometheus"), ("Pool", pool)):
        # Grafana's variable pickers: the label in a grey box, the value beside it.
        for text, face in ((label, "#22252b"), (value, BACKGROUND)):
            fig.text(x / width, 1 - 54 / height, f" {text} ", color=TEXT, fontsize=9,
                     va="center", bbox={"facecolor": face, "edgecolor": BORDER})  # fmt: skip
            x += 7.5 * len(text) + 16
        x += 16
    span = f"Last {round(scrapes[-1][0] - scrapes[0][0])} seconds   ·   refresh 30s"
    fig.text(1 - 14 / width, 1 - 54 / height, span, color=DIM, fontsize=9, va="center", ha="right")
    times = [t for t, _ in scrapes]
    col = (width - 8) / 24
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        left, top = 8 + g["x"] * col, header + g["y"] * unit
        w, h = g["w"] * col - 8, g["h"] * unit - 8
        fig.add_artist(FancyBboxPatch(
            (left / width, 1 - (top + h) / height), w / width, h / height,
            boxstyle="round,pad=0,rounding_size=0.003", facecolor=PANEL, edgecolor=BORDER,
            linewidth=0.8, transform=fig.transFigure, zorder=0,
        ))  # fmt: skip
        fig.text((left + 10) / width, 1 - (top + 16) / height, panel["title"], color=TEXT,
                 fontsize=10, fontweight="bold", va="center")  # fmt: skip
        ax = fig.add_axes((
            (left + 52) / width, 1 - (top + h - 48) / height,
            (w - 66) / width, (h - 84) / height,
        ))  # fmt: skip
        draw_panel(ax, panel, times, scrapes, starts)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, facecolor=BACKGROUND)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    """Record a run and render the dashboard from it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"a MySQL/MariaDB URL ({DEFAULT_URL})")
    parser.add_argument("--out", type=Path, default=OUTPUT, help="the PNG to write")
    args = parser.parse_args(argv)
    dashboard = json.loads(DASHBOARD.read_text())
    scrapes, starts, pool = record(args.url)
    render(dashboard, scrapes, starts, pool, args.out)
    print(f"{args.out}: {args.out.stat().st_size // 1024} KB from {len(scrapes)} scrapes")


if __name__ == "__main__":
    main()
