"""``poolwarden size``'s load test: client threads on a poolwarden pool, in rounds of one
run per cell (pool size, client count), all within a fixed time budget.

Each cell is measured in several short rounds, the order of the cells rotated from round
to round (see :func:`schedule`), so that a machine's drift (warming up, a neighbour's
load) spreads over all cells instead of favouring those measured first; each cell's
figures are then the medians of its rounds with a confidence interval (:mod:`.noise`).
The pools stay open across the rounds (:mod:`.warm_pools`): a run times requests, not
connects. A pool opened for a run is warmed up within half of the run's fair share of the
time left; the run then measures until its end, the time left shared equally with the
runs still to come. No new request starts after the end, checkouts wait no longer than
it, no further statement of a request starts after it, and each session's statement time
limit is a run's share, so a slow query cannot carry a run past it for long. Only
requests that succeed before the end count, in throughput and latency alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .._sync._pool import Pool
from ..errors import PoolClosed, PoolTimeout
from .cells import CellResult, Round, percentile
from .errors import CommandError, driver_message
from .server_settings import ServerFacts
from .target import Target
from .warm_pools import WarmPools, connection_cap
from .workload import Workload

__all__ = [
    "DEFAULT_ROUNDS",
    "CellResult",
    "percentile",
    "rounds_that_fit",
    "run_cells",
    "schedule",
]

#: Rounds per cell unless --rounds says otherwise: 5 makes the interval of the median the
#: lowest to the highest round (93.75% coverage), and keeps each round of the default
#: 30 s near a third of a second.
DEFAULT_ROUNDS = 5
#: Seconds a run's threads may take to finish after its end before they are left behind
#: (their statement time limit ends them at the server).
GRACE = 0.5
#: Shortest slice of the budget a run (one round of one cell) can be measured in.
MIN_CELL_SECONDS = 0.25
#: Share of a run's slice its warm-up (opening the pool's connections) may take: the rest
#: is left for measuring, whatever the connects cost.
WARMUP_SHARE = 0.5


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
    rounds: list[Round] = field(default_factory=list)
    cut_off: int = 0
    #: Why a run's warm-up failed, if one did.
    warmup_failure: str | None = None


@dataclass(frozen=True)
class _Run:
    """One run's place in the budget."""

    pool_size: int
    concurrency: int
    #: Its fair share of the time left: the warm-up's bound.
    slot: float
    #: Runs still to go, this one included: the time left after its warm-up is shared.
    left: int
    deadline: float


def _run_cell(pools: WarmPools, workload: Workload, run: _Run, samples: _Samples) -> None:
    """One run (round) of a cell; its samples are added to ``samples``."""
    pool = pools.get(run.pool_size, time.perf_counter() + run.slot * WARMUP_SHARE)
    if isinstance(pool, str):
        samples.warmup_failure = samples.warmup_failure or pool
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
    seconds = max(0.0, end - measuring_from)
    latencies = sorted(s for client in clients for s in client.latencies)
    samples.rounds.append(
        Round(
            seconds,
            len(latencies),
            sum(client.errors for client in clients),
            round(percentile(latencies, 0.99) * 1000, 3) if latencies else None,
        )
    )
    samples.seconds += seconds
    samples.cut_off += sum(thread.is_alive() for thread in threads)
    samples.clients += clients


def _summary(cell: CellResult, samples: _Samples) -> CellResult:
    clients = samples.clients
    latencies = sorted(s for client in clients for s in client.latencies)
    waits = sorted(s for client in clients for s in client.waits)
    result = cell
    result.seconds, result.cut_off = samples.seconds, samples.cut_off
    result.rounds = samples.rounds
    result.requests = len(latencies)
    result.errors = sum(client.errors for client in clients)
    result.first_error = next((c.first_error for c in clients if c.first_error), None)
    if not latencies:
        if samples.warmup_failure is not None:
            result.not_measured = samples.warmup_failure
        else:
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


def rounds_that_fit(cells: int, seconds: float, rounds: int) -> int:
    """How many of ``rounds`` rounds of ``cells`` runs fit in ``seconds`` (at least one)."""
    fit = rounds
    while fit > 1 and seconds / (fit * cells) < MIN_CELL_SECONDS:
        fit -= 1
    return fit


def _rotated(grid: list[tuple[int, int]], offset: int) -> list[tuple[int, int]]:
    offset %= len(grid)
    return grid[offset:] + grid[:offset]


def schedule(
    grid: list[tuple[int, int]], seconds: float, rounds: int = DEFAULT_ROUNDS
) -> list[tuple[int, int]]:
    """The order of the runs: as many of ``rounds`` rounds as ``seconds`` allows at
    MIN_CELL_SECONDS a run, each round the whole grid. Rounds come in pairs, forwards then
    backwards (which cancels a steady drift between the cells exactly); each pair starts
    further along the grid, so no cell is always measured first or last."""
    fit = rounds_that_fit(len(grid), seconds, rounds)
    pairs = (fit + 1) // 2
    step = max(1, len(grid) // pairs)
    order: list[tuple[int, int]] = []
    for number in range(fit):
        turn = _rotated(grid, (number // 2) * step)
        order += turn if number % 2 == 0 else turn[::-1]
    return order


def run_cells(
    target: Target,
    workload: Workload,
    facts: ServerFacts,
    cells: list[CellResult],
    deadline: float,
    rounds: int = DEFAULT_ROUNDS,
    on_start: Callable[[int, int, int], None] = lambda size, clients, runs: None,
    on_done: Callable[[], None] = lambda: None,
) -> list[CellResult]:
    """Measure the cells not skipped, in :func:`schedule`'s order, each run in an equal
    share of the time left until ``deadline`` (a ``time.perf_counter()`` value); the last
    ends then. ``on_start`` hears of each run (with the number of runs), ``on_done`` of its
    end. Returns ``cells``, their figures filled in."""
    grid = [(cell.pool_size, cell.concurrency) for cell in cells if cell.skipped is None]
    if not grid:
        return cells
    began = time.perf_counter()
    runs = schedule(grid, deadline - began, rounds)
    if (deadline - began) / len(runs) < MIN_CELL_SECONDS / 2:
        raise CommandError(
            f"no time left for {len(grid)} measurements: connecting, running the workload "
            "once and preparing the report took most of --duration; give a longer --duration"
        )
    pools = WarmPools(target, facts, connection_cap(facts), (deadline - began) / len(runs))
    samples = {cell: _Samples() for cell in grid}
    try:
        # Opening the pools first may take up to half of one round's time: once, not
        # in every round, and with room for a large pool's connects.
        sizes = sorted({size for size, _ in grid})
        pools.open_all(sizes, began + (deadline - began) * WARMUP_SHARE * len(grid) / len(runs))
        for number, (pool_size, concurrency) in enumerate(runs):
            on_start(pool_size, concurrency, len(runs))
            left = len(runs) - number
            slot = max(0.0, deadline - time.perf_counter()) / left
            if slot > 0:
                run = _Run(pool_size, concurrency, slot, left, deadline)
                _run_cell(pools, workload, run, samples[pool_size, concurrency])
            on_done()
    finally:
        pools.close()
    for cell in cells:
        if cell.skipped is None:
            _summary(cell, samples[cell.pool_size, cell.concurrency])
    return cells
