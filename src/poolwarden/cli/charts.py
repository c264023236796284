"""The size report's charts as PNG bytes: throughput and p99 latency against pool size,
one line per client count. matplotlib's object API with the Agg canvas: no display, no
global pyplot state."""

from __future__ import annotations

import io
from collections.abc import Callable

from .loadtest import CellResult

__all__ = ["latency_chart", "throughput_chart"]


def _chart(
    cells: list[CellResult],
    value: Callable[[CellResult], float],
    title: str,
    ylabel: str,
    recommended: int,
) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, ScalarFormatter

    figure = Figure(figsize=(7.0, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    sizes = sorted({cell.pool_size for cell in cells})
    for clients in sorted({cell.concurrency for cell in cells}):
        row = sorted((c for c in cells if c.concurrency == clients), key=lambda c: c.pool_size)
        axes.plot(
            [cell.pool_size for cell in row],
            [value(cell) for cell in row],
            marker="o",
            label=f"{clients} client{'s' if clients > 1 else ''}",
        )
    axes.axvline(recommended, color="0.4", linestyle="--", linewidth=1)
    axes.annotate(
        f" recommended pool_size={recommended}",
        xy=(recommended, 1.0),
        xycoords=("data", "axes fraction"),
        va="top",
        fontsize=8,
        color="0.3",
    )
    if len(sizes) > 1 and sizes[-1] / sizes[0] >= 8:
        axes.set_xscale("log", base=2)
    axes.xaxis.set_major_locator(FixedLocator(sizes))
    axes.xaxis.set_major_formatter(ScalarFormatter())
    axes.xaxis.set_minor_locator(FixedLocator([]))
    axes.set_xlabel("pool_size")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.legend(title="concurrency", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def throughput_chart(cells: list[CellResult], recommended: int) -> bytes:
    """Requests per second against pool size."""
    return _chart(
        cells, lambda c: c.throughput, "Throughput by pool size", "requests / s", recommended
    )


def latency_chart(cells: list[CellResult], recommended: int) -> bytes:
    """p99 latency (checkout wait included) against pool size."""
    return _chart(
        cells,
        lambda c: c.latency_ms.get("p99", 0.0),
        "p99 latency by pool size (including the wait for a connection)",
        "p99 latency, ms",
        recommended,
    )
