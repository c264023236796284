"""The building blocks of ``size``'s recommendation: which cells may be compared, the
smallest cell no other measurably beats, and how figures are written in its reasons."""

from __future__ import annotations

from collections.abc import Callable

from .cells import CellResult
from .noise import Interval, measurably_above, measurably_below
from .size_plan import Budget, skip_reason

__all__ = [
    "beaten_by",
    "by_concurrency",
    "clients",
    "left_out",
    "p99_text",
    "sizes_text",
    "smallest_unbeaten",
    "speed_text",
    "usable",
]

Figure = Callable[[CellResult], Interval]


def clients(count: int) -> str:
    """``1 client``, ``4 clients``."""
    return f"{count} client{'' if count == 1 else 's'}"


def speed_text(cell: CellResult) -> str:
    """``6,494 req/s, CI 6,310-6,620``."""
    iv = cell.throughput_interval()
    return f"{iv.median:,.0f} req/s, CI {iv.low:,.0f}-{iv.high:,.0f}"


def p99_text(cell: CellResult) -> str:
    """``1.09 ms, CI 0.98-1.20``."""
    iv = cell.p99_interval()
    return f"{iv.median:.2f} ms, CI {iv.low:.2f}-{iv.high:.2f}"


def sizes_text(cells: list[CellResult]) -> str:
    """``pool_size=8, 16 with 4 clients; pool_size=16 with 16 clients``."""
    groups: dict[int, list[int]] = {}
    for cell in cells:
        groups.setdefault(cell.concurrency, []).append(cell.pool_size)
    return "; ".join(
        f"pool_size={', '.join(str(size) for size in sorted(sizes))} with {clients(count)}"
        for count, sizes in sorted(groups.items())
    )


def usable(
    cells: list[CellResult], budget: Budget | None
) -> tuple[list[CellResult], dict[str, list[CellResult]]]:
    """The measured cells that may be recommended from, and the others by why not:
    ``{"over budget": [...], "pool > clients": [...], "not measured": [...]}``. A
    measured cell the planner would have skipped (its pool over the budget, or larger
    than the clients) is skipped here as well."""
    sizes = sorted({cell.pool_size for cell in cells})
    kept: list[CellResult] = []
    out: dict[str, list[CellResult]] = {}
    for cell in sorted(cells, key=lambda c: (c.concurrency, c.pool_size)):
        if cell.skipped is not None:
            out.setdefault(cell.skip_kind or "skipped", []).append(cell)
            continue
        if not cell.measured:
            out.setdefault("not measured", []).append(cell)
            continue
        rule = skip_reason(cell.pool_size, cell.concurrency, sizes, budget)
        if rule is not None:
            out.setdefault(rule[0], []).append(cell)
            continue
        kept.append(cell)
    return kept, out


def left_out(out: dict[str, list[CellResult]], budget: Budget | None) -> list[str]:
    """The reasons' lines naming every cell not compared, and why."""
    lines = []
    failed = out.get("not measured", [])
    if failed:
        named = ", ".join(
            f"pool_size={cell.pool_size} with {clients(cell.concurrency)}" for cell in failed
        )
        lines.append(f"not measured, so left out: {named}")
    if out.get("pool > clients"):
        lines.append(
            "skipped, pools larger than the clients (no more connections can be in use than "
            f"there are clients): {sizes_text(out['pool > clients'])}"
        )
    if out.get("over budget"):
        limit = f" ({budget.sentence()})" if budget else ""
        lines.append(
            f"capped by the fleet budget{limit}, so skipped: {sizes_text(out['over budget'])}"
        )
    other = out.get("skipped", [])
    if other:
        lines.append(f"skipped: {sizes_text(other)}")
    return lines


def by_concurrency(cells: list[CellResult]) -> dict[int, list[CellResult]]:
    """The cells by client count, each row by pool size."""
    groups: dict[int, list[CellResult]] = {}
    for cell in sorted(cells, key=lambda c: (c.concurrency, c.pool_size)):
        groups.setdefault(cell.concurrency, []).append(cell)
    return groups


def _worse(one: Interval, other: Interval, higher_is_better: bool) -> bool:
    return measurably_below(one, other) if higher_is_better else measurably_above(one, other)


def beaten_by(
    cell: CellResult, row: list[CellResult], figure: Figure, higher_is_better: bool = True
) -> CellResult | None:
    """A cell of ``row`` measurably better than ``cell`` (the best such), or None."""
    mine = figure(cell)
    better = [
        other
        for other in row
        if other is not cell and _worse(mine, figure(other), higher_is_better)
    ]
    if not better:
        return None
    medians = [figure(other).median for other in better]
    pick = max(medians) if higher_is_better else min(medians)
    return better[medians.index(pick)]


def smallest_unbeaten(
    row: list[CellResult], figure: Figure, higher_is_better: bool = True
) -> CellResult:
    """The smallest pool of ``row`` that no other cell of the row beats by more than the
    noise. There always is one: the cell with the best median cannot be beaten (a cell
    measurably better has its whole interval, so its median, beyond it)."""
    for cell in sorted(row, key=lambda c: c.pool_size):
        if beaten_by(cell, row, figure, higher_is_better) is None:
            return cell
    raise AssertionError("the best median is never beaten")  # pragma: no cover
