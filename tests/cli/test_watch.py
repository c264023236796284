"""``poolwarden watch`` against a real application's metrics: a poolwarden Pool and an
Engine on the real MariaDB, their PrometheusCollector served over HTTP by
prometheus_client, read once (table and JSON) and live (in a subprocess, through a pipe
and on a pseudo-terminal); its quantile estimate by hand; its errors, and no password."""

from __future__ import annotations

import json
import os
import pty
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from prometheus_client import CollectorRegistry, Counter, start_http_server

import poolwarden
from poolwarden.cli.scrape import PoolSample
from poolwarden.cli.watch_rows import histogram_quantile, pool_rows
from poolwarden.metrics import PrometheusCollector
from poolwarden.sqlalchemy import create_engine
from tests.cli.conftest import Cli, one_error_line, table_row

pytestmark = pytest.mark.timeout(20)

POOLWARDEN = Path(sys.executable).parent / "poolwarden"

JSON_KEYS = {
    "endpoint", "pool", "used", "idle", "max", "pending", "timeouts", "checkouts",
    "wait_p50_seconds", "wait_p99_seconds", "use_p50_seconds", "use_p99_seconds",
    "window", "events",
}  # fmt: skip
EVENT_KEYS = {
    "timeouts", "dead_probe", "dead_ping", "replaced", "lost", "leaks", "invalidations",
    "create_errors",
}  # fmt: skip


@contextmanager
def served(registry: CollectorRegistry) -> Iterator[int]:
    """``registry`` on a free loopback port (the port), shut down afterwards."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class App:
    """An application's pools and the metrics endpoint that serves them."""

    pool: poolwarden.Pool
    engine: sqlalchemy.Engine
    pool_name: str
    engine_name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def time_out(self) -> None:
        """One checkout that times out: the pool's only connection is held meanwhile."""
        with self.pool.connection(), pytest.raises(poolwarden.PoolTimeout):
            self.pool.connection(timeout=0.05).__enter__()


@pytest.fixture
def app(mysql: str) -> Iterator[App]:
    """A Pool of one connection (3 checkouts, one timeout) and an Engine (2 checkouts),
    under names of this test's own, served by one PrometheusCollector."""
    tag = secrets.token_hex(3)
    pool = poolwarden.Pool(mysql, pool_size=1, max_overflow=0)
    engine = create_engine(mysql, pool_size=2, max_overflow=3)
    collector = PrometheusCollector()
    app_names = (f"orders-{tag}", f"reports-{tag}")
    collector.add(pool, name=app_names[0])
    collector.add(engine, name=app_names[1])
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        for _ in range(3):
            with pool.connection() as conn:
                cursor = conn.cursor()
                cursor.execute("SELECT 1")
                cursor.close()
        for _ in range(2):
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
        with served(registry) as port:
            application = App(pool, engine, *app_names, port)
            application.time_out()
            yield application
    finally:
        collector.close()
        pool.close()
        engine.dispose()


def test_once_shows_each_pool(cli: Cli, app: App) -> None:
    run = cli("watch", app.url, "--once")
    assert run.status == 0, run.output
    assert run.err == ""
    lines = run.out.splitlines()
    assert lines[0].startswith(f"{app.url} at ") and "since the pools started" in lines[0]
    assert lines[1].split() == [
        "pool", "used/idle/max", "pending", "wait", "p50", "wait", "p99", "use", "p50",
        "use", "p99", "timeouts", "events", "(total)",
    ]  # fmt: skip
    orders = table_row(run.out, app.pool_name)
    # 1 connection, idle; nobody waiting; wait and use quantiles from 4 checkouts; the
    # timeout in its column and in the events, as a total.
    assert orders[:2] == ["0/1/1", "0"]
    assert all(cell.endswith(" ms") or cell.endswith(" s") for cell in orders[2:6]), orders
    assert orders[6:] == ["1", "1 timeout"]
    reports = table_row(run.out, app.engine_name)
    assert reports[:2] == ["0/1/5", "0"]
    assert reports[6:] == ["0"]  # no events: the cell is empty


def test_once_json_is_what_stats_says(cli: Cli, app: App) -> None:
    run = cli("watch", f"127.0.0.1:{app.port}", "--once", "--json")  # host:port form
    assert run.status == 0, run.output
    rows = {row["pool"]: row for row in json.loads(run.out)}
    assert sorted(rows) == [app.pool_name, app.engine_name]
    for name, stats in (
        (app.pool_name, app.pool.stats()),
        (app.engine_name, app.engine.pool.stats()),  # type: ignore[attr-defined]
    ):
        row = rows[name]
        assert set(row) == JSON_KEYS and set(row["events"]) == EVENT_KEYS
        assert row["endpoint"] == app.url and row["window"] == "total"
        assert (row["used"], row["idle"], row["pending"]) == (
            stats.in_use, stats.idle, stats.waiting
        )  # fmt: skip
        assert row["max"] == stats.pool_size + stats.max_overflow
        assert (row["timeouts"], row["checkouts"]) == (stats.timeouts, stats.checkouts)
        assert row["events"]["timeouts"] == stats.timeouts
        assert row["events"]["dead_probe"] == stats.dead_by_probe == 0
        assert row["events"]["create_errors"] == stats.connect_failures == 0
        assert 0 < row["wait_p50_seconds"] <= row["wait_p99_seconds"] < 5
        assert 0 < row["use_p50_seconds"] <= row["use_p99_seconds"] < 5
    assert rows[app.pool_name]["timeouts"] == 1 and rows[app.pool_name]["checkouts"] == 4
    assert rows[app.engine_name]["timeouts"] == 0 and rows[app.engine_name]["checkouts"] == 2


