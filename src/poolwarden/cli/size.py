"""``poolwarden size``: measure which pool size a workload needs."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import __version__
from .errors import CommandError
from .loadtest import (
    MIN_CELL_SECONDS,
    CellResult,
    Workload,
    run_cells,
    statement_limit,
)
from .options import IntList, State, connect_timeout_option, debug_option, fleet_options
from .output import print_table, print_wrapped
from .recommend import Recommendation, recommend
from .report import SizeRun, write_report
from .server_settings import ServerFacts, read_server_facts
from .target import Target, resolve_url

__all__ = ["size_command"]


@click.command(
    "size",
    epilog="Examples:\n\n\b\n"
    "  poolwarden size mysql+pymysql://app:secret@db/shop \\\n"
    "      --query 'SELECT * FROM orders WHERE id = 42'\n"
    "  poolwarden size $DATABASE_URL --workload request.sql --concurrency 8,32 \\\n"
    "      --duration 60 --processes 4 --report size.html",
)
@click.argument("url", required=False)
@click.option("--query", metavar="SQL", help="The SQL one request runs (then a commit).")
@click.option(
    "--workload",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="A file of SQL statements, each ending with ';' at the end of a line; one request "
    "runs them all in order, then commits. Lines starting with -- are skipped.",
)
@click.option(
    "--concurrency",
    type=IntList(1, 1024, "1,4,16,64"),
    default="1,4,16,64",
    show_default=True,
    help="Client threads to measure with, comma-separated.",
)
@click.option(
    "--pool-sizes",
    type=IntList(1, 1000, "1,2,4,8,16"),
    default="1,2,4,8,16",
    show_default=True,
    help="Pool sizes to measure, comma-separated.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True, max=3600),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Time the whole load test may take; the measurements share it equally and it "
    "never runs longer.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False),
    metavar="FILE.html",
    help="Write a self-contained HTML report with charts there, the charts as PNG files "
    "beside it and the results as JSON for 'poolwarden doctor --size-report' (for "
    "size.html: size-throughput.png, size-p99.png, size.json).",
)
@fleet_options(
    "Processes per instance that will each have such a pool (for the connection "
    "budget of max_overflow).",
    "Instances running those processes.",
)
@connect_timeout_option
@debug_option
@click.pass_obj
def size_command(
    state: State,
    url: str | None,
    query: str | None,
    workload: str | None,
    concurrency: list[int],
    pool_sizes: list[int],
    duration: float,
    report: str | None,
    processes: int,
    instances: int,
    connect_timeout: float,
) -> int:
    """Measure throughput and latency per pool size, and recommend one.

    A bounded load test on URL (default: $DATABASE_URL): for each pool size and each
    number of client threads, the threads run the workload through one pool for an equal
    share of --duration (in two passes, the second in reverse order, when the time
    allows), and it measures throughput, latency p50/p95/p99 and the time spent waiting
    for a connection. It prints a table and recommends pool_size (the smallest within 5%
    of peak throughput) and max_overflow (the extra connections that still cut p99
    latency in bursts, within the server's max_connections budget).

    Run it against a server like production's with the SQL of a typical request. It
    never runs longer than --duration: the workload's first run counts, and each
    session's statements are limited to its share of the time. Exit status: 0, or 1 if
    requests failed during the test, 2 if it could not run.
    """
    if (query is None) == (workload is None):
        raise click.UsageError("give either --query SQL or --workload FILE (one of them)")
    load = Workload.from_query(query) if query is not None else Workload.from_file(str(workload))
    target = state.target(resolve_url(url), connect_timeout)
    target.require_server()
    grid = [(size, clients) for clients in concurrency for size in pool_sizes]
    if duration / len(grid) < MIN_CELL_SECONDS:
        needed = MIN_CELL_SECONDS * len(grid)
        raise click.BadParameter(
            f"{duration:g} s is too short for {len(grid)} measurements "
            f"({len(pool_sizes)} pool sizes x {len(concurrency)} concurrencies, at least "
            f"{MIN_CELL_SECONDS:g} s each): give {needed:g} or more, or fewer sizes",
            param_hint="'--duration'",
        )
    # The budget starts now: the workload's first run, bounded like every later one by a
    # statement time limit, counts towards it.
    began = time.perf_counter()
    with target.connection() as raw:
        facts = read_server_facts(raw, target.kind)
        statement_limit(facts, duration)(raw)
        load.check(raw, duration)
    if max(pool_sizes) > facts.available_connections:
        raise click.BadParameter(
            f"{max(pool_sizes)} is more than the {facts.available_connections} connections "
            f"the server accepts ({facts.product}, max_connections={facts.max_connections})",
            param_hint="'--pool-sizes'",
        )
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cells = _measure(
        state.console(stderr=True), target, load, facts, grid, duration, began + duration
    )
    elapsed = time.perf_counter() - began
    advice = recommend(cells, facts, processes, instances)
    console = state.console()
    _print_table(console, cells, advice)
    if report:
        run = SizeRun(
            url=str(target),
            server=facts.product,
            workload=load.label,
            duration=duration,
            elapsed=elapsed,
            processes=processes,
            instances=instances,
            cells=cells,
            recommendation=advice,
            version=__version__,
            started=started,
        )
        try:
            written = write_report(run, Path(report))
        except OSError as exc:
            raise CommandError(f"cannot write the report {report}: {exc.strerror}") from None
        console.print("report: " + ", ".join(str(path) for path in written), soft_wrap=True)
    return 1 if any(cell.errors for cell in cells) else 0


def _measure(
    console: Console,
    target: Target,
    load: Workload,
    facts: ServerFacts,
    grid: list[tuple[int, int]],
    duration: float,
    deadline: float,
) -> list[CellResult]:
    """Run the measurements under a progress bar on stderr."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn(f"of {duration:g} s"),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"measuring {target}", total=None)

        def started(size: int, clients: int, runs: int) -> None:
            progress.update(
                task, total=runs, description=f"pool_size={size:<4} clients={clients:<4}"
            )

        def done() -> None:
            progress.advance(task)

        return run_cells(target, load, facts, grid, deadline, started, done)


def _print_table(console: Console, cells: list[CellResult], advice: Recommendation) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for name in ("pool_size", "clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "wait ms"):
        table.add_column(name, justify="right")
    table.add_column("waiting", justify="right")
    table.add_column("errors", justify="right")
    previous = None
    for cell in sorted(cells, key=lambda c: (c.concurrency, c.pool_size)):
        chosen = cell.pool_size == advice.pool_size and cell.concurrency == advice.concurrency
        table.add_row(
            f"*{cell.pool_size}" if chosen else str(cell.pool_size),
            str(cell.concurrency) if cell.concurrency != previous else "",
            f"{cell.throughput:,.0f}",
            f"{cell.latency_ms['p50']:.2f}",
            f"{cell.latency_ms['p95']:.2f}",
            f"{cell.latency_ms['p99']:.2f}",
            f"{cell.wait_ms['mean']:.2f}",
            f"{cell.wait_share:.0%}",
            str(cell.errors),
            style="bold" if chosen else None,
        )
        previous = cell.concurrency
    print_table(console, table)
    console.print(
        Text.assemble(
            ("recommended: ", "bold"),
            (f"pool_size={advice.pool_size}, max_overflow={advice.max_overflow}", "bold green"),
            "  (* in the table)",
        )
    )
    for reason in advice.reasons:
        print_wrapped(console, reason, 4, "  - ")
    failed = next((cell.first_error for cell in cells if cell.first_error), None)
    if failed:
        print_wrapped(console, f"first error: {failed}", 2, style="red")
