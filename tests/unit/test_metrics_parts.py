"""The pieces of poolwarden.metrics without a server: reading a sample ring from a cursor,
filling buckets, naming connect failures, the Prometheus name translation, and the
OpenTelemetry replay's sampling."""

from __future__ import annotations

import os
from typing import Any

import pymysql
import pytest
from hypothesis import given
from hypothesis import strategies as st

from poolwarden._core.stats import Sampler, error_cause
from poolwarden.metrics import METRICS
from poolwarden.metrics._buckets import Buckets
from poolwarden.metrics._names import prometheus_name
from poolwarden.metrics._otel import _spread
from poolwarden.metrics._source import metrics_for, release
from poolwarden.metrics._ticker import TICKER


@given(
    size_log=st.integers(1, 5),
    batches=st.lists(st.lists(st.floats(0, 10), max_size=40), max_size=8),
)
def test_reading_a_ring_from_a_cursor_loses_only_what_was_overwritten(
    size_log: int, batches: list[list[float]]
) -> None:
    sampler = Sampler(1 << size_log)
    cursor = 0
    for batch in batches:
        for value in batch:
            sampler.add_unmarked(value)
        got, lost = sampler.since(cursor)
        assert lost == max(0, len(batch) - (1 << size_log))
        assert got == batch[lost:]  # the newest, oldest first
        cursor = sampler.count


def test_buckets_count_values_zeros_and_lost_samples() -> None:
    buckets = Buckets((0.001, 0.01, 0.1))
    buckets.add([0.0005, 0.005, 0.005, 0.05, 5.0], zeros=3)
    assert buckets.counts == [4, 2, 1, 1]  # a value on a bound belongs below it (le)
    assert buckets.cumulative() == [4, 6, 7, 8]
    assert buckets.count == 8 and buckets.sum == pytest.approx(5.0605)
    # 10 more samples of which only the last 2 were still in the ring: the 8 lost ones
    # are counted as distributed like the 2 that were read.
    buckets.add([0.005, 0.005], lost=8)
    assert buckets.counts == [4, 12, 1, 1] and buckets.count == 18
    assert buckets.sum == pytest.approx(5.0605 + 0.05)
    buckets.add([0.0001])
    buckets.add([])
    assert buckets.count == 19
    assert Buckets((0.5,)).cumulative() == [0, 0]


def test_a_connect_failure_is_named_by_class_and_code() -> None:
    mysql = pymysql.err.OperationalError(1040, "Too many connections")
    assert error_cause(mysql) == ("pymysql.err.OperationalError", "1040")
    refused = ConnectionRefusedError(111, "Connection refused")
    assert error_cause(refused) == ("ConnectionRefusedError", "ECONNREFUSED")
    assert error_cause(TimeoutError("timed out")) == ("TimeoutError", "")

    class SQLStateError(Exception):
        sqlstate = "53300"

    assert error_cause(SQLStateError("too many clients")) == (
        f"{__name__}.test_a_connect_failure_is_named_by_class_and_code.<locals>.SQLStateError",
        "53300",
    )


def test_prometheus_names_follow_the_collector_translation() -> None:
    assert prometheus_name("db.client.connection.count", "{connection}", "updowncounter") == (
        "db_client_connection_count"
    )
    assert prometheus_name("db.client.connection.timeouts", "{timeout}", "counter") == (
        "db_client_connection_timeouts_total"
    )
    assert prometheus_name("db.client.connection.wait_time", "s", "histogram") == (
        "db_client_connection_wait_time_seconds"
    )
    names = [metric.prometheus for metric in METRICS]
    assert len(set(names)) == len(names)
    assert sum(name.startswith("db_client_connection_") for name in names) == 9


def test_the_replay_keeps_an_even_sample_when_over_budget() -> None:
    values = [float(i) for i in range(100)]
    assert list(_spread(values, 5, 200)) == [0.0] * 5 + values
    kept = list(_spread(values, 100, 20))  # half the events were zero-length waits
    assert len(kept) == 20 and kept[:10] == [0.0] * 10
    assert kept[10:] == [float(i) for i in range(0, 100, 10)]
    assert list(_spread([], 0, 5)) == []


def test_a_ring_wrapped_between_readings_still_counts_every_checkout(make_pool: Any) -> None:
    pool = make_pool(pool_size=1)
    source = metrics_for(pool, name="wrapped")
    try:
        for _ in range(10_000):  # more than the 4,096 the rings keep, between two readings
            with pool.connection():
                pass
        snapshot = source.read()
        assert snapshot is not None
        stats = pool.stats()
        assert snapshot.use_time.count == stats.checkins == 10_000
        assert snapshot.wait_time.count == stats.checkouts == 10_000
        assert sum(snapshot.use_time.counts) == 10_000
    finally:
        release(source)
    # Released by its last user, the name is free again and the pool no longer read.
    again = metrics_for(pool, name="wrapped")
    assert again is not source
    release(again)


def test_a_forked_child_gets_its_ticker_back(make_pool: Any) -> None:
    pool = make_pool(pool_size=1)
    source = metrics_for(pool, name="forked")
    try:
        for _ in range(3):
            with pool.connection():
                pass
        assert source.read() is not None
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status, never through pytest
            status = 1
            try:
                for _ in range(5):
                    with pool.connection():
                        pass
                snapshot = source.read()
                thread = TICKER._thread
                if snapshot is not None and thread is not None and thread.is_alive():
                    status = 0 if snapshot.reading.cursor.checkouts == 8 else 3
                else:
                    status = 2
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release(source)
