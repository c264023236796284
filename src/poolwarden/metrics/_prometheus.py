"""A ``prometheus_client`` collector for poolwarden pools.

    prometheus_client.REGISTRY.register(poolwarden.metrics.PrometheusCollector(pool))

Names are those the OpenTelemetry Collector's Prometheus translation gives the OpenTelemetry
metrics (see :mod:`._names`), so one dashboard serves both paths. Several pools go in one
collector (``PrometheusCollector(a, b)`` or :meth:`PrometheusCollector.add`): Prometheus
allows each metric family once per registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric as Family

from ._names import METRICS, POOL_NAME, Metric
from ._source import MetricsSnapshot, PoolMetrics, metrics_for, release
from ._values import points

__all__ = ["PrometheusCollector"]


def _label(attribute: str) -> str:
    return attribute.replace(".", "_")


class PrometheusCollector:
    """Collects the metrics of one or more pools (a Pool, AsyncPool, WardenPool,
    AsyncWardenPool, or an Engine whose pool is one) at each scrape.

    ``name`` (only with a single pool) overrides the pool's metric name, by default
    ``host:port/database`` from its URL.
    """

    def __init__(self, *pools: Any, name: str | None = None) -> None:
        if name is not None and len(pools) != 1:
            raise ValueError("name: give it with exactly one pool, or use add(pool, name=...)")
        self._sources: list[PoolMetrics] = []
        for pool in pools:
            self.add(pool, name=name)

    def add(self, pool: Any, name: str | None = None) -> None:
        """Collect ``pool``'s metrics too, under ``name`` (default: from its URL)."""
        source = metrics_for(pool, name)
        if source in self._sources:
            release(source)
            return
        self._sources.append(source)

    @property
    def names(self) -> list[str]:
        """The pool names this collector reports."""
        return [source.name for source in self._sources]

    def close(self) -> None:
        """Stop collecting (unregister the collector from its registry as well)."""
        for source in self._sources:
            release(source)
        self._sources = []

    def describe(self) -> list[Family]:
        """The families' names, so that a registry refuses a second collector of the same
        names with a clear error instead of exposing them twice."""
        return [_family(metric) for metric in METRICS]

    def collect(self) -> Iterator[Family]:
        """Read every pool now and yield one family per metric."""
        snapshots = [s for s in (source.read() for source in self._sources) if s is not None]
        for metric in METRICS:
            family = _family(metric)
            for snapshot in snapshots:
                _fill(family, metric, snapshot)
            yield family


def _family(metric: Metric) -> Family:
    labels = [_label(POOL_NAME), *map(_label, metric.attributes)]
    name, doc = metric.prometheus, metric.description
    if metric.kind == "histogram":
        return HistogramMetricFamily(name, doc, labels=labels)
    if metric.kind == "counter":
        return CounterMetricFamily(name, doc, labels=labels)
    return GaugeMetricFamily(name, doc, labels=labels)


def _fill(family: Any, metric: Metric, snapshot: MetricsSnapshot) -> None:
    if metric.kind == "histogram":
        buckets = getattr(snapshot, metric.name.rsplit(".", 1)[1])
        cumulative = buckets.cumulative()
        les = [repr(float(b)) for b in buckets.bounds] + ["+Inf"]
        family.add_metric([snapshot.name], list(zip(les, cumulative, strict=True)), buckets.sum)
        return
    order = (POOL_NAME, *metric.attributes)
    for attributes, value in points(snapshot).get(metric.name, []):
        family.add_metric([attributes[key] for key in order], value)
