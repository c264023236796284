"""``poolwarden size``'s terminal output: the table of measurements, then the
recommendation with its reasons, or why there is none."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .loadtest import CellResult
from .output import print_table, print_wrapped
from .recommend import Recommendation

__all__ = ["print_results"]

#: Column headings; a cell not measured shows "not measured" under req/s, "-" under the
#: other figures.
FIGURES = ("req/s", "p50 ms", "p95 ms", "p99 ms", "wait ms", "waiting")


def _figures(cell: CellResult) -> list[str]:
    if not cell.measured:
        return ["not measured"] + ["-"] * (len(FIGURES) - 1)
    return [
        f"{cell.throughput:,.0f}",
        f"{cell.latency_ms['p50']:.2f}",
        f"{cell.latency_ms['p95']:.2f}",
        f"{cell.latency_ms['p99']:.2f}",
        f"{cell.wait_ms['mean']:.2f}",
        f"{cell.wait_share:.0%}",
    ]


def _table(console: Console, cells: list[CellResult], advice: Recommendation | None) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for name in ("pool_size", "clients", *FIGURES, "errors"):
        table.add_column(name, justify="right", no_wrap=name == "req/s")
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
            str(cell.errors),
            style="bold" if chosen else None,
        )
        previous = cell.concurrency
    # "not measured" is wider than any figure: rather a wider table than rows in two lines.
    print_table(console, table, 0 if all(cell.measured for cell in cells) else 96)


def print_results(
    console: Console, cells: list[CellResult], advice: Recommendation | None, withheld: str
) -> None:
    """The table, a line for each cell not measured, then the recommendation (or
    ``withheld``, why there is none) and the first error."""
    _table(console, cells, advice)
    for cell in cells:
        if not cell.measured:
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
