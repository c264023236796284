"""``poolwarden size``'s load test: client threads on a poolwarden pool, one measurement
per pool size and client count, all within a fixed time budget.

Every measurement ("cell") gets an equal slice of the budget and ends at its deadline:
no new request starts after it, checkouts wait no longer than it, and each session's
statement time limit is set to the slice, so a slow query cannot carry a cell past it
for long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._pool import Pool
from ..errors import PoolClosed, PoolTimeout
from .errors import CommandError, describe_query_error, driver_message
from .server_settings import ServerFacts
from .target import Target

__all__ = ["CellResult", "Workload", "percentile", "run_cells", "schedule"]

#: Seconds a cell's threads may take to finish after its deadline before they are left
#: behind (their statement time limit ends them at the server).
GRACE = 0.5
#: Shortest slice of the budget a cell can be measured in.
MIN_CELL_SECONDS = 0.25
#: How the servers say a statement hit its time limit (MariaDB 1969, MySQL 3024,
#: PostgreSQL 57014).
STATEMENT_TIMEOUT_MESSAGES = (
    "max_statement_time exceeded",
    "maximum statement execution time exceeded",
    "statement timeout",
)


@dataclass(frozen=True)
class Workload:
    """What one request runs: SQL statements in order, then a commit."""

    statements: tuple[str, ...]
    label: str

    @classmethod
    def from_query(cls, sql: str) -> Workload:
        """One statement per request."""
        if not sql.strip():
            raise CommandError("--query is empty: give the SQL one request runs")
        return cls((sql.strip(),), sql.strip())

    @classmethod
    def from_file(cls, path: str) -> Workload:
        """Statements separated by ``;`` at the end of a line; ``--`` comment lines are
        skipped."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read the workload file {path}: {exc.strerror}") from None
        lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
        statements: list[str] = []
        current: list[str] = []
        for line in lines:
            current.append(line)
            if line.rstrip().endswith(";"):
                statements.append("\n".join(current).strip().rstrip(";").strip())
                current = []
        statements.append("\n".join(current).strip())
        statements = [sql for sql in statements if sql]
        if not statements:
            raise CommandError(f"the workload file {path} holds no SQL statement")
        return cls(tuple(statements), f"{Path(path).name} ({len(statements)} statement(s))")

    def run(self, conn: Any) -> None:
        """Run the statements on ``conn``, read their rows, commit."""
        cursor = conn.cursor()
        try:
            for sql in self.statements:
                cursor.execute(sql)
                if cursor.description is not None:
                    cursor.fetchall()
        finally:
            cursor.close()
        conn.commit()

    def check(self, raw: Any, limit: float) -> None:
        """Run the workload once on ``raw`` (whose statements are limited to ``limit``
        seconds) and roll back; a failure names the statement."""
        for sql in self.statements:
            cursor = raw.cursor()
            try:
                cursor.execute(sql)
                if cursor.description is not None:
                    cursor.fetchall()
            except Exception as exc:
                if any(text in str(exc).lower() for text in STATEMENT_TIMEOUT_MESSAGES):
                    raise CommandError(
                        f"the statement {sql[:60]!r} did not finish within the {limit:g} s "
                        f"of --duration; the server stopped it: {driver_message(exc)}"
                    ) from exc
                raise CommandError(describe_query_error(exc, sql)) from exc
            finally:
                cursor.close()
        raw.rollback()


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
    requests: int = 0
    errors: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    wait_ms: dict[str, float] = field(default_factory=dict)
    #: Share of the requests' time spent waiting for a connection.
    wait_share: float = 0.0
    first_error: str | None = None
    #: Client threads still busy when the cell's grace period ended.
    cut_off: int = 0

    @property
    def throughput(self) -> float:
        """Requests completed per second within the cell's measuring window."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The cell for the JSON report."""
        return {
            "pool_size": self.pool_size,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 4),
            "requests": self.requests,
            "throughput": round(self.throughput, 2),
            "errors": self.errors,
            "latency_ms": self.latency_ms,
            "wait_ms": self.wait_ms,
            "wait_share": round(self.wait_share, 4),
            "first_error": self.first_error,
            "cut_off": self.cut_off,
        }


