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
from collections.abc import Callable
from typing import Any

from .._core.entry import Entry
from .._core.held import HeldAction, held_action, needs_probe
from .._core.messages import lost_error
from ..adapters import Adapter
from ..adapters.base import BaseAdapter
from ..errors import ConnectionLost
from ._compat import bounded_ping
from ._rules import ServerRules
from ._shared import Shared

__all__ = ["HeldConnections", "HeldVerdict", "check_held", "restore_settings"]

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


def restore_settings(
    adapter: Adapter, raw: Any, autocommit: bool | None, applied: dict[str, Any] | None
) -> None:
    """Give ``raw``, which replaced a dead connection in a borrower's hands, what the
    borrower had: ``autocommit`` as the server last reported it on the dead one, and the
    attributes set through the proxy (``applied``)."""
    if autocommit is not None and adapter.known_autocommit(raw) != autocommit:
        adapter.set_autocommit(raw, autocommit)
    for name, value in (applied or {}).items():
        if name == "autocommit":
            adapter.set_autocommit(raw, value)
        else:
            adapter.set_attribute(raw, name, value)


class HeldConnections:
    """What a pool's proxies ask about the connections their borrowers hold."""

    def __init__(self, shared: Shared, rules: ServerRules) -> None:
        self._shared = shared
        self._rules = rules

    def check(
        self, entry: Entry, used: bool, session_changed: bool, ending: bool, lost: str | None
    ) -> tuple[HeldAction, BaseException | None]:
        """What to do with the connection a borrower kept unused (see
        :func:`poolwarden._core.held.held_action`), and the driver's error if it is dead.
        ``used``: statements ran since the last commit or rollback; ``ending``: the
        borrower is rolling back; ``lost``: the message of a ConnectionLost already
        raised on it (None: none)."""
        io = self._shared.io
        error: BaseException | None = None
        dead = open_transaction = False
        if needs_probe(already_lost=lost is not None, broken=entry.broken):
            timeout = io.validation_timeout
            verdict = check_held(io.adapter, entry.raw, entry.probe, used, timeout)
            if verdict is not None:
                dead, (error, open_transaction) = True, verdict
        action = held_action(
            dead=dead,
            open_transaction=open_transaction,
            session_changed=session_changed,
            ending=ending,
            # The proxy's rollback() is only ever the borrower's, who keeps the session.
            session_outlives_rollback=True,
            already_lost=lost is not None,
            broken=entry.broken,
        )
        return action, error

    def lost(
        self,
        idle: float,
        open_transaction: bool,
        session_changed: bool,
        adapter: BaseAdapter | None = None,
        entry: Entry | None = None,
    ) -> ConnectionLost:
        """A held connection died with a transaction open, or with session state a new
        connection would lack: count it (older idle connections become suspect) and
        return the error its borrower gets. ``adapter``: the driver's, when the pool's
        own adapter speaks for another kind of object (SQLAlchemy's records); ``entry``:
        the connection's, to log the loss with where it was checked out (SQLAlchemy
        reports it itself, as a disconnect)."""
        shared = self._shared
        if entry is not None:
            log.warning(
                "connection #%d, checked out at %s, was lost after %.1f s unused, with %s",
                entry.id,
                entry.site(),
                idle,
                "a transaction open" if open_transaction else "its session state changed",
            )
        with shared.lock:
            shared.core.lost_held(shared.now())
        return lost_error(
            adapter or shared.io.adapter,
            idle,
            self._rules.server_idle_timeout,
            open_transaction,
            session_changed,
        )

    def replace(self, entry: Entry) -> Any:
        """Put a new connection into the dead one's place, in the borrower's hands: the
        same slot, so no other borrower waits for it. Returns the new driver connection;
        if connecting fails, the error propagates and the entry is closed on return."""
        shared = self._shared
        entry.broken = True
        opened = shared.io.open()
        raw = opened.raw
        now = shared.now()
        with shared.lock:
            dead, entry.raw, entry.probe, entry.broken = entry.raw, raw, opened.probe, False
            entry.peer, entry.host = opened.peer, opened.host
            shared.core.replaced_held(entry, now)
        log.info("connection #%d died while held unused and was replaced", entry.id)
        try:  # last: an interruption here leaves the books right, only a socket to collect
            shared.io.adapter.discard(dead, "held connection found dead")
        except Exception as exc:
            log.debug("discarding connection #%d failed: %r", entry.id, exc)
        return raw
