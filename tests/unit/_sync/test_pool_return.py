# Generated from tests/unit/_async/test_pool_return.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""What both pools do with a connection that goes back, or never does: explicit returns,
use after return, foreign objects, a rollback only when a transaction is open, the session
reset, the borrower's settings restored, the leak report, and a connection dropped without
being returned reclaimed. Written once for Pool (the copy for Pool in ``_sync/`` is
generated)."""

from __future__ import annotations

import gc
import logging
from typing import Any

import pytest

from poolwarden import ConnectionReturned, PoolError
from tests.fakedb import FakeServer

from ._compat import MARKS, fake, named, set_setting, sleep, until

pytestmark = MARKS


def test_getconn_putconn_and_close_return(make_pool: Any) -> None:
    pool = make_pool(pool_size=2)
    a = pool.getconn()
    b = pool.getconn()
    assert pool.stats().in_use == 2
    pool.putconn(a)
    b.close()
    stats = pool.stats()
    assert stats.idle == 2 and stats.in_use == 0 and stats.checkins == 2


def test_use_after_return_and_double_return_raise(make_pool: Any) -> None:
    pool = make_pool()
    conn = pool.getconn()
    pool.putconn(conn)
    assert conn.closed
    with pytest.raises(ConnectionReturned, match="already returned to the pool"):
        conn.cursor()
    with pytest.raises(ConnectionReturned):
        conn.commit()
    with pytest.raises(ConnectionReturned):
        _ = conn.some_driver_attribute
    with pytest.raises(ConnectionReturned):
        pool.putconn(conn)
    with pytest.raises(ConnectionReturned):
        conn.close()
    assert pool.stats().checkins == 1


def test_putconn_rejects_foreign_objects(make_pool: Any) -> None:
    pool, other = make_pool(), make_pool()
    conn = other.getconn()
    with pytest.raises(PoolError, match="belongs to another pool"):
        pool.putconn(conn)
    with pytest.raises(PoolError, match="takes a connection checked out of this pool"):
        pool.putconn(object())
    other.putconn(conn)


def test_rollback_on_return_only_when_transaction_open(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool(pool_size=1, max_overflow=0)
    with pool.connection():
        pass  # untouched: nothing to roll back
    raw = server.connections[0]
    assert raw.rollbacks == 0
    with pool.connection() as conn:
        conn.cursor().execute("UPDATE t SET x = 1")
        conn.commit()  # committed: nothing open any more
    assert raw.rollbacks == 0
    with pool.connection() as conn:
        conn.cursor().execute("SELECT 1")  # opens a transaction (a read snapshot)
    assert raw.rollbacks == 1 and not raw.in_transaction
    with pool.connection() as conn:
        conn.cursor().execute("UPDATE t SET x = 1")  # uncommitted work
    assert raw.rollbacks == 2 and not raw.in_transaction
    assert pool.stats().resets == 2 and len(server.connections) == 1


def test_session_reset_clears_session_state(make_pool: Any, server: FakeServer) -> None:
    pool = make_pool(pool_size=1, max_overflow=0, reset="session")
    with pool.connection() as conn:
        conn.cursor().execute("SET @user_var = 42")
    raw = server.connections[0]
    assert raw.resets == 1 and raw.session == {}
    with pool.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT @user_var")
        assert cur.fetchall() == [(None,)]
    assert len(server.connections) == 1


@pytest.mark.parametrize("reset", ["rollback", "session"])
def test_settings_changed_by_the_borrower_restored_on_return(
    make_pool: Any, server: FakeServer, reset: str
) -> None:
    pool = make_pool(pool_size=1, max_overflow=0, reset=reset)
    with pool.connection() as conn:
        conn.cursor().execute("SET @a = 1")
        set_setting(conn, "isolation_level", "SERIALIZABLE")
        set_setting(conn, "autocommit", True)
        assert conn.autocommit is True and conn.isolation_level == "SERIALIZABLE"
        raw = server.connections[0]
        assert raw.autocommit is True and raw.isolation_level == "SERIALIZABLE"
    assert raw.isolation_level == "READ COMMITTED" and raw.autocommit is False
    if reset == "session":
        assert raw.resets == 1 and raw.session == {}
    else:
        assert raw.resets == 0 and raw.session == {"a": "1"}  # kept: a rollback leaves the session
    assert len(server.connections) == 1


def test_leak_reported_once_with_stack_and_holder_name(
    make_pool: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(pool_size=1, leak_threshold=0.2)

    def handler_that_leaks() -> Any:
        return pool.getconn()

    with caplog.at_level(logging.INFO, logger="poolwarden"):
        with named("request-42"):  # the task (on the sync side, the thread) of a request
            conn = handler_that_leaks()
        until(lambda: "has been checked out for" in caplog.text)
        sleep(0.5)  # reported once, not on every round of the housekeeper
        conn.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "leak_threshold=0.2 s" in message
    assert "in handler_that_leaks" in message and "return pool.getconn()" in message
    assert "test_leak_reported_once_with_stack_and_holder_name" in message  # outer frames too
    assert "'request-42'" in message
    assert "was returned after" in caplog.text
    assert pool.stats().leaks == 1


def test_garbage_collected_connection_is_reclaimed(
    make_pool: Any, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(pool_size=1, max_overflow=0, max_lifetime=60.0)

    def forgetful_handler() -> None:
        conn = pool.getconn()
        conn.cursor().execute("SELECT 1")  # leaves a transaction open
        # returns without giving the connection back

    with caplog.at_level(logging.WARNING, logger="poolwarden"):
        forgetful_handler()
        gc.collect()
        with pool.connection(timeout=5) as conn:  # waits; the reclaim frees the slot
            assert fake(conn.raw) is server.connections[0]
            assert not fake(conn.raw).in_transaction  # and was rolled back first
    stats = pool.stats()
    assert stats.reclaimed == 1 and stats.leaks == 1
    assert "garbage-collected without being returned" in caplog.text
    assert "forgetful_handler" in caplog.text
