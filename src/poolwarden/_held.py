# Generated from src/poolwarden/_async/_held.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""Connections kept in a borrower's hands: checked before the next operation after a pause.

A pooled connection is checked when it is handed out, but a borrower may then keep it for
minutes — a long computation, a slow upstream call — while the server's idle timeout runs
out or someone KILLs it. Before the next operation after such a pause, the socket probe
(no round trip) shows whether the server closed it. If it did, either nothing can be lost —
no statement ran since the last commit or rollback, or autocommit was on — and the caller
replaces the connection in place, or a transaction was open, and the borrower must hear
that its uncommitted work is gone (:class:`~poolwarden.ConnectionLost`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._compat import bounded_ping
from .adapters import Adapter

__all__ = ["HeldVerdict", "check_held"]

#: What :func:`check_held` found: the driver's error for the dead connection, and whether
#: a transaction was open on it.
HeldVerdict = tuple[BaseException, bool]


def check_held(
    adapter: Adapter,
    raw: Any,
    probe: Callable[[], Any] | None,
    used: bool,
    validation_timeout: float,
) -> HeldVerdict | None:
    """Whether the held connection ``raw`` is dead; None when it looks alive.

    ``used``: statements ran on it since the last commit or rollback. The transaction state
    is read before anything consumes what the server sent, because a driver that notices
    the loss forgets it. A connection judged dead is pinged once, which cannot hurt a dead
    connection and yields the driver's own error to report.
    """
    if probe is None or not adapter.held_probe(raw, probe):
        return None  # nothing arrived: the server has not closed it
    try:
        # Drivers that report the server's transaction state (libpq, sqlite3) are asked
        # even when the proxy saw no statement: one may have run in a way it cannot see.
        open_transaction = (used or adapter.reports_transaction) and adapter.needs_rollback(raw)
    except Exception:
        open_transaction = True
    try:
        dead = adapter.held_readable_means_dead(raw)
    except Exception:
        dead = True
    if not dead:
        return None  # a result the borrower has yet to read
    error = bounded_ping(adapter, raw, validation_timeout)
    if error is None:
        return None
    return error, open_transaction
