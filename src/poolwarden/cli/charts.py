"""The size report's charts as PNG bytes: throughput and p99 latency against pool size,
one line per client count through the medians of the rounds, the confidence interval of
each as an error bar, measured cells only. matplotlib's object API with the Agg canvas:
no display, no global pyplot state."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from .cells import CellResult
from .noise import Interval

__all__ = ["latency_chart", "rehearse", "throughput_chart"]


def _chart(
    cells: list[CellResult],
    value: Callable[[CellResult], Interval],
    title: str,
    ylabel: str,
    recommended: int | None,
) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, ScalarFormatter

    figure = Figure(figsize=(7.0, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    # A cell without figures is a gap, not a zero: a zero would read as a measurement.
    cells = [cell for cell in cells if cell.measured]
    sizes = sorted({cell.pool_size for cell in cells})
    for clients in sorted({cell.concurrency for cell in cells}):
        row = sorted((c for c in cells if c.concurrency == clients), key=lambda c: c.pool_size)
        figures = [value(cell) for cell in row]
        axes.errorbar(
            [cell.pool_size for cell in row],
            [iv.median for iv in figures],
            yerr=[
                [iv.median - iv.low for iv in figures],
                [iv.high - iv.median for iv in figures],
            ],
            marker="o",
            capsize=3,
            label=f"{clients} client{'s' if clients > 1 else ''}",
        )
    if recommended is not None:
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
    if cells:
        axes.legend(title="concurrency", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def rehearse(grid: list[tuple[int, int]]) -> float:
    """Draw a chart of ``grid``'s shape once, with made-up figures, and return the seconds
    it took: matplotlib is loaded and warm afterwards, and the report's own two charts
    can be budgeted from it before the measurements start."""
    cells = [
        CellResult(size, clients, seconds=1.0, requests=size, latency_ms={"p99": 1.0})
        for size, clients in grid
    ]
    throughput_chart(cells, None)  # loads matplotlib and its fonts: not representative
    began = time.perf_counter()
    latency_chart(cells, None)
    return time.perf_counter() - began


def throughput_chart(cells: list[CellResult], recommended: int | None) -> bytes:
    """Requests per second against pool size."""
    return _chart(
        cells,
        lambda c: c.throughput_interval(),
        "Throughput by pool size (median of the rounds, CI)",
        "requests / s",
        recommended,
    )


def latency_chart(cells: list[CellResult], recommended: int | None) -> bytes:
    """p99 latency (checkout wait included) against pool size."""
    return _chart(
        cells,
        lambda c: c.p99_interval(),
        "p99 latency by pool size (including the wait for a connection)",
        "p99 latency, ms",
        recommended,
    )
