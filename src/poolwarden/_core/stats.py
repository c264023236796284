"""Pool statistics: counters, gauges and recent-window percentiles."""

from __future__ import annotations

import errno
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Counters",
    "MetricsReading",
    "Percentiles",
    "PoolStats",
    "SampleCursor",
    "Sampler",
    "error_cause",
]


def error_cause(error: BaseException) -> tuple[str, str]:
    """What a failed connect is counted as: the exception's class (``pymysql.err.
    OperationalError``) and the server's or the system's code for it (``1040``,
    ``53300``, ``ECONNREFUSED``), or ``""`` when it carries none."""
    kind = type(error)
    name = f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins.")
    code: object = None
    if isinstance(error, OSError) and error.errno is not None:
        code = errno.errorcode.get(error.errno, error.errno)
    elif error.args and isinstance(error.args[0], int):
        code = error.args[0]  # PyMySQL, mysqlclient and asyncmy: the server's error number
    else:  # mysql-connector's errno; psycopg's and psycopg2's SQLSTATE
        for attribute in ("errno", "sqlstate", "pgcode"):
            code = getattr(error, attribute, None)
            if code is not None:
                break
    return name, "" if code is None or code == -1 else str(code)


@dataclass(frozen=True)
class Percentiles:
    """Summary of a duration, in seconds, over the most recent samples (``max`` is all-time)."""

    count: int
    p50: float
    p99: float
    max: float

    def __str__(self) -> str:
        ms = 1e3
        return (
            f"p50 {self.p50 * ms:.2f} ms, p99 {self.p99 * ms:.2f} ms, max {self.max * ms:.2f} ms"
        )


