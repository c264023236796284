"""What the fault scenarios do to a server directly, outside any pool, for both pools'
scenarios alike: blocking calls on a disposable server (``server.execute``) or through
PyMySQL and psycopg."""

from __future__ import annotations

from typing import Any

from tests.faults.conftest import wait_until

APP = "pwapp"


def sleep_sql(kind: str, seconds: float) -> str:
    return f"SELECT SLEEP({seconds})" if kind == "mysql" else f"SELECT pg_sleep({seconds})"


def kill_sessions(server: Any) -> int:
    """Kill every session on the test database; return how many."""
    if server.kind == "mysql":
        rows = server.execute(
            "SELECT id FROM information_schema.processlist "
            "WHERE db = 'test' AND id <> CONNECTION_ID()"
        )
        for (session,) in rows:
            server.execute(f"KILL {session}")
        return len(rows)
    rows = server.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = 'test' AND pid <> pg_backend_pid()"
    )
    return len(rows)


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
