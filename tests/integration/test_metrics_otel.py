"""OpenTelemetry metrics against the real SDK and a real MariaDB: after a known sequence
(checkouts, a wait, a timeout, a dead connection caught by the probe and replaced), every
metric has the semantic conventions' name, unit, instrument type, attributes and value."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Histogram,
    InMemoryMetricReader,
    Metric,
    Sum,
)

import poolwarden
from poolwarden import PoolTimeout
from poolwarden.metrics import METRICS, POOL_NAME, SECONDS_BUCKETS, instrument
from poolwarden.sqlalchemy import create_async_engine, create_engine
from tests.conftest import MYSQL, mysql_address, reachable_url
from tests.integration.metrics_work import (
    CHECKOUTS,
    async_engine_work,
    async_work,
    engine_work,
    run_in_loop,
)

NAME = "orders-db"


def collect(reader: InMemoryMetricReader) -> dict[str, Metric]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        if scope.scope.name == "poolwarden"
        for metric in scope.metrics
    }


def value(metric: Metric, **attributes: str) -> Any:
    """The one point of ``metric`` for pool NAME whose attributes include ``attributes``."""
    wanted = {POOL_NAME: NAME, **attributes}
    found = [
        point
        for point in list[Any](metric.data.data_points)
        if all(point.attributes.get(k) == v for k, v in wanted.items())
    ]
    assert len(found) == 1, (metric.name, wanted, metric.data.data_points)
    return found[0]


def kill(connection_id: int) -> None:
    """End one server session from outside, as a server restart or an admin would."""
    user_host = MYSQL.rpartition("@")[2]
    host_port, _, database = user_host.partition("/")
    host, _, port = host_port.partition(":")
    admin = pymysql.connect(host=host, port=int(port or 3306), user="root", database=database)
    try:
        admin.cursor().execute(f"KILL {int(connection_id)}")
    finally:
        admin.close()


@pytest.fixture
def otel() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    """A MeterProvider of the test's own (never the global one) and its reader."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider, reader
    provider.shutdown()