class _Client:
    """One client thread's loop and its samples (kept per thread: no lock while timing)."""

    def __init__(self, pool: Pool, workload: Workload, start: threading.Event, end: float):
        self.pool, self.workload, self.start, self.end = pool, workload, start, end
        self.latencies: list[float] = []
        self.waits: list[float] = []
        self.completed = 0
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
            try:
                self.workload.run(conn)
            except Exception as exc:
                self.errors += 1
                if self.first_error is None:
                    self.first_error = driver_message(exc)
            finally:
                conn.close()
            done = time.perf_counter()
            self.latencies.append(done - begun)
            self.waits.append(got - begun)
            if done <= self.end:
                self.completed += 1


@dataclass
class _Samples:
    """What the runs of one cell gathered, before it is summed up."""

    seconds: float = 0.0
    clients: list[_Client] = field(default_factory=list)
    cut_off: int = 0


def _run_cell(
    target: Target,
    workload: Workload,
    pool_size: int,
    concurrency: int,
    end: float,
    configure: Callable[[Any], None],
    join_until: float,
    samples: _Samples,
) -> None:
    """One run of a cell until ``end``; its samples are added to ``samples``."""
    pool = Pool(
        target.text,
        pool_size=pool_size,
        max_overflow=0,
        timeout=max(0.1, end - time.perf_counter()),
        connect_args=target.connect_args(),
        configure=configure,
        name=str(target),
    )
    try:
        # Open every connection first, so the measurement times requests, not connects.
        held = []
        try:
            for _ in range(pool_size):
                held.append(pool.getconn(timeout=max(0.01, end - time.perf_counter())))
        except PoolTimeout:
            return
        finally:
            for conn in held:
                conn.close()
        start = threading.Event()
        clients = [_Client(pool, workload, start, end) for _ in range(concurrency)]
        threads = [
            threading.Thread(target=client, name=f"poolwarden-size-{n}", daemon=True)
            for n, client in enumerate(clients)
        ]
        for thread in threads:
            thread.start()
        measuring_from = time.perf_counter()
        start.set()
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
    result.requests = sum(client.completed for client in clients)
    result.errors = sum(client.errors for client in clients)
    result.first_error = next((c.first_error for c in clients if c.first_error), None)
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


def statement_limit(facts: ServerFacts, seconds: float) -> Callable[[Any], None]:
    """A connect hook that bounds each statement of the session to ``seconds``, with the
    setting this server knows."""
    whole = max(1, int(seconds + 0.999))
    if facts.kind == "postgresql":
        sql = f"SET statement_timeout = {whole * 1000}"
    elif facts.is_mariadb:
        sql = f"SET SESSION max_statement_time = {whole}"
    else:
        sql = f"SET SESSION max_execution_time = {whole * 1000}"

    def configure(raw: Any) -> None:
        cursor = raw.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()
        raw.commit()  # PostgreSQL's SET would be undone by the pool's rollback

    return configure


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
    each in an equal share of the time left until ``deadline`` (a
    ``time.perf_counter()`` value); the last ends then. ``on_start`` hears of each run
    (with the number of runs), ``on_done`` of its end."""
    began = time.perf_counter()
    runs = schedule(grid, deadline - began)
    share = (deadline - began) / len(runs)
    if share < MIN_CELL_SECONDS / 2:
        raise CommandError(
            f"no time left for {len(grid)} measurements: checking the workload once took "
            "most of --duration; give a longer --duration"
        )
    configure = statement_limit(facts, share)
    samples = {cell: _Samples() for cell in grid}
    for number, (pool_size, concurrency) in enumerate(runs, start=1):
        on_start(pool_size, concurrency, len(runs))
        end = began + share * number
        # Stragglers may finish after their run's end, but never after the deadline.
        join_until = min(end + GRACE, deadline)
        _run_cell(
            target,
            workload,
            pool_size,
            concurrency,
            end,
            configure,
            join_until,
            samples[pool_size, concurrency],
        )
        on_done()
    return [_summary(size, clients, samples[size, clients]) for size, clients in grid]
