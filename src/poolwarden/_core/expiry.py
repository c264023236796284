"""When each connection retires: at the end of its lifetime, shortened by jitter so they do
not all expire together; at once when its server was found read-only (a failover); or
spread over a few seconds when its host name now resolves elsewhere (DNS)."""

from __future__ import annotations

import random
from collections.abc import Iterable

from .entry import Entry

__all__ = ["Expiry"]


class Expiry:
    """The lifetime rules of one pool, applied to its entries' ``expires_at``."""

    LIFETIME_SHARE = 0.8
    """Share of the server's idle timeout that an automatic lifetime uses."""
    LIFETIME_CAP = 3600.0
    """Longest automatic lifetime: servers with no (or a long) idle timeout still see
    connections renewed hourly, which spreads load after failovers and bounds leaks."""
    LIFETIME_JITTER = 0.1
    """Lifetimes are shortened by up to this share, so connections do not expire together."""
    KEEPALIVE_SHARE = 0.5
    """Share of the server's idle timeout after which ``keepalive="auto"`` pings the
    ``min_idle`` connections, so the server does not close them in quiet periods."""
    #: Longest spread of the retirement of connections to an address a host name no
    #: longer resolves to, so that a DNS change does not reconnect the pool in one burst
    #: (shorter when names are re-resolved more often: done before the next look).
    MOVE_SPREAD = 10.0

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        #: Seconds a connection may live (before jitter), or None for no limit.
        self.lifetime: float | None = None
        #: When each server (peer address) was last found read-only (see :meth:`demote`).
        self.demoted_at: dict[tuple[str, int] | None, float] = {}

    @classmethod
    def auto_lifetime(cls, server_idle_timeout: float | None) -> float:
        """The lifetime ``max_lifetime="auto"`` picks for a server idle timeout."""
        if not server_idle_timeout:
            return cls.LIFETIME_CAP
        return min(cls.LIFETIME_CAP, server_idle_timeout * cls.LIFETIME_SHARE)

    def stamp(self, entry: Entry) -> None:
        """Set ``entry``'s retirement from its creation time and the lifetime."""
        if self.lifetime is None:
            entry.expires_at = float("inf")
        else:
            share = 1.0 - self._rng.uniform(0.0, self.LIFETIME_JITTER)
            entry.expires_at = entry.created_at + self.lifetime * share

    def demote(
        self,
        entries: Iterable[Entry],
        peer: tuple[str, int] | None,
        checked_at: float,
        now: float,
    ) -> bool:
        """The server at ``peer`` was found read-only by a connection last verified at
        ``checked_at``: every connection to it verified no later retires — idle ones at
        the next look (checkout or housekeeping), held ones when they come back. Returns
        False when nothing was left to retire, or an earlier demotion of that server already
        covered this connection (the other writes in flight at a failover report the same
        news)."""
        if checked_at < self.demoted_at.get(peer, float("-inf")):
            return False
        self.demoted_at[peer] = now
        retired = 0
        for entry in entries:
            if entry.peer == peer and entry.expires_at != float("-inf"):
                entry.expires_at = float("-inf")
                retired += 1
        return retired > 0

    def moved(
        self,
        entries: Iterable[Entry],
        host: str,
        addresses: set[tuple[str, int]],
        now: float,
        spread: float,
    ) -> int:
        """``host`` now resolves to ``addresses``: connections it opened to other addresses
        retire over the next ``spread`` seconds, like a lifetime. Returns how many were
        newly scheduled."""
        count = 0
        for entry in entries:
            if entry.host != host or entry.peer is None or entry.peer in addresses:
                continue
            if entry.expires_at <= now + spread:
                continue  # retiring within the window already (scheduled by a past look)
            entry.expires_at = now + self._rng.uniform(0.0, spread)
            count += 1
        return count
