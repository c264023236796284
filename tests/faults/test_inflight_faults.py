"""Faults that strike during a query: that query fails, with the driver's own error, and
nothing after it does."""

from __future__ import annotations

import time
from typing import Any

import pytest

from poolwarden import Pool
from tests.faults.conftest import IN_CI, record
from tests.faults.proxy import FaultProxy, nft_available
from tests.faults.workload import request_in_thread, run, sleep_sql, warm

REQUESTS = 9

#: Driver options that bound a read on a silent network path, as a production
#: configuration should: a read timeout for the MySQL drivers, TCP keepalives and a TCP
#: user timeout for libpq (which has no read timeout).
SILENT_PATH_LIMITS = {
    "mysql": "read_timeout=3",
    "postgresql": "keepalives=1&keepalives_idle=1&keepalives_interval=1&keepalives_count=2"
    "&tcp_user_timeout=3000",
}


def failures(outcome: list[Any]) -> list[BaseException]:
    """The exceptions among a threaded request's outcome."""
    return [item for item in outcome if isinstance(item, BaseException)]


def test_server_restart_mid_query(target: tuple[Any, str]) -> None:
    server, driver = target
    with Pool(server.url(driver), pool_size=3) as pool:
        warm(pool, 3)
        thread, outcome = request_in_thread(pool, sleep_sql(server.kind, 10))
        time.sleep(0.5)
        server.restart()
        back = time.monotonic()
        thread.join(30)
        inflight = failures(outcome)
        errors = run(pool, REQUESTS)
        recovery = time.monotonic() - back
        stats = pool.stats()
        adapter = pool.engine.adapter
        dbapi: Any = adapter.dbapi
    record("server restart mid-query", driver, len(inflight) + len(errors), 1, recovery)
    assert len(inflight) == 1 and errors == []
    error = inflight[0]
    assert isinstance(error, dbapi.Error)  # the driver's own exception ...
    assert adapter.is_disconnect(error), repr(error)  # ... recognised as a disconnect
    assert stats.discards >= 1 and stats.found_dead >= 2


def test_blackholed_network_mid_query(target: tuple[Any, str], proxy: FaultProxy) -> None:
    server, driver = target
    if server.kind == "postgresql" and not nft_available():
        # libpq's only bounds on a silent path are TCP-level; a proxy in user space still
        # acknowledges packets, so only dropping them in the kernel makes the fault real.
        message = "needs nftables (root) to drop packets for libpq's TCP keepalives"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    url = server.url(driver, port=proxy.port, query=SILENT_PATH_LIMITS[server.kind])
    with Pool(url, pool_size=3, validation_timeout=1.0) as pool:
        warm(pool, 3)
        started = time.monotonic()
        thread, outcome = request_in_thread(pool, sleep_sql(server.kind, 1))
        time.sleep(0.3)
        assert proxy.blackhole() == 3
        thread.join(30)
        inflight = failures(outcome)
        failed_after = time.monotonic() - started
        # The failure made every idle connection suspect: each is pinged (and found dead)
        # before reuse instead of being handed out to hang.
        back = time.monotonic()
        errors = run(pool, REQUESTS)
        recovery = time.monotonic() - back
        stats = pool.stats()
        adapter = pool.engine.adapter
    note = f"in-flight query failed after {failed_after:.1f} s"
    record("black-holed network mid-query", driver, len(inflight) + len(errors), 1, recovery, note)
    assert len(inflight) == 1 and errors == []
    assert adapter.is_disconnect(inflight[0]), repr(inflight[0])
    # Each idle connection was found dead before reuse: by a ping that got no answer, or
    # by the socket probe once TCP keepalives (libpq) had given up on it.
    assert stats.ping_failures + stats.found_dead >= 2 and recovery < 10, stats


def test_connections_closed_mid_query(target: tuple[Any, str], proxy: FaultProxy) -> None:
    """The path closes (FIN) under a running query, as a restarting proxy or balancer does."""
    server, driver = target
    with Pool(server.url(driver, port=proxy.port), pool_size=3) as pool:
        warm(pool, 3)
        thread, outcome = request_in_thread(pool, sleep_sql(server.kind, 2))
        time.sleep(0.3)
        proxy.close()
        thread.join(30)
        inflight = failures(outcome)
        back = time.monotonic()
        errors = run(pool, REQUESTS)
        recovery = time.monotonic() - back
        adapter = pool.engine.adapter
    record("connections closed mid-query", driver, len(inflight) + len(errors), 1, recovery)
    assert len(inflight) == 1 and errors == []
    assert adapter.is_disconnect(inflight[0]), repr(inflight[0])
