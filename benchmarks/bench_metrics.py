"""What poolwarden.metrics costs an engine request: metrics off, a Prometheus collector
scraped over HTTP, OpenTelemetry's SDK exporting, and both, in one process run.

    python benchmarks/bench_metrics.py            # prints a markdown report (~3.5 minutes)
    python benchmarks/bench_metrics.py --write    # ... and records it in benchmarks/README.md
    python benchmarks/bench_metrics.py --smoke    # a few hundred requests: checks it runs

A request is ``with engine.connect() as c: c.execute(text("SELECT 1"))`` on
``poolwarden.sqlalchemy.create_engine(url, pool_size=16)`` (PyMySQL), in one thread and in
16 threads, and ``async with`` on ``create_async_engine`` (asyncmy) in 16 tasks. The
conditions are switched on the same engine, its connections opened before timing:

- off: nothing attached (the metrics ticker thread is not running);
- Prometheus: a ``PrometheusCollector`` in a ``CollectorRegistry`` served by
  ``prometheus_client.start_http_server`` on loopback, scraped every second by a client
  in another process (as Prometheus would be: its own CPU is not the application's, the
  server thread that answers it is);
- OpenTelemetry: ``instrument(engine, provider)`` with the real SDK, a ``MeterProvider``
  whose ``PeriodicExportingMetricReader`` collects every second into an exporter that
  drops the data (an OTLP exporter's serialising is the exporter's cost, not the pool's);
- both at once.

Each sample attaches its condition, reads the pool once (the first reading takes the old
samples still in the rings, once per pool in production), lets 0.1 s pass, then counts the
requests ending in a 2 s window and the CPU time the whole process spent in it
(``process_time``: the request threads, the ticker, the HTTP server, the SDK's reader)
and the part of it the request threads spent (their own CPU clocks), then detaches. Two
seconds hold two of each one-second event, whatever their phase. Conditions take turns
within each round, the order rotating; figures are medians over rounds, ratios medians
of the per-round ratios against off. The end-to-end ratios move by a few percent with the
machine; the CPU spent outside the request threads, against off's, is what metrics add.

Then the cost of each reading alone, on a sqlite3 pool filled with fresh samples (µs,
medians), and the calls the request thread makes per request with each condition
attached, counted with ``sys.setprofile``: whether metrics add anything to the request
path itself. (Not instructions with callgrind, as bench_instructions.py counts them: the
counts of two processes that differ only in what they imported or in an argument moved by
±1.5% per request here — CPython's dict and attribute-cache lookups landing differently —
which is more than this comparison is about.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pool import record_results, sqlite_factory

import poolwarden

MYSQL = os.environ.get("POOLWARDEN_TEST_MYSQL", "root@127.0.0.1:3306/test")
SIZE = 16
THREADS = 16
CONDITIONS = ("off", "Prometheus", "OpenTelemetry", "both")

#: The scraper, in a process of its own: a GET of the URL every PERIOD seconds, the first
#: half a period after "ready"; one line per scrape on stdout. Every sample starts one
#: (with no URL it only sleeps): starting a process just before a window, or not, moved
#: the window's figures by 2-4% here, more than the metrics do.
SCRAPER = """
import sys, time, urllib.request
url, period = sys.argv[1], float(sys.argv[2])
print("ready", flush=True)
due = time.monotonic() + period / 2
while True:
    time.sleep(max(0.0, due - time.monotonic()))
    if url != "-":
        body = urllib.request.urlopen(url).read()
        print(len(body), flush=True)
    due += period
"""

#: ``count`` scrapes back to back, for the cost of one on the server's side.
BURST = """
import sys, urllib.request
for _ in range(int(sys.argv[2])):
    urllib.request.urlopen(sys.argv[1]).read()
