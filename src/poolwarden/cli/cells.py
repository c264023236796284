"""One cell of ``poolwarden size``'s table: a pool size, a number of client threads, and
what its rounds measured, or why it was skipped or could not be measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .noise import Interval, median_interval

__all__ = ["CellResult", "Round", "percentile"]


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted ``ordered`` (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Round:
    """What one round of a cell measured."""

    seconds: float
    requests: int
    errors: int = 0
    #: The round's own p99 latency; None when no request finished in it.
    p99_ms: float | None = None

    @property
    def throughput(self) -> float:
        """Successful requests per second in the round."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return {
            "seconds": round(self.seconds, 4),
            "requests": self.requests,
            "errors": self.errors,
            "throughput": round(self.throughput, 2),
            "p99_ms": self.p99_ms,
        }


@dataclass
class CellResult:
    """One cell: a pool size, a number of client threads, what they achieved.

    Its figures are the medians of its rounds (:attr:`rounds`), each with a confidence
    interval; a cell built without rounds (one measurement) counts as one round.
    """

    pool_size: int
    concurrency: int
    seconds: float = 0.0
    #: Requests that succeeded within the measuring windows (all rounds).
    requests: int = 0
    #: Requests that failed within the measuring windows.
    errors: int = 0
    #: p50/p95/p99 of all rounds' requests together.
    latency_ms: dict[str, float] = field(default_factory=dict)
    wait_ms: dict[str, float] = field(default_factory=dict)
    #: Share of the requests' time spent waiting for a connection.
    wait_share: float = 0.0
    first_error: str | None = None
    #: Client threads still busy when a round's grace period ended.
    cut_off: int = 0
    #: Why the cell has no figures (its warm-up failed, or no request succeeded in time).
    not_measured: str | None = None
    rounds: list[Round] = field(default_factory=list)
    #: Why the cell was deliberately not run (a sentence), and the short kind of reason
    #: for the table ("pool > clients", "over budget").
    skipped: str | None = None
    skip_kind: str = ""

    @property
    def measured(self) -> bool:
        """True when the cell's figures may be compared and recommended from."""
        return self.skipped is None and self.not_measured is None and self.requests > 0

    @property
    def status(self) -> str:
        """``measured``, ``skipped`` or ``not measured``."""
        if self.skipped is not None:
            return "skipped"
        return "measured" if self.measured else "not measured"

    def throughput_interval(self) -> Interval:
        """The median throughput of the rounds and its confidence interval."""
        values = [r.throughput for r in self.rounds] or [self._pooled_throughput()]
        return median_interval(values)

    def p99_interval(self) -> Interval:
        """The median of the rounds' p99 latencies (ms) and its confidence interval."""
        values = [r.p99_ms for r in self.rounds if r.p99_ms is not None]
        return median_interval(values or [self.latency_ms.get("p99", 0.0)])

    def _pooled_throughput(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def throughput(self) -> float:
        """Successful requests per second: the median of the rounds."""
        return self.throughput_interval().median if self.rounds else self._pooled_throughput()

    @property
    def p99_ms(self) -> float:
        """p99 latency in ms: the median of the rounds' p99s."""
        return self.p99_interval().median

    def as_dict(self) -> dict[str, Any]:
        """The cell for the JSON report (figures null unless it was measured)."""
        shown = self.measured
        speed = self.throughput_interval() if shown else None
        p99 = self.p99_interval() if shown else None
        return {
            "pool_size": self.pool_size,
            "concurrency": self.concurrency,
            "status": self.status,
            "measured": shown,
            "skipped": self.skipped,
            "not_measured": None if shown or self.skipped else self.not_measured,
            "seconds": round(self.seconds, 4),
            "requests": self.requests,
            "throughput": round(speed.median, 2) if speed else None,
            "throughput_ci": speed.as_list(2) if speed else None,
            "p99_ms": round(p99.median, 3) if p99 else None,
            "p99_ci_ms": p99.as_list() if p99 else None,
            "ci_coverage": round(speed.coverage, 4) if speed else None,
            "noise_assumed": speed.assumed if speed else None,
            "errors": self.errors,
            "latency_ms": self.latency_ms if shown else None,
            "wait_ms": self.wait_ms if shown else None,
            "wait_share": round(self.wait_share, 4) if shown else None,
            "first_error": self.first_error,
            "cut_off": self.cut_off,
            "rounds": [r.as_dict() for r in self.rounds],
        }
