"""OpenTelemetry metrics for poolwarden pools, following the semantic conventions for
database client connection pools.

    handle = poolwarden.metrics.instrument(pool)      # the global MeterProvider
    ...
    handle.close()

Counts and counters are observable instruments, read at each collection. Histograms are
the API's synchronous ones (it has no other kind), fed from the pool's time samples by the
metrics ticker, off the request path: the SDK spends ~6 µs per recorded value, more than a
whole checkout, so above ``replay_rate`` values a second per histogram and pool a uniform
sample of them is recorded. Quantiles stay right; for exact rates use
``poolwarden.connection.checkouts`` (the Prometheus collector's histograms are always
exact: it reads the buckets itself).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import metrics as otel

from .. import __version__
from .._core.stats import MetricsReading
from ._names import METRICS, POOL_NAME, SECONDS_BUCKETS, Metric
from ._source import MetricsSnapshot, PoolMetrics, metrics_for, release
from ._values import points

__all__ = ["Instrumentation", "instrument"]

#: Values a second, per histogram and pool, recorded before sampling starts.
REPLAY_RATE = 250.0

_bridges: weakref.WeakKeyDictionary[Any, _Bridge] = weakref.WeakKeyDictionary()
_bridges_lock = threading.Lock()


class Instrumentation:
    """What :func:`instrument` returns: :meth:`close` stops exporting that pool."""

    def __init__(self, bridge: _Bridge, source: PoolMetrics) -> None:
        self._bridge, self.source = bridge, source
        self.name = source.name

    def close(self) -> None:
        """Stop exporting this pool's metrics (closing twice is harmless)."""
        bridge, self._bridge = self._bridge, None  # type: ignore[assignment]
        if bridge is not None:
            bridge.remove(self.source)
            release(self.source)

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._bridge is None else "open"
        return f"<Instrumentation {self.name} {state}>"


def instrument(
    pool: Any,
    meter_provider: otel.MeterProvider | None = None,
    *,
    name: str | None = None,
    replay_rate: float = REPLAY_RATE,
) -> Instrumentation:
    """Export ``pool``'s metrics (a Pool, AsyncPool, WardenPool, AsyncWardenPool, or an
    Engine whose pool is one) through ``meter_provider`` (default: the global one).

    ``name`` is the ``db.client.connection.pool.name`` attribute (default:
    ``host:port/database`` from the URL). ``replay_rate`` bounds the histogram values
    recorded per second (see the module docstring).
    """
    if not isinstance(replay_rate, (int, float)) or replay_rate <= 0:
        raise ValueError(f"replay_rate: expected a positive number, got {replay_rate!r}")
    provider = meter_provider or otel.get_meter_provider()
    source = metrics_for(pool, name)
    with _bridges_lock:
        bridge = _bridges.get(provider)
        if bridge is None:
            bridge = _bridges[provider] = _Bridge(provider)
    try:
        bridge.add(source, replay_rate)
    except BaseException:
        release(source)
        raise
    return Instrumentation(bridge, source)


class _Replay:
    """Records one pool's new time samples into the SDK's histograms, within a budget."""

    def __init__(self, bridge: _Bridge, source: PoolMetrics, rate: float) -> None:
        self._bridge, self._rate = bridge, rate
        self._attributes = {POOL_NAME: source.name}
        self._tokens: dict[str, float] = {}
        self._at = time.monotonic()

    def __call__(self, reading: MetricsReading, zeros: int) -> None:
        now = time.monotonic()
        elapsed, self._at = now - self._at, now
        h = self._bridge.histograms
        self._record("use_time", h["use_time"], reading.hold, 0, elapsed)
        self._record("wait_time", h["wait_time"], reading.wait, zeros, elapsed)
        self._record("create_time", h["create_time"], reading.create, 0, elapsed)

    def _record(
        self, key: str, histogram: Any, values: Sequence[float], zeros: int, elapsed: float
    ) -> None:
        total = len(values) + zeros
        if not total:
            return
        burst = 4 * self._rate
        tokens = min(burst, self._tokens.get(key, burst) + elapsed * self._rate)
        keep = min(total, int(tokens))
        self._tokens[key] = tokens - keep
        attributes = self._attributes
        for value in _spread(values, zeros, keep):
            histogram.record(value, attributes)


def _spread(values: Sequence[float], zeros: int, keep: int) -> Iterable[float]:
    """``keep`` of ``values`` and ``zeros`` zeros, evenly spaced: all when keep allows."""
    total = len(values) + zeros
    if keep >= total:
        yield from (0.0 for _ in range(zeros))
        yield from values
        return
    kept_zeros = round(keep * zeros / total)
    yield from (0.0 for _ in range(kept_zeros))
    kept = keep - kept_zeros
    if kept and values:
        step = len(values) / kept
        yield from (values[int(i * step)] for i in range(kept))


class _Bridge:
    """The instruments of one MeterProvider, shared by every pool exported through it
    (an instrument name may be registered only once per meter)."""

    def __init__(self, provider: otel.MeterProvider) -> None:
        meter = provider.get_meter("poolwarden", __version__)
        self._lock = threading.Lock()
        self._sources: dict[PoolMetrics, _Replay] = {}
        self._snapshots: list[MetricsSnapshot] = []
        self._read_at = float("-inf")
        self.histograms: dict[str, Any] = {}
        for index, metric in enumerate(METRICS):
            self._create(meter, metric, index == 0)

    def _create(self, meter: otel.Meter, metric: Metric, first: bool) -> None:
        if metric.kind == "histogram":
            self.histograms[metric.name.rsplit(".", 1)[1]] = meter.create_histogram(
                metric.name,
                unit=metric.unit,
                description=metric.description,
                explicit_bucket_boundaries_advisory=list(SECONDS_BUCKETS),
            )
            return
        create = (
            meter.create_observable_counter
            if metric.kind == "counter"
            else meter.create_observable_up_down_counter
        )

        def observe(options: otel.CallbackOptions) -> Iterable[otel.Observation]:
            return self._observe(metric.name, refresh=first)

        create(metric.name, callbacks=[observe], unit=metric.unit, description=metric.description)

    def add(self, source: PoolMetrics, rate: float) -> None:
        with self._lock:
            if source in self._sources:
                raise ValueError(
                    f"pool: {source.name!r} is already instrumented with this meter provider"
                )
            replay = self._sources[source] = _Replay(self, source, rate)
        source.add_sink(replay)

    def remove(self, source: PoolMetrics) -> None:
        with self._lock:
            replay = self._sources.pop(source, None)
            self._snapshots = [s for s in self._snapshots if s.name != source.name]
        if replay is not None:
            source.remove_sink(replay)

    def _observe(self, name: str, refresh: bool) -> list[otel.Observation]:
        # The SDK calls the callbacks in the order the instruments were made, before it
        # collects the histograms: the first one reads every pool (replaying their new
        # samples into the histograms in time for this collection), the rest reuse that.
        with self._lock:
            sources = list(self._sources)
            stale = time.monotonic() - self._read_at > 1.0
        if refresh or stale:
            snapshots = [s for s in (source.read() for source in sources) if s is not None]
            with self._lock:
                self._snapshots, self._read_at = snapshots, time.monotonic()
        with self._lock:
            snapshots = self._snapshots
        return [
            otel.Observation(value, attributes)
            for snapshot in snapshots
            for attributes, value in points(snapshot).get(name, [])
        ]
