"""``poolwarden size``'s terminal output: the table of measurements (medians of the
rounds with their confidence intervals, skipped cells with the reason), then the
recommendation with its reasons, or why there is none."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .cells import CellResult
from .output import print_table, print_wrapped
from .recommend import Recommendation

__all__ = ["ci_note", "print_results"]

#: Column headings; a cell not run shows "skipped" (or "not measured") under req/s and
#: "-" under the other figures, and the kind of reason under "note".
FIGURES = ("req/s", "req/s CI", "p99 ms", "p99 CI", "wait ms", "waiting")
#: Wide enough for every column on one line: rather a wider table than rows in two lines.
TABLE_WIDTH = 110


def _figures(cell: CellResult) -> list[str]:
    if not cell.measured:
        return ["skipped" if cell.skipped else "not measured"] + ["-"] * (len(FIGURES) - 1)
    speed, p99 = cell.throughput_interval(), cell.p99_interval()
    return [
        f"{speed.median:,.0f}",
        f"{speed.low:,.0f}-{speed.high:,.0f}",
        f"{p99.median:.2f}",
        f"{p99.low:.2f}-{p99.high:.2f}",
        f"{cell.wait_ms['mean']:.2f}",
        f"{cell.wait_share:.0%}",
    ]


def _note(cell: CellResult) -> str:
    if cell.skipped:
        return cell.skip_kind or "skipped"
    if not cell.measured:
        return "see below"
    return "noise assumed" if cell.throughput_interval().assumed else ""


def _table(console: Console, cells: list[CellResult], advice: Recommendation | None) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for name in ("pool_size", "clients", *FIGURES, "errors"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("note", no_wrap=True)
    previous = None
    for cell in sorted(cells, key=lambda c: (c.concurrency, c.pool_size)):
        chosen = advice is not None and (cell.pool_size, cell.concurrency) == (
            advice.pool_size,
            advice.concurrency,
        )
        table.add_row(
            f"*{cell.pool_size}" if chosen else str(cell.pool_size),
            str(cell.concurrency) if cell.concurrency != previous else "",
            *_figures(cell),
            "-" if cell.skipped else str(cell.errors),
            _note(cell),
            style="bold" if chosen else None,
        )
        previous = cell.concurrency
    print_table(console, table, TABLE_WIDTH)


def ci_note(cells: list[CellResult]) -> str:
    """The line under the table that says what the intervals are."""
    measured = [cell for cell in cells if cell.measured]
    if not measured:
        return ""
    rounds = sorted({len(cell.rounds) or 1 for cell in measured})
    coverage = min(cell.throughput_interval().coverage for cell in measured)
    counted = f"{rounds[0]}" if len(rounds) == 1 else f"{rounds[0]} to {rounds[-1]}"
    text = (
        f"figures: the median of {counted} round(s) per cell, in rotated order; CI: its "
        f"confidence interval (order statistics, {coverage:.1%} or more)"
    )
    if any(cell.throughput_interval().assumed for cell in measured):
        text += ", or +-5% where too few rounds fit to measure the noise"
    return text + ". Cells differ measurably only when their intervals do not overlap."


def print_results(
    console: Console,
    cells: list[CellResult],
    advice: Recommendation | None,
    withheld: str,
    rounds_note: str = "",
) -> None:
    """The table, what its intervals are, a line for each cell not measured, then the
    recommendation (or ``withheld``, why there is none) and the first error."""
    _table(console, cells, advice)
    note = ci_note(cells)
    if note:
        print_wrapped(console, note + (f" {rounds_note}" if rounds_note else ""), 2, style="dim")
    for cell in cells:
        if not cell.measured and not cell.skipped:
            print_wrapped(
                console,
                f"pool_size={cell.pool_size} with {cell.concurrency} client(s): "
                f"{cell.not_measured}",
                4,
                "not measured: ",
                style="yellow",
            )
    if advice is not None:
        console.print(
            Text.assemble(
                ("recommended: ", "bold"),
                (
                    f"pool_size={advice.pool_size}, max_overflow={advice.max_overflow}",
                    "bold green",
                ),
                "  (* in the table)",
            )
        )
        for reason in advice.reasons:
            print_wrapped(console, reason, 4, "  - ")
    elif withheld:
        print_wrapped(console, withheld, 2, Text("NO RECOMMENDATION: ", "bold red"), "red")
    failed = next((cell.first_error for cell in cells if cell.first_error), None)
    if failed and not withheld:
        print_wrapped(console, f"first error: {failed}", 2, style="red")
