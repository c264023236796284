"""From ``size``'s measurements to a ``pool_size`` and ``max_overflow``, with the reasons.

Only differences larger than the noise count (:mod:`.noise`: the confidence intervals of
two cells' medians do not overlap). ``pool_size`` is, at each client count, the smallest
pool that no other pool beats measurably, and the largest of those over the client counts
(or, with a p99 target, the smallest pool whose p99 interval lies within the target at
the largest client count); ``max_overflow`` the extra connections that measurably cut p99
latency at the largest client count. Cells skipped or not measured are never recommended
and are named in the reasons; nothing recommended exceeds the fleet's connection budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .cells import CellResult
from .fleet import FLEET_SHARE
from .objective import ObjectiveNotMet, format_ms
from .rows import (
    beaten_by,
    by_concurrency,
    clients,
    left_out,
    p99_text,
    smallest_unbeaten,
    speed_text,
    usable,
)
from .server_settings import ServerFacts
from .size_plan import Budget

__all__ = [
    "ERROR_SHARE",
    "Recommendation",
    "conclude",
    "failed_share",
    "objective_name",
    "recommend",
    "withheld_reason",
]

#: Above this share of failed requests the figures describe the failures, not the
#: workload: nothing is recommended from them.
ERROR_SHARE = 0.01


def _speed(cell: CellResult) -> Any:
    return cell.throughput_interval()


def _p99(cell: CellResult) -> Any:
    return cell.p99_interval()


@dataclass
class Recommendation:
    """The suggested settings and the reasoning behind them."""

    pool_size: int
    max_overflow: int
    reasons: list[str] = field(default_factory=list)
    #: Connections each process may open within the server's limits (None: unknown).
    budget_per_process: int | None = None
    #: The client count whose measurements decided ``pool_size``.
    concurrency: int = 0
    #: ``throughput``, or the p99 target (``p99 <= 50 ms``).
    objective: str = "throughput"
    #: The other pool sizes of the deciding row the chosen one measured no differently
    #: from (for the throughput objective).
    matched: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return {
            "pool_size": self.pool_size,
            "max_overflow": self.max_overflow,
            "reasons": self.reasons,
            "budget_per_process": self.budget_per_process,
            "decided_at_concurrency": self.concurrency,
            "objective": self.objective,
            "no_measurable_difference_from": self.matched,
        }


def failed_share(cells: list[CellResult]) -> float:
    """Failed requests as a share of all requests that ended within the measurements."""
    errors = sum(cell.errors for cell in cells)
    total = errors + sum(cell.requests for cell in cells)
    return errors / total if total else 0.0


def _row_choice(count: int, row: list[CellResult]) -> tuple[CellResult, str]:
    """The smallest unbeaten pool of one client count, and why, in words."""
    chosen = smallest_unbeaten(row, _speed)
    if len(row) == 1:
        return chosen, (
            f"pool_size={chosen.pool_size}: the only pool size compared at "
            f"{clients(count)} ({speed_text(chosen)})"
        )
    differ = any(beaten_by(cell, row, _speed) for cell in row)
    if not differ:
        sizes = [cell.pool_size for cell in row]
        return chosen, (
            f"no measurable difference between pool sizes {sizes[0]}..{sizes[-1]} at "
            f"{clients(count)} (their throughput intervals overlap): "
            f"pool_size={chosen.pool_size}, the smallest ({speed_text(chosen)})"
        )
    words = [f"pool_size={chosen.pool_size}: at {clients(count)} ({speed_text(chosen)})"]
    for cell in row:
        if cell.pool_size < chosen.pool_size:
            better = beaten_by(cell, row, _speed)
            assert better is not None  # chosen is the smallest unbeaten
            words.append(
                f"pool_size={cell.pool_size} ({speed_text(cell)}) was measurably slower "
                f"than pool_size={better.pool_size}"
            )
    larger = [cell.pool_size for cell in row if cell.pool_size > chosen.pool_size]
    if larger:
        words.append(f"no larger pool ({', '.join(map(str, larger))}) was measurably faster")
    return chosen, "; ".join(words)


def _for_throughput(groups: dict[int, list[CellResult]]) -> tuple[CellResult, list[str]]:
    choices = {count: _row_choice(count, row) for count, row in groups.items()}
    driving, why = max(choices.values(), key=lambda pair: (pair[0].pool_size, pair[0].concurrency))
    reasons = [why]
    reasons += [
        f"with {clients(count)} pool_size={cell.pool_size} was enough ({speed_text(cell)})"
        for count, (cell, _) in sorted(choices.items())
        if cell is not driving
    ]
    return driving, reasons


def _for_p99(
    groups: dict[int, list[CellResult]], expected: int, target: float, skipped: list[str]
) -> tuple[CellResult, list[str]]:
    """The smallest pool whose p99 interval is within ``target`` (seconds) at the
    ``expected`` client count; ObjectiveNotMet when none is."""
    goal = f"p99 <= {format_ms(target)} at {clients(expected)} (the largest --concurrency)"
    row = groups.get(expected, [])
    left = f"; {'; '.join(skipped)}" if skipped else ""
    if not row:
        raise ObjectiveNotMet(f"nothing was measured at {clients(expected)} to meet {goal}{left}")
    limit = target * 1000
    meets = [cell for cell in row if cell.p99_interval().high <= limit]
    if not meets:
        best = min(row, key=lambda cell: cell.p99_interval().median)
        close = (
            ": its median is within the target but its interval is not; measure with more "
            "--rounds or a longer --duration"
            if best.p99_interval().median <= limit
            else ""
        )
        raise ObjectiveNotMet(
            f"no pool size measured meets {goal}: the best was pool_size={best.pool_size} "
            f"with p99 {p99_text(best)}{close}{left}"
        )
    chosen = meets[0]
    words = [
        f"pool_size={chosen.pool_size}: the smallest pool that meets {goal}: "
        f"p99 {p99_text(chosen)} ({speed_text(chosen)})"
    ]
    words += [
        f"pool_size={cell.pool_size} did not (p99 {p99_text(cell)}: its interval reaches "
        "above the target)"
        for cell in row
        if cell.pool_size < chosen.pool_size
    ]
    return chosen, ["; ".join(words)]


def _overflow(
    groups: dict[int, list[CellResult]], pool_size: int, p99_goal: bool
) -> tuple[int, str]:
    """``max_overflow``: the extra connections that measurably cut p99 latency at the
    largest client count."""
    busiest = groups[max(groups)]
    if p99_goal:
        return 0, (
            f"max_overflow=0: pool_size={pool_size} meets the p99 target at "
            f"{clients(max(groups))} on its own"
        )
    burst = smallest_unbeaten(busiest, _p99, higher_is_better=False)
    overflow = max(0, burst.pool_size - pool_size)
    if overflow:
        return overflow, (
            f"max_overflow={overflow}: in bursts of {clients(burst.concurrency)}, "
            f"{burst.pool_size} connections brought p99 latency to {p99_text(burst)}: "
            "measurably below smaller pools"
        )
    return 0, (
        f"max_overflow=0: with {clients(burst.concurrency)}, p99 latency was not measurably "
        f"lower with more connections than {pool_size}"
    )


def recommend(
    cells: list[CellResult],
    facts: ServerFacts | None,
    processes: int = 1,
    instances: int = 1,
    p99_target: float | None = None,
) -> Recommendation:
    """The recommendation from ``cells`` (see the module's docstring). ``p99_target``
    in seconds. ``ValueError`` when no cell may be recommended from; ObjectiveNotMet
    when no cell meets ``p99_target``."""
    budget = Budget.of(facts, processes * instances)
    kept, out = usable(cells, budget)
    groups = by_concurrency(kept)
    if not groups:
        raise ValueError("no measured cell to recommend from")
    skipped = left_out(out, budget)
    if p99_target is None:
        driving, reasons = _for_throughput(groups)
        objective = "throughput"
    else:
        expected = max(cell.concurrency for cell in cells)
        driving, reasons = _for_p99(groups, expected, p99_target, skipped)
        objective = f"p99 <= {format_ms(p99_target)} at {clients(expected)}"
    pool_size = driving.pool_size
    overflow, why = _overflow(groups, pool_size, p99_target is not None)
    reasons.append(why)
    if budget is not None:
        if pool_size + overflow > budget.per_process:
            overflow = max(0, budget.per_process - pool_size)
            reasons.append(
                f"max_overflow capped to {overflow} by the fleet budget: {budget.sentence()}"
            )
        else:
            reasons.append(
                f"{budget.fleet} process(es) x {pool_size + overflow} connection(s) fit within "
                f"{FLEET_SHARE:.0%} of the server's {budget.limit} ({budget.limit_name}): "
                f"up to {budget.per_process} per process"
            )
    reasons += skipped
    errors = sum(cell.errors for cell in cells)
    if errors:
        reasons.append(f"{errors} request(s) failed during the test: see the table")
    row = groups[driving.concurrency]
    matched = [
        cell.pool_size
        for cell in row
        if cell is not driving and cell.throughput_interval().overlaps(_speed(driving))
    ]
    return Recommendation(
        pool_size,
        overflow,
        reasons,
        budget.per_process if budget else None,
        driving.concurrency,
        objective,
        matched,
    )


def withheld_reason(cells: list[CellResult]) -> str:
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


def objective_name(p99_target: float | None, concurrency: list[int]) -> str:
    """The objective in words, as the JSON report names it."""
    if p99_target is None:
        return "throughput"
    return f"p99 <= {format_ms(p99_target)} at {clients(max(concurrency))}"


def conclude(
    cells: list[CellResult],
    facts: ServerFacts,
    processes: int,
    instances: int,
    p99_target: float | None,
) -> tuple[Recommendation | None, str, bool]:
    """The recommendation, or why there is none; and whether the p99 target was unmet."""
    if not any(cell.measured for cell in cells):
        return None, "", False
    withheld = withheld_reason(cells)
    if withheld:
        return None, withheld, False
    try:
        return recommend(cells, facts, processes, instances, p99_target), "", False
    except ObjectiveNotMet as exc:
        return None, str(exc), True
