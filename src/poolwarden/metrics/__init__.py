"""Pool metrics for a fleet to watch: OpenTelemetry and Prometheus from one reading.

    # OpenTelemetry (pip install 'poolwarden[otel]'), through the global MeterProvider:
    handle = poolwarden.metrics.instrument(engine)

    # Prometheus (pip install 'poolwarden[prometheus]'):
    prometheus_client.REGISTRY.register(poolwarden.metrics.PrometheusCollector(engine))

Both take a Pool, AsyncPool, WardenPool, AsyncWardenPool, or an Engine whose pool is one.
The names are OpenTelemetry's semantic conventions for connection pools plus poolwarden's
own (:data:`METRICS`); the Prometheus names are what the OpenTelemetry Collector's
translation would produce, so one dashboard serves either path. Nothing is added to the
checkout path: readings take the samples the pool keeps anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._names import METRICS, POOL_NAME, SECONDS_BUCKETS, Metric
from ._source import MetricsSnapshot, PoolMetrics, metrics_for

if TYPE_CHECKING:
    from ._otel import Instrumentation, instrument
    from ._prometheus import PrometheusCollector

__all__ = [
    "METRICS",
    "POOL_NAME",
    "SECONDS_BUCKETS",
    "Instrumentation",
    "Metric",
    "MetricsSnapshot",
    "PoolMetrics",
    "PrometheusCollector",
    "instrument",
    "metrics_for",
]

_LAZY = {
    "Instrumentation": ("._otel", "otel", "opentelemetry-api"),
    "instrument": ("._otel", "otel", "opentelemetry-api"),
    "PrometheusCollector": ("._prometheus", "prometheus", "prometheus_client"),
}


def __getattr__(name: str) -> Any:
    # The exporters import their libraries only when asked for: each is an optional extra.
    if name not in _LAZY:
        raise AttributeError(f"module 'poolwarden.metrics' has no attribute {name!r}")
    module, extra, package = _LAZY[name]
    import importlib

    try:
        value = getattr(importlib.import_module(module, __name__), name)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"poolwarden.metrics.{name} needs {package}: pip install 'poolwarden[{extra}]'"
        ) from exc
    globals()[name] = value
    return value
