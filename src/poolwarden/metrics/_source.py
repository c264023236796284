"""The one reading of a pool that every exporter shares.

A :class:`PoolMetrics` takes gauges, counters and the time samples recorded since its last
reading from the pool in one short hold of the pool's lock, and files the samples into
cumulative histogram buckets. Nothing is added to the checkout path: the pool already
keeps its samples in rings, and a background ticker (see :mod:`._ticker`) reads them often
enough that the rings do not wrap in between.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._core.stats import MetricsReading, SampleCursor
from ._buckets import Buckets
from ._ticker import TICKER

if TYPE_CHECKING:
    from .._async._engine import AsyncPoolEngine
    from .._sync._engine import PoolEngine

__all__ = ["MetricsSnapshot", "PoolMetrics", "metrics_for", "release"]

#: Called with each reading and the number of checkouts that did not wait.
Sink = Callable[[MetricsReading, int], None]

_DEFAULT_PORTS = {"mysql": 3306, "mariadb": 3306, "postgresql": 5432, "postgres": 5432}

_sources: weakref.WeakKeyDictionary[Any, PoolMetrics] = weakref.WeakKeyDictionary()
_names: weakref.WeakValueDictionary[str, PoolMetrics] = weakref.WeakValueDictionary()
_registry_lock = threading.RLock()


def _new_registry_lock() -> None:
    global _registry_lock
    _registry_lock = threading.RLock()  # a forked child: the parent's threads may have held it


os.register_at_fork(after_in_child=_new_registry_lock)


@dataclass(frozen=True)
class MetricsSnapshot:
    """One pool's metrics at a moment: the raw reading and the histograms so far."""

    name: str
    reading: MetricsReading
    create_time: Buckets
    wait_time: Buckets
    use_time: Buckets


class PoolMetrics:
    """The metrics of one pool, read by every exporter attached to it (use
    :func:`metrics_for`, which returns the same object for the same pool)."""

    def __init__(self, pool: PoolEngine | AsyncPoolEngine, name: str, engine: Any = None) -> None:
        self._pool = weakref.ref(pool)
        #: The Engine it was asked for, if any: ``engine.dispose()`` puts a new pool in
        #: place (after a fork, say), and the metrics follow it.
        self._engine = None if engine is None else weakref.ref(engine)
        self.name = name
        self._lock = threading.Lock()
        # From zero: the first reading takes every sample still in the rings, so that the
        # histograms agree with the counters, which count since the pool was created.
        self._cursor = SampleCursor()
        self._zero_debt = 0
        self._sinks: list[Sink] = []
        self.create_time = Buckets()
        self.wait_time = Buckets()
        self.use_time = Buckets()
        #: Exporters using this source (see :func:`metrics_for` and :func:`release`).
        self.users = 0
        #: Fullest a sample ring got between two readings (0-1): the ticker reads sooner
        #: when it nears 1.
        self.fill = 0.0

    def add_sink(self, sink: Sink) -> None:
        """Also hand every reading to ``sink`` (the OpenTelemetry exporter replays samples)."""
        with self._lock:
            self._sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        """Stop handing readings to ``sink``."""
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def read(self) -> MetricsSnapshot | None:
        """Read the pool now (None once the pool itself is gone)."""
        TICKER.ensure_running()
        with self._lock:
            pool = self._current_pool()
            if pool is None:
                return None
            before = self._cursor
            reading = pool.metrics_reading(before)
            now = reading.cursor
            # Checkouts that found a connection idle record no wait sample: they are the
            # zeros. A checkout undone meanwhile (its connection found dead) can make the
            # difference negative for one reading; carry that over.
            zeros = (now.checkouts - before.checkouts) - (now.wait - before.wait)
            zeros += self._zero_debt
            self._zero_debt = min(zeros, 0)
            zeros = max(zeros, 0)
            self.use_time.add(reading.hold, reading.hold_lost)
            self.wait_time.add(reading.wait, reading.wait_lost, zeros)
            self.create_time.add(reading.create, reading.create_lost)
            self.fill = max(
                (now.hold - before.hold) / 4096, (now.wait - before.wait) / 4096
            )  # the rings' size (see poolwarden._core.stats.Sampler)
            self._cursor = now
            for sink in self._sinks:
                sink(reading, zeros)
            return MetricsSnapshot(
                self.name, reading, _copy(self.create_time), _copy(self.wait_time),
                _copy(self.use_time),
            )  # fmt: skip

    def alive(self) -> bool:
        """Whether its pool (or the engine it follows) still exists."""
        engine = None if self._engine is None else self._engine()
        return engine is not None or self._pool() is not None

    def _current_pool(self) -> PoolEngine | AsyncPoolEngine | None:
        engine = None if self._engine is None else self._engine()
        pool = self._pool()
        if engine is None:
            return pool
        now = inner_pool(engine)
        if now is not pool:
            # A new pool starts from zero, as after a restart (Prometheus's rate() and
            # OpenTelemetry's cumulative sums both take counters that go back to zero).
            self._pool = weakref.ref(now)
            self._cursor, self._zero_debt = SampleCursor(), 0
            self.create_time, self.wait_time, self.use_time = Buckets(), Buckets(), Buckets()
            with _registry_lock:
                _sources[now] = self
        return now


