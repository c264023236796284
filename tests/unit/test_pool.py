"""The thread-based pool on the fake driver: reset, errors, close, resize; what only it has
(threads waiting, the sync proxies' attributes). What both pools do alike is written once
in ``_async/test_pool_behaviour.py`` and ``_async/test_pool_return.py`` (and generated into
``_sync/``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from poolwarden import ConnectionReturned, Pool
from tests.fakedb import FakeServer, OperationalError


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def test_cursor_from_returned_connection_refuses(make_pool: Any) -> None:
    pool = make_pool()
    with pool.connection() as conn:
        cur = conn.cursor()
    with pytest.raises(ConnectionReturned):
        cur.execute("SELECT 1")


def test_reset_none_leaves_transaction(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool(pool_size=1, max_overflow=0, reset=None)
    with pool.connection() as conn:
        conn.cursor().execute("SELECT 1")
    assert server.connections[0].in_transaction


def test_ordinary_error_keeps_connection(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool(pool_size=1, max_overflow=0)
    with pool.connection() as conn:
        first = conn.raw
        server.fail("execute", OperationalError(1064, "syntax error"))
        with pytest.raises(OperationalError):
            conn.cursor().execute("SELEC 1")
    with pool.connection() as conn:
        assert conn.raw is first


def test_failed_reset_discards(
    make_pool: Any, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(pool_size=1, max_overflow=0)
    with pool.connection() as conn:
        conn.cursor().execute("SELECT 1")
        first = conn.raw
        server.fail("rollback", OperationalError(1205, "lock wait timeout"))
    assert not first.open
    assert "resetting connection #1 failed" in caplog.text
    assert pool.stats().reset_failures == 1


def test_invalidate_closes_on_return(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool()
    with pool.connection() as conn:
        conn.invalidate()
        raw = conn.raw
    assert not raw.open and pool.stats().idle == 0


def test_fifo_hand_off_to_longest_waiter(make_pool: Any) -> None:
    pool = make_pool(pool_size=1, max_overflow=0)
    holder = pool.getconn()
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda: pool.getconn(timeout=5).close())
        threads.append(t)
        t.start()
        wait_for(lambda expected=i + 1: pool.stats().waiting == expected)
    served: list[int] = []
    original = pool.engine._core.checkin

    def record(entry: Any, now: float, reusable: bool) -> Any:
        waiter, close = original(entry, now, reusable)
        if waiter is not None:
            served.append(waiter.since)
        return waiter, close

    pool.engine._core.checkin = record
    holder.close()
    for t in threads:
        t.join(5)
    assert served == sorted(served) and len(served) == 5


def test_newcomer_cannot_barge_past_waiters(make_pool: Any) -> None:
    pool = make_pool(pool_size=1, max_overflow=0)
    holder = pool.getconn()
    got: list[str] = []

    def wait_then_record() -> None:
        pool.getconn(timeout=5).close()
        got.append("waiter")

    waiter = threading.Thread(target=wait_then_record)
    waiter.start()
    wait_for(lambda: pool.stats().waiting == 1)
    holder.close()  # handed straight to the waiter, never left idle
    with pool.connection(timeout=5):
        got.append("newcomer")
    waiter.join(5)
    assert got[0] == "waiter"


def test_close_closes_idle_at_once(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool(pool_size=2)
    with pool.connection(), pool.connection():
        pass
    assert len(server.open_connections) == 2
    pool.close()
    assert server.open_connections == []


def test_context_manager_closes_pool(server: FakeServer) -> None:
    from tests.fakedb import FakeAdapter

    with Pool(server.connect, adapter=FakeAdapter(server)) as pool, pool.connection():
        pass
    assert pool.closed and not server.open_connections


def test_min_idle_opened_in_background(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool(pool_size=5, min_idle=3)
    wait_for(lambda: pool.stats().idle == 3)
    with pool.connection():
        wait_for(lambda: pool.stats().idle == 3)  # refilled while one is out
    assert pool.stats().connects == 4


def test_server_back_before_timeout(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool()
    server.down()
    threading.Timer(0.3, server.up).start()
    with pool.connection(timeout=10) as conn:
        assert conn.raw.open
    assert pool.stats().connect_failures >= 1


def test_stats_wait_and_hold_times(make_pool: Any) -> None:
    pool = make_pool(pool_size=1, max_overflow=0)
    for _ in range(3):
        with pool.connection():
            time.sleep(0.01)
    stats = pool.stats()
    assert stats.hold_time.count == 3 and stats.hold_time.p50 >= 0.009
    assert stats.wait_time.count == 3
    assert stats.peak_in_use == 1
    assert stats.as_dict()["checkouts"] == 3
    assert "checkouts=3" in str(stats)


def test_interrupted_waiter_loses_no_slot(make_pool: Any) -> None:
    pool = make_pool(pool_size=1, max_overflow=0)
    holder = pool.getconn()

    class Interrupt(BaseException):
        pass

    import poolwarden._sync._compat as pool_module

    real_lock = pool_module._allocate_lock

    class InterruptingLock:
        def __init__(self) -> None:
            self._lock = real_lock()

        def acquire(self, timeout: float = -1) -> bool:
            if timeout == -1:
                return self._lock.acquire()
            holder.close()  # the connection is handed over ... just as we are interrupted
            raise Interrupt

        def release(self) -> None:
            self._lock.release()

    pool_module._allocate_lock = InterruptingLock  # type: ignore[assignment]
    try:
        with pytest.raises(Interrupt):
            pool.getconn(timeout=5)
    finally:
        pool_module._allocate_lock = real_lock
    stats = pool.stats()
    assert stats.in_use == 0 and stats.idle == 1 and stats.waiting == 0