"""


class Settings:
    def __init__(self, smoke: bool, rounds: int | None) -> None:
        self.smoke = smoke
        self.rounds = rounds or (1 if smoke else 8)
        self.seconds = 0.1 if smoke else 2.0  # window per sample
        self.settle = 0.02 if smoke else 0.1  # after attaching, before the window
        self.period = 0.04 if smoke else 1.0  # scrape and export interval
        self.readings = 5 if smoke else 60  # repeats per reading cost


# --- the conditions -------------------------------------------------------------------


def null_exporter() -> Any:
    """An OpenTelemetry metric exporter that counts exports and drops them."""
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

    class NullExporter(MetricExporter):
        def __init__(self) -> None:
            super().__init__()
            self.exports = 0

        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **_: Any) -> Any:
            self.exports += 1
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **_: Any) -> None:
            pass

    return NullExporter()


@dataclass
class Scrapes:
    """One HTTP server for the whole run; collectors come and go in its registry."""

    registry: Any
    url: str
    server: Any

    @classmethod
    def start(cls) -> Scrapes:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
        return cls(registry, f"http://127.0.0.1:{server.server_port}/metrics", server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Attached:
    """What one sample attached, to detach it after the window."""

    collector: Any = None
    scraper: subprocess.Popen[str] | None = None  # every sample has one
    handle: Any = None
    provider: Any = None
    exporter: Any = None


def attach(condition: str, engine: Any, scrapes: Scrapes, settings: Settings) -> Attached:
    import poolwarden.metrics as metrics

    attached = Attached()
    if condition in ("OpenTelemetry", "both"):
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        attached.exporter = null_exporter()
        reader = PeriodicExportingMetricReader(
            attached.exporter, export_interval_millis=settings.period * 1000
        )
        attached.provider = MeterProvider(metric_readers=[reader])
        attached.handle = metrics.instrument(engine, attached.provider)
        # The first reading takes the rings' old samples and the replay's initial burst
        # (before the collector's first reading, which would leave the burst for later).
        attached.handle.source.read()
    if condition in ("Prometheus", "both"):
        attached.collector = metrics.PrometheusCollector(engine)
        scrapes.registry.register(attached.collector)
        list(attached.collector.collect())  # the first reading, when alone
    # Last, so that its first scrape falls in the window.
    url = scrapes.url if attached.collector is not None else "-"
    attached.scraper = subprocess.Popen(
        [sys.executable, "-c", SCRAPER, url, str(settings.period)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert attached.scraper.stdout is not None
    assert attached.scraper.stdout.readline().strip() == "ready"
    return attached


def detach(attached: Attached, scrapes: Scrapes) -> dict[str, int]:
    """Detach, and say how many scrapes and exports the sample saw."""
    events: dict[str, int] = {}
    assert attached.scraper is not None
    attached.scraper.terminate()
    out, _ = attached.scraper.communicate()
    if attached.collector is not None:
        events["scrapes"] = len(out.split())
        scrapes.registry.unregister(attached.collector)
        attached.collector.close()
    if attached.handle is not None:
        events["exports"] = attached.exporter.exports
        attached.handle.close()
        attached.provider.shutdown()
    return events


# --- the workloads --------------------------------------------------------------------


@dataclass
class Sample:
    """One window: requests ending in it, its length, the CPU time the whole process
    spent in it and the part of that spent by the threads making requests."""

    requests: int
    wall: float
    cpu: float
    own: float


def sync_engine() -> Any:
    from poolwarden.sqlalchemy import create_engine

    engine = create_engine(f"mysql+pymysql://{MYSQL}", pool_size=SIZE)
    held = [engine.connect() for _ in range(SIZE)]  # open every connection first
    for conn in held:
        conn.close()
    return engine


def engine_requests(engine: Any) -> Callable[[int], None]:
    from sqlalchemy import text

    select = text("SELECT 1")

    def run(count: int) -> None:
        for _ in range(count):
            with engine.connect() as conn:
                conn.execute(select)

    return run


def one_thread(engine: Any, settings: Settings) -> Sample:
    request = engine_requests(engine)
    begin = time.perf_counter() + settings.settle
    while time.perf_counter() < begin:
        request(1)
    cpu, own, started = time.process_time(), time.thread_time(), time.perf_counter()
    stop, count, now = started + settings.seconds, 0, started
    while now < stop:
        request(1)
        count += 1
        now = time.perf_counter()
    return Sample(count, now - started, time.process_time() - cpu, time.thread_time() - own)


def many_threads(engine: Any, settings: Settings) -> Sample:
    """THREADS threads, started first and released together; requests ending in the
    window are counted, and the CPU time of the process and of those threads (their
    clocks read from here) over the window."""
    request = engine_requests(engine)
    counts = [0] * THREADS
    errors: list[BaseException] = []
    window: list[float] = []
    release = threading.Barrier(THREADS + 1)
    read = threading.Event()  # a thread's CPU clock goes when it ends: not before this

    def worker(index: int) -> None:
        release.wait()
        begin, stop = window
        count = 0
        try:
            while True:
                request(1)
                now = time.perf_counter()
                if now >= stop:
                    break
                count += now >= begin
        except BaseException as exc:  # reported by the caller, not lost in the thread
            errors.append(exc)
        counts[index] = count
        read.wait()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in workers:
        thread.start()
    clocks = [time.pthread_getcpuclockid(thread.ident or 0) for thread in workers]

    def threads_cpu() -> float:
        return sum(time.clock_gettime(clock) for clock in clocks)

    begin = time.perf_counter() + settings.settle
    window[:] = [begin, begin + settings.seconds]
    release.wait()
    time.sleep(max(0.0, begin - time.perf_counter()))
    cpu, own = time.process_time(), threads_cpu()
    time.sleep(max(0.0, begin + settings.seconds - time.perf_counter()))
    cpu, own = time.process_time() - cpu, threads_cpu() - own
    read.set()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return Sample(sum(counts), settings.seconds, cpu, own)


async def many_tasks(engine: Any, settings: Settings) -> Sample:
    from sqlalchemy import text

    select = text("SELECT 1")
    begin = time.perf_counter() + settings.settle
    stop = begin + settings.seconds

    async def task() -> int:
        count = 0
        while True:
            async with engine.connect() as conn:
                await conn.execute(select)
            now = time.perf_counter()
            if now >= stop:
                return count
            count += now >= begin

    tasks = [asyncio.ensure_future(task()) for _ in range(THREADS)]
    await asyncio.sleep(max(0.0, begin - time.perf_counter()))
    cpu, own = time.process_time(), time.thread_time()  # the event loop's thread
    await asyncio.sleep(max(0.0, stop - time.perf_counter()))
    cpu, own = time.process_time() - cpu, time.thread_time() - own
    return Sample(sum(await asyncio.gather(*tasks)), settings.seconds, cpu, own)


@dataclass
class Results:
    samples: dict[str, list[Sample]]
    events: dict[str, list[dict[str, int]]]


def rounds(
    sample: Callable[[], Sample], engine: Any, scrapes: Scrapes, settings: Settings
) -> Results:
    results = Results({c: [] for c in CONDITIONS}, {c: [] for c in CONDITIONS})
    names = list(CONDITIONS)
    for number in range(settings.rounds):
        shift = number % len(names)
        for condition in names[shift:] + names[:shift]:
            attached = attach(condition, engine, scrapes, settings)
            try:
                results.samples[condition].append(sample())
            finally:
                results.events[condition].append(detach(attached, scrapes))
    return results


def measure_sync(name: str, scrapes: Scrapes, settings: Settings) -> tuple[str, Results]:
    engine = sync_engine()
    try:
        engine_requests(engine)(200)  # warm every code path
        workload = one_thread if name == "1 thread" else many_threads
        return name, rounds(lambda: workload(engine, settings), engine, scrapes, settings)
    finally:
        engine.dispose()


def measure_async(scrapes: Scrapes, settings: Settings) -> tuple[str, Results]:
    from poolwarden.sqlalchemy import create_async_engine

    async def run() -> Results:
        engine = create_async_engine(f"mysql+asyncmy://{MYSQL}", pool_size=SIZE)
        try:
            held = [await engine.connect() for _ in range(SIZE)]
            for conn in held:
                await conn.close()
            loop = asyncio.get_running_loop()
            results = Results({c: [] for c in CONDITIONS}, {c: [] for c in CONDITIONS})
            names = list(CONDITIONS)
            for number in range(settings.rounds):
                shift = number % len(names)
                for condition in names[shift:] + names[:shift]:
                    # Attaching blocks (a subprocess starts): off the loop, outside the window.
                    attached = await loop.run_in_executor(
                        None, attach, condition, engine, scrapes, settings
                    )
                    try:
                        results.samples[condition].append(await many_tasks(engine, settings))
                    finally:
                        events = await loop.run_in_executor(None, detach, attached, scrapes)
                        results.events[condition].append(events)
            return results
        finally:
            await engine.dispose()

    return f"asyncio, {THREADS} tasks", asyncio.run(run())


def table(measured: list[tuple[str, Results]]) -> list[str]:
    rows = [
        "| workload | metrics | µs per request | vs off | process CPU µs per request "
        "| CPU vs off | CPU µs per request outside the request threads | added there, "
        "vs off's CPU per request | scrapes / exports per sample |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def per_request(samples: list[Sample], what: Callable[[Sample], float]) -> list[float]:
        return [what(s) / s.requests * 1e6 for s in samples]

    def wall(s: Sample) -> float:
        return s.wall

    def cpu(s: Sample) -> float:
        return s.cpu

    def other(s: Sample) -> float:
        return s.cpu - s.own

    for workload, results in measured:
        off = results.samples["off"]
        cpu_off = statistics.median(per_request(off, cpu))
        for condition in CONDITIONS:
            samples = results.samples[condition]
            figures = []
            for what in (wall, cpu):
                mine, base = per_request(samples, what), per_request(off, what)
                ratio = statistics.median(a / b for a, b in zip(mine, base, strict=True))
                figures += [f"{statistics.median(mine):.1f}", f"{ratio:.3f}x"]
            mine, base = per_request(samples, other), per_request(off, other)
            added = statistics.median(a - b for a, b in zip(mine, base, strict=True))
            figures += [f"{statistics.median(mine):.2f}", f"{added:+.2f} ({added / cpu_off:+.2%})"]
            events = results.events[condition]
            figures.append(
                " / ".join(
                    f"{statistics.median(e[kind] for e in events):g}" if kind in events[0] else "-"
                    for kind in ("scrapes", "exports")
                )
            )
            rows.append(f"| {workload} | {condition} | " + " | ".join(figures) + " |")
    return rows


# --- the cost of each reading ---------------------------------------------------------


def median_us(op: Callable[[], Any], prepare: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        prepare()
        started = time.perf_counter()
        op()
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def reading_costs(settings: Settings, per_second: int) -> list[str]:
    """µs of each reading, on a sqlite3 pool given ``per_second`` fresh checkouts (one
    second of the 1-thread engine requests) before each."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from prometheus_client import CollectorRegistry, generate_latest, start_http_server

    import poolwarden.metrics as metrics

    pool = poolwarden.Pool(sqlite_factory, pool_size=SIZE, max_overflow=0, reset=None)

    def fresh(n: int = per_second) -> None:
        for _ in range(n):
            pool.putconn(pool.getconn())

    def nothing() -> None:
        pass

    registry = CollectorRegistry()
    collector = metrics.PrometheusCollector(pool)
    registry.register(collector)
    source = metrics.metrics_for(pool)
    try:
        fresh()
        source.read()
        r = settings.readings
        tick = median_us(source.read, fresh, r)
        tick_idle = median_us(source.read, nothing, r)
        collect = median_us(lambda: list(collector.collect()), nothing, r)
        text = median_us(lambda: generate_latest(registry), nothing, r)
        server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
        try:
            url, count = f"http://127.0.0.1:{server.server_port}/metrics", 10 * r
            burst = subprocess.Popen([sys.executable, "-c", BURST, url, str(count)])
            cpu = time.process_time()  # this process's only work meanwhile: answering
            burst.wait()
            http = (time.process_time() - cpu) / count * 1e6
        finally:
            server.shutdown()
            server.server_close()

        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        handle = metrics.instrument(pool, provider)
        try:
            fresh()
            source.read()  # the replay's initial burst
            reader.get_metrics_data()
            otel_collect = median_us(reader.get_metrics_data, nothing, r)
            histogram = handle._bridge.histograms["use_time"]
            attributes = {metrics.POOL_NAME: handle.name}
            record = (
                median_us(
                    lambda: [histogram.record(0.001, attributes) for _ in range(100)], nothing, r
                )
                / 100
            )
        finally:
            handle.close()
            provider.shutdown()
    finally:
        registry.unregister(collector)
        collector.close()
        metrics._source.release(source)
        pool.close()
    replayed = 2 * 250  # use_time and wait_time, at REPLAY_RATE each, in a second
    second = 2 * tick + http + otel_collect + replayed * record
    return [
        "| reading | µs |",
        "|---|---:|",
        f"| ticker reading, {per_second:,} new checkouts | {tick:.0f} |",
        f"| ticker reading, nothing new | {tick_idle:.0f} |",
        f"| Prometheus `collect()` (every family) | {collect:.0f} |",
        f"| Prometheus `generate_latest()` (collect + text format) | {text:.0f} |",
        f"| Prometheus HTTP scrape, process CPU of the server side | {http:.0f} |",
        f"| OpenTelemetry SDK collection (callbacks + aggregation) | {otel_collect:.0f} |",
        f"| OpenTelemetry SDK `Histogram.record()`, one value | {record:.1f} |",
        "",
        f"One second of both at {per_second:,} requests/s (two ticker readings, a scrape, "
        f"a collection, {replayed} values replayed): about {second / 1000:.1f} ms of CPU, "
        f"{second / 1e6:.2%} of a CPU-second.",
    ]