def test_several_endpoints_get_an_endpoint_column(cli: Cli, app: App) -> None:
    other = f"http://localhost:{app.port}/metrics"
    run = cli("watch", app.url, other, "--once")
    assert run.status == 0, run.output
    assert run.out.splitlines()[1].split()[:2] == ["endpoint", "pool"]
    body = run.out.split("\n", 3)[3]  # after the heading, the titles and the rule
    for endpoint in (app.url, other):
        assert table_row(body, endpoint)[:2] == [app.pool_name, "0/1/1"]


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    # 10 samples up to 1 ms, 20 more up to 10 ms, 10 more up to 100 ms, none above.
    buckets = {0.001: 10, 0.01: 30, 0.1: 40, float("inf"): 40}
    # p50: rank 20 of 40 is the 10th of the 20 in (1 ms, 10 ms]: 1 + 9 * 10/20 = 5.5 ms.
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.0055, rel=1e-12)
    # p99: rank 39.6 is 9.6 of the 10 in (10 ms, 100 ms]: 10 + 90 * 0.96 = 96.4 ms.
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.0964, rel=1e-12)
    # p25: rank 10 is the last of the first bucket, which starts at 0: exactly 1 ms.
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.001, rel=1e-12)
    # The order of the buckets does not matter.
    assert histogram_quantile(0.5, dict(reversed(buckets.items()))) == pytest.approx(0.0055)
    # Rank 9.9 of 10 falls above every finite bound: the largest one (Prometheus's rule).
    assert histogram_quantile(0.99, {1.0: 5, float("inf"): 10}) == 1.0
    # No samples, or no +Inf bucket: no estimate.
    assert histogram_quantile(0.5, {0.1: 0, float("inf"): 0}) is None
    assert histogram_quantile(0.5, {0.1: 3, 1.0: 4}) is None
    with pytest.raises(ValueError, match="q: expected a quantile from 0 to 1"):
        histogram_quantile(1.5, buckets)


def sample(wait: dict[float, float], **values: float) -> PoolSample:
    return PoolSample(values=dict(values), buckets={"wait": dict(wait)})


def test_recent_window_is_the_difference_of_two_scrapes() -> None:
    inf = float("inf")
    before = sample({0.001: 100, 0.01: 100, inf: 100}, timeouts=3, dead_probe=1, leaks=2)
    # Since then: 10 checkouts, all between 1 and 10 ms; 2 dead by probe, 1 timeout.
    now = sample({0.001: 100, 0.01: 110, inf: 110}, timeouts=4, dead_probe=3, leaks=2)
    (row,) = pool_rows("e", {"p": now}, {"p": before})
    assert row.window == "recent"
    # p50 of the window alone: rank 5 of the 10 in (1 ms, 10 ms]: 1 + 9 * 5/10 = 5.5 ms
    # (the cumulative buckets would say 0.55 ms).
    assert row.wait_p50 == pytest.approx(0.0055, rel=1e-12)
    assert row.events_text() == "+1 timeout, +2 dead (probe)"
    assert row.events["leaks"] == 0 and row.events["lost"] is None  # not exported
    assert row.timeouts == 4  # the column is the total
    # A counter that went down was reset (the application restarted): all of it is new.
    (restarted,) = pool_rows("e", {"p": sample({0.001: 2, inf: 2}, timeouts=1)}, {"p": now})
    assert restarted.events_text() == "+1 timeout"
    assert restarted.wait_p50 == pytest.approx(0.0005, rel=1e-12)
    # Without an earlier scrape: totals, without the "+".
    (total,) = pool_rows("e", {"p": now}, None)
    assert total.window == "total" and total.events_text() == "4 timeouts, 3 dead (probe), 2 leaks"


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_endpoint(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    line = one_error_line(cli("watch", url, "--once"))
    assert line == (
        f"poolwarden: cannot fetch {url}: connection refused (is the application running "
        "and serving metrics there?)"
    )


def test_endpoint_without_pool_metrics(cli: Cli) -> None:
    registry = CollectorRegistry()
    Counter("http_requests", "Requests served.", registry=registry).inc()
    with served(registry) as port:
        line = one_error_line(cli("watch", f"127.0.0.1:{port}", "--once"))
    assert line.startswith(
        f"poolwarden: http://127.0.0.1:{port}/metrics serves no poolwarden pool metrics"
    )
    assert "poolwarden.metrics.PrometheusCollector" in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--interval", "0"], "Invalid value for '--interval': 0: expected the seconds between "
         "refreshes, from 0.1 to 3600"),
        (["--interval", "-2"], "Invalid value for '--interval': -2: expected"),
        (["--json"], "--json goes with --once"),
    ],
)  # fmt: skip
def test_bad_options(cli: Cli, args: list[str], says: str) -> None:
    line = one_error_line(cli("watch", "127.0.0.1:9", *args))
    assert says in line


