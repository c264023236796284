# Generated from src/poolwarden/_async/_failover.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""What an operation's error means for the pool: a connection to retire, suspects, a failover.

A disconnect (or an interrupt mid-operation) marks the connection broken and makes the idle
ones checked before now suspect: each is pinged before it is handed out. A read-only error
(``role="primary"``), or a ping that finds the server in the wrong role, demotes that server
in the books: every connection to it retires (idle ones at once, by the woken housekeeper;
held ones when they come back), and new ones go to whichever host now has the role.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from .._core.entry import Entry
from .._net.servers import address_text
from ._background import Background
from ._rules import ServerRules
from ._shared import Shared

__all__ = ["Failover"]

log = logging.getLogger("poolwarden")


class Failover:
    """One pool's reaction to its borrowers' errors and to servers changing role."""

    def __init__(self, shared: Shared, rules: ServerRules, background: Background) -> None:
        self._shared = shared
        self._now = shared.now
        self._name = shared.name
        self._rules = rules
        self._background = background

    def operation_failed(self, entry: Entry, raw: Any, exc: BaseException) -> None:
        """An operation on ``entry`` (driver connection ``raw``) raised ``exc``. A
        connection that cannot be trusted any more is marked, to be closed on return
        instead of reused; interrupts (KeyboardInterrupt, cancellation) leave the protocol
        state unknown, so they count as well."""
        if not isinstance(exc, Exception):
            # Interrupted mid-operation: besides the unknown protocol state, a deadline
            # cutting a query off is also what a dead network path looks like, so the
            # idle connections on it get checked with a ping too.
            entry.broken = True
            self._suspect_others()
            return
        adapter = self._shared.io.adapter
        if adapter.is_disconnect(exc, raw):
            entry.broken = True
            self._suspect_others()
            return
        verdict = adapter.read_only_error(exc, raw)
        if verdict is not None:  # a failover?
            self.read_only_seen(entry, exc, verdict)

    def _suspect_others(self) -> None:
        """A disconnect: ping every idle connection checked before now before it is handed
        out (instead of reconnecting them all at once)."""
        with self._shared.lock:
            self._shared.core.suspect_all(self._now())

    def read_only_seen(self, entry: Entry, exc: BaseException, verdict: str) -> None:
        """An operation on ``entry`` failed because its server is read-only (``verdict``
        ``"server"``), or perhaps is (``"maybe"``: its next ping checks the role). No I/O:
        called from the proxies' error path, and SQLAlchemy's."""
        if self._shared.io.role != "primary":
            return
        proxy = self._rules.proxy
        if proxy is not None and proxy.kind == "proxysql":
            return  # it routes each statement: its address is no one server to demote
        if verdict != "server":
            entry.checked_at = -math.inf  # suspect: pinged, with the role, before reuse
            return
        now = self._now()
        with self._shared.lock:
            demoted = self._shared.core.demote(entry.peer, entry.checked_at, now)
        where = address_text(*entry.peer) if entry.peer else self._name
        if hasattr(exc, "add_note"):
            exc.add_note(
                f"poolwarden: the server at {where} became read-only (a failover?): the "
                "pool is closing its connections to it and reconnecting to the primary"
            )
        if demoted:
            log.warning(
                "pool %s: the server at %s became read-only (a failover?); closing its "
                "connections and reconnecting to a primary",
                self._name,
                where,
            )
            self._background.housekeep_soon(now)

    def wrong_role_seen(self, entry: Entry) -> None:
        """A ping found ``entry``'s server in the wrong role: demote the server."""
        now = self._now()
        with self._shared.lock:
            demoted = self._shared.core.demote(entry.peer, now, now)
        if demoted:
            self._background.housekeep_soon(now)
