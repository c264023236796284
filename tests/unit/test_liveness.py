"""Checkout-time liveness on the fake driver: socket probe, pings, lifetimes, keepalive,
suspicion after a disconnect, and the watchdog that bounds a ping."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from poolwarden import Pool
from poolwarden._core import PoolCore
from poolwarden._sync import _watchdog
from tests.clock import FakeClock
from tests.fakedb import FakeServer, OperationalError


def open_idle(pool: Pool, count: int) -> list[Any]:
    """Open ``count`` connections and leave them idle; return the raw ones."""
    held = [pool.getconn() for _ in range(count)]
    raws = [conn.raw for conn in held]
    for conn in held:
        conn.close()
    return raws


def stop_housekeeper(pool: Pool) -> None:
    """Stop the background rounds, so the test runs them by hand on its fake clock."""
    housekeeper = pool.engine._background._housekeeper
    assert housekeeper is not None
    housekeeper.stop()
    housekeeper._runner.join(5)


def test_probe_replaces_connection_the_server_closed(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool(pool_size=2)
    dead, alive = open_idle(pool, 2)
    dead.server_closes()
    got = [pool.getconn(), pool.getconn()]
    assert dead not in [c.raw for c in got] and alive in [c.raw for c in got]
    assert not dead.open  # the pool closed its end
    for conn in got:
        conn.cursor().execute("SELECT 1")  # both work: the caller never saw the dead one
        conn.close()
    stats = pool.stats()
    assert stats.found_dead == 1 and stats.pings == 0


def test_without_the_probe_the_dead_connection_reaches_the_caller(make_pool: Any) -> None:
    pool = make_pool(pool_size=1, max_overflow=0, probe=False)
    (dead,) = open_idle(pool, 1)
    dead.server_closes()
    with pool.connection() as conn, pytest.raises(OperationalError):
        conn.cursor().execute("SELECT 1")


def test_ping_only_after_idle_threshold(make_pool: Any) -> None:
    clock = FakeClock()
    pool = make_pool(pool_size=1, ping_after_idle=5.0, clock=clock)
    (raw,) = open_idle(pool, 1)
    clock.advance(4.9)
    pool.getconn().close()
    assert raw.pings == 0
    clock.advance(5.0)
    pool.getconn().close()
    assert raw.pings == 1 and pool.stats().pings == 1


@pytest.mark.parametrize("fifo", [False, True])
def test_fifo_under_light_load_pings_at_checkout(make_pool: Any, fifo: bool) -> None:
    """FIFO's cost (WardenPool's default order): one request every 2 s through four
    connections leaves each idle 8 s when its turn comes, past ping_after_idle. LIFO
    reuses the one just returned, which needs no ping."""
    clock = FakeClock()
    pool = make_pool(pool_size=4, max_overflow=0, ping_after_idle=5.0, clock=clock)
    pool.engine._core.fifo = fifo
    open_idle(pool, 4)
    for _ in range(8):
        clock.advance(2.0)
        pool.getconn().close()
    # FIFO: the first two were idle 2 s and 4 s; every later one 6 s or more.
    assert pool.stats().pings == (6 if fifo else 0)


def test_pre_ping_pings_every_checkout(make_pool: Any) -> None:
    pool = make_pool(pool_size=1, pre_ping=True)
    (raw,) = open_idle(pool, 1)
    for _ in range(3):
        pool.getconn().close()
    assert raw.pings == 3


def test_silent_death_found_by_a_ping_bounded_by_validation_timeout(make_pool: Any) -> None:
    clock = FakeClock()
    pool = make_pool(pool_size=2, ping_after_idle=1.0, validation_timeout=0.3, clock=clock)
    dead, _alive = open_idle(pool, 2)
    dead.dies_silently()
    clock.advance(2.0)
    started = time.monotonic()
    conn = pool.getconn()  # the most recently used is `alive`; take both to reach `dead`
    other = pool.getconn()
    elapsed = time.monotonic() - started
    assert dead not in (conn.raw, other.raw)
    assert 0.25 <= elapsed < 3.0  # the hung ping was cut off by the watchdog
    stats = pool.stats()
    assert stats.ping_failures == 1 and stats.found_dead == 1
    conn.close()
    other.close()


def test_lifetime_retires_idle_and_returned_connections(make_pool: Any) -> None:
    clock = FakeClock()
    pool = make_pool(pool_size=2, max_lifetime=10.0, clock=clock)
    (old,) = open_idle(pool, 1)
    clock.advance(10.1)
    with pool.connection() as conn:
        assert conn.raw is not old  # retired at checkout
        young = conn.raw
        clock.advance(10.1)  # expires while in use ...
    assert not young.open  # ... so it is closed when it comes back
    assert pool.stats().retired == 2


def test_expiry_is_jittered_below_the_lifetime() -> None:
    core = PoolCore(pool_size=50, max_overflow=0, min_idle=0, max_connecting=50)
    core.set_lifetime(100.0)
    expiries = []
    for _ in range(50):
        core.connecting += 1
        result = core.connect_succeeded(object(), 0.0)
        entry = result.close or core.idle[-1]
        expiries.append(entry.expires_at)
    assert all(90.0 <= e <= 100.0 for e in expiries)
    assert len(set(expiries)) > 40  # they do not all expire together


def test_auto_lifetime_and_keepalive_from_server_idle_timeout(
    make_pool: Any, server: FakeServer
) -> None:
    server.idle_timeout = 100.0
    pool = make_pool(pool_size=1)
    with pool.connection() as conn:
        entry = conn._entry
        assert entry is not None
        assert (
            pool.engine._core.lifetime == 80.0
            and 72.0 <= entry.expires_at - entry.created_at <= 80.0
        )
    assert pool.engine._core.keepalive == 50.0 and pool.engine._background._housekeeper is not None


def test_auto_lifetime_without_server_timeout_is_an_hour() -> None:
    assert PoolCore.auto_lifetime(None) == 3600.0
    assert PoolCore.auto_lifetime(28800.0) == 3600.0
    assert PoolCore.auto_lifetime(60.0) == 48.0


def test_keepalive_pings_only_the_idle_that_must_survive(make_pool: Any) -> None:
    clock = FakeClock()
    pool = make_pool(
        pool_size=4, max_overflow=0, min_idle=2, keepalive=5.0, max_lifetime=None, clock=clock
    )
    raws = open_idle(pool, 4)
    stop_housekeeper(pool)
    clock.advance(6.0)
    pool.engine._background.housekeep()
    pinged = [raw for raw in raws if raw.pings]
    assert len(pinged) == 2 and pool.stats().idle == 4
    assert pool.stats().pings == 2


def test_idle_timeout_closes_idle_beyond_min_idle(make_pool: Any) -> None:
    clock = FakeClock()
    pool = make_pool(
        pool_size=4, max_overflow=0, min_idle=1, idle_timeout=10.0, max_lifetime=None, clock=clock
    )
    raws = open_idle(pool, 4)
    stop_housekeeper(pool)
    clock.advance(11.0)
    pool.engine._background.housekeep()
    stats = pool.stats()
    assert stats.idle == 1 and stats.retired == 3
    assert sum(raw.open for raw in raws) == 1


def test_disconnect_makes_other_idle_connections_suspect(
    make_pool: Any, server: FakeServer
) -> None:
    pool = make_pool(pool_size=3, ping_after_idle=60.0)
    raws = open_idle(pool, 3)
    with pool.connection() as conn:
        server.fail("execute", OperationalError(2013, "Lost connection during query"))
        with pytest.raises(OperationalError):
            conn.cursor().execute("SELECT 1")
    # Recently used, yet each remaining idle connection answers a ping before reuse ...
    held = [pool.getconn() for _ in range(2)]
    assert sum(raw.pings for raw in raws) == 2
    for conn in held:
        conn.close()
    # ... once: having passed, they are trusted again.
    for conn in [pool.getconn() for _ in range(2)]:
        conn.close()
    assert sum(raw.pings for raw in raws) == 2


def test_watchdog_cuts_a_blocked_read() -> None:
    left, right = socket.socketpair()
    ticket = _watchdog.guard(left.fileno(), time.monotonic() + 0.2)
    started = time.monotonic()
    assert left.recv(1) == b""  # unblocked by the shutdown
    assert 0.15 <= time.monotonic() - started < 2.0
    assert _watchdog.release(ticket) is True
    left.close()
    right.close()


def test_watchdog_leaves_a_prompt_call_alone() -> None:
    left, right = socket.socketpair()
    ticket = _watchdog.guard(left.fileno(), time.monotonic() + 0.2)
    right.send(b"x")
    assert left.recv(1) == b"x"
    assert _watchdog.release(ticket) is False
    time.sleep(0.3)
    right.send(b"y")
    assert left.recv(1) == b"y"  # the socket still works
    left.close()
    right.close()


def test_many_checkouts_during_a_ping_do_not_pile_up(make_pool: Any) -> None:
    clock = FakeClock()
    pool = make_pool(pool_size=4, ping_after_idle=1.0, validation_timeout=0.3, clock=clock)
    raws = open_idle(pool, 4)
    for raw in raws:
        raw.dies_silently()
    clock.advance(2.0)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with pool.connection(timeout=10) as conn:
                conn.cursor().execute("SELECT 1")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and time.monotonic() - started < 5
    assert pool.stats().found_dead == 4


def test_close_stops_the_housekeeper(make_pool: Any) -> None:
    pool = make_pool(pool_size=2, min_idle=1, max_lifetime=30.0)
    housekeeper = pool.engine._background._housekeeper
    assert housekeeper is not None and housekeeper._runner.is_alive()
    pool.close()
    housekeeper._runner.join(5)
    assert not housekeeper._runner.is_alive()


def test_no_housekeeper_without_timed_work(make_pool: Any) -> None:
    pool = make_pool(max_lifetime=None, keepalive=None)
    with pool.connection():
        pass
    assert (
        pool.engine._background._housekeeper is None
    )  # nothing to time: no thread (friendlier to os.fork)
