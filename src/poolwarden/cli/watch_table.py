"""The table ``poolwarden watch`` prints: one row per pool, then any endpoint's error."""

from __future__ import annotations

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..metrics import SECONDS_BUCKETS
from .output import print_table
from .watch_rows import PoolRow

__all__ = ["NO_DATA", "format_seconds", "print_view", "watch_view"]

NO_DATA = "—"


def format_seconds(value: float | None) -> str:
    """A latency in ms (3 significant digits at most), or s from 1 s. An estimate inside
    poolwarden's first bucket is shown as ``≤0.1 ms`` (checkouts that found a connection
    idle are counted there: interpolating would make up a figure), one at the last
    bound as ``≥60 s``."""
    if value is None:
        return NO_DATA
    if value <= SECONDS_BUCKETS[0]:
        return f"≤{SECONDS_BUCKETS[0] * 1000:g} ms"
    if value >= SECONDS_BUCKETS[-1]:
        return f"≥{SECONDS_BUCKETS[-1]:g} s"
    if value >= 1:
        return f"{value:.3g} s"
    ms = value * 1000
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms" if ms >= 10 else f"{ms:.2f} ms"


def _count(value: int | None) -> str:
    return NO_DATA if value is None else str(value)


def _sizes(row: PoolRow) -> str:
    # No max gauge: the pool has no limit (WardenPool's max_overflow=-1, say).
    limit = "∞" if row.max is None and row.used is not None else _count(row.max)
    return f"{_count(row.used)}/{_count(row.idle)}/{limit}"


def watch_view(
    rows: list[PoolRow], errors: list[str], heading: str, window: str, show_endpoint: bool
) -> Group:
    """The heading line, the table of ``rows`` (the events column titled by ``window``,
    e.g. "last 2 s" or "total"), and a line per endpoint error."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    if show_endpoint:
        table.add_column("endpoint", overflow="fold")
    table.add_column("pool", overflow="fold")
    table.add_column("used/idle/max", justify="right", no_wrap=True)
    table.add_column("pending", justify="right")
    for title in ("wait p50", "wait p99", "use p50", "use p99"):
        table.add_column(title, justify="right", no_wrap=True)
    table.add_column("timeouts", justify="right")
    table.add_column(f"events ({window})", overflow="fold")
    for row in rows:
        events = row.events_text()
        if events and row.window == "total" and window != "total":
            events = "since start: " + events  # a pool's first frame in the live view
        cells: list[str | Text] = [
            row.pool,
            _sizes(row),
            _count(row.pending),
            *map(format_seconds, (row.wait_p50, row.wait_p99, row.use_p50, row.use_p99)),
            _count(row.timeouts),
            Text(events, style="bold yellow"),
        ]
        table.add_row(*([row.endpoint] if show_endpoint else []), *cells)
    parts: list[Table | Text] = [Text(heading, style="bold")]
    if rows:
        parts.append(table)
    parts.extend(Text(f"error: {error}", style="red") for error in errors)
    return Group(*parts)


def print_view(console: Console, view: Group) -> None:
    """Print ``view``; not on a terminal, as wide as it needs rather than wrapped to 80
    columns, without the blanks rich pads lines with."""
    width = 0
    if not console.is_terminal:
        wide = console.options.update_width(4096)  # measured unconstrained
        width = console.measure(view, options=wide).maximum
    print_table(console, view, width)