# --- the request path -----------------------------------------------------------------


def calls_per_request(scrapes: Scrapes, settings: Settings) -> list[str]:
    """Python and C function calls the request thread makes per request, counted with
    ``sys.setprofile`` (which sees only the thread that sets it) while each condition is
    attached and its readings run in their own threads."""
    engine = sync_engine()
    run = engine_requests(engine)
    count = 50 if settings.smoke else 300
    counted: dict[str, tuple[float, float]] = {}
    try:
        run(100)
        for condition in CONDITIONS:
            attached = attach(condition, engine, scrapes, settings)
            events = {"call": 0, "c_call": 0}

            def profile(frame: Any, event: str, arg: Any, events: Any = events) -> None:
                if event in events:
                    events[event] += 1

            try:
                run(50)
                sys.setprofile(profile)
                try:
                    run(count)
                finally:
                    sys.setprofile(None)
            finally:
                detach(attached, scrapes)
            counted[condition] = (events["call"] / count, events["c_call"] / count)
    finally:
        engine.dispose()
    off = counted["off"]
    rows = [
        "| metrics | Python calls per request | C calls per request | vs off |",
        "|---|---:|---:|---:|",
    ]
    for condition, (python, c) in counted.items():
        rows.append(
            f"| {condition} | {python:.1f} | {c:.1f} | "
            f"{python - off[0]:+.1f} / {c - off[1]:+.1f} |"
        )
    return rows


