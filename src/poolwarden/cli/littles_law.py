"""Sizing a pool from production numbers, without a load test: Little's law on what
``Pool.stats()`` counted.

The file (``size --from-stats FILE``, ``doctor --stats FILE``) is JSON, one of:

- a list of two or more snapshots taken some time apart, each
  ``{"at": <time.time()>, "stats": pool.stats().as_dict()}`` (the first and the last are
  used): the checkouts between them over the seconds between them;
- one snapshot with the seconds its counters cover, ``{"seconds": <since the pool was
  created>, "stats": pool.stats().as_dict()}``.

``stats()`` has no clock and no total hold time, so a bare ``stats().as_dict()`` is not
enough: its counters say how many checkouts, not over how long. The rule:

- arrival rate = checkouts / seconds;
- mean hold time ``W``: ``hold_time["mean"]`` when the snapshot has one, else estimated
  from the hold time's p50 and p99 (a log-normal through both: ``p50 * exp(sigma^2/2)`` with
  ``sigma = ln(p99/p50) / 2.326``, within [p50, p99]); stats() keeps percentiles only;
- connections busy on average ``L = rate x W`` (Little's law);
- needed: the 99th percentile of the connections busy at once when checkouts arrive at
  random (Poisson with mean ``L``; true for any hold-time distribution, M/G/∞), at
  least 1: with that many, 99% of the time a checkout finds a connection free;
- waits (``wait_time`` p99 above 0, or timeouts in the window) mean the pool was full at
  times: the checkouts counted were those it could serve, so the need is a lower bound.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CommandError

__all__ = ["Sizing", "StatsWindow", "load_stats", "lognormal_mean", "poisson_quantile", "size"]

#: The share of the time the recommended connections suffice.
QUANTILE = 0.99
#: z of the 99th percentile of the standard normal distribution.
Z99 = 2.3263478740408408


@dataclass(frozen=True)
class StatsWindow:
    """What the file says about one pool over some seconds."""

    seconds: float
    checkouts: int
    timeouts: int
    hold_p50: float
    hold_p99: float
    #: From the snapshot when it has one (stats() does not), else None.
    hold_mean: float | None
    wait_p99: float
    pool_size: int
    max_overflow: int
    peak_in_use: int
    #: ``2 snapshots 60.0 s apart`` or ``counters over 3600 s``.
    how: str


@dataclass(frozen=True)
class Sizing:
    """Little's law applied to a window."""

    window: StatsWindow
    arrival_rate: float
    mean_hold: float
    mean_estimated: bool
    busy: float
    needed: int

    @property
    def saturated(self) -> bool:
        """True when checkouts waited or timed out: the pool was full at times."""
        return self.window.wait_p99 > 0 or self.window.timeouts > 0

    def summary(self) -> str:
        """One sentence: the need and how it was worked out."""
        mean = "estimated mean" if self.mean_estimated else "mean"
        bound = "at least " if self.saturated else ""
        return (
            f"{bound}{self.needed} connection(s): {self.arrival_rate:,.1f} checkouts/s x "
            f"{mean} hold {self.mean_hold * 1000:.2f} ms = {self.busy:.2f} busy on average "
            f"(Little's law); {self.needed} cover(s) {QUANTILE:.0%} of the time with "
            "random arrivals (Poisson)"
        )

    def as_dict(self) -> dict[str, Any]:
        """For JSON output."""
        w = self.window
        return {
            "window": w.how,
            "seconds": w.seconds,
            "checkouts": w.checkouts,
            "arrival_rate_per_s": round(self.arrival_rate, 3),
            "hold_p50_ms": round(w.hold_p50 * 1000, 3),
            "hold_p99_ms": round(w.hold_p99 * 1000, 3),
            "mean_hold_ms": round(self.mean_hold * 1000, 3),
            "mean_hold_estimated": self.mean_estimated,
            "busy_connections": round(self.busy, 3),
            "needed_connections": self.needed,
            "wait_p99_ms": round(w.wait_p99 * 1000, 3),
            "timeouts": w.timeouts,
            "saturated": self.saturated,
            "pool_size": w.pool_size,
            "max_overflow": w.max_overflow,
            "peak_in_use": w.peak_in_use,
        }


def poisson_quantile(mean: float, share: float = QUANTILE) -> int:
    """The smallest ``k`` with P(Poisson(mean) <= k) >= ``share``."""
    if mean <= 0:
        return 0
    if mean > 500:  # exp(-mean) underflows: the normal approximation is exact enough
        return math.ceil(mean + Z99 * math.sqrt(mean) + 0.5)
    term = math.exp(-mean)
    total, k = term, 0
    while total < share:
        k += 1
        term *= mean / k
        total += term
    return k