def _copy(buckets: Buckets) -> Buckets:
    out = Buckets(buckets.bounds)
    out.counts, out.sum, out.count = list(buckets.counts), buckets.sum, buckets.count
    return out


def inner_pool(target: Any) -> PoolEngine | AsyncPoolEngine:
    """The poolwarden engine behind ``target``: a Pool's or AsyncPool's, a WardenPool's or
    AsyncWardenPool's, or that of a SQLAlchemy Engine or AsyncEngine whose pool is one."""
    from .._async._engine import AsyncPoolEngine
    from .._async._pool import AsyncPool
    from .._sync._engine import PoolEngine
    from .._sync._pool import Pool

    if isinstance(target, (Pool, AsyncPool)):
        return target.engine
    engine = getattr(target, "sync_engine", target)  # an AsyncEngine wraps an Engine
    sa_pool = getattr(engine, "pool", engine)
    warden = getattr(sa_pool, "_warden", None)
    if isinstance(warden, (PoolEngine, AsyncPoolEngine)):
        return warden
    raise TypeError(
        "pool: expected a poolwarden Pool, AsyncPool, WardenPool or AsyncWardenPool, or an "
        f"Engine whose pool is one; got {type(sa_pool).__name__} (SQLAlchemy's own pools "
        "keep no such books: create the engine with poolwarden.sqlalchemy.create_engine)"
    )


def default_name(target: Any, pool: PoolEngine | AsyncPoolEngine) -> str:
    """``host:port/database``, as OpenTelemetry's conventions suggest, from the engine's
    or the pool's URL (never the user or password); else the pool's own name."""
    url = getattr(getattr(target, "sync_engine", target), "url", None)
    if url is None:
        url = getattr(pool.adapter, "url", None)
    host = getattr(url, "host", None)
    if not host:
        return pool.name
    dialect = str(getattr(url, "drivername", None) or getattr(url, "dialect", "")).split("+")[0]
    port = getattr(url, "port", None) or _DEFAULT_PORTS.get(dialect)
    database = getattr(url, "database", None) or ""
    return f"{host}:{port}/{database}" if port else f"{host}/{database}"


def metrics_for(target: Any, name: str | None = None) -> PoolMetrics:
    """The :class:`PoolMetrics` of ``target``'s pool, made on first use. ``name`` (default:
    from the URL) must be unique in the process: a second pool with the same default
    name is told apart by `` #2``, `` #3``...; an explicit name already taken is an error.
    """
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    pool = inner_pool(target)
    with _registry_lock:
        source = _sources.get(pool)
        if source is not None:
            if name is not None and name != source.name:
                raise ValueError(
                    f"name: this pool's metrics are already named {source.name!r}; "
                    f"it cannot also be {name!r}"
                )
            source.users += 1
            return source
        if name is not None and _taken(name):
            raise ValueError(f"name: {name!r} is already the name of another pool's metrics")
        chosen = name or default_name(target, pool)
        base, n = chosen, 1
        while _taken(chosen):
            n += 1
            chosen = f"{base} #{n}"
        engine = getattr(target, "sync_engine", target)
        # A Pool holds its engine for life; an Engine (or WardenPool) is followed.
        follows = None if getattr(engine, "engine", None) is pool else engine
        source = PoolMetrics(pool, chosen, follows)
        source.users = 1
        _sources[pool] = _names[chosen] = source
    TICKER.watch(source)
    return source


def _taken(name: str) -> bool:
    """Whether a live pool's metrics use ``name`` (a pool that is gone frees its name, even
    while an exporter still holds its source)."""
    holder = _names.get(name)
    return holder is not None and holder.alive()


def release(source: PoolMetrics) -> None:
    """An exporter is done with ``source``: when none is left, stop reading the pool and
    free its name."""
    with _registry_lock:
        source.users -= 1
        if source.users > 0:
            return
        pool = source._pool()
        if pool is not None and _sources.get(pool) is source:
            del _sources[pool]
        if _names.get(source.name) is source:
            del _names[source.name]
    TICKER.forget(source)
