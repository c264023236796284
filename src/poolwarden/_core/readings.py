"""What a pool's books say, read out under its lock: the immutable ``PoolStats`` snapshot, and
the incremental reading :mod:`poolwarden.metrics` takes (O(new samples), no sorting)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import TYPE_CHECKING, NamedTuple

from .stats import MetricsReading, PoolStats, SampleCursor

if TYPE_CHECKING:
    from .core import PoolCore

__all__ = ["Sizes", "metrics_reading", "snapshot"]


class Sizes(NamedTuple):
    """A pool's counts, read without copying anything (QueuePool's ``checkedin()``,
    ``checkedout()`` and ``overflow()`` read these)."""

    idle: int
    in_use: int
    #: Connections open or being opened.
    open: int
    waiting: int
    pool_size: int
    max_overflow: int


def metrics_reading(core: PoolCore, since: SampleCursor) -> MetricsReading:
    """Gauges, counters and the time samples recorded after ``since``: O(new samples),
    no sorting, so that a metrics reader holds the lock only briefly."""
    hold, hold_lost = core.hold_time.since(since.hold)
    wait, wait_lost = core.wait_time.since(since.wait)
    create, create_lost = core.create_time.since(since.create)
    return MetricsReading(
        idle=len(core.idle),
        used=len(core.in_use),
        pending=len(core.waiters),
        max_size=core.max_size,
        pool_size=core.pool_size,
        min_idle=core.min_idle,
        counters=replace(core.counters),
        connect_errors=dict(core.connect_errors),
        cursor=SampleCursor(
            core.hold_time.count, core.wait_time.count, core.create_time.count, core.checkouts
        ),
        hold=hold,
        hold_lost=hold_lost,
        wait=wait,
        wait_lost=wait_lost,
        create=create,
        create_lost=create_lost,
    )


def snapshot(core: PoolCore) -> PoolStats:
    """Sizes, counters and time summaries as one immutable value."""
    in_use = len(core.in_use)
    return PoolStats(
        **asdict(core.counters),
        pool_size=core.pool_size,
        max_overflow=core.max_overflow,
        min_idle=core.min_idle,
        idle=len(core.idle),
        in_use=in_use,
        waiting=len(core.waiters),
        connecting=core.connecting,
        overflow=max(0, len(core.idle) + in_use - core.pool_size),
        peak_in_use=core.peak_in_use,
        peak_waiting=core.peak_waiting,
        checkouts=core.checkouts,
        checkins=core.checkins,
        wait_time=core.wait_time.summary(events=core.checkouts),
        hold_time=core.hold_time.summary(),
    )