def test_a_known_sequence_reads_back_exactly(
    otel: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    provider, reader = otel
    url = reachable_url("mysql+pymysql")
    with poolwarden.Pool(url, pool_size=1, max_overflow=0, timeout=5) as pool:
        handle = instrument(pool, provider, name=NAME)
        try:
            for _ in range(3):
                with pool.connection() as conn:
                    conn.cursor().execute("SELECT 1")
            # A wait: another thread holds the only connection for 0.3 s.
            held = pool.getconn()
            release = threading.Timer(0.3, pool.putconn, args=(held,))
            release.start()
            with pool.connection(timeout=5):
                pass
            release.join()
            # A timeout.
            held = pool.getconn()
            with pytest.raises(PoolTimeout):
                pool.getconn(timeout=0.05)
            # The connection's server session is killed while it is idle: the probe
            # catches it at the next checkout, which gets a new one.
            cursor = held.cursor()
            cursor.execute("SELECT CONNECTION_ID()")
            (connection_id,) = cursor.fetchone()
            pool.putconn(held)
            kill(connection_id)
            time.sleep(0.3)
            with pool.connection() as conn:
                conn.cursor().execute("SELECT 1")
            stats = pool.stats()
            metrics = collect(reader)
        finally:
            handle.close()

    assert stats.dead_by_probe == 1 and stats.timeouts == 1 and stats.connects == 2
    # Every metric but create_errors, which has no point until a connect fails.
    assert set(metrics) == {m.name for m in METRICS} - {"poolwarden.connection.create_errors"}
    for spec in METRICS:
        if spec.name not in metrics:
            continue
        metric = metrics[spec.name]
        assert metric.unit == spec.unit, spec.name
        assert metric.description == spec.description
        if spec.kind == "histogram":
            assert isinstance(metric.data, Histogram), spec.name
        else:
            assert isinstance(metric.data, Sum), spec.name
            assert metric.data.is_monotonic == (spec.kind == "counter"), spec.name
        points: list[Any] = list(metric.data.data_points)
        for point in points:
            assert point.attributes[POOL_NAME] == NAME
            assert set(point.attributes) == {POOL_NAME, *spec.attributes}, spec.name

    m = metrics
    assert (
        value(m["db.client.connection.count"], **{"db.client.connection.state": "idle"}).value == 1
    )
    assert (
        value(m["db.client.connection.count"], **{"db.client.connection.state": "used"}).value == 0
    )
    assert value(m["db.client.connection.max"]).value == 1
    assert value(m["db.client.connection.idle.max"]).value == 1
    assert value(m["db.client.connection.idle.min"]).value == 0
    assert value(m["db.client.connection.pending_requests"]).value == 0
    assert value(m["db.client.connection.timeouts"]).value == 1
    assert value(m["poolwarden.connection.checkouts"]).value == stats.checkouts == 7
    caught = m["poolwarden.connection.dead_caught"]
    assert value(caught, **{"poolwarden.caught_by": "probe"}).value == 1
    assert value(caught, **{"poolwarden.caught_by": "ping"}).value == 0
    assert value(m["poolwarden.connection.invalidations"]).value == 0

    wait = value(m["db.client.connection.wait_time"])
    assert tuple(wait.explicit_bounds) == SECONDS_BUCKETS
    assert wait.count == stats.checkouts
    assert 0.25 < wait.max < 2 and wait.min == 0.0  # the one wait; the rest found one idle
    assert sum(wait.bucket_counts) == wait.count
    use = value(m["db.client.connection.use_time"])
    assert use.count == stats.checkins == 7
    assert 0.25 < use.max < 2  # the connection held through the wait
    create = value(m["db.client.connection.create_time"])
    assert create.count == 2 and 0 < create.sum < 5


def test_connect_failures_by_cause_and_no_password_anywhere(
    otel: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    """A wrong password (root has none here) fails every connect with 1045: counted by
    cause, and the password appears in no name, attribute or value."""
    provider, reader = otel
    reachable_url("mysql+pymysql")
    password = "Xq7-distinctive-pw"
    url = mysql_address(f"root:{password}")
    with poolwarden.Pool(url, pool_size=1, timeout=0.5, connect_wait=0.2) as pool:
        handle = instrument(pool, provider)
        try:
            with pytest.raises(pymysql.err.OperationalError):
                pool.getconn()  # no retrying a mistake only a person can fix
            metrics = collect(reader)
        finally:
            handle.close()
    errors: list[Any] = list(metrics["poolwarden.connection.create_errors"].data.data_points)
    assert [dict(p.attributes) for p in errors] == [
        {
            POOL_NAME: handle.name,
            "error.type": "pymysql.err.OperationalError",
            "db.response.status_code": "1045",
        }
    ]
    assert errors[0].value >= 1
    assert handle.name == MYSQL.rpartition("@")[2]  # host:port/database, the default
    assert password not in repr(reader.get_metrics_data()) + repr(metrics) + handle.name


@pytest.mark.parametrize("kind", ["AsyncPool", "WardenPool", "AsyncWardenPool"])
def test_every_pool_class(kind: str, otel: tuple[MeterProvider, InMemoryMetricReader]) -> None:
    """The other three classes export the same metrics, read back after the same work."""
    provider, reader = otel
    sized: dict[str, Any] = {"pool_size": 1, "max_overflow": 0}
    if kind == "AsyncPool":
        target: Any = poolwarden.AsyncPool(reachable_url("mysql+asyncmy"), **sized)
        pool, work = target, async_work  # type: Any, Any
    elif kind == "WardenPool":
        target = create_engine(reachable_url("mysql+pymysql"), pool_timeout=0.05, **sized)
        pool, work = target.pool, None
    else:
        target = create_async_engine(reachable_url("mysql+asyncmy"), pool_timeout=0.05, **sized)
        pool, work = target.sync_engine.pool, async_engine_work
    handle = instrument(target, provider, name=NAME)
    try:
        if work is None:
            engine_work(target)
            metrics = collect(reader)
        else:
            metrics = run_in_loop(work, target, lambda: collect(reader))
        stats = pool.stats()
    finally:
        handle.close()
        if kind == "WardenPool":
            target.dispose()
        else:
            asyncio.run(target.close() if kind == "AsyncPool" else target.dispose())
    assert stats.checkouts == CHECKOUTS and stats.timeouts == 1
    assert value(metrics["poolwarden.connection.checkouts"]).value == CHECKOUTS
    assert value(metrics["db.client.connection.timeouts"]).value == 1
    assert value(metrics["db.client.connection.max"]).value == 1
    assert value(metrics["db.client.connection.wait_time"]).count == CHECKOUTS
    assert value(metrics["db.client.connection.use_time"]).count == stats.checkins
    assert value(metrics["db.client.connection.create_time"]).count == stats.connects