class Sampler:
    """A fixed-size ring of recent samples; O(1) to record, sorted only when summarised.

    Samples may carry a *mark*: the sequence number of the event they belong to. Events
    that took no time (a checkout that found a connection idle) are then not recorded at
    all, and :meth:`summary` counts the events between marks as zeros.
    """

    __slots__ = ("_buf", "_marks", "_mask", "count", "max")

    def __init__(self, size: int = 4096) -> None:
        if size & (size - 1):
            raise ValueError("size must be a power of two")
        self._buf = [0.0] * size
        self._marks = [0] * size
        self._mask = size - 1
        self.count = 0
        self.max = 0.0

    def add(self, value: float, mark: int = 0) -> None:
        """Record one sample (of event number ``mark``, when events are being counted)."""
        slot = self.count & self._mask
        self._buf[slot] = value
        self._marks[slot] = mark
        self.count += 1
        if value > self.max:
            self.max = value

    def add_unmarked(self, value: float) -> None:
        """:meth:`add` for a sampler whose events are not counted (hold times): the hot
        path of every checkin, a little shorter."""
        slot = self.count & self._mask
        self._buf[slot] = value
        self.count += 1
        if value > self.max:
            self.max = value

    def since(self, count: int) -> tuple[list[float], int]:
        """The samples recorded after the first ``count`` still retained, oldest first, and
        how many of them the ring has already overwritten (metrics read them this way)."""
        size = len(self._buf)
        start = max(count, self.count - size)
        lost = start - count
        first, last = start & self._mask, self.count & self._mask
        if start == self.count:
            return [], lost
        if first < last:
            return self._buf[first:last], lost
        return self._buf[first:] + self._buf[:last], lost

    def summary(self, events: int | None = None) -> Percentiles:
        """Nearest-rank p50 and p99 of the retained samples. With ``events`` (the number of
        events so far, samples being marked), unrecorded events in the window are zeros."""
        size = len(self._buf)
        n = min(self.count, size)
        window = sorted(self._buf[:n])
        total = n
        if events is not None:
            oldest = 1 if self.count <= size else self._marks[self.count & self._mask]
            total = max(n, events - oldest + 1)
        if total == 0:
            return Percentiles(0, 0.0, 0.0, 0.0)
        zeros = total - n

        def rank(percent: int) -> float:
            position = max(1, -(-total * percent // 100))  # nearest rank, 1-based
            return 0.0 if position <= zeros else window[position - zeros - 1]

        return Percentiles(
            count=self.count if events is None else events,
            p50=rank(50),
            p99=rank(99),
            max=self.max,
        )


@dataclass
class Counters:
    """Monotonic event counts since the pool was created."""

    connects: int = 0
    connect_failures: int = 0
    timeouts: int = 0
    closes: int = 0
    discards: int = 0
    resets: int = 0
    reset_failures: int = 0
    leaks: int = 0
    reclaimed: int = 0
    #: Connections found dead before being handed out (each one an error avoided), and
    #: those of them the socket probe caught (the others failed a ping).
    found_dead: int = 0
    dead_by_probe: int = 0
    pings: int = 0
    ping_failures: int = 0
    #: Connections closed for age (lifetime) or idleness (idle_timeout).
    retired: int = 0
    #: Held connections found dead before an operation and replaced in place (no
    #: transaction was open), and those reported lost with ConnectionLost (one was).
    held_replaced: int = 0
    held_lost: int = 0
    #: Connections given back unusable (invalidated by the application or SQLAlchemy,
    #: or broken) and closed.
    invalidated: int = 0
    #: Servers found read-only by a pool that needs a primary (a failover), connects
    #: refused for landing on a server of the wrong role, and connections retired because
    #: their server's name now points elsewhere (DNS).
    demotions: int = 0
    wrong_role: int = 0
    moved: int = 0
    #: Connect attempts held back by the server's storm gate (the server, refusing for
    #: lack of slots, gets one attempt at a time from the whole process).
    storm_waits: int = 0


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool, as returned by :meth:`poolwarden.Pool.stats`.

    Sizes are gauges at the moment of the call; counters count since the pool was created;
    ``wait_time`` and ``hold_time`` summarise the most recent checkouts (seconds).
    """

    pool_size: int
    max_overflow: int
    min_idle: int
    idle: int
    in_use: int
    waiting: int
    connecting: int
    overflow: int
    peak_in_use: int
    peak_waiting: int
    connects: int
    connect_failures: int
    checkouts: int
    checkins: int
    timeouts: int
    closes: int
    discards: int
    resets: int
    reset_failures: int
    leaks: int
    reclaimed: int
    found_dead: int
    dead_by_probe: int
    pings: int
    ping_failures: int
    retired: int
    held_replaced: int
    held_lost: int
    invalidated: int
    demotions: int
    wrong_role: int
    moved: int
    storm_waits: int
    wait_time: Percentiles
    hold_time: Percentiles

    @property
    def open(self) -> int:
        """Connections currently open: idle plus in use."""
        return self.idle + self.in_use

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form, for logging or JSON."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"pool_size={self.pool_size} max_overflow={self.max_overflow} | idle={self.idle} "
            f"in_use={self.in_use} waiting={self.waiting} overflow={self.overflow} "
            f"peak_in_use={self.peak_in_use} | connects={self.connects} "
            f"connect_failures={self.connect_failures} checkouts={self.checkouts} "
            f"timeouts={self.timeouts} closes={self.closes} leaks={self.leaks} "
            f"found_dead={self.found_dead} retired={self.retired} "
            f"held_replaced={self.held_replaced} held_lost={self.held_lost} | "
            f"wait: {self.wait_time} | hold: {self.hold_time}"
        )


@dataclass(frozen=True)
class SampleCursor:
    """How far a metrics reader has read each sampler (in samples) and the checkouts."""

    hold: int = 0
    wait: int = 0
    create: int = 0
    checkouts: int = 0


@dataclass(frozen=True)
class MetricsReading:
    """What a metrics reader takes from a pool in one short hold of its lock: gauges,
    counters, and the time samples recorded since its last reading (see
    :class:`SampleCursor`; ``*_lost`` count samples the ring overwrote meanwhile)."""

    idle: int
    used: int
    pending: int
    max_size: int
    pool_size: int
    min_idle: int
    counters: Counters
    connect_errors: dict[tuple[str, str], int]
    cursor: SampleCursor
    hold: list[float] = field(default_factory=list)
    hold_lost: int = 0
    wait: list[float] = field(default_factory=list)
    wait_lost: int = 0
    create: list[float] = field(default_factory=list)
    create_lost: int = 0
