"""The housekeeper's plans, without I/O: which idle connections retire or need a keepalive
ping, when the next of them falls due, and which holders to report as possible leaks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .entry import Entry

if TYPE_CHECKING:
    from .core import PoolCore

__all__ = ["due_for_maintenance", "leaks_due", "next_leak_check", "next_maintenance"]


def due_for_maintenance(
    core: PoolCore, now: float, idle_timeout: float | None, keepalive: float | None
) -> tuple[list[Entry], list[Entry]]:
    """Idle connections to retire (past their lifetime, or idle past ``idle_timeout``
    beyond ``min_idle``) and to ping (the ``min_idle`` that must survive, unused for
    ``keepalive`` seconds). Both are taken off the idle list.

    Both go by the list's order (longest idle first), whichever end checkouts take
    from. With FIFO checkouts every connection is used in turn, so none is idle past
    ``idle_timeout`` until the load falls below one checkout per connection per
    ``idle_timeout``; then the pool shrinks until that many connections are left."""
    retire = [e for e in core.idle if now >= e.expires_at]
    keep = [e for e in core.idle if now < e.expires_at]
    if idle_timeout is not None:
        # The front holds the longest idle; keep the last min_idle regardless.
        spare = max(0, len(keep) - core.min_idle)
        stale = [e for e in keep[:spare] if now - e.last_used >= idle_timeout]
        retire += stale
        keep = [e for e in keep if e not in stale]
    ping: list[Entry] = []
    survivors = core.min_idle - core.maintaining  # some may be out being pinged already
    if keepalive is not None and survivors > 0:
        ping = [e for e in keep[-survivors:] if now - e.last_used >= keepalive]
        keep = [e for e in keep if e not in ping]
    core.idle = keep
    core.counters.retired += len(retire)
    core.counters.closes += len(retire)
    core.maintaining += len(ping)
    return retire, ping


def next_maintenance(
    core: PoolCore, now: float, idle_timeout: float | None, keepalive: float | None
) -> float | None:
    """When the earliest idle connection falls due for retirement or a ping. Held
    connections count for retirement too, so that returning one (which may then sit
    idle until its lifetime ends) need not wake the housekeeper to re-plan."""
    due = [e.expires_at for e in (*core.idle, *core.in_use)]
    if idle_timeout is not None:
        due += [e.last_used + idle_timeout for e in core.idle[: -core.min_idle or None]]
    if keepalive is not None and core.min_idle:
        due += [e.last_used + keepalive for e in core.idle[-core.min_idle :]]
    finite = [d for d in due if d != float("inf")]
    return min(finite) if finite else None


def leaks_due(core: PoolCore, now: float, threshold: float) -> list[Entry]:
    """Holders past ``threshold`` not reported yet; marks them reported."""
    due = []
    for entry in core.in_use:
        if now - entry.checkout_at < threshold:
            break  # later holders checked out later still
        if not entry.leak_reported:
            entry.leak_reported = True
            core.counters.leaks += 1
            due.append(entry)
    return due


def next_leak_check(core: PoolCore, threshold: float) -> float | None:
    """When the next unreported holder crosses ``threshold``."""
    for entry in core.in_use:
        if not entry.leak_reported:
            return entry.checkout_at + threshold
    return None
