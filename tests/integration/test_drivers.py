"""Every supported driver against the real MariaDB and PostgreSQL servers."""

from __future__ import annotations

from typing import Any

import pytest

from poolwarden import Pool, PoolTimeout
from poolwarden.adapters import ADAPTERS
from tests.conftest import MYSQL, POSTGRES


def dialect(url: str) -> str:
    return url.split("+", 1)[0]


def scalar(conn: Any, sql: str) -> Any:
    cur = conn.cursor()
    cur.execute(sql)
    row = cur.fetchone()
    cur.fetchall()
    cur.close()
    return row[0] if row is not None else None


def conn_id(conn: Any, url: str) -> int:
    return int(
        scalar(
            conn,
            "SELECT CONNECTION_ID()" if dialect(url) == "mysql" else "SELECT pg_backend_pid()",
        )
    )


def admin(url: str) -> Any:
    """A direct connection, outside any pool, for killing sessions and checking state."""
    if dialect(url) == "mysql":
        import pymysql

        user_host, _, db = MYSQL.partition("/")
        user, _, hostport = user_host.partition("@")
        host, _, port = hostport.partition(":")
        return pymysql.connect(
            host=host, port=int(port or 3306), user=user, database=db, autocommit=True
        )
    import psycopg

    user_host, _, db = POSTGRES.partition("/")
    user, _, hostport = user_host.partition("@")
    host, _, port = hostport.partition(":")
    return psycopg.connect(
        host=host, port=int(port or 5432), user=user, dbname=db, autocommit=True
    )


def kill(url: str, target_id: int) -> None:
    with admin(url) as adm:
        cur = adm.cursor()
        if dialect(url) == "mysql":
            cur.execute(f"KILL {target_id}")
        else:
            cur.execute("SELECT pg_terminate_backend(%s)", (target_id,))


def test_query_and_reuse(db_url: str) -> None:
    with Pool(db_url, pool_size=2) as pool:
        assert type(pool.engine.adapter) is ADAPTERS[db_url.split("://")[0]]
        with pool.connection() as conn:
            first = conn_id(conn, db_url)
            assert scalar(conn, "SELECT 1 + 1") == 2
        with pool.connection() as conn:
            assert conn_id(conn, db_url) == first  # the same server session, reused
        stats = pool.stats()
        assert stats.connects == 1 and stats.checkouts == 2


def repeatable_read(url: str) -> Any:
    sql = (
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"
        if dialect(url) == "mysql"
        else "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ"
    )

    def configure(raw: Any) -> None:
        cur = raw.cursor()
        cur.execute(sql)
        cur.close()
        raw.commit()

    return configure


def test_rollback_reset_ends_read_snapshot(db_url: str, table: str) -> None:
    """A borrower that only read left a REPEATABLE READ snapshot open; the next borrower
    must not be stuck in it."""
    with Pool(db_url, pool_size=1, max_overflow=0, configure=repeatable_read(db_url)) as pool:
        with pool.connection() as conn:
            assert scalar(conn, f"SELECT COUNT(*) FROM {table}") == 0  # opens the snapshot
        with admin(db_url) as adm:
            adm.cursor().execute(f"INSERT INTO {table} VALUES (1)")
        with pool.connection() as conn:
            assert scalar(conn, f"SELECT COUNT(*) FROM {table}") == 1


def test_reset_none_keeps_snapshot_shows_the_risk(db_url: str, table: str) -> None:
    with Pool(
        db_url, pool_size=1, max_overflow=0, reset=None, configure=repeatable_read(db_url)
    ) as pool:
        with pool.connection() as conn:
            assert scalar(conn, f"SELECT COUNT(*) FROM {table}") == 0
        with admin(db_url) as adm:
            adm.cursor().execute(f"INSERT INTO {table} VALUES (1)")
        with pool.connection() as conn:
            assert scalar(conn, f"SELECT COUNT(*) FROM {table}") == 0  # stale snapshot
            conn.rollback()


