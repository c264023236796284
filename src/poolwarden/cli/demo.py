"""``poolwarden demo``: what users hit with SQLAlchemy's QueuePool, live, side by side with
QueuePool + pre_ping and with poolwarden."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .options import State, connect_timeout_option, debug_option
from .output import print_table, print_wrapped
from .server_settings import read_server_facts
from .target import DEFAULT_URL

if TYPE_CHECKING:
    from .demo_scenarios import Outcome

__all__ = ["demo_command"]

Results = dict[str, "Outcome"]


@click.command("demo")
@click.argument("url", required=False)
@connect_timeout_option
@debug_option
@click.pass_obj
def demo_command(state: State, url: str | None, connect_timeout: float) -> int:
    """Show, live, what users hit and how each pool copes.

    On URL (default: $DATABASE_URL, else the local MariaDB at
    mysql+pymysql://root@127.0.0.1:3306/test) three SQLAlchemy engines that differ only
    in their pool - QueuePool as it comes, QueuePool with pool_pre_ping=True, and
    poolwarden's WardenPool - go through:

    \b
      1. connections idle past the server's idle timeout (a session-level wait_timeout
         or idle_session_timeout of 1 s: no admin rights needed);
      2. connections killed at the server (KILL of the user's own sessions, or
         pg_terminate_backend);
      3. jobs that keep their connections through work longer than that idle timeout
         (pre_ping cannot help: the connections never go back to the pool);
      4. a request handler that never gives its connection back, until the pool runs
         out: is the leak reported, does the timeout error name the holder?
      5. the cost of a request on each pool.

    It prints the errors each pool let through and the per-request cost side by side,
    and finishes in well under a minute. Exit status 0, or 1 if poolwarden let an error
    through or did not report the leak.
    """
    # SQLAlchemy is imported only by the command that needs it.
    from .demo_scenarios import POOLS, Demo

    target = state.target(url or os.environ.get("DATABASE_URL") or DEFAULT_URL, connect_timeout)
    target.require_server()
    console = state.console()
    began = time.perf_counter()
    with target.connection() as raw:
        facts = read_server_facts(raw, target.kind)
    demo = Demo(target)
    console.print(Text.assemble(("poolwarden demo", "bold"), f" on {target} ({facts.product})"))
    print_wrapped(
        console,
        "Three SQLAlchemy engines, alike but for their pools: "
        + ", ".join(POOLS)
        + " (poolwarden.sqlalchemy.create_engine).",
        0,
    )
    console.print()
    steps: list[tuple[str, Callable[[], Results]]] = [
        (f"idle past {facts.idle_timeout_name} (1 s, set per session)", demo.idle_past_timeout),
        ("connections killed at the server", demo.killed),
        ("jobs hold their connections past the idle timeout", demo.held_by_long_jobs),
        ("a handler keeps its connections; the pool runs out", demo.leak_and_exhaustion),
        ("per-request cost: check out, SELECT 1, give back", demo.per_request_cost),
    ]
    results = []
    for number, (title, run) in enumerate(steps, start=1):
        step_began = time.perf_counter()
        with console.status(f"[{number}/{len(steps)}] {title}"):
            results.append(run())
        console.print(f"[{number}/{len(steps)}] {title}: {time.perf_counter() - step_began:.1f} s")
    idle, killed, held, leak, cost = results
    console.print()
    print_table(console, _table(idle, killed, held, leak, cost))
    _print_details(console, idle, killed, held, leak)
    console.print(f"\ndone in {time.perf_counter() - began:.1f} s")
    return _status(console, idle, killed, held, leak)


def _table(idle: Results, killed: Results, held: Results, leak: Results, cost: Results) -> Table:
    from .demo_scenarios import POOLS, POOLWARDEN, QUEUEPOOL

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("")
    for name in POOLS:
        table.add_column(name, style="bold" if name == POOLWARDEN else None)

    def failed(outcome: Outcome) -> str:
        return f"{outcome.errors} of {outcome.requests} failed"

    baseline = cost[QUEUEPOOL].per_request_us or 1.0

    def price(outcome: Outcome) -> str:
        micros = outcome.per_request_us or 0.0
        return f"{micros:.0f} µs ({micros / baseline:.2f}x)"

    rows = [
        ("idle past timeout", [failed(idle[name]) for name in POOLS]),
        ("killed connections", [failed(killed[name]) for name in POOLS]),
        ("held by long jobs", [failed(held[name]) for name in POOLS]),
        (
            "leaked connection",
            ["reported + line" if leak[name].leak_reports else "not reported" for name in POOLS],
        ),
        (
            "pool ran out: error",
            ["names holder" if _names_holder(leak[name]) else "names nobody" for name in POOLS],
        ),
        (
            "errors seen",
            [str(idle[name].errors + killed[name].errors + held[name].errors) for name in POOLS],
        ),
        ("per-request cost", [price(cost[name]) for name in POOLS]),
    ]
    for label, cells in rows:
        table.add_row(label, *cells)
    return table


def _names_holder(outcome: Outcome) -> bool:
    from .demo_app import FILENAME

    return bool(outcome.timeout_message and FILENAME in outcome.timeout_message)


def _print_details(
    console: Console, idle: Results, killed: Results, held: Results, leak: Results
) -> None:
    from .demo_app import FILENAME
    from .demo_scenarios import POOLS, POOLWARDEN, PRE_PING, QUEUEPOOL

    console.print(Text("\nwhat the pools saw", style="bold"))
    for scenario, results in (("idle", idle), ("killed", killed), ("held", held)):
        for name in POOLS:
            outcome = results[name]
            seen = outcome.first_error or outcome.note
            if not seen:
                seen = "no error; every checkout pinged first" if name == PRE_PING else "no error"
            print_wrapped(console, seen, 4, f"  {name}, {scenario}: ")
    reports = leak[POOLWARDEN].leak_reports
    if reports:
        console.print(Text("\npoolwarden's leak report (logger 'poolwarden')", style="bold"))
        first, _, stack = reports[0].partition("\n")
        print_wrapped(console, first, 4, "  ")
        for line in _app_lines(stack, FILENAME):
            console.print(Text("    " + line), soft_wrap=True)
    console.print(Text("\nthe error when the pool ran out", style="bold"))
    for name in (QUEUEPOOL, POOLWARDEN):
        message = leak[name].timeout_message or "(no timeout)"
        print_wrapped(console, message, 4, f"  {name}: ")


def _app_lines(stack: str, filename: str) -> list[str]:
    """The application's frames of a formatted stack, each with its source line."""
    lines = stack.splitlines()
    kept = []
    for number, line in enumerate(lines):
        if f'"{filename}"' in line:
            kept.append(line.strip())
            if number + 1 < len(lines) and not lines[number + 1].lstrip().startswith("File"):
                kept.append("  " + lines[number + 1].strip())
    return kept


def _status(console: Console, idle: Results, killed: Results, held: Results, leak: Results) -> int:
    from .demo_scenarios import POOLWARDEN

    problems = []
    if idle[POOLWARDEN].errors or killed[POOLWARDEN].errors or held[POOLWARDEN].errors:
        problems.append("poolwarden let errors through")
    if not leak[POOLWARDEN].leak_reports:
        problems.append("poolwarden did not report the leaked connection")
    if not _names_holder(leak[POOLWARDEN]):
        problems.append("poolwarden's timeout error did not name the holder")
    if problems:
        console.print(Text("not as expected: " + "; ".join(problems), style="bold red"))
        return 1
    return 0
