"""Connections kept in the borrower's hands, on the fake driver with a fake clock: checked
before the next operation after a pause, replaced when nothing can be lost, reported with
ConnectionLost when a transaction was open."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

import poolwarden
from poolwarden import ConnectionLost
from tests.clock import FakeClock
from tests.fakedb import FakeServer, OperationalError


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def held(make_pool: Any, clock: FakeClock, **kwargs: Any) -> Any:
    kwargs.setdefault("held_check_after", 1.0)
    return make_pool(pool_size=1, max_overflow=0, clock=clock, **kwargs).getconn()


def test_short_pauses_are_not_checked(make_pool: Any, server: FakeServer, clock: Any) -> None:
    conn = held(make_pool, clock)
    conn.commit()
    conn._raw.pings = 0
    first = conn._raw
    first.server_closes()
    clock.advance(0.9)  # below held_check_after: the operation goes straight to the driver
    with pytest.raises(OperationalError):
        conn.cursor().execute("SELECT 1")
    assert first.pings == 0


def test_dead_connection_without_transaction_is_replaced_in_place(
    make_pool: Any, server: FakeServer, clock: FakeClock
) -> None:
    conn = held(make_pool, clock)
    cursor = conn.cursor()
    cursor.execute("SELECT 1")
    conn.commit()
    first = conn._raw
    first.server_closes()
    clock.advance(5)
    cursor.execute("SELECT 2")  # the same cursor, now on the new connection
    assert conn._raw is not first and conn._raw.statements == ["SELECT 2"]
    assert not first.open  # the dead one was closed
    assert cursor.fetchall() == [(1,)]
    pool = conn._pool
    conn.close()
    stats = pool.stats()
    assert stats.held_replaced == 1 and stats.held_lost == 0
    assert stats.in_use == 0 and stats.idle == 1  # the slot was kept, not leaked


def test_cursor_attributes_are_forwarded_and_carried_to_the_replacement(
    make_pool: Any, server: FakeServer, clock: FakeClock
) -> None:
    conn = held(make_pool, clock)
    cursor = conn.cursor()
    cursor.arraysize = 50  # DB-API: arraysize is read/write
    assert cursor._cursor.arraysize == 50 and cursor.arraysize == 50
    conn._raw.server_closes()
    clock.advance(5)
    cursor.execute("SELECT 1")
    assert cursor._cursor.conn is conn._raw and cursor._cursor.arraysize == 50


def test_settings_the_borrower_changed_are_applied_to_the_replacement(
    make_pool: Any, server: FakeServer, clock: FakeClock
) -> None:
    conn = held(make_pool, clock)
    conn.autocommit = True
    conn.isolation_level = "SERIALIZABLE"
    conn.cursor().execute("INSERT 1")  # autocommit: committed at once, no transaction
    conn._raw.server_closes()
    clock.advance(5)
    conn.cursor().execute("INSERT 2")
    assert conn._raw.autocommit is True and conn._raw.isolation_level == "SERIALIZABLE"
    raw = conn._raw
    conn.close()
    # and restored to the pool's defaults when it went back
    assert raw.autocommit is False and raw.isolation_level == "READ COMMITTED"


def test_open_transaction_raises_connection_lost_until_rolled_back(
    make_pool: Any, server: FakeServer, clock: FakeClock
) -> None:
    server.idle_timeout = 2.0
    conn = held(make_pool, clock)
    conn.cursor().execute("INSERT 1")  # a transaction is open: the write is uncommitted
    first = conn._raw
    first.server_closes()
    clock.advance(7.5)
    with pytest.raises(ConnectionLost) as caught:
        conn.cursor().execute("INSERT 2")
    error = caught.value
    assert isinstance(error, OperationalError)  # the driver's own family
    assert isinstance(error.__cause__, OperationalError)  # the driver's error, chained
    assert error.idle_seconds == pytest.approx(7.5)
    assert "7.5 s" in str(error) and "lost" in str(error) and "rollback()" in str(error)
    assert "INSERT 2" not in first.statements  # the statement was never sent
    for operation in (lambda: conn.cursor().execute("INSERT 3"), conn.commit):
        with pytest.raises(ConnectionLost):
            operation()  # nothing may run as if the transaction were still whole
    conn.rollback()
    assert conn._raw is not first
    conn.cursor().execute("INSERT 4")
    conn.commit()
    assert conn._raw.statements == ["INSERT 4"]
    pool = conn._pool
    conn.close()
    assert pool.stats().held_lost == 1 and pool.stats().held_replaced == 1


def test_returned_after_connection_lost_it_is_closed_not_reused(
    make_pool: Any, server: FakeServer, clock: FakeClock
) -> None:
    conn = held(make_pool, clock)
    conn.cursor().execute("INSERT 1")
    first = conn._raw
    first.server_closes()
    clock.advance(5)
    with pytest.raises(ConnectionLost):
        conn.commit()
    pool = conn._pool
    conn.close()
    with pool.connection() as again:
        assert again.raw is not first
    assert pool.stats().in_use == 0


def test_rollback_of_a_dead_connection_just_replaces_it(
    make_pool: Any, server: FakeServer, clock: FakeClock
) -> None:
    conn = held(make_pool, clock)
    conn.cursor().execute("INSERT 1")
    first = conn._raw
    first.server_closes()
    clock.advance(5)
    conn.rollback()  # the server already rolled back; nothing to report
    assert conn._raw is not first and conn._pool.stats().held_lost == 0


def test_live_connection_is_left_alone(
    make_pool: Any, server: FakeServer, clock: FakeClock
) -> None:
    conn = held(make_pool, clock)
    conn.cursor().execute("INSERT 1")
    first = conn._raw
    clock.advance(3600)
    conn.commit()
    assert conn._raw is first and first.pings == 0  # the probe saw nothing: no round trip


def test_failed_reconnect_propagates_and_the_slot_is_freed(
    make_pool: Any, server: FakeServer, clock: FakeClock
) -> None:
    conn = held(make_pool, clock)
    conn.commit()
    conn._raw.server_closes()
    server.down()
    clock.advance(5)
    with pytest.raises(OperationalError):
        conn.cursor().execute("SELECT 1")
    pool = conn._pool
    conn.close()
    assert pool.stats().in_use == 0 and pool.stats().idle == 0


def test_never_checked_when_disabled(make_pool: Any, server: FakeServer, clock: FakeClock) -> None:
    conn = held(make_pool, clock, held_check_after=None)
    conn.commit()
    conn._raw.server_closes()
    clock.advance(3600)
    with pytest.raises(OperationalError):
        conn.cursor().execute("SELECT 1")


@pytest.mark.parametrize("value", [-1, "soon", float("nan")])
def test_bad_held_check_after_is_named(make_pool: Any, value: Any) -> None:
    with pytest.raises(ValueError, match="held_check_after must be a number of seconds >= 0"):
        make_pool(held_check_after=value)


def test_retry_runs_again_only_for_lost_connections() -> None:
    calls: list[int] = []

    @poolwarden.retry_on_disconnect(attempts=3)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise pymysql.err.OperationalError(2013, "Lost connection to server during query")
        return "done"

    assert flaky() == "done" and len(calls) == 3

    @poolwarden.retry_on_disconnect(attempts=3)
    def wrong() -> None:
        calls.append(2)
        raise pymysql.err.OperationalError(1064, "syntax error")

    calls.clear()
    with pytest.raises(pymysql.err.OperationalError, match="syntax"):
        wrong()
    assert calls == [2]  # never retried


def test_retry_gives_up_after_its_attempts_with_the_last_error() -> None:
    seen: list[tuple[str, int]] = []
    retry = poolwarden.retry_on_disconnect(
        attempts=2, on_retry=lambda e, n: seen.append((str(e), n))
    )
    tries = 0
    with pytest.raises(pymysql.err.OperationalError, match="gone away #2"):
        for attempt in retry:
            with attempt:
                tries += 1
                raise pymysql.err.OperationalError(2006, f"server has gone away #{tries}")
    assert tries == 2 and seen == [("(2006, 'server has gone away #1')", 1)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"attempts": 0}, "attempts must be an integer >= 1"), ({"on_retry": 3}, "on_retry")],
)
def test_retry_arguments_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        poolwarden.retry_on_disconnect(**kwargs)


@pytest.mark.parametrize(
    "change",
    [
        lambda conn: conn.cursor().execute("SET @tenant = 7"),
        lambda conn: conn.cursor().execute("  use other_db"),
        lambda conn: conn.reset(),  # a driver method the proxy does not know
        lambda conn: conn.raw,
    ],
    ids=["SET", "USE", "driver method", "raw connection"],
)
def test_session_state_is_never_dropped_in_silence(
    make_pool: Any, server: FakeServer, clock: FakeClock, change: Any
) -> None:
    conn = held(make_pool, clock)
    conn.autocommit = True  # no transaction: only the session state is at stake
    change(conn)
    conn.commit()
    conn._raw.server_closes()
    clock.advance(5)
    with pytest.raises(ConnectionLost, match="Session state had been set"):
        conn.cursor().execute("INSERT 1")
    conn.rollback()
    conn.cursor().execute("INSERT 1")  # a new connection, with the pool's settings
    assert conn._raw.statements == ["INSERT 1"]


def test_rollback_reports_lost_session_state_once_then_replaces(
    make_pool: Any, server: FakeServer, clock: FakeClock
) -> None:
    conn = held(make_pool, clock)
    conn.autocommit = True  # no transaction: only the session state is at stake
    conn.cursor().execute("SET @tenant = 7")
    first = conn._raw
    first.server_closes()
    clock.advance(5)
    with pytest.raises(ConnectionLost, match="Session state had been set"):
        conn.rollback()  # the borrower must hear its session settings are gone
    conn.rollback()  # acknowledged: a new connection
    assert conn._raw is not first
