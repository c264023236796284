"""What ``size --from-stats`` prints and what ``doctor --stats`` finds: the sizing of
:mod:`.littles_law` against the fleet's budget and against the pool's settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from .errors import CommandError
from .findings import Finding, PoolPlan, Severity
from .littles_law import Sizing, load_stats, size
from .options import State
from .output import print_wrapped
from .server_settings import read_server_facts
from .size_plan import Budget
from .target import resolve_url

__all__ = [
    "print_sizing",
    "run_from_stats",
    "stats_finding",
    "stats_findings",
    "stats_from_file",
    "stats_option",
]

F = TypeVar("F", bound=Callable[..., Any])
#: Where ``--stats`` leaves the sizing for :func:`stats_findings` (the run's context).
_META_KEY = "poolwarden.stats_sizing"


def stats_from_file(path: str, option: str) -> Sizing:
    """Little's law on the stats file at ``path`` (``option`` names it in errors)."""
    return size(load_stats(path, option))


def _facts_lines(sizing: Sizing) -> list[tuple[str, str]]:
    w = sizing.window
    mean = (
        f"estimated mean {sizing.mean_hold * 1000:.2f} ms (from p50 {w.hold_p50 * 1000:.2f} "
        f"ms and p99 {w.hold_p99 * 1000:.2f} ms: stats() keeps no mean)"
        if sizing.mean_estimated
        else f"mean {sizing.mean_hold * 1000:.2f} ms, p99 {w.hold_p99 * 1000:.2f} ms"
    )
    return [
        ("window", f"{w.how}; pool_size={w.pool_size}, max_overflow={w.max_overflow}, "
                   f"peak_in_use={w.peak_in_use} (all-time)"),
        ("arrivals", f"{sizing.arrival_rate:,.1f} checkouts/s ({w.checkouts:,} in "
                     f"{w.seconds:,.1f} s)"),
        ("hold", mean),
        ("busy", f"{sizing.busy:.2f} connections on average (Little's law: arrival rate x "
                 "mean hold)"),
        ("wait", f"p99 {w.wait_p99 * 1000:.2f} ms, {w.timeouts} timeout(s) in the window"),
    ]  # fmt: skip


def print_sizing(console: Console, sizing: Sizing, source: str, budget: Budget | None) -> int:
    """Print the sizing from ``source`` and its recommendation; the exit status (1 when
    the need exceeds the fleet budget)."""
    console.print(Text(f"Little's law on {source}", style="bold"))
    for label, line in _facts_lines(sizing):
        print_wrapped(console, line, 12, Text(f"  {label:<10}", style="bold"))
    needed, status = sizing.needed, 0
    if budget is not None and needed > budget.per_process:
        print_wrapped(
            console,
            f"{sizing.summary()}; but the fleet budget allows {budget.per_process}: "
            f"{budget.sentence()}. Run fewer processes, make the holds shorter, or raise the "
            "server's limit",
            2,
            Text("OVER BUDGET: ", "bold red"),
            "red",
        )
        return 1
    console.print(Text.assemble(("recommended: ", "bold"), (f"pool_size={needed}", "bold green")))
    print_wrapped(console, sizing.summary(), 4, "  - ")
    if sizing.saturated:
        print_wrapped(
            console,
            f"checkouts waited (p99 {sizing.window.wait_p99 * 1000:.2f} ms, "
            f"{sizing.window.timeouts} timeout(s)): for more than 1% of them no connection "
            "was idle (the pool was full, or opening connections), so the checkouts counted "
            "may be fewer than were asked for and the need higher",
            4,
            "  - ",
            "yellow",
        )
    if budget is not None:
        print_wrapped(console, f"within the fleet budget: {budget.sentence()}", 4, "  - ")
    return status


def stats_finding(sizing: Sizing, plan: PoolPlan, source: str) -> Finding:
    """doctor's finding: the pool's connections (the options', else the stats') against
    the need."""
    given = plan.sources.get("pool_size", "default") != "default"
    pool_size = plan.pool_size if given else sizing.window.pool_size
    overflow = plan.max_overflow if given else sizing.window.max_overflow
    full = sizing.as_dict()
    numbers = {
        name: full[name]
        for name in ("arrival_rate_per_s", "mean_hold_ms", "busy_connections",
                     "needed_connections", "wait_p99_ms", "timeouts")
    }  # fmt: skip
    numbers |= {"pool_size": pool_size, "max_overflow": overflow}
    detail = f"From {source}: {sizing.summary()}."
    needed = sizing.needed
    if pool_size + overflow < needed:
        return Finding(
            Severity.WARNING,
            "littles-law",
            f"pool_size={pool_size} + max_overflow={overflow} is below the {needed} "
            "connection(s) production's numbers need",
            numbers,
            detail + " Checkouts beyond it wait for a connection.",
            f"pool_size={needed}",
        )
    if sizing.saturated:
        return Finding(
            Severity.WARNING,
            "littles-law",
            f"checkouts waited for a connection (p99 {sizing.window.wait_p99 * 1000:.2f} ms, "
            f"{sizing.window.timeouts} timeout(s))",
            numbers,
            detail + " For more than 1% of the checkouts no connection was idle: the pool "
            "was full (bursts beyond what the average needs) or opening connections.",
            f"measure with 'poolwarden size', or raise pool_size above {pool_size}",
        )
    return Finding(
        Severity.OK,
        "littles-law",
        f"pool_size={pool_size} + max_overflow={overflow} covers the {needed} connection(s) "
        "production's numbers need",
        numbers,
        detail,
    )


def _read_stats(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Read the file as the option is parsed: a bad one fails before any connect."""
    if value is None:
        return
    try:
        ctx.meta[_META_KEY] = (value, stats_from_file(value, "--stats"))
    except CommandError as exc:
        raise click.BadParameter(str(exc).removeprefix("--stats: ")) from None


def stats_option(function: F) -> F:
    """doctor's ``--stats FILE``: a finding from production's numbers by Little's law
    (see :func:`stats_findings`)."""
    option = click.option(
        "--stats",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        expose_value=False,
        callback=_read_stats,
        help="A JSON dump of pool.stats() (as 'poolwarden size --from-stats' reads it): "
        "check pool_size against the connections production's numbers need by Little's "
        "law.",
    )
    return option(function)


def stats_findings(plan: PoolPlan) -> list[Finding]:
    """The finding of ``--stats`` for ``plan``, if the command was given one."""
    ctx = click.get_current_context(silent=True)
    entry = ctx.meta.get(_META_KEY) if ctx is not None else None
    if entry is None:
        return []
    path, sizing = entry
    return [stats_finding(sizing, plan, path)]


def run_from_stats(
    state: State,
    url: str | None,
    path: str,
    query: str | None,
    workload: str | None,
    report: str | None,
    p99_target: float | None,
    fleet: int,
    connect_timeout: float,
) -> int:
    """``size --from-stats``: Little's law on a stats dump, no load test; the fleet
    budget from the server when URL is given."""
    given = [name for name, value in (("--query", query), ("--workload", workload),
             ("--report", report), ("--p99", p99_target)) if value is not None]  # fmt: skip
    if given:
        raise click.UsageError(
            f"--from-stats sizes from production's numbers without a load test: leave out "
            f"{', '.join(given)}"
        )
    sizing = stats_from_file(path, "--from-stats")
    budget = None
    if url is not None:
        target = state.target(resolve_url(url), connect_timeout)
        target.require_server()
        with target.connection() as raw:
            budget = Budget.of(read_server_facts(raw, target.kind), fleet)
    return print_sizing(state.console(), sizing, path, budget)
