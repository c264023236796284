"""Each driver adapter's primitives on real connections: socket, ping, transaction state,
disconnect classification, and passwords kept out of every message."""

from __future__ import annotations

import logging
import os
import stat
import uuid
from typing import Any

import pytest

from poolwarden import Pool
from tests.conftest import MYSQL, POSTGRES
from tests.integration.test_drivers import admin, conn_id, dialect, kill

SECRET = f"Secret{uuid.uuid4().hex[:8]}"


def test_fileno_is_the_connection_socket(db_url: str) -> None:
    with Pool(db_url, pool_size=1) as pool, pool.connection() as conn:
        fd = pool.engine.adapter.fileno(conn.raw)
        assert fd is not None and stat.S_ISSOCK(os.fstat(fd).st_mode)


def test_ping_live_then_killed(db_url: str) -> None:
    with Pool(db_url, pool_size=1, max_overflow=0) as pool, pool.connection() as conn:
        adapter, raw = pool.engine.adapter, conn.raw
        adapter.ping(raw)  # a live connection answers
        assert not adapter.needs_rollback(raw) or dialect(db_url) == "mysql"
        victim = conn_id(conn, db_url)
        conn.commit()
        kill(db_url, victim)
        with pytest.raises(Exception) as info:
            adapter.ping(raw)
        assert adapter.is_disconnect(info.value, raw), repr(info.value)
        conn.invalidate()


def test_needs_rollback_tracks_the_transaction(db_url: str) -> None:
    table = f"pw_tx_{uuid.uuid4().hex[:8]}"
    with admin(db_url) as adm:
        adm.cursor().execute(f"CREATE TABLE {table} (id INT)")
    try:
        with Pool(db_url, pool_size=1) as pool, pool.connection() as conn:
            adapter, raw = pool.engine.adapter, conn.raw
            cur = conn.cursor()
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            cur.fetchall()
            assert adapter.needs_rollback(raw)  # a snapshot is open
            conn.rollback()
            if dialect(db_url) == "postgresql":
                assert not adapter.needs_rollback(raw)  # libpq reports the state
    finally:
        with admin(db_url) as adm:
            adm.cursor().execute(f"DROP TABLE {table}")


@pytest.mark.parametrize("ending", ["rollback", "return"])
def test_failed_first_statement_leaves_no_locks_behind(
    db_url: str, table: str, ending: str
) -> None:
    """An error packet carries no status flags, so after a failed first statement the
    driver's in-transaction flag is stale, while the statement may hold row locks: the
    rollback (asked for, or the reset on return) must not be skipped."""
    with admin(db_url) as adm:
        adm.cursor().execute(f"INSERT INTO {table} VALUES (1)")
    with Pool(db_url, pool_size=1) as pool:
        conn = pool.getconn()
        conn.commit()
        with pytest.raises(Exception, match=r"(?i)duplicate"):
            conn.cursor().execute(f"INSERT INTO {table} VALUES (1)")
        try:
            if ending == "rollback":
                conn.rollback()
            else:
                conn.close()
            with admin(db_url) as adm:
                cur = adm.cursor()
                if dialect(db_url) == "mysql":
                    cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
                else:
                    cur.execute("SET lock_timeout = '1s'")
                cur.execute(f"DELETE FROM {table} WHERE id = 1")  # no lock left to wait for
        finally:
            if not conn.closed:
                conn.invalidate()  # closed, not kept: whatever it holds goes with it
                conn.close()


@pytest.mark.parametrize("where", ["user part", "query option"])
def test_wrong_password_raised_at_once_and_never_echoed(
    mysql_driver: str, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    user, _, rest = MYSQL.partition("@")
    if where == "user part":
        url = f"mysql+{mysql_driver}://{user}:{SECRET}@{rest}"
    else:
        url = f"mysql+{mysql_driver}://{user}@{rest}?password={SECRET}"
    with caplog.at_level(logging.DEBUG, logger="poolwarden"), Pool(url, timeout=20) as pool:
        with pytest.raises(Exception) as info:
            pool.getconn()
        assert pool.engine.adapter.error_code(info.value) == 1045  # type: ignore[attr-defined]
        texts = [str(info.value), repr(info.value), repr(pool), str(pool.stats()), caplog.text]
    assert caplog.text  # the failure was logged ...
    assert all(SECRET not in text for text in texts)  # ... without the password


def test_unknown_database_never_echoes_password(
    postgres_driver: str, caplog: pytest.LogCaptureFixture
) -> None:
    user, _, rest = POSTGRES.partition("@")
    hostport = rest.partition("/")[0]
    url = f"postgresql+{postgres_driver}://{user}:{SECRET}@{hostport}/no_such_db_{uuid.uuid4().hex[:6]}"
    with caplog.at_level(logging.DEBUG, logger="poolwarden"), Pool(url, timeout=20) as pool:
        with pytest.raises(Exception) as info:
            pool.getconn()
        assert "does not exist" in str(info.value)
        texts = [str(info.value), repr(info.value), repr(pool), caplog.text]
    assert all(SECRET not in text for text in texts)


def test_server_down_is_retryable_connect_error(db_url: Any) -> None:
    closed_port = 1  # nothing listens on port 1 of the loopback
    scheme, _, rest = db_url.partition("://")
    user, _, hostrest = rest.partition("@")
    db = hostrest.partition("/")[2]
    with Pool(f"{scheme}://{user}@127.0.0.1:{closed_port}/{db}", timeout=0.5) as pool:
        with pytest.raises(TimeoutError) as info:
            pool.getconn()
        cause = info.value.__cause__
        assert cause is not None and pool.engine.adapter.is_retryable_connect_error(cause)
        assert "opening a new connection failed" in str(info.value)
