"""How ``poolwarden size`` tells a difference from noise: the median of a cell's rounds,
its confidence interval, and the one rule that decides whether two cells differ.

The interval is the distribution-free order-statistic interval of the median: with ``n``
rounds sorted, ``(x[k], x[n+1-k])`` covers the true median with probability
``1 - 2 * P(Binomial(n, 1/2) <= k - 1)``, whatever the distribution of the figures. The
largest ``k`` that reaches LEVEL is used; with too few rounds for LEVEL (fewer than 6) it
is the lowest and highest round, and the coverage it does reach is reported (5 rounds:
93.75%). No dependency, no resampling, the same answer every time.

Two cells differ measurably when their intervals do not overlap. With the default of 5
rounds that means all five rounds of one beat all five of the other, which chance alone
does with probability 1/252 (the exact Mann-Whitney test at U = 0).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ASSUMED_NOISE",
    "LEVEL",
    "Interval",
    "measurably_above",
    "measurably_below",
    "median_interval",
]

#: The confidence the intervals aim for.
LEVEL = 0.95
#: With fewer rounds than this the spread of the rounds says little about the noise (2
#: rounds: the interval between them covers the median half of the time), so each
#: interval is widened to at least +-ASSUMED_NOISE of its median.
MIN_ROUNDS = 3
#: The noise assumed when it cannot be measured: single cells on a shared machine vary
#: by far more than this from run to run, so it is a floor, not an estimate.
ASSUMED_NOISE = 0.05


@dataclass(frozen=True)
class Interval:
    """A median and its confidence interval."""

    median: float
    low: float
    high: float
    #: The probability that the interval covers the true median (0 for one round).
    coverage: float
    #: How many figures it was computed from.
    rounds: int
    #: True when the interval is the assumed ASSUMED_NOISE, too few rounds to measure it.
    assumed: bool = False

    def overlaps(self, other: Interval) -> bool:
        """True when the two intervals share a value: no measurable difference."""
        return self.low <= other.high and other.low <= self.high

    def as_list(self, digits: int = 3) -> list[float]:
        """``[low, high]``, rounded, for JSON."""
        return [round(self.low, digits), round(self.high, digits)]


def _binomial_cdf(k: int, n: int) -> float:
    """P(Binomial(n, 1/2) <= k)."""
    return float(sum(math.comb(n, i) for i in range(k + 1))) / float(2**n)


def coverage(n: int, k: int) -> float:
    """Coverage of the order-statistic interval ``(x[k], x[n+1-k])`` (1-based) of ``n``."""
    return 1.0 - 2.0 * _binomial_cdf(k - 1, n)


def median_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """The median of ``values`` and its order-statistic confidence interval (see the
    module's docstring); ``ValueError`` when there is none."""
    if not values:
        raise ValueError("no figures to summarise")
    ordered = sorted(values)
    n = len(ordered)
    k = 1
    while k + 1 <= n // 2 and coverage(n, k + 1) >= level:
        k += 1
    middle = statistics.median(ordered)
    low, high = ordered[k - 1], ordered[n - k]
    reached = coverage(n, k) if n > 1 else 0.0
    if n < MIN_ROUNDS:
        spread = abs(middle) * ASSUMED_NOISE
        return Interval(
            middle, min(low, middle - spread), max(high, middle + spread), reached, n, True
        )
    return Interval(middle, low, high, reached, n)


def measurably_below(one: Interval, other: Interval) -> bool:
    """True when ``one`` is below ``other`` by more than the noise: its interval ends
    before the other's begins."""
    return one.high < other.low


def measurably_above(one: Interval, other: Interval) -> bool:
    """True when ``one`` is above ``other`` by more than the noise."""
    return one.low > other.high
