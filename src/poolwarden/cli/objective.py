"""What ``size`` is asked to find: by default the smallest pool whose throughput no
larger pool beats measurably; with ``--p99 50ms`` the smallest pool that meets a p99
latency target at the expected (the largest) concurrency."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import click

__all__ = ["DurationType", "ObjectiveNotMet", "format_ms", "parse_duration"]

#: Seconds per unit, for the units a latency target may be given in.
UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(us|µs|ms|s)\s*$", re.IGNORECASE)


class ObjectiveNotMet(Exception):
    """No measured pool size meets the target: the message says so, and what the best
    achieved."""


def parse_duration(text: str) -> float:
    """``"50ms"`` -> 0.05 (seconds); ``ValueError`` saying what is allowed."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(
            f"{text!r}: expected a positive time with its unit, us, ms or s, e.g. 50ms, "
            "0.2s, 800us"
        )
    seconds = float(match.group(1)) * UNITS[match.group(2).lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{text!r}: the time must be more than 0, e.g. 50ms")
    return seconds


def format_ms(seconds: float) -> str:
    """0.05 -> ``50 ms``; 0.0005 -> ``0.5 ms``."""
    return f"{seconds * 1000:g} ms"


if TYPE_CHECKING:
    _ParamType = click.ParamType[float, Any]
else:  # click.ParamType is generic only in recent Click releases
    _ParamType = click.ParamType


class DurationType(_ParamType):
    """A click option value like ``50ms``, ``0.2s`` or ``800us``, in seconds."""

    name = "duration"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
