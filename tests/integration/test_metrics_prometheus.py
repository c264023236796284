"""The Prometheus collector, scraped over real HTTP and parsed by prometheus_client's own
parser, for all four pool classes on the real MariaDB: values match ``stats()``, several
pools keep their own names, and what is not a poolwarden pool is refused by name."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator

import pytest
import sqlalchemy
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

import poolwarden
from poolwarden import PoolStats
from poolwarden.metrics import METRICS, PrometheusCollector
from poolwarden.sqlalchemy import create_async_engine, create_engine
from tests.conftest import MYSQL, reachable_url
from tests.integration.metrics_work import (
    async_engine_work,
    async_work,
    engine_work,
    run_in_loop,
    sync_work,
)

POOL_LABEL = "db_client_connection_pool_name"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def registry() -> Iterator[tuple[CollectorRegistry, str]]:
    """A registry of the test's own, served on a free loopback port."""
    registry = CollectorRegistry()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield registry, f"http://127.0.0.1:{server.server_port}/metrics"
    for collector in list(registry._collector_to_names):
        if isinstance(collector, PrometheusCollector):
            collector.close()
    server.shutdown()
    server.server_close()
    thread.join(5)


def scrape(endpoint: str) -> tuple[Samples, str]:
    with urllib.request.urlopen(endpoint, timeout=5) as response:
        body = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, body


def get(samples: Samples, name: str, pool: str, **labels: str) -> float:
    return samples[(name, tuple(sorted({POOL_LABEL: pool, **labels}.items())))]


def check(samples: Samples, name: str, stats: PoolStats) -> None:
    """Every gauge and counter the collector exports agrees with ``stats()``."""
    state = "db_client_connection_state"
    assert get(samples, "db_client_connection_count", name, **{state: "idle"}) == stats.idle
    assert get(samples, "db_client_connection_count", name, **{state: "used"}) == stats.in_use
    assert get(samples, "db_client_connection_max", name) == stats.pool_size + stats.max_overflow
    assert get(samples, "db_client_connection_pending_requests", name) == stats.waiting
    assert get(samples, "db_client_connection_timeouts_total", name) == stats.timeouts == 1
    assert get(samples, "poolwarden_connection_checkouts_total", name) == stats.checkouts
    assert stats.checkouts == 5
    wait = "db_client_connection_wait_time_seconds"
    assert get(samples, f"{wait}_count", name) == stats.checkouts
    assert get(samples, f"{wait}_bucket", name, le="+Inf") == stats.checkouts
    use = "db_client_connection_use_time_seconds"
    assert get(samples, f"{use}_count", name) == stats.checkins
    assert 0 < get(samples, f"{use}_sum", name) < 10
    assert get(samples, "db_client_connection_create_time_seconds_count", name) == stats.connects


def test_pool(registry: tuple[CollectorRegistry, str]) -> None:
    reg, endpoint = registry
    with poolwarden.Pool(reachable_url("mysql+pymysql"), pool_size=1, max_overflow=0) as pool:
        reg.register(PrometheusCollector(pool, name="pool"))
        sync_work(pool)
        samples, _ = scrape(endpoint)
        check(samples, "pool", pool.stats())


def test_async_pool(registry: tuple[CollectorRegistry, str]) -> None:
    reg, endpoint = registry
    pool = poolwarden.AsyncPool(reachable_url("mysql+asyncmy"), pool_size=1, max_overflow=0)
    reg.register(PrometheusCollector(pool, name="async"))
    try:
        samples, _ = run_in_loop(async_work, pool, lambda: scrape(endpoint))
        check(samples, "async", pool.stats())
    finally:
        asyncio.run(pool.close())


def test_warden_pool_through_its_engine(registry: tuple[CollectorRegistry, str]) -> None:
    reg, endpoint = registry
    engine = create_engine(
        reachable_url("mysql+pymysql"), pool_size=1, max_overflow=0, pool_timeout=0.05
    )
    try:
        collector = PrometheusCollector(engine)
        reg.register(collector)
        engine_work(engine)
        samples, _ = scrape(endpoint)
        (name,) = collector.names
        assert name == MYSQL.rpartition("@")[2]  # host:port/database from engine.url
        check(samples, name, engine.pool.stats())  # type: ignore[attr-defined]
        # dispose() puts a new pool in place (as after a fork): the metrics follow it,
        # starting from zero as a restarted process would.
        engine.dispose()
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        samples, _ = scrape(endpoint)
        assert get(samples, "poolwarden_connection_checkouts_total", name) == 1
        assert get(samples, "db_client_connection_use_time_seconds_count", name) == 1
        assert get(samples, "db_client_connection_timeouts_total", name) == 0
    finally:
        engine.dispose()


def test_async_warden_pool_through_its_engine(registry: tuple[CollectorRegistry, str]) -> None:
    reg, endpoint = registry
    engine = create_async_engine(
        reachable_url("mysql+asyncmy"), pool_size=1, max_overflow=0, pool_timeout=0.05
    )
    collector = PrometheusCollector(engine, name="async-engine")
    reg.register(collector)
    samples, _ = run_in_loop(async_engine_work, engine, lambda: scrape(endpoint))
    check(samples, "async-engine", engine.sync_engine.pool.stats())  # type: ignore[attr-defined]
    asyncio.run(engine.dispose())


def test_several_pools_keep_their_names(registry: tuple[CollectorRegistry, str]) -> None:
    reg, endpoint = registry
    url = reachable_url("mysql+pymysql")
    with poolwarden.Pool(url, pool_size=2) as a, poolwarden.Pool(url, pool_size=3) as b:
        collector = PrometheusCollector(a, b)
        reg.register(collector)
        base = MYSQL.rpartition("@")[2]
        assert collector.names == [base, f"{base} #2"]
        with a.connection():
            samples, body = scrape(endpoint)
        assert (
            get(samples, "db_client_connection_count", base, db_client_connection_state="used")
            == 1
        )
        assert get(samples, "db_client_connection_max", f"{base} #2") == 3 + b.stats().max_overflow
        # Each family appears once, with both pools in it.
        assert body.count("# TYPE db_client_connection_count ") == 1
        exported = {key[0] for key in samples}
        for metric in METRICS:
            if metric.kind == "histogram":
                assert f"{metric.prometheus}_bucket" in exported
            elif metric.name != "poolwarden.connection.create_errors":
                assert metric.prometheus in exported, metric.prometheus
        # A second collector of the same names is refused by the registry, not exposed twice.
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            reg.register(PrometheusCollector(a))
        with pytest.raises(ValueError, match="name: this pool's metrics are already named"):
            PrometheusCollector(a, name="other")


def test_what_is_not_a_poolwarden_pool_is_refused() -> None:
    engine = sqlalchemy.create_engine(reachable_url("mysql+pymysql"))
    with pytest.raises(TypeError, match=r"^pool: expected a poolwarden Pool.*got QueuePool"):
        PrometheusCollector(engine)
    with pytest.raises(ValueError, match=r"^name: expected a non-empty string"):
        PrometheusCollector(poolwarden.Pool(reachable_url("mysql+pymysql")), name=" ")
    engine.dispose()