def test_committed_work_skips_rollback_and_persists(db_url: str, table: str) -> None:
    with Pool(db_url, pool_size=1, max_overflow=0) as pool:
        with pool.connection() as conn:
            conn.cursor().execute(f"INSERT INTO {table} VALUES (7)")
            conn.commit()
        with pool.connection() as conn:
            conn.cursor().execute(f"INSERT INTO {table} VALUES (8)")  # never committed
    with admin(db_url) as adm:
        cur = adm.cursor()
        cur.execute(f"SELECT id FROM {table} ORDER BY id")
        assert [r[0] for r in cur.fetchall()] == [7]


MYSQL_LEAKS = [
    "SET @leaked = 42",
    "CREATE TEMPORARY TABLE pw_tmp_leak (x INT)",
    "SET SESSION sql_mode = 'ANSI_QUOTES'",
    "SET SESSION wait_timeout = 1234",
]
MYSQL_CHECKS = [
    ("SELECT @leaked", None),
    ("SELECT @@session.sql_mode = @@global.sql_mode", 1),
    ("SELECT @@session.wait_timeout = @@global.wait_timeout", 1),
    ("SELECT @@character_set_client", "utf8mb4"),
]
POSTGRES_LEAKS = [
    "SET application_name = 'leaked'",
    "SET statement_timeout = 1234",
    "CREATE TEMPORARY TABLE pw_tmp_leak (x INT)",
    "PREPARE pw_leaked AS SELECT 1",
]
POSTGRES_CHECKS = [
    ("SELECT current_setting('application_name') = 'leaked'", False),
    ("SELECT current_setting('statement_timeout')", "0"),
    ("SELECT COUNT(*) FROM pg_tables WHERE tablename = 'pw_tmp_leak'", 0),
    ("SELECT COUNT(*) FROM pg_prepared_statements WHERE name = 'pw_leaked'", 0),
]


def test_session_reset_isolates_borrowers(db_url: str) -> None:
    leaks, checks = (
        (MYSQL_LEAKS, MYSQL_CHECKS)
        if dialect(db_url) == "mysql"
        else (POSTGRES_LEAKS, POSTGRES_CHECKS)
    )
    with Pool(db_url, pool_size=1, max_overflow=0, reset="session") as pool:
        with pool.connection() as conn:
            session = conn_id(conn, db_url)
            autocommit = pool.engine.adapter.get_autocommit(conn.raw)
            cur = conn.cursor()
            for sql in leaks:
                cur.execute(sql)
            conn.commit()
        with pool.connection() as conn:
            assert conn_id(conn, db_url) == session  # same session, reset rather than replaced
            for sql, expected in checks:
                assert scalar(conn, sql) == expected, sql
            assert pool.engine.adapter.get_autocommit(conn.raw) == autocommit
            cur = conn.cursor()
            cur.execute("CREATE TEMPORARY TABLE pw_tmp_leak (x INT)")  # fails if it survived
            cur.execute("SELECT 1")  # and the session works normally
            assert list(cur.fetchall()) == [(1,)]


def test_rollback_reset_does_not_clear_session_state(db_url: str) -> None:
    """Why reset='session' exists: a rollback leaves session state to the next borrower."""
    set_sql, get_sql = (
        ("SET @kept = 5", "SELECT @kept")
        if dialect(db_url) == "mysql"
        else ("SET application_name = 'kept'", "SELECT current_setting('application_name')")
    )
    with Pool(db_url, pool_size=1, max_overflow=0) as pool:
        with pool.connection() as conn:
            conn.cursor().execute(set_sql)
            conn.commit()
        with pool.connection() as conn:
            assert str(scalar(conn, get_sql)) in ("5", "kept")