def test_bad_endpoint(cli: Cli) -> None:
    line = one_error_line(cli("watch", "ftp://user:secretpw@example.com/metrics", "--once"))
    assert "Invalid value for 'ENDPOINT': ftp://user:***@example.com/metrics: expected an " in line
    assert "http:// or https://" in line and "secretpw" not in line


def test_no_password_in_any_output(cli: Cli, app: App) -> None:
    url = f"http://user:secretpw@127.0.0.1:{app.port}/metrics"
    shown = f"http://user:***@127.0.0.1:{app.port}/metrics"
    table = cli("watch", url, "--once")
    assert table.status == 0 and table.out.startswith(f"{shown} at "), table.output
    as_json = cli("watch", url, "--once", "--json")
    assert as_json.status == 0 and json.loads(as_json.out)[0]["endpoint"] == shown
    down = f"user:secretpw@127.0.0.1:{free_port()}"
    line = one_error_line(cli("watch", down, "--once"))
    assert "cannot fetch http://user:***@127.0.0.1:" in line
    debug = cli("watch", down, "--once", "--debug")  # the traceback too
    assert debug.status == 2 and "Traceback" in debug.err
    for run in (table, as_json, debug):
        assert "secretpw" not in run.output
    assert "secretpw" not in line


class Reader:
    """Collects what a stream gives, in a thread, until it ends."""

    def __init__(self, read: Callable[[], bytes]) -> None:
        self.text = ""
        self._read = read
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                chunk = self._read()
            except OSError:  # a pty's master reads EIO once the child is gone
                return
            if not chunk:
                return
            self.text += chunk.decode("utf-8", "replace")

    def wait_for(self, condition: Callable[[str], bool], seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while not condition(self.text):
            assert time.monotonic() < deadline, f"timed out; got:\n{self.text[-3000:]}"
            time.sleep(0.02)

    def join(self) -> None:
        self._thread.join(5)


def stop(process: subprocess.Popen[Any]) -> int:
    """Ctrl-C, as a user stops the live view; its exit status."""
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=10)


def test_live_through_a_pipe(app: App) -> None:
    command = [str(POOLWARDEN), "watch", app.url, "--interval", "0.2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    try:
        out = Reader(lambda: os.read(process.stdout.fileno(), 65536))  # type: ignore[union-attr]
        # The first frame: totals since the pools started.
        out.wait_for(lambda text: "since start: 1 timeout" in text)
        assert "latencies and events since the pools started" in out.text
        # A timeout now shows as an event of the next window, then leaves it.
        app.time_out()
        out.wait_for(lambda text: "+1 timeout" in text)
        seen = len(out.text)
        out.wait_for(lambda text: text.count("every 0.2 s", seen) >= 2)
        assert "since the previous refresh" in out.text
        status = stop(process)
    finally:
        process.kill()
        process.wait()
    out.join()
    err = process.stderr.read().decode()
    process.stdout.close()
    process.stderr.close()
    assert status == 0, err
    assert err == ""
    # Each frame printed whole: heading, table, the pools.
    frames = out.text.strip().split("\n\n")
    assert len(frames) >= 3
    for frame in frames:
        assert app.pool_name in frame and app.engine_name in frame, frame
    assert "+1 timeout" not in frames[-1]  # the window moved on


def test_live_on_a_terminal(app: App) -> None:
    master, slave = pty.openpty()
    command = [str(POOLWARDEN), "watch", app.url, "--interval", "0.2"]
    env = {**os.environ, "COLUMNS": "160", "LINES": "40", "TERM": "xterm"}
    process = subprocess.Popen(command, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    assert process.stderr is not None
    try:
        out = Reader(lambda: os.read(master, 65536))
        # rich's Live redraws in place: each refresh writes the view again.
        out.wait_for(lambda text: text.count(app.pool_name) >= 3)
        status = stop(process)
    finally:
        process.kill()
        process.wait()
    out.join()
    os.close(master)
    err = process.stderr.read().decode()
    process.stderr.close()
    assert status == 0, err
    assert err == ""
    assert "\x1b[" in out.text  # cursor movements: drawn in place, not frame after frame
    assert "since the previous refresh" in out.text and app.engine_name in out.text
