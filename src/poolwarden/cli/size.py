"""``poolwarden size``: measure which pool size a workload needs."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import __version__
from .cells import CellResult
from .charts import rehearse
from .errors import CommandError
from .loadtest import DEFAULT_ROUNDS, MIN_CELL_SECONDS, run_cells
from .objective import DurationType
from .options import IntList, State, connect_timeout_option, debug_option, fleet_options
from .recommend import conclude, objective_name
from .report import SizeRun, check_report_path, check_writable, write_report
from .server_settings import ServerFacts, read_server_facts
from .size_output import print_results
from .size_plan import Budget, plan_cells
from .stats_sizing import run_from_stats
from .target import Target, resolve_url
from .workload import Workload

__all__ = ["size_command"]


@click.command(
    "size",
    epilog="Examples:\n\n\b\n"
    "  poolwarden size mysql+pymysql://app:secret@db/shop \\\n"
    "      --query 'SELECT * FROM orders WHERE id = 42'\n"
    "  poolwarden size $DATABASE_URL --workload request.sql --concurrency 8,32 \\\n"
    "      --duration 60 --processes 4 --report size.html\n"
    "  poolwarden size $DATABASE_URL --workload myapp.bench:checkout_request \\\n"
    "      --concurrency 32 --p99 50ms --processes 8\n"
    "  poolwarden size --from-stats stats.json --processes 8",
)
@click.argument("url", required=False)
@click.option("--query", metavar="SQL", help="The SQL one request runs (then a commit).")
@click.option(
    "--workload",
    metavar="FILE|MODULE:FUNCTION",
    help="A file of SQL statements, each ending with ';' at the end of a line (lines "
    "starting with -- are skipped), which one request runs in order; or module:function, "
    "a function given a DB-API connection that does what one request does (imported from "
    "the current directory or sys.path). Then a commit.",
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
    "--rounds",
    type=click.IntRange(1, 100),
    default=DEFAULT_ROUNDS,
    show_default=True,
    help="Rounds each cell is measured in, the cells' order rotated from round to round; "
    "the figures are the rounds' medians with a confidence interval. Fewer run when "
    "--duration cannot give each run 0.25 s.",
)
@click.option(
    "--p99",
    "p99_target",
    type=DurationType(),
    help="Objective: the smallest pool whose p99 latency (its confidence interval) is "
    "within TIME, e.g. 50ms, 0.2s, 800us, at the largest --concurrency (the concurrency "
    "you expect). Default: the smallest pool no larger one is measurably faster than.",
)
@click.option(
    "--from-stats",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="No load test: size from production numbers by Little's law, from a JSON dump of "
    'pool.stats(): [{"at": time.time(), "stats": pool.stats().as_dict()}, ...] (two '
    'snapshots or more) or {"seconds": S, "stats": ...}. With URL, within the fleet budget.',
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
    rounds: int,
    p99_target: float | None,
    from_stats: str | None,
    report: str | None,
    processes: int,
    instances: int,
    connect_timeout: float,
) -> int:
    """Measure throughput and latency per pool size, and recommend one.

    A bounded load test on URL (default: $DATABASE_URL): for each pool size and each
    number of client threads, the threads run the workload through one pool, in --rounds
    short rounds whose order of cells is rotated, each run an equal share of --duration;
    it measures throughput, latency p50/p95/p99 and the time spent waiting for a
    connection, and reports each cell's median with a confidence interval. Cells not
    worth running are skipped and say why: pools over the fleet budget (processes x
    instances x pool_size within 80% of the connections the server allows this account,
    a hard limit) and pools larger than the smallest one that gives every client a
    connection. It recommends pool_size (the smallest no other pool measurably beats; with
    --p99, the smallest that meets the target) and max_overflow (the extra connections
    that measurably cut p99 latency in bursts, within the budget). Only differences
    larger than the noise count: intervals that do not overlap.

    Run it against a server like production's with the SQL of a typical request. It
    never runs longer than --duration: connecting, the workload's first run and the
    report's charts count, and each session's statements are limited to its share of the
    time. Only successful requests count; a measurement where none finished in time, or
    whose connections could not be opened, is "not measured" and left out. Exit status: 0,
    or 1 if requests failed during the test (more than 1%: no recommendation) or no pool
    met --p99, 2 if it could not run or measured nothing.

    With --from-stats FILE there is no load test: the pool size comes from production's
    numbers by Little's law (checkouts/s x mean hold time = connections busy on average,
    and the 99th percentile of connections busy at once for random arrivals).
    """
    if from_stats is not None:
        return run_from_stats(state, url, from_stats, query, workload, report, p99_target,
                           processes * instances, connect_timeout)  # fmt: skip
    if (query is None) == (workload is None):
        raise click.UsageError(
            "give either --query SQL or --workload FILE|MODULE:FUNCTION (one of them), or "
            "--from-stats FILE"
        )
    load = Workload.from_query(query) if query is not None else Workload.from_option(str(workload))
    target = state.target(resolve_url(url), connect_timeout)
    target.require_server()
    grid = [(size, clients) for clients in concurrency for size in pool_sizes]
    runnable = sum(cell.skipped is None for cell in plan_cells(pool_sizes, concurrency, None))
    if duration / runnable < MIN_CELL_SECONDS:
        needed = MIN_CELL_SECONDS * runnable
        raise click.BadParameter(
            f"{duration:g} s is too short for {len(grid)} measurements "
            f"({len(pool_sizes)} pool sizes x {len(concurrency)} concurrencies, {runnable} "
            f"run once pools larger than the clients are skipped, at least "
            f"{MIN_CELL_SECONDS:g} s each): give {needed:g} or more, or fewer sizes",
            param_hint="'--duration'",
        )
    if report:
        check_report_path(Path(report))
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
    budget = Budget.of(facts, processes * instances)
    planned = plan_cells(pool_sizes, concurrency, budget)
    if all(cell.skipped for cell in planned):
        assert budget is not None
        raise click.BadParameter(
            f"every pool size is over the fleet budget ({budget.sentence()}): give sizes "
            f"up to {budget.per_process}, or fewer --processes/--instances",
            param_hint="'--pool-sizes'",
        )
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cells = _measure(
        state.console(stderr=True), target, load, facts, planned, rounds, duration, deadline
    )
    console = state.console()
    measured = [cell for cell in cells if cell.measured]
    rounds_run = max((len(cell.rounds) for cell in measured), default=0)
    advice, withheld, unmet = conclude(cells, facts, processes, instances, p99_target)
    rounds_note = (
        f"{rounds_run} of the {rounds} rounds asked for fit in --duration ({duration:g} s)."
        if measured and rounds_run < rounds
        else ""
    )
    print_results(console, cells, advice, withheld, rounds_note)
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
            rounds_asked=rounds,
            rounds_run=rounds_run,
            objective=advice.objective if advice else objective_name(p99_target, concurrency),
            p99_target=p99_target,
        )
        try:
            written = write_report(run, Path(report))
        except OSError as exc:
            raise CommandError(f"cannot write the report {report}: {exc.strerror}") from None
        console.print("report: " + ", ".join(str(path) for path in written), soft_wrap=True)
    return 1 if unmet or any(cell.errors for cell in cells) else 0


def _report_reserve(grid: list[tuple[int, int]]) -> float:
    """Seconds to keep for the report at the end of the budget: its two charts (timed on
    a rehearsal, which also loads matplotlib now, inside the budget), with room to spare
    for a busy machine, and writing the files."""
    return 2 * 1.25 * rehearse(grid) + 0.05


def _measure(
    console: Console,
    target: Target,
    load: Workload,
    facts: ServerFacts,
    cells: list[CellResult],
    rounds: int,
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

        return run_cells(target, load, facts, cells, deadline, rounds, started, done)