def test_autocommit_change_restored(db_url: str) -> None:
    with Pool(db_url, pool_size=1, max_overflow=0) as pool:
        with pool.connection() as conn:
            original = pool.engine.adapter.get_autocommit(conn.raw)
            if pool.engine.adapter.autocommit_is_method:
                conn.autocommit(not original)
            else:
                conn.autocommit = not original
            assert pool.engine.adapter.get_autocommit(conn.raw) is (not original)
        with pool.connection() as conn:
            assert pool.engine.adapter.get_autocommit(conn.raw) is original


def test_killed_connection_is_discarded(db_url: str) -> None:
    with Pool(db_url, pool_size=1, max_overflow=0) as pool:
        with pool.connection() as conn:
            victim = conn_id(conn, db_url)
            conn.commit()
            kill(db_url, victim)
            dbapi: Any = pool.engine.adapter.dbapi
            with pytest.raises(dbapi.Error) as info:  # the driver's own error
                scalar(conn, "SELECT 1")
            assert pool.engine.adapter.is_disconnect(info.value, conn.raw)
        with pool.connection() as conn:
            assert conn_id(conn, db_url) != victim
        stats = pool.stats()
        assert stats.discards == 1 and stats.connects == 2


def test_url_options_reach_the_driver(db_url: str) -> None:
    expected: object
    if dialect(db_url) == "mysql":
        url, sql, expected = (
            db_url + "?connect_timeout=5&init_command=SET%20%40opt%3D7",
            "SELECT @opt",
            7,
        )
    else:
        url, sql, expected = (
            db_url + "?application_name=pw_opts&connect_timeout=5",
            "SELECT current_setting('application_name')",
            "pw_opts",
        )
    with Pool(url) as pool, pool.connection() as conn:
        assert scalar(conn, sql) == expected


def test_timeout_names_holder_site(db_url: str) -> None:
    with Pool(db_url, pool_size=1, max_overflow=0) as pool:
        holder = pool.getconn()
        with pytest.raises(
            PoolTimeout, match=r"test_drivers.py:\d+:test_timeout_names_holder_site"
        ):
            pool.getconn(timeout=0.1)
        holder.close()


def test_callable_target_recognises_driver(mysql_driver: str) -> None:
    import importlib

    module = importlib.import_module(
        {"pymysql": "pymysql", "mysqldb": "MySQLdb", "mysqlconnector": "mysql.connector"}[
            mysql_driver
        ]
    )
    user, _, rest = MYSQL.partition("@")
    host, _, rest = rest.partition(":")
    port, _, db = rest.partition("/")
    kwargs: dict[str, Any] = {"host": host, "port": int(port), "user": user, "database": db}

    with Pool(lambda: module.connect(**kwargs), pool_size=1, max_overflow=0) as pool:
        with pool.connection() as conn:
            victim = conn_id(conn, "mysql")
            conn.commit()
        assert pool.engine.adapter.name == mysql_driver
        kill("mysql", victim)
        # The socket probe of the recognised driver sees the killed idle connection:
        # the caller gets a fresh one and never sees the error.
        with pool.connection() as conn:
            assert conn_id(conn, "mysql") != victim
        assert pool.stats().found_dead == 1


def test_sqlite_file(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/pw.db"
    with Pool(url, pool_size=2) as pool:
        with pool.connection() as conn:
            conn.cursor().execute("CREATE TABLE t (x INT)")
            conn.cursor().execute("INSERT INTO t VALUES (1)")
            conn.commit()
            conn.cursor().execute("INSERT INTO t VALUES (2)")  # left uncommitted
        with pool.connection() as conn:
            assert not conn.raw.in_transaction
            assert scalar(conn, "SELECT COUNT(*) FROM t") == 1


def test_sqlite_session_reset_replaces_connection(tmp_path: Any) -> None:
    with Pool(f"sqlite:///{tmp_path}/pw.db", pool_size=1, max_overflow=0, reset="session") as pool:
        with pool.connection() as conn:
            conn.cursor().execute("CREATE TEMP TABLE leak (x INT)")
        with pool.connection() as conn:
            assert scalar(conn, "SELECT COUNT(*) FROM sqlite_temp_master WHERE name = 'leak'") == 0
