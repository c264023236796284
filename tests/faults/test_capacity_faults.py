"""The server cannot take a connection for a while (full, or down): checkouts wait while
connecting is retried with backoff, and succeed as soon as it can; if it never can, the
timeout says why."""

from __future__ import annotations

import time
from typing import Any

import pytest

from poolwarden import Pool, PoolTimeout
from tests.faults.conftest import record, wait_until
from tests.faults.workload import request_in_thread, run

APP = "pwapp"


def limited_account(server: Any, limit: int) -> str:
    """A non-superuser account allowed ``limit`` connections; return its name."""
    if server.kind == "mysql":
        server.execute(
            f"CREATE USER IF NOT EXISTS {APP}@'%' IDENTIFIED BY ''",
            f"GRANT ALL ON test.* TO {APP}@'%'",
            f"ALTER USER {APP}@'%' WITH MAX_USER_CONNECTIONS {limit}",
        )
    else:
        exists = server.execute(f"SELECT 1 FROM pg_roles WHERE rolname = '{APP}'")
        if not exists:
            server.execute(f"CREATE ROLE {APP} LOGIN")
        server.execute(
            f"ALTER ROLE {APP} CONNECTION LIMIT {limit}", f"GRANT ALL ON DATABASE test TO {APP}"
        )
    # Sessions closed by an earlier test may still be ending on the server: wait for them.
    sessions = (
        f"SELECT COUNT(*) FROM information_schema.processlist WHERE user = '{APP}'"
        if server.kind == "mysql"
        else f"SELECT COUNT(*) FROM pg_stat_activity WHERE usename = '{APP}'"
    )
    wait_until(lambda: server.execute(sessions)[0][0] == 0, timeout=10)
    return APP


def occupy(server: Any, user: str, count: int) -> list[Any]:
    """Open ``count`` direct connections as ``user``, outside any pool."""
    if server.kind == "mysql":
        import pymysql

        return [
            pymysql.connect(host="127.0.0.1", port=server.port, user=user, database="test")
            for _ in range(count)
        ]
    import psycopg

    return [
        psycopg.connect(host="127.0.0.1", port=server.port, user=user, dbname="test")
        for _ in range(count)
    ]


def test_connection_limit_reached_then_freed(target: tuple[Any, str]) -> None:
    """The account's connection limit (MySQL 1203, PostgreSQL's role CONNECTION LIMIT) is
    used up by others; the pool waits, then gets a connection once one is freed."""
    server, driver = target
    user = limited_account(server, 2)
    blockers = occupy(server, user, 2)
    with Pool(server.url(driver, user=user), pool_size=2) as pool:
        thread, outcome = request_in_thread(pool, timeout=20)
        time.sleep(1.0)
        assert not outcome  # still waiting, not failed
        blockers.pop().close()
        freed = time.monotonic()
        thread.join(30)
        errors = run(pool, 6, threads=2)
        stats = pool.stats()
    for conn in blockers:
        conn.close()
    done = outcome[0]
    recovery = done - freed if isinstance(done, float) else None
    failures = int(not isinstance(done, float)) + len(errors)
    record("connection limit used up, then freed", driver, failures, 0, recovery)
    assert isinstance(done, float), done
    assert errors == [] and stats.connect_failures >= 1
    assert recovery is not None and recovery < 5


def fill_server(server: Any, user: str) -> tuple[list[Any], BaseException]:
    """Open connections as ``user`` until the server refuses one; return them and the
    refusal."""
    held: list[Any] = []
    for _ in range(100):
        try:
            held += occupy(server, user, 1)
        except Exception as exc:
            return held, exc
    raise AssertionError("the server never refused a connection")


def test_max_connections_exhausted_then_freed(target: tuple[Any, str]) -> None:
    """The server's max_connections (MySQL 1040, PostgreSQL "too many clients") is used
    up; the pool waits and connects once a slot frees."""
    server, driver = target
    user = limited_account(server, 1000)
    if server.kind == "mysql":
        server.execute("SET GLOBAL max_connections = 10")  # MariaDB's minimum
    try:
        blockers, refusal = fill_server(server, user)
        assert "1040" in str(refusal) or "connection slots" in str(refusal), refusal
        with Pool(server.url(driver, user=user), pool_size=2) as pool:
            thread, outcome = request_in_thread(pool, timeout=20)
            time.sleep(1.0)
            assert not outcome
            blockers.pop().close()
            freed = time.monotonic()
            thread.join(30)
            stats = pool.stats()
    finally:
        for conn in blockers:
            conn.close()
        if server.kind == "mysql":
            server.execute("SET GLOBAL max_connections = 60")
    done = outcome[0]
    recovery = done - freed if isinstance(done, float) else None
    record(
        "max_connections used up, then freed",
        driver,
        int(not isinstance(done, float)),
        0,
        recovery,
    )
    assert isinstance(done, float), done
    assert stats.connect_failures >= 1 and recovery is not None and recovery < 5


@pytest.mark.parametrize("limit", ["account", "server"])
def test_limit_never_freed_is_named(target: tuple[Any, str], limit: str) -> None:
    """Nothing frees a slot: the PoolTimeout names the limit that was hit."""
    server, driver = target
    user = limited_account(server, 1 if limit == "account" else 1000)
    if limit == "server" and server.kind == "mysql":
        server.execute("SET GLOBAL max_connections = 10")
    try:
        blockers = occupy(server, user, 1) if limit == "account" else fill_server(server, user)[0]
        try:
            with (
                Pool(server.url(driver, user=user), pool_size=1) as pool,
                pytest.raises(PoolTimeout) as info,
            ):
                pool.getconn(timeout=1.5)
        finally:
            for conn in blockers:
                conn.close()
    finally:
        if limit == "server" and server.kind == "mysql":
            server.execute("SET GLOBAL max_connections = 60")
    text = str(info.value)
    if limit == "server":
        expected = "max_connections is used up"
    elif server.kind == "mysql":
        expected = "max_user_connections"  # MariaDB: 1226 for the account's own limit
    else:
        expected = "CONNECTION LIMIT is used up"
    record(f"{limit} connection limit never freed", driver, 1, 1, None, "PoolTimeout names it")
    assert expected in text and "opening a new connection failed" in text, text
    assert info.value.__cause__ is not None


def test_server_down_at_start_then_up(target: tuple[Any, str]) -> None:
    server, driver = target
    server.stop()
    with Pool(server.url(driver), pool_size=2) as pool:
        thread, outcome = request_in_thread(pool, timeout=30)
        time.sleep(1.5)
        assert not outcome
        server.start()
        up = time.monotonic()
        thread.join(40)
        errors = run(pool, 6, threads=2)
        stats = pool.stats()
    done = outcome[0]
    recovery = done - up if isinstance(done, float) else None
    failures = int(not isinstance(done, float)) + len(errors)
    record("server down at start, up later", driver, failures, 0, recovery)
    assert isinstance(done, float), done
    assert errors == [] and stats.connect_failures >= 2
    assert recovery is not None and recovery < 5  # the backoff is capped at 2 s


def test_server_down_for_good_times_out_with_cause(target: tuple[Any, str]) -> None:
    server, driver = target
    server.stop()
    with Pool(server.url(driver), pool_size=2) as pool, pytest.raises(PoolTimeout) as info:
        pool.getconn(timeout=1.0)
    record("server down for good", driver, 1, 1, None, "PoolTimeout with the connect error")
    assert info.value.__cause__ is not None
    assert pool.engine.adapter.is_retryable_connect_error(info.value.__cause__)
