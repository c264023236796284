"""``poolwarden size``: measure which pool size a workload needs."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import __version__
from .charts import rehearse
from .errors import CommandError
from .loadtest import MIN_CELL_SECONDS, CellResult, run_cells
from .options import IntList, State, connect_timeout_option, debug_option, fleet_options
from .recommend import ERROR_SHARE, failed_share, recommend
from .report import SizeRun, check_writable, write_report
from .server_settings import ServerFacts, read_server_facts
from .size_output import print_results
from .target import Target, resolve_url
from .workload import Workload

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
    never runs longer than --duration: connecting, the workload's first run and the
    report's charts count, and each session's statements are limited to its share of the
    time. Only successful requests count; a measurement where none finished in time, or
    whose connections could not be opened, is "not measured" and left out. Exit status: 0,
    or 1 if requests failed during the test (more than 1%: no recommendation), 2 if it
    could not run or measured nothing.
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
    if report:
        try:
            check_writable(Path(report))
        except OSError as exc:
            raise click.BadParameter(
                f"cannot write the report {report}: {exc.strerror}", param_hint="'--report'"
            ) from None
    # The budget starts now: connecting, the workload's first run and the report's charts
    # all count towards it.
    began = time.perf_counter()
    deadline = began + duration - (_report_reserve(grid) if report else 0.0)
    with target.connection() as raw:
        facts = read_server_facts(raw, target.kind)
        load.check(raw, facts, deadline, duration)
    if max(pool_sizes) > facts.available_connections:
        raise click.BadParameter(
            f"{max(pool_sizes)} is more than the {facts.available_connections} connections "
            f"the server accepts ({facts.product}, max_connections={facts.max_connections})",
            param_hint="'--pool-sizes'",
        )
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cells = _measure(state.console(stderr=True), target, load, facts, grid, duration, deadline)
    console = state.console()
    measured = [cell for cell in cells if cell.measured]
    withheld = _withheld(cells) if measured else ""
    advice = recommend(cells, facts, processes, instances) if measured and not withheld else None
    print_results(console, cells, advice, withheld)
    if not measured:
        raise CommandError(
            f"no measurement completed a request within its share of --duration "
            f"({duration:g} s): nothing to recommend; give a longer --duration or fewer "
            "pool sizes and concurrencies"
        )
    if report:
        run = SizeRun(
            url=str(target),
            server=facts.product,
            workload=load.label,
            duration=duration,
            elapsed=time.perf_counter() - began,
            processes=processes,
            instances=instances,
            cells=cells,
            recommendation=advice,
            version=__version__,
            started=started,
            withheld=withheld,
        )
        try:
            written = write_report(run, Path(report))
        except OSError as exc:
            raise CommandError(f"cannot write the report {report}: {exc.strerror}") from None
        console.print("report: " + ", ".join(str(path) for path in written), soft_wrap=True)
    return 1 if any(cell.errors for cell in cells) else 0


def _report_reserve(grid: list[tuple[int, int]]) -> float:
    """Seconds to keep for the report at the end of the budget: its two charts (timed on
    a rehearsal, which also loads matplotlib now, inside the budget), with room to spare
    for a busy machine, and writing the files."""
    return 2 * 1.25 * rehearse(grid) + 0.05


def _withheld(cells: list[CellResult]) -> str:
    """Why nothing is recommended from ``cells`` though some were measured, or ""."""
    share = failed_share(cells)
    if share <= ERROR_SHARE:
        return ""
    errors = sum(cell.errors for cell in cells)
    first = next((cell.first_error for cell in cells if cell.first_error), "")
    return (
        f"{errors} request(s), {share:.0%} of those that ended, failed: the figures measure "
        f"the failures, not the workload; fix the workload and measure again (first error: "
        f"{first})"
    )


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
