"""``poolwarden size``'s load test: client threads on a poolwarden pool, one measurement
per pool size and client count, all within a fixed time budget.

Each run first opens its pool's connections (the warm-up, bounded to half of its fair
share of the time left), then measures until its end: the time left after the warm-up,
shared equally with the runs still to come. No new request starts after the end,
checkouts wait no longer than it, no further statement of a request starts after it, and
each session's statement time limit is the run's share, so a slow query cannot carry a run
past it for long. Only requests that succeed before the end count, in throughput and
latency alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._pool import Pool
from ..errors import PoolClosed, PoolTimeout
from .errors import CommandError, driver_message
from .server_settings import ServerFacts
from .target import Target
from .workload import Workload, statement_limit

__all__ = ["CellResult", "percentile", "run_cells", "schedule"]

#: Seconds a run's threads may take to finish after its end before they are left behind
#: (their statement time limit ends them at the server).
GRACE = 0.5
#: Shortest slice of the budget a cell can be measured in.
MIN_CELL_SECONDS = 0.25
#: Share of a run's slice its warm-up (opening the pool's connections) may take: the rest
#: is left for measuring, whatever the connects cost.
WARMUP_SHARE = 0.5
#: Connects a warm-up runs at the same time: enough to open a large pool quickly, few
#: enough not to swamp the server with handshakes.
MAX_CONNECTING = 16


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted ``ordered`` (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class CellResult:
    """One measurement: a pool size, a number of client threads, what they achieved."""

    pool_size: int
    concurrency: int
    seconds: float = 0.0
    #: Requests that succeeded within the measuring window.
    requests: int = 0
    #: Requests that failed within the measuring window.
    errors: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    wait_ms: dict[str, float] = field(default_factory=dict)
    #: Share of the requests' time spent waiting for a connection.
    wait_share: float = 0.0
    first_error: str | None = None
    #: Client threads still busy when the cell's grace period ended.
    cut_off: int = 0
    #: Why the cell has no figures (its warm-up failed, or no request succeeded in time).
    not_measured: str | None = None

    @property
    def measured(self) -> bool:
        """True when the cell's figures may be compared and recommended from."""
        return self.not_measured is None and self.requests > 0

    @property
    def throughput(self) -> float:
        """Successful requests per second within the cell's measuring window."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The cell for the JSON report (figures null when it was not measured)."""
        shown = self.measured
        return {
            "pool_size": self.pool_size,
            "concurrency": self.concurrency,
            "measured": shown,
            "not_measured": None if shown else self.not_measured,
            "seconds": round(self.seconds, 4),
            "requests": self.requests,
            "throughput": round(self.throughput, 2) if shown else None,
            "errors": self.errors,
            "latency_ms": self.latency_ms if shown else None,
            "wait_ms": self.wait_ms if shown else None,
            "wait_share": round(self.wait_share, 4) if shown else None,
            "first_error": self.first_error,
            "cut_off": self.cut_off,
        }


class _Client:
    """One client thread's loop and its samples (kept per thread: no lock while timing)."""

    def __init__(self, pool: Pool, workload: Workload, start: threading.Event, end: float):
        self.pool, self.workload, self.start, self.end = pool, workload, start, end
        self.latencies: list[float] = []
        self.waits: list[float] = []
        self.errors = 0
        self.first_error: str | None = None

    def __call__(self) -> None:
        self.start.wait()
        while True:
            begun = time.perf_counter()
            if begun >= self.end:
                return
            try:
                conn = self.pool.getconn(timeout=self.end - begun)
            except (PoolTimeout, PoolClosed):
                return  # the deadline came while waiting, or the cell ended without us
            got = time.perf_counter()
            failure: str | None = None
            try:
                finished = self.workload.run(conn, self.end)
            except Exception as exc:
                finished, failure = False, driver_message(exc)
            finally:
                conn.close()
            done = time.perf_counter()
            if done > self.end:
                continue  # outside the window: neither its success nor its failure counts
            if failure is not None:
                self.errors += 1
                self.first_error = self.first_error or failure
            elif finished:
                self.latencies.append(done - begun)
                self.waits.append(got - begun)


@dataclass
class _Samples:
    """What the runs of one cell gathered, before it is summed up."""

    seconds: float = 0.0
    clients: list[_Client] = field(default_factory=list)
    cut_off: int = 0
    #: Why a run's warm-up failed, if one did.
    warmup_failure: str | None = None


def _warm_up(pool: Pool, size: int, until: float) -> str | None:
    """Open the pool's ``size`` connections before ``until``; why not, if not.

    Each connection is checked out by a thread of its own and all are held until every
    one is open: checkouts one after another would take a connect's time ``size`` times
    over, and a connection given back early would be reused instead of a new one opened.
    """
    bound = max(0.01, until - time.perf_counter())
    outcomes: list[Any] = [None] * size

    def take(n: int) -> None:
        try:
            outcomes[n] = pool.getconn(timeout=max(0.01, until - time.perf_counter()))
        except Exception as exc:
            outcomes[n] = exc

    threads = [
        threading.Thread(target=take, args=(n,), name=f"poolwarden-warm-up-{n}", daemon=True)
        for n in range(size)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, until - time.perf_counter()) + 0.1)
    opened = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    for conn in opened:
        if conn is not None:
            conn.close()
    failure = next((f for f in failures if not isinstance(f, PoolTimeout)), None)
    failure = failure or next((f.__cause__ for f in failures if f.__cause__), None)
    if failure is None and (failures or None in opened):
        # Out of time with checkouts still waiting (a slow machine): a refused connect
        # meanwhile says more than the time. The pool is this run's own.
        failure = pool._core.last_connect_error
    if failure is not None:  # the connects failed: say what the server said
        return f"opening its {size} connection(s) failed: {driver_message(failure)}"
    if failures or None in opened:
        return (
            f"opening its {size} connection(s) took longer than the {bound:.2f} s its "
            f"warm-up may take ({len(opened) - opened.count(None)} opened): give a longer "
            "--duration"
        )
    return None