def lognormal_mean(p50: float, p99: float) -> float:
    """The mean of a log-normal distribution with that median and 99th percentile,
    within [p50, p99]; p99 itself when p50 is 0 (no shape to fit: the safe side)."""
    if p50 <= 0 or p99 <= p50:
        return max(p50, p99)
    sigma = math.log(p99 / p50) / Z99
    return min(p99, p50 * math.exp(sigma * sigma / 2))


def size(window: StatsWindow) -> Sizing:
    """Little's law on ``window``."""
    rate = window.checkouts / window.seconds
    estimated = window.hold_mean is None
    mean = lognormal_mean(window.hold_p50, window.hold_p99) if estimated else window.hold_mean
    assert mean is not None
    busy = rate * mean
    return Sizing(window, rate, mean, estimated, busy, max(1, poisson_quantile(busy)))


def _number(data: dict[str, Any], key: str, where: str, whole: bool = False) -> Any:
    value = data.get(key)
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{where}{key} must be {kind} >= 0, not {value!r}")
    return value


def _percentiles(stats: dict[str, Any], key: str) -> dict[str, Any]:
    part = stats.get(key)
    if not isinstance(part, dict):
        raise ValueError(f"stats.{key} must be an object with p50 and p99 (seconds)")
    return part


def _snapshot(item: Any, number: int) -> tuple[float | None, dict[str, Any]]:
    if not isinstance(item, dict) or not isinstance(item.get("stats"), dict):
        raise ValueError(
            f'snapshot {number} must be an object {{"at": <time.time()>, "stats": '
            "pool.stats().as_dict()}"
        )
    at = item.get("at")
    if at is not None:
        at = float(_number(item, "at", f"snapshot {number}: "))
    return at, item["stats"]


def _window(data: Any) -> StatsWindow:
    if isinstance(data, dict) and "stats" not in data and "checkouts" in data:
        raise ValueError(
            "a bare stats() snapshot counts checkouts but not over how long: give two "
            'snapshots, [{"at": time.time(), "stats": pool.stats().as_dict()}, ...], or one '
            'with the seconds it covers, {"seconds": S, "stats": ...}'
        )
    first: dict[str, Any] | None
    if isinstance(data, list):
        if len(data) < 2:
            raise ValueError("a list needs two snapshots or more, taken some time apart")
        (first_at, first), (last_at, last) = _snapshot(data[0], 1), _snapshot(data[-1], len(data))
        if first_at is None or last_at is None:
            raise ValueError('each snapshot of a list needs "at": time.time() when taken')
        seconds = last_at - first_at
        if seconds <= 0:
            raise ValueError(f"the last snapshot is not later than the first ({seconds:g} s)")
        how = f"{len(data)} snapshots {seconds:,.1f} s apart"
    elif isinstance(data, dict) and isinstance(data.get("stats"), dict):
        seconds = float(_number(data, "seconds", ""))
        if seconds <= 0:
            raise ValueError("seconds must be more than 0")
        first, last = None, data["stats"]
        how = f"counters over {seconds:,.1f} s"
    else:
        raise ValueError('expected a list of snapshots or {"seconds": S, "stats": {...}}')
    checkouts = _number(last, "checkouts", "stats.", True) - (
        0 if first is None else _number(first, "checkouts", "stats.", True)
    )
    timeouts = _number(last, "timeouts", "stats.", True) - (
        0 if first is None else _number(first, "timeouts", "stats.", True)
    )
    if checkouts < 0 or timeouts < 0:
        raise ValueError("the counters went down between the snapshots: not the same pool")
    if checkouts == 0:
        raise ValueError("no checkout in the window: nothing to size from")
    hold, wait = _percentiles(last, "hold_time"), _percentiles(last, "wait_time")
    mean = hold.get("mean")
    return StatsWindow(
        seconds=seconds,
        checkouts=checkouts,
        timeouts=timeouts,
        hold_p50=float(_number(hold, "p50", "stats.hold_time.")),
        hold_p99=float(_number(hold, "p99", "stats.hold_time.")),
        hold_mean=None if mean is None else float(_number(hold, "mean", "stats.hold_time.")),
        wait_p99=float(_number(wait, "p99", "stats.wait_time.")),
        pool_size=_number(last, "pool_size", "stats.", True),
        max_overflow=_number(last, "max_overflow", "stats.", True),
        peak_in_use=_number(last, "peak_in_use", "stats.", True),
        how=how,
    )


def load_stats(path: str, option: str) -> StatsWindow:
    """The window the file at ``path`` describes (see the module's docstring); a
    CommandError naming ``option`` when it cannot be read or is not such a file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{option}: no such file {path!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{option}: cannot read {path}: {exc}") from None
    try:
        return _window(json.loads(text))
    except ValueError as exc:  # json.JSONDecodeError is one
        raise CommandError(
            f"{option}: {path} is not a pool.stats() dump poolwarden reads: {exc}"
        ) from None
