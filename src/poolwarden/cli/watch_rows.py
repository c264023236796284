"""From two scrapes of an endpoint to one row per pool: gauges now, latency quantiles and
events over the window between the scrapes (or, without an earlier one, since the pools
started)."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from .scrape import PoolSample

__all__ = ["EVENTS", "PoolRow", "histogram_quantile", "pool_rows"]

#: Counters whose increase is worth telling (key, singular, plural), in display order.
EVENTS: tuple[tuple[str, str, str], ...] = (
    ("timeouts", "timeout", "timeouts"),
    ("dead_probe", "dead (probe)", "dead (probe)"),
    ("dead_ping", "dead (ping)", "dead (ping)"),
    ("replaced", "replaced", "replaced"),
    ("lost", "lost", "lost"),
    ("leaks", "leak", "leaks"),
    ("invalidations", "invalidation", "invalidations"),
    ("create_errors", "create error", "create errors"),
)


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of cumulative ``{upper bound: count}`` buckets, estimated as
    Prometheus's ``histogram_quantile`` does: linear interpolation inside the bucket the
    rank falls in (the first bucket starts at 0); the largest finite bound when it falls
    in the ``+Inf`` bucket. None without samples or without a ``+Inf`` bucket."""
    if not 0 <= q <= 1:
        raise ValueError(f"q: expected a quantile from 0 to 1, got {q}")
    bounds = sorted(buckets)
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return None
    # Cumulative counts never fall; float noise could make them (as Prometheus fixes too).
    counts = list(accumulate((buckets[b] for b in bounds), max))
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    b = bisect_left(counts, rank, hi=len(counts) - 1)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, below = (0.0, 0.0) if b == 0 else (bounds[b - 1], counts[b - 1])
    inside = counts[b] - below
    if inside <= 0:
        return start
    return start + (bounds[b] - start) * (rank - below) / inside


def _increase(now: float, before: float | None) -> float:
    """A counter's increase; a counter that went down was reset (the application
    restarted, or its engine was disposed): it counted from zero since."""
    if before is None or now < before:
        return now
    return now - before


def _window(now: dict[float, float], before: dict[float, float] | None) -> dict[float, float]:
    if before is None or set(before) != set(now):
        return now
    if any(now[b] < before[b] for b in now):
        return now  # reset, as for counters
    return {b: now[b] - before[b] for b in now}


@dataclass(frozen=True)
class PoolRow:
    """What ``watch`` shows of one pool. Latencies are in seconds (None: no checkout in
    the window); ``events`` are counts over the window, or since the start."""

    endpoint: str
    pool: str
    used: int | None
    idle: int | None
    max: int | None
    pending: int | None
    timeouts: int | None
    checkouts: int | None
    wait_p50: float | None
    wait_p99: float | None
    use_p50: float | None
    use_p99: float | None
    events: dict[str, int | None]
    #: "total" (since the pools started) or "recent" (since the previous scrape).
    window: str

    def events_text(self) -> str:
        """``+2 dead (probe), +1 timeout`` (totals without the ``+``); empty for none."""
        sign = "+" if self.window == "recent" else ""
        parts = []
        for key, one, many in EVENTS:
            n = self.events.get(key) or 0
            if n:
                parts.append(f"{sign}{n} {one if n == 1 else many}")
        return ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        """The row as ``--json`` prints it (see the command's help for the keys)."""
        return {
            "endpoint": self.endpoint,
            "pool": self.pool,
            "used": self.used,
            "idle": self.idle,
            "max": self.max,
            "pending": self.pending,
            "timeouts": self.timeouts,
            "checkouts": self.checkouts,
            "wait_p50_seconds": self.wait_p50,
            "wait_p99_seconds": self.wait_p99,
            "use_p50_seconds": self.use_p50,
            "use_p99_seconds": self.use_p99,
            "window": self.window,
            "events": dict(self.events),
        }


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


def pool_rows(
    endpoint: str, now: dict[str, PoolSample], before: dict[str, PoolSample] | None
) -> list[PoolRow]:
    """One row per pool of ``now`` (sorted by name); over the window since ``before``
    when given, else since each pool started. A pool new since ``before`` counts from 0."""
    return [
        _row(endpoint, name, now[name], None if before is None else before.get(name, PoolSample()))
        for name in sorted(now)
    ]


def _quantile(now: PoolSample, before: PoolSample | None, kind: str, q: float) -> float | None:
    previous = None if before is None else before.buckets.get(kind, {})
    buckets = _window(now.buckets.get(kind, {}), previous)
    return histogram_quantile(q, buckets) if buckets else None


def _row(endpoint: str, name: str, now: PoolSample, before: PoolSample | None) -> PoolRow:
    values = now.values
    events: dict[str, int | None] = {}
    for key, _one, _many in EVENTS:
        if key not in values and key != "create_errors":
            events[key] = None  # not exported (create_errors appears with its first error)
            continue
        then = None if before is None else before.values.get(key, 0.0)
        events[key] = round(_increase(values.get(key, 0.0), then))
    return PoolRow(
        endpoint=endpoint,
        pool=name,
        used=_int(values.get("used")),
        idle=_int(values.get("idle")),
        max=_int(values.get("max")),
        pending=_int(values.get("pending")),
        timeouts=_int(values.get("timeouts")),
        checkouts=_int(values.get("checkouts")),
        wait_p50=_quantile(now, before, "wait", 0.5),
        wait_p99=_quantile(now, before, "wait", 0.99),
        use_p50=_quantile(now, before, "use", 0.5),
        use_p99=_quantile(now, before, "use", 0.99),
        events=events,
        window="total" if before is None else "recent",
    )