@dataclass(frozen=True)
class _Run:
    """One run's place in the budget."""

    pool_size: int
    concurrency: int
    #: Its fair share of the time left: the warm-up's bound and the statement limit.
    slot: float
    #: Runs still to go, this one included: the time left after its warm-up is shared.
    left: int
    deadline: float


def _run_cell(
    target: Target, workload: Workload, facts: ServerFacts, run: _Run, samples: _Samples
) -> None:
    """One run of a cell; its samples are added to ``samples``."""
    opened = time.perf_counter()
    pool = Pool(
        target.text,
        pool_size=run.pool_size,
        max_overflow=0,
        timeout=run.slot,
        max_connecting=min(run.pool_size, MAX_CONNECTING),
        connect_args=target.connect_args(),
        configure=statement_limit(facts, run.slot),
        name=str(target),
    )
    try:
        # Open every connection first, so the measurement times requests, not connects.
        problem = _warm_up(pool, run.pool_size, opened + run.slot * WARMUP_SHARE)
        if problem is not None:
            samples.warmup_failure = samples.warmup_failure or problem
            return
        warm = time.perf_counter()
        end = warm + (run.deadline - warm) / run.left
        start = threading.Event()
        clients = [_Client(pool, workload, start, end) for _ in range(run.concurrency)]
        threads = [
            threading.Thread(target=client, name=f"poolwarden-size-{n}", daemon=True)
            for n, client in enumerate(clients)
        ]
        for thread in threads:
            thread.start()
        measuring_from = time.perf_counter()
        start.set()
        # Stragglers may finish after the run's end, but never after the deadline.
        join_until = min(end + GRACE, run.deadline)
        for thread in threads:
            thread.join(max(0.0, join_until - time.perf_counter()))
        samples.seconds += max(0.0, end - measuring_from)
        samples.cut_off += sum(thread.is_alive() for thread in threads)
        samples.clients += clients
    finally:
        pool.close()


def _summary(pool_size: int, concurrency: int, samples: _Samples) -> CellResult:
    clients = samples.clients
    latencies = sorted(s for client in clients for s in client.latencies)
    waits = sorted(s for client in clients for s in client.waits)
    result = CellResult(pool_size, concurrency, seconds=samples.seconds, cut_off=samples.cut_off)
    result.requests = len(latencies)
    result.errors = sum(client.errors for client in clients)
    result.first_error = next((c.first_error for c in clients if c.first_error), None)
    if samples.warmup_failure is not None:
        result.not_measured = samples.warmup_failure
    elif not latencies:
        result.not_measured = (
            "every request failed"
            if result.errors
            else f"no request finished within the {samples.seconds:.2f} s it was measured for"
        )
    result.latency_ms = {
        name: round(percentile(latencies, share) * 1000, 3)
        for name, share in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
    }
    result.wait_ms = {
        "mean": round(sum(waits) / len(waits) * 1000, 3) if waits else 0.0,
        "p99": round(percentile(waits, 0.99) * 1000, 3),
    }
    result.wait_share = sum(waits) / sum(latencies) if latencies and sum(latencies) else 0.0
    return result


def schedule(grid: list[tuple[int, int]], seconds: float) -> list[tuple[int, int]]:
    """The order of the runs: the grid twice, forwards then backwards, when the time
    allows, so that a machine's drift (warming up, a neighbour's load) does not favour the
    cells measured first; else once."""
    if seconds / (2 * len(grid)) >= MIN_CELL_SECONDS:
        return grid + grid[::-1]
    return list(grid)


def run_cells(
    target: Target,
    workload: Workload,
    facts: ServerFacts,
    grid: list[tuple[int, int]],
    deadline: float,
    on_start: Callable[[int, int, int], None] = lambda size, clients, runs: None,
    on_done: Callable[[], None] = lambda: None,
) -> list[CellResult]:
    """Measure each (pool size, clients) of ``grid``, the runs in :func:`schedule`'s order,
    each in an equal share of the time left until ``deadline`` (a ``time.perf_counter()``
    value); the last ends then. ``on_start`` hears of each run (with the number of runs),
    ``on_done`` of its end."""
    began = time.perf_counter()
    runs = schedule(grid, deadline - began)
    if (deadline - began) / len(runs) < MIN_CELL_SECONDS / 2:
        raise CommandError(
            f"no time left for {len(grid)} measurements: connecting, running the workload "
            "once and preparing the report took most of --duration; give a longer --duration"
        )
    samples = {cell: _Samples() for cell in grid}
    for number, (pool_size, concurrency) in enumerate(runs):
        on_start(pool_size, concurrency, len(runs))
        left = len(runs) - number
        slot = max(0.0, deadline - time.perf_counter()) / left
        if slot > 0:
            run = _Run(pool_size, concurrency, slot, left, deadline)
            _run_cell(target, workload, facts, run, samples[pool_size, concurrency])
        on_done()
    return [_summary(size, clients, samples[size, clients]) for size, clients in grid]
