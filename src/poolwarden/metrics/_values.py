"""The value of every gauge and counter in :data:`METRICS`, from one snapshot: the single
place where a metric's meaning is turned into numbers, for both exporters."""

from __future__ import annotations

from ._names import POOL_NAME
from ._source import MetricsSnapshot

__all__ = ["UNLIMITED_ABOVE", "Points", "points"]

#: (attributes, value) pairs per OpenTelemetry metric name; histograms are not here.
Points = dict[str, list[tuple[dict[str, str], int]]]

#: A limit this large means "no limit" (WardenPool's pool_size=0 or max_overflow=-1):
#: such a gauge is left out rather than exported as two billion.
UNLIMITED_ABOVE = 1 << 30


def points(snapshot: MetricsSnapshot) -> Points:
    """Every non-histogram point of one pool, each with the pool-name attribute."""
    r, c = snapshot.reading, snapshot.reading.counters
    pool = {POOL_NAME: snapshot.name}

    def one(value: int) -> list[tuple[dict[str, str], int]]:
        return [(pool, value)]

    out: Points = {
        "db.client.connection.count": [
            ({**pool, "db.client.connection.state": "idle"}, r.idle),
            ({**pool, "db.client.connection.state": "used"}, r.used),
        ],
        "db.client.connection.idle.min": one(r.min_idle),
        "db.client.connection.pending_requests": one(r.pending),
        "db.client.connection.timeouts": one(c.timeouts),
        "poolwarden.connection.checkouts": one(r.cursor.checkouts),
        "poolwarden.connection.dead_caught": [
            ({**pool, "poolwarden.caught_by": "probe"}, c.dead_by_probe),
            ({**pool, "poolwarden.caught_by": "ping"}, c.ping_failures),
        ],
        "poolwarden.connection.replaced": one(c.held_replaced),
        "poolwarden.connection.lost": one(c.held_lost),
        "poolwarden.connection.leaks": one(c.leaks),
        "poolwarden.connection.reclaimed": one(c.reclaimed),
        "poolwarden.connection.invalidations": one(c.invalidated),
        "poolwarden.connection.retired": one(c.retired),
        "poolwarden.connection.pings": one(c.pings),
        "poolwarden.connection.demotions": one(c.demotions),
        "poolwarden.connection.wrong_role": one(c.wrong_role),
        "poolwarden.connection.storm_waits": one(c.storm_waits),
        "poolwarden.connection.moved": one(c.moved),
        "poolwarden.connection.create_errors": [
            ({**pool, "error.type": kind, "db.response.status_code": code}, n)
            for (kind, code), n in sorted(r.connect_errors.items())
        ],
    }
    if r.pool_size < UNLIMITED_ABOVE:
        out["db.client.connection.idle.max"] = one(r.pool_size)
    if r.max_size < UNLIMITED_ABOVE:
        out["db.client.connection.max"] = one(r.max_size)
    return out