# --- the report -----------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few hundred requests each")
    parser.add_argument("--write", action="store_true", help="record in benchmarks/README.md")
    parser.add_argument("--rounds", type=int, help="rounds per workload (default 8)")
    args = parser.parse_args()
    settings = Settings(args.smoke, args.rounds)
    started = time.perf_counter()
    scrapes = Scrapes.start()
    try:
        measured = [
            measure_sync("1 thread", scrapes, settings),
            measure_sync(f"{THREADS} threads", scrapes, settings),
            measure_async(scrapes, settings),
        ]
        calls = calls_per_request(scrapes, settings)
    finally:
        scrapes.stop()
    off = measured[0][1].samples["off"]
    per_second = round(statistics.median(s.requests / s.wall for s in off), -2) or 100
    costs = reading_costs(settings, int(per_second))
    packages = ", ".join(
        f"{n} {version(n)}"
        for n in ("SQLAlchemy", "PyMySQL", "asyncmy", "prometheus_client", "opentelemetry-sdk")
    )
    text = "\n".join(
        [
            f"Run on {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, {packages}, MariaDB on loopback. "
            f"{settings.rounds} rounds of a {settings.seconds:g} s window per condition, "
            f"scrapes and exports every {settings.period:g} s; medians, ratios as medians "
            f"of per-round ratios. The whole run took {time.perf_counter() - started:.0f} s.",
            "",
            "### Engine requests with metrics on (engine.connect(), SELECT 1, close), "
            f"pools of {SIZE}",
            *table(measured),
            "",
            "### The cost of one reading (sqlite3 pool, median µs)",
            *costs,
            "",
            "### The request thread's calls per request (sys.setprofile, 1 thread)",
            *calls,
        ]
    )
    print(text)
    if args.write:
        record_results("bench_metrics", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
