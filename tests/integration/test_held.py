"""Long jobs and held connections, on the real MariaDB and PostgreSQL with every driver.

A borrower keeps its connection past a 2-second session idle timeout, or has it KILLed,
with and without a transaction open. Whatever happens, every write is either committed
exactly once or reported to the borrower: never lost in silence.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import poolwarden
from poolwarden import ConnectionLost, Pool
from poolwarden._sync._held import check_held
from tests.integration.test_drivers import admin, conn_id, dialect, kill, scalar

#: The session idle timeout the tests set, and how long they pause to outlive it.
IDLE_TIMEOUT = 2
PAUSE = IDLE_TIMEOUT + 1.0


def short_idle_timeout(url: str) -> Any:
    """Configure each new connection with a 2 s session idle timeout (in and out of a
    transaction, for PostgreSQL)."""
    if dialect(url) == "mysql":
        statements = [f"SET SESSION wait_timeout = {IDLE_TIMEOUT}"]
    else:
        statements = [
            f"SET idle_session_timeout = '{IDLE_TIMEOUT}s'",
            f"SET idle_in_transaction_session_timeout = '{IDLE_TIMEOUT}s'",
        ]

    def configure(raw: Any) -> None:
        cur = raw.cursor()
        for sql in statements:
            cur.execute(sql)
        cur.close()
        raw.commit()

    return configure


def insert(conn: Any, table: str, *ids: int) -> None:
    cur = conn.cursor()
    for row_id in ids:
        cur.execute(f"INSERT INTO {table} VALUES ({row_id})")
    cur.close()


def rows(url: str, table: str) -> list[int]:
    """What the server has committed, seen from outside the pool."""
    with admin(url) as adm:
        cur = adm.cursor()
        cur.execute(f"SELECT id FROM {table} ORDER BY id")
        return [int(row[0]) for row in cur.fetchall()]


def session_idle_timeout(conn: Any, url: str) -> str:
    sql = (
        "SELECT @@session.wait_timeout" if dialect(url) == "mysql" else "SHOW idle_session_timeout"
    )
    return str(scalar(conn, sql))


def test_held_past_idle_timeout_without_transaction_is_replaced(db_url: str, table: str) -> None:
    with Pool(db_url, pool_size=1, configure=short_idle_timeout(db_url)) as pool:
        with pool.connection() as conn:
            cursor = conn.cursor()
            cursor.execute(f"INSERT INTO {table} VALUES (1)")
            conn.commit()
            before = conn_id(conn, db_url)
            conn.commit()
            time.sleep(PAUSE)  # a long computation; the server closes the idle session
            cursor.execute(f"INSERT INTO {table} VALUES (2)")  # the same cursor goes on
            conn.commit()
            assert conn_id(conn, db_url) != before
            # what was configured at connect holds on the replacement too
            assert session_idle_timeout(conn, db_url) in ("2", "2s")
            conn.commit()
        stats = pool.stats()
        assert stats.held_replaced == 1 and stats.held_lost == 0 and stats.open == 1
    assert rows(db_url, table) == [1, 2]


def test_autocommit_writes_survive_the_replacement_each_once(db_url: str, table: str) -> None:
    with Pool(db_url, pool_size=1, configure=short_idle_timeout(db_url)) as pool:
        with pool.connection() as conn:
            conn.autocommit = True
            insert(conn, table, 1, 2)
            time.sleep(PAUSE)
            insert(conn, table, 3)  # autocommit: nothing was open, so it just proceeds
            assert pool.engine.adapter.get_autocommit(conn.raw) is True  # re-applied
        assert pool.stats().held_replaced == 1
    assert rows(db_url, table) == [1, 2, 3]


def test_open_transaction_is_reported_not_lost_in_silence(db_url: str, table: str) -> None:
    with Pool(db_url, pool_size=1, configure=short_idle_timeout(db_url)) as pool:
        with pool.connection() as conn:
            insert(conn, table, 1)
            conn.commit()
            insert(conn, table, 2)  # uncommitted when the server drops the session
            time.sleep(PAUSE)
            with pytest.raises(pool.engine.adapter.dbapi.OperationalError) as caught:  # type: ignore[union-attr]
                insert(conn, table, 3)
            error = caught.value
            assert isinstance(error, ConnectionLost)
            assert error.server_idle_timeout == IDLE_TIMEOUT and error.idle_seconds >= PAUSE
            message = str(error)
            assert "transaction was open" in message and f"{IDLE_TIMEOUT} s" in message
            cause = error.__cause__
            assert cause is not None and pool.engine.adapter.is_disconnect(cause)  # the driver's
            if dialect(db_url) == "mysql":
                assert error.args[0] == 2013  # CR_SERVER_LOST, as recipes expect
            with pytest.raises(ConnectionLost):
                conn.commit()  # the lost transaction cannot be committed by mistake
            conn.rollback()
            insert(conn, table, 2, 3)  # the borrower runs the transaction again
            conn.commit()
        stats = pool.stats()
        assert stats.held_lost == 1 and stats.open == 1
    assert rows(db_url, table) == [1, 2, 3]


def test_killed_held_connection(db_url: str, table: str) -> None:
    with Pool(db_url, pool_size=1, held_check_after=0.2) as pool:
        with pool.connection() as conn:
            conn.autocommit = True
            insert(conn, table, 1)
            kill(db_url, conn_id(conn, db_url))
            time.sleep(0.5)
            insert(conn, table, 2)  # no transaction: replaced, the insert proceeds
            conn.autocommit = False
            insert(conn, table, 3)
            kill(db_url, conn_id(conn, db_url))
            time.sleep(0.5)
            with pytest.raises(ConnectionLost):
                insert(conn, table, 4)
            conn.rollback()
        stats = pool.stats()
        assert stats.held_replaced == 2 and stats.held_lost == 1
    assert rows(db_url, table) == [1, 2]


def test_unread_result_is_not_taken_for_a_closed_connection(mysql_driver: str) -> None:
    """An unbuffered result still on the socket makes it readable too: the check must look
    closer instead of declaring a live connection dead."""
    from tests.conftest import mysql_url

    url = mysql_url(mysql_driver)
    with Pool(url, pool_size=1) as pool, pool.connection() as conn:
        raw = conn.raw
        cursor = {
            "pymysql": lambda: raw.cursor(__import__("pymysql").cursors.SSCursor),
            "mysqldb": lambda: raw.cursor(__import__("MySQLdb").cursors.SSCursor),
            "mysqlconnector": lambda: raw.cursor(buffered=False),
        }[mysql_driver]()
        cursor.execute("SELECT seq FROM seq_1_to_100000")
        assert cursor.fetchone() is not None
        time.sleep(0.2)
        entry = conn._entry
        assert entry is not None and entry.probe is not None and entry.probe()  # readable
        assert check_held(pool.engine.adapter, raw, entry.probe, True, 5.0) is None
        cursor.fetchall()
        cursor.close()


def test_query_beyond_statement_limit_says_so_and_the_pool_stays_healthy(
    db_url: str,
) -> None:
    mysql = dialect(db_url) == "mysql"
    limit = "SET SESSION max_statement_time = 0.5" if mysql else "SET statement_timeout = 500"
    sleep = "SELECT SLEEP(3)" if mysql else "SELECT pg_sleep(3)"
    with Pool(db_url, pool_size=1, max_overflow=0) as pool:
        with pool.connection() as conn:
            session = conn_id(conn, db_url)
            conn.cursor().execute(limit)
            with pytest.raises(pool.engine.adapter.dbapi.Error) as caught:  # type: ignore[union-attr]
                cursor = conn.cursor()
                cursor.execute(sleep)
                cursor.fetchall()  # mysql-connector reports the error when reading the result
            text = str(caught.value)
            assert "max_statement_time" in text if mysql else "statement timeout" in text
            assert not pool.engine.adapter.is_disconnect(caught.value)
            conn.rollback()
            assert scalar(conn, "SELECT 1") == 1  # the same connection goes on working
        with pool.connection() as conn:
            assert conn_id(conn, db_url) == session  # kept, not discarded
        stats = pool.stats()
        assert stats.discards == 0 and stats.connects == 1


def test_retry_reruns_an_idempotent_unit_on_a_fresh_connection(db_url: str, table: str) -> None:
    mysql = dialect(db_url) == "mysql"
    upsert = (
        f"INSERT INTO {table} VALUES (%s) ON DUPLICATE KEY UPDATE id = id"
        if mysql
        else f"INSERT INTO {table} VALUES (%s) ON CONFLICT DO NOTHING"
    )
    sessions: list[int] = []
    with Pool(db_url, pool_size=2) as pool:

        @poolwarden.retry_on_disconnect(attempts=2)
        def record(row_id: int) -> None:
            with pool.connection() as conn:
                sessions.append(conn_id(conn, db_url))
                conn.commit()
                if len(sessions) == 1:
                    kill(db_url, sessions[0])  # the connection dies under the unit
                    time.sleep(0.3)
                conn.cursor().execute(upsert, (row_id,))
                conn.commit()

        record(7)
        assert len(sessions) == 2 and sessions[0] != sessions[1]

        calls: list[int] = []

        @poolwarden.retry_on_disconnect(attempts=3)
        def broken() -> None:
            calls.append(1)
            with pool.connection() as conn:
                conn.cursor().execute("SELECT * FROM no_such_table_anywhere")

        with pytest.raises(pool.engine.adapter.dbapi.Error):  # type: ignore[union-attr]
            broken()
        assert calls == [1]  # not a lost connection: never run again
    assert rows(db_url, table) == [7]


def test_session_state_set_by_sql_is_never_dropped_in_silence(db_url: str, table: str) -> None:
    """A SET statement changed the session (MySQL: autocommit; PostgreSQL: search_path):
    a new connection would not have it, and writes after a silent replacement could be
    rolled back on return or go elsewhere. The borrower is told instead."""
    mysql = dialect(db_url) == "mysql"
    with Pool(db_url, pool_size=1, held_check_after=0.2) as pool:
        with pool.connection() as conn:
            if not mysql:
                conn.autocommit = True
            conn.cursor().execute("SET autocommit = 1" if mysql else "SET search_path = public")
            insert(conn, table, 1)
            kill(db_url, conn_id(conn, db_url))
            time.sleep(0.5)
            with pytest.raises(ConnectionLost, match="while it was held"):
                insert(conn, table, 2)
            conn.rollback()  # a new connection, with the pool's own settings
            insert(conn, table, 2)
            conn.commit()
        assert pool.stats().held_lost == 1
    assert rows(db_url, table) == [1, 2]
