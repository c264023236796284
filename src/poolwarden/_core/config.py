"""Argument checks: a bad value raises ``ValueError`` naming the argument and what is allowed."""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "PROXIES",
    "RESET_MODES",
    "check_choice",
    "check_count",
    "check_lifetime",
    "check_optional_seconds",
    "check_reset",
    "check_seconds",
    "check_sizes",
]

RESET_MODES = ("rollback", "session", None)
#: What may sit between a pool and its server (``proxy=``).
PROXIES = ("auto", "pgbouncer", "proxysql", None)


def check_choice(name: str, value: Any, allowed: tuple[Any, ...]) -> Any:
    """One of ``allowed``; anything else is a ValueError naming them."""
    if value in allowed and not isinstance(value, bool):
        return value
    shown = ", ".join(repr(a) for a in allowed)
    raise ValueError(f"{name} must be one of {shown}, got {value!r}")


def check_count(name: str, value: Any, minimum: int = 0) -> int:
    """An integer ``>= minimum`` (bools are refused: ``True`` is not a size)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def check_seconds(name: str, value: Any, zero_ok: bool = False) -> float:
    """A finite number of seconds ``> 0`` (``>= 0`` if ``zero_ok``)."""
    bound = ">= 0" if zero_ok else "> 0"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds {bound}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{name} must be a number of seconds {bound}, got {value!r}")
    return float(value)


def check_optional_seconds(name: str, value: Any, zero_ok: bool = False) -> float | None:
    """``None``, or a finite number of seconds ``> 0`` (``>= 0`` if ``zero_ok``)."""
    if value is None:
        return None
    try:
        return check_seconds(name, value, zero_ok)
    except ValueError:
        bound = ">= 0" if zero_ok else "> 0"
        raise ValueError(
            f"{name} must be a number of seconds {bound} or None, got {value!r}"
        ) from None


def check_lifetime(name: str, value: Any) -> float | str | None:
    """``"auto"``, ``None``, or a number of seconds ``> 0``."""
    if value is None:
        return None
    if isinstance(value, str):
        if value == "auto":
            return value
        raise ValueError(f"{name} must be 'auto', None or a number of seconds > 0, got {value!r}")
    try:
        return check_seconds(name, value)
    except ValueError:
        raise ValueError(
            f"{name} must be 'auto', None or a number of seconds > 0, got {value!r}"
        ) from None


def check_reset(value: Any) -> str | None:
    """One of :data:`RESET_MODES`."""
    if value not in RESET_MODES:
        raise ValueError(f"reset must be 'rollback', 'session' or None, got {value!r}")
    return value  # type: ignore[no-any-return]


def check_sizes(pool_size: Any, max_overflow: Any, min_idle: Any) -> tuple[int, int, int]:
    """The three sizes, consistent with each other."""
    pool_size = check_count("pool_size", pool_size)
    max_overflow = check_count("max_overflow", max_overflow)
    min_idle = check_count("min_idle", min_idle)
    if pool_size + max_overflow < 1:
        raise ValueError(
            "pool_size + max_overflow must be >= 1 (the pool could never hand out a "
            f"connection), got pool_size={pool_size}, max_overflow={max_overflow}"
        )
    if min_idle > pool_size + max_overflow:
        raise ValueError(
            f"min_idle must be between 0 and pool_size + max_overflow "
            f"({pool_size + max_overflow}), got {min_idle}"
        )
    return pool_size, max_overflow, min_idle
