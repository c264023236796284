"""Cumulative histogram buckets, filled from a pool's time samples off the request path."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from ._names import SECONDS_BUCKETS

__all__ = ["Buckets"]


class Buckets:
    """Counts per bucket (``counts[i]``: samples in ``(bounds[i-1], bounds[i]]``, the last
    one above every bound), with their sum and count, since the pool was instrumented."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = SECONDS_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def add(self, values: Sequence[float], lost: int = 0, zeros: int = 0) -> None:
        """Count ``values`` and ``zeros`` zero-length events. ``lost`` more samples were
        recorded but overwritten before they were read (a pool busier than the ring
        between two readings): they are counted as distributed like ``values``."""
        counts, bounds = self.counts, self.bounds
        added = [0] * len(counts)
        for value in values:
            added[bisect_left(bounds, value)] += 1
        if lost and values:
            scale = lost / len(values)
            extra = [int(n * scale) for n in added]
            extra[max(range(len(added)), key=added.__getitem__)] += lost - sum(extra)
            added = [a + e for a, e in zip(added, extra, strict=True)]
            self.sum += sum(values) * scale
        added[0] += zeros
        for i, n in enumerate(added):
            counts[i] += n
        self.sum += sum(values)
        self.count += len(values) + (lost if values else 0) + zeros

    def cumulative(self) -> list[int]:
        """Counts at or below each bound, then the total (Prometheus's ``le`` buckets)."""
        out, running = [], 0
        for n in self.counts:
            running += n
            out.append(running)
        return out
