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

import logging
import threading
from collections.abc import Callable
from typing import Any

from .._core import PoolCore
from .._core.entry import Entry
from .._core.messages import lost_error
from ..adapters import Adapter
from ..errors import ConnectionLost
from ._compat import bounded_ping
from ._io import ConnectionIO

__all__ = ["HeldVerdict", "Holders", "check_held"]

log = logging.getLogger("poolwarden")

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


class Holders:
    """Mixin of :class:`~poolwarden.Pool`: what its proxies ask about the connections
    their borrowers hold."""

    _core: PoolCore
    _io: ConnectionIO
    _lock: threading.Lock
    _now: Callable[[], float]
    _server_idle_timeout: float | None

    def _held_verdict(self, entry: Entry, used: bool) -> HeldVerdict | None:
        """Is the connection a borrower kept unused dead? (See ``_held.check_held``.)"""
        io = self._io
        return check_held(io.adapter, entry.raw, entry.probe, used, io.validation_timeout)

    def _held_lost(
        self, entry: Entry, idle: float, open_transaction: bool, session_changed: bool
    ) -> ConnectionLost:
        """A held connection died with a transaction open, or with session state a new
        connection would lack: it is closed when it comes back, older idle ones become
        suspect, and the borrower gets this error."""
        entry.broken = True
        with self._lock:
            self._core.lost_held(self._now())
        log.warning(
            "connection #%d, checked out at %s, was lost after %.1f s unused, with %s",
            entry.id,
            entry.site(),
            idle,
            "a transaction open" if open_transaction else "its session state changed",
        )
        return lost_error(
            self._io.adapter, idle, self._server_idle_timeout, open_transaction, session_changed
        )

    def _replace_held(self, entry: Entry) -> Any:
        """Put a new connection into the dead one's place, in the borrower's hands: the
        same slot, so no other borrower waits for it. Returns the new driver connection;
        if connecting fails, the error propagates and the entry is closed on return."""
        entry.broken = True
        opened = self._io.open()
        raw = opened.raw
        now = self._now()
        with self._lock:
            dead, entry.raw, entry.probe, entry.broken = entry.raw, raw, opened.probe, False
            entry.peer, entry.host = opened.peer, opened.host
            self._core.replaced_held(entry, now)
        log.info("connection #%d died while held unused and was replaced", entry.id)
        try:  # last: an interruption here leaves the books right, only a socket to collect
            self._io.adapter.discard(dead, "held connection found dead")
        except Exception as exc:
            log.debug("discarding connection #%d failed: %r", entry.id, exc)
        return raw

    def _suspect_others(self) -> None:
        """A borrower's operation hit a disconnect: ping every idle connection checked
        before now before it is handed out (instead of reconnecting them all at once)."""
        with self._lock:
            self._core.suspect_all(self._now())
