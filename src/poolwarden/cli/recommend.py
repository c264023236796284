"""From ``size``'s measurements to a ``pool_size`` and ``max_overflow``, with the reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .checks import FLEET_SHARE
from .loadtest import CellResult
from .server_settings import ServerFacts

__all__ = ["ERROR_SHARE", "NEAR_BEST", "Recommendation", "failed_share", "recommend"]

#: Within this share of the best figure counts as "as good": the machines measured on are
#: noisy, and a smaller pool that is as good is better (less server load and memory).
NEAR_BEST = 0.05
#: Above this share of failed requests the figures describe the failures, not the
#: workload: nothing is recommended from them.
ERROR_SHARE = 0.01


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

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return {
            "pool_size": self.pool_size,
            "max_overflow": self.max_overflow,
            "reasons": self.reasons,
            "budget_per_process": self.budget_per_process,
            "decided_at_concurrency": self.concurrency,
        }


def _by_concurrency(cells: list[CellResult]) -> dict[int, list[CellResult]]:
    groups: dict[int, list[CellResult]] = {}
    for cell in sorted(cells, key=lambda c: (c.concurrency, c.pool_size)):
        groups.setdefault(cell.concurrency, []).append(cell)
    return groups


def clients(count: int) -> str:
    """``1 client``, ``4 clients``."""
    return f"{count} client{'' if count == 1 else 's'}"


def candidates(row: list[CellResult]) -> list[CellResult]:
    """The cells of one client count that can differ: a pool larger than the number of
    clients never has more than that many connections in use, so it measures the same
    thing again and a higher figure there is noise."""
    useful = [cell for cell in row if cell.pool_size <= cell.concurrency]
    return useful or row[:1]


def smallest_near_peak(row: list[CellResult]) -> CellResult:
    """The smallest pool size whose throughput is within NEAR_BEST of the row's peak."""
    row = candidates(row)
    peak = max(cell.throughput for cell in row)
    return next(cell for cell in row if cell.throughput >= peak * (1 - NEAR_BEST))


def _budget(facts: ServerFacts | None, fleet_processes: int) -> int | None:
    if facts is None:
        return None
    limits = [facts.available_connections, facts.user_limit, facts.database_limit]
    limit = min(value for value in limits if value is not None)
    return int(limit * FLEET_SHARE) // fleet_processes


def failed_share(cells: list[CellResult]) -> float:
    """Failed requests as a share of all requests that ended within the measurements."""
    errors = sum(cell.errors for cell in cells)
    total = errors + sum(cell.requests for cell in cells)
    return errors / total if total else 0.0


def recommend(
    cells: list[CellResult], facts: ServerFacts | None, processes: int = 1, instances: int = 1
) -> Recommendation:
    """``pool_size``: the smallest size within 5% of peak throughput, at the client count
    that needs the most; ``max_overflow``: the extra connections that still cut p99
    latency at the highest client count, within the server's connection budget.

    Only measured cells count (see :attr:`CellResult.measured`); ``ValueError`` when
    there is none.
    """
    skipped = [cell for cell in cells if not cell.measured]
    cells = [cell for cell in cells if cell.measured]
    groups = _by_concurrency(cells)
    if not groups:
        raise ValueError("no measured cell to recommend from")
    choices = {count: smallest_near_peak(row) for count, row in groups.items()}
    driving = max(choices.values(), key=lambda cell: (cell.pool_size, cell.concurrency))
    peak = max(cell.throughput for cell in candidates(groups[driving.concurrency]))
    largest = candidates(groups[driving.concurrency])[-1].pool_size
    if driving.pool_size < largest:
        beyond = "larger pools added no throughput"
    elif driving.concurrency < max(groups):
        beyond = "with more clients, pools no larger did as well (below)"
    else:
        beyond = (
            "no larger pool can help so few clients (one connection each at most): "
            "measure with more clients to see whether more connections help"
        )
    reasons = [
        f"pool_size={driving.pool_size}: with {clients(driving.concurrency)} it reached "
        f"{driving.throughput:,.0f} req/s, within {NEAR_BEST:.0%} of the peak "
        f"{peak:,.0f} req/s; {beyond}"
    ]
    reasons += [
        f"with {clients(count)} pool_size={cell.pool_size} was enough "
        f"({cell.throughput:,.0f} req/s)"
        for count, cell in sorted(choices.items())
        if cell is not driving
    ]
    pool_size = driving.pool_size
    busiest = candidates(groups[max(groups)])
    best_p99 = min(cell.latency_ms.get("p99", 0.0) for cell in busiest)
    burst = next(
        cell for cell in busiest if cell.latency_ms.get("p99", 0.0) <= best_p99 * (1 + NEAR_BEST)
    )
    overflow = max(0, burst.pool_size - pool_size)
    if overflow:
        reasons.append(
            f"max_overflow={overflow}: in bursts of {clients(burst.concurrency)}, "
            f"{burst.pool_size} connections brought p99 latency to "
            f"{burst.latency_ms['p99']:.2f} ms (best measured {best_p99:.2f} ms)"
        )
    else:
        reasons.append(
            f"max_overflow=0: with {clients(burst.concurrency)}, p99 latency was no lower "
            f"with more connections than {pool_size}"
        )
    budget = _budget(facts, processes * instances)
    if budget is not None and facts is not None:
        fleet = processes * instances
        if pool_size + overflow > budget:
            pool_size = max(1, min(pool_size, budget))
            overflow = max(0, budget - pool_size)
            reasons.append(
                f"capped to pool_size={pool_size}, max_overflow={overflow}: {fleet} "
                f"process(es) share {FLEET_SHARE:.0%} of the server's connections, "
                f"{budget} each"
            )
        else:
            reasons.append(
                f"{fleet} process(es) x {pool_size + overflow} connection(s) fit within "
                f"{FLEET_SHARE:.0%} of the server's {facts.available_connections} "
                f"(max_connections={facts.max_connections}): up to {budget} per process"
            )
    if skipped:
        left_out = ", ".join(
            f"pool_size={cell.pool_size} with {clients(cell.concurrency)}" for cell in skipped
        )
        reasons.append(f"not measured, so left out: {left_out}")
    errors = sum(cell.errors for cell in cells + skipped)
    if errors:
        reasons.append(f"{errors} request(s) failed during the test: see the table")
    return Recommendation(pool_size, overflow, reasons, budget, driving.concurrency)
