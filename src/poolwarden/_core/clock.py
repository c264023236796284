"""Time source for the pool, passed in so tests can drive time by hand."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "MonotonicClock"]


class Clock(Protocol):
    """What the pool needs from a clock: monotonic seconds."""

    def monotonic(self) -> float:
        """Return seconds from an arbitrary origin that never go backwards."""
        ...


class MonotonicClock:
    """The real clock: :func:`time.monotonic`."""

    monotonic = staticmethod(time.monotonic)
