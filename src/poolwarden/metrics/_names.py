"""Every metric poolwarden exports: one table that both exporters, the docs and
``poolwarden watch`` read, so the OpenTelemetry and Prometheus names cannot drift apart.

The first nine are OpenTelemetry's semantic conventions for database client connection
pools, exactly; the rest are poolwarden's own, under ``poolwarden.``. Prometheus names are
what the OpenTelemetry Collector's Prometheus translation makes of them: dots become
underscores, a ``{...}`` unit is dropped, ``s`` appends ``_seconds``, counters end in
``_total``; so a dashboard works whichever path the samples took.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["METRICS", "POOL_NAME", "SECONDS_BUCKETS", "Metric", "prometheus_name"]

Kind = Literal["updowncounter", "counter", "histogram"]

#: The attribute every pool metric carries: the pool's name, unique in the process.
POOL_NAME = "db.client.connection.pool.name"

#: Histogram bucket bounds in seconds, 100 µs to a minute (the SDK's defaults are shaped
#: for milliseconds and would put every checkout in the first bucket).
SECONDS_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


@dataclass(frozen=True)
class Metric:
    """One exported metric: its OpenTelemetry name, instrument kind, UCUM unit, what it
    counts, and the attributes (besides the pool name) its points carry."""

    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...] = ()

    @property
    def prometheus(self) -> str:
        """The Prometheus family name (histograms add ``_bucket``/``_sum``/``_count``)."""
        return prometheus_name(self.name, self.unit, self.kind)


def prometheus_name(name: str, unit: str, kind: Kind) -> str:
    """The OpenTelemetry Collector's Prometheus normalisation of one metric name."""
    base = name.replace(".", "_")
    if unit == "s":
        base += "_seconds"
    if kind == "counter":
        base += "_total"
    return base


def _semconv(name: str, kind: Kind, unit: str, description: str, *attrs: str) -> Metric:
    return Metric(f"db.client.connection.{name}", kind, unit, description, attrs)


def _own(name: str, unit: str, description: str, *attrs: str) -> Metric:
    return Metric(f"poolwarden.connection.{name}", "counter", unit, description, attrs)


METRICS: tuple[Metric, ...] = (
    _semconv(
        "count",
        "updowncounter",
        "{connection}",
        "Number of connections currently in the state described by the state attribute.",
        "db.client.connection.state",
    ),
    _semconv(
        "idle.max",
        "updowncounter",
        "{connection}",
        "Maximum number of idle open connections allowed.",
    ),
    _semconv(
        "idle.min",
        "updowncounter",
        "{connection}",
        "Minimum number of idle open connections allowed.",
    ),
    _semconv(
        "max", "updowncounter", "{connection}", "Maximum number of open connections allowed."
    ),
    _semconv(
        "pending_requests",
        "updowncounter",
        "{request}",
        "Number of current pending requests for an open connection.",
    ),
    _semconv(
        "timeouts",
        "counter",
        "{timeout}",
        "Number of connection timeouts while trying to obtain a connection from the pool.",
    ),
    _semconv("create_time", "histogram", "s", "Time it took to create a new connection."),
    _semconv(
        "wait_time", "histogram", "s", "Time it took to obtain an open connection from the pool."
    ),
    _semconv(
        "use_time",
        "histogram",
        "s",
        "Time between borrowing a connection and returning it to the pool.",
    ),
    _own("checkouts", "{checkout}", "Connections handed out (the count wait_time describes)."),
    _own(
        "dead_caught",
        "{connection}",
        "Dead connections caught before use, by the socket probe or by a ping.",
        "poolwarden.caught_by",
    ),
    _own(
        "replaced",
        "{connection}",
        "Held connections found dead before an operation and replaced in place.",
    ),
    _own(
        "lost",
        "{connection}",
        "Held connections found dead with work in them (ConnectionLost raised).",
    ),
    _own("leaks", "{report}", "Leak reports: connections held past the leak threshold."),
    _own("reclaimed", "{connection}", "Leaked connections reclaimed after their holder died."),
    _own(
        "invalidations",
        "{connection}",
        "Connections given back unusable (invalidated, or broken) and closed.",
    ),
    _own("retired", "{connection}", "Connections closed for age (lifetime) or idleness."),
    _own("pings", "{ping}", "Round-trip pings sent to check connections."),
    _own(
        "demotions",
        "{event}",
        "Servers found read-only by a pool that needs a primary (a failover): their "
        "connections were retired.",
    ),
    _own(
        "wrong_role",
        "{attempt}",
        "Connect attempts that reached a server of the wrong role, closed and retried.",
    ),
    _own(
        "storm_waits",
        "{attempt}",
        "Connect attempts held back while the server refused for lack of connection slots "
        "(every pool of the process to that server sends one at a time).",
    ),
    _own(
        "moved",
        "{connection}",
        "Connections retired because their host name now resolves elsewhere (DNS).",
    ),
    _own(
        "create_errors",
        "{error}",
        "Failed connect attempts, by exception class and server or system code.",
        "error.type",
        "db.response.status_code",
    ),
)
