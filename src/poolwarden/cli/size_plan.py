"""Which cells ``poolwarden size`` runs and which it skips, and why: the fleet's
connection budget (a hard limit) and pools larger than the client count."""

from __future__ import annotations

from dataclasses import dataclass

from .cells import CellResult
from .fleet import FLEET_SHARE
from .server_settings import ServerFacts

__all__ = ["Budget", "plan_cells", "skip_reason"]


@dataclass(frozen=True)
class Budget:
    """The connections each process's pool may have: FLEET_SHARE of the tightest limit
    the server puts on this account, shared by the fleet's processes."""

    per_process: int
    #: The limit it comes from, and its name (``max_connections=151``, ...).
    limit: int
    limit_name: str
    fleet: int

    @classmethod
    def of(cls, facts: ServerFacts | None, fleet: int) -> Budget | None:
        """The budget under ``facts`` for ``fleet`` processes (None without facts)."""
        if facts is None:
            return None
        limits = [(facts.available_connections, _server_limit(facts))]
        if facts.user_limit is not None:
            limits.append((facts.user_limit, f"{facts.user_limit_name}={facts.user_limit}"))
        if facts.database_limit is not None:
            limits.append((facts.database_limit, f"database limit={facts.database_limit}"))
        limit, name = min(limits, key=lambda pair: pair[0])
        return cls(int(limit * FLEET_SHARE) // fleet, limit, name, fleet)

    def sentence(self) -> str:
        """``4 process(es) share 80% of 151 connections (max_connections=151): 30 each``."""
        return (
            f"{self.fleet} process(es) share {FLEET_SHARE:.0%} of {self.limit} connections "
            f"({self.limit_name}): {self.per_process} each"
        )


def _server_limit(facts: ServerFacts) -> str:
    if facts.reserved_connections:
        return f"max_connections={facts.max_connections} - {facts.reserved_connections} reserved"
    return f"max_connections={facts.max_connections}"


def skip_reason(
    size: int, clients: int, sizes: list[int], budget: Budget | None
) -> tuple[str, str] | None:
    """Why the cell (``size``, ``clients``) is not worth running, as (kind, sentence), or
    None. Over the budget first: that is a hard limit. Then a pool larger than the
    smallest size that gives every client a connection: no more than ``clients``
    connections can be in use, so it measures that size again and any difference is
    noise."""
    if budget is not None and size > budget.per_process:
        return (
            "over budget",
            f"over the fleet budget: {budget.fleet} process(es) x pool_size {size} = "
            f"{budget.fleet * size} connections, more than {FLEET_SHARE:.0%} of "
            f"{budget.limit} ({budget.limit_name}) allows; at most {budget.per_process} "
            "per process",
        )
    enough = min((s for s in sizes if s >= clients), default=None)
    if enough is not None and size > enough:
        return (
            "pool > clients",
            f"pool_size={size} is larger than the {clients} client(s): no more than "
            f"{clients} connection(s) can be in use, as with pool_size={enough}",
        )
    return None


def plan_cells(
    pool_sizes: list[int], concurrency: list[int], budget: Budget | None
) -> list[CellResult]:
    """Every cell of the grid, those not to run marked skipped with their reason."""
    cells = []
    for clients in concurrency:
        for size in pool_sizes:
            cell = CellResult(size, clients)
            reason = skip_reason(size, clients, pool_sizes, budget)
            if reason is not None:
                cell.skip_kind, cell.skipped = reason
            cells.append(cell)
    return cells
