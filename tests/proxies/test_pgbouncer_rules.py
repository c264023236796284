"""PgBouncer's rules, shown against a real PgBouncer: detection, what breaks without the
rules (psycopg's prepared statements in transaction mode, transactions in statement
mode, session state) and that the rules fix it, and PgBouncer's own error messages as
poolwarden classifies them."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from poolwarden import Pool
from poolwarden.adapters._proxies import (
    PGBOUNCER_ADMIN_COMMANDS,
    PGBOUNCER_DETECTION_SQL,
    admin_rows,
    is_pgbouncer,
    is_pgbouncer_admin_version,
    is_prepared_statement_mismatch,
    pgbouncer_admin_kwargs,
    pgbouncer_error_kind,
    pgbouncer_info_from_admin,
)
from tests.faults.proxy import FaultProxy
from tests.proxies.conftest import BouncerFactory, record, rules
from tests.proxies.pgbouncer import DisposablePgBouncer
from tests.servers import DisposablePostgres


def _direct(port: int, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", dbname="test", connect_timeout=5, **kwargs
    )


def _detected(port: int) -> bool:
    with _direct(port) as conn:
        row = conn.execute(PGBOUNCER_DETECTION_SQL).fetchone()
        return is_pgbouncer(conn.info.backend_pid, row)


def test_detection(bouncer: DisposablePgBouncer, running_postgres: DisposablePostgres) -> None:
    """The faked BackendKeyData pid tells PgBouncer apart from the server itself and from
    a TCP proxy that only forwards bytes; server_version is the server's either way."""
    proxy = FaultProxy(running_postgres.port)
    try:
        assert _detected(bouncer.port)
        assert not _detected(running_postgres.port)
        assert not _detected(proxy.port)
    finally:
        proxy.stop()
    with _direct(bouncer.port) as through, _direct(running_postgres.port) as direct:
        version = through.info.parameter_status("server_version")
        assert version == direct.info.parameter_status("server_version")
        assert not is_pgbouncer_admin_version(version)


def test_admin_console_gives_mode_and_version(bouncer: DisposablePgBouncer, mode: str) -> None:
    kwargs = pgbouncer_admin_kwargs(
        {"host": "127.0.0.1", "port": bouncer.port, "user": "postgres", "dbname": "test",
         "target_session_attrs": "read-write", "prepare_threshold": None}
    )  # fmt: skip
    with psycopg.connect(**kwargs) as admin:
        assert is_pgbouncer_admin_version(admin.info.parameter_status("server_version"))
        shown = {}
        for command in PGBOUNCER_ADMIN_COMMANDS:
            cursor = admin.execute(command)
            shown[command] = admin_rows(cursor.description, cursor.fetchall())
    info = pgbouncer_info_from_admin(shown, "test", "postgres")
    assert info.pool_mode == mode and info.version is not None and info.version >= (1, 18)
    assert info.query_wait_timeout == 5.0 and info.source == "admin console"
    assert info.keeps_session_state is (mode == "session")


def _parameterised_load(pool: Pool, threads: int = 4, each: int = 40) -> list[BaseException]:
    """Requests that psycopg prepares after their 5th run on a connection."""
    errors: list[BaseException] = []

    def work() -> None:
        for i in range(each):
            try:
                with pool.connection() as conn:
                    cursor = conn.cursor()
                    cursor.execute("SELECT %s::int, pg_sleep(0.001)", (i,))
                    cursor.fetchall()
                    conn.commit()
            except Exception as exc:
                errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not any(worker.is_alive() for worker in workers), "a request hung"
    return errors


def test_prepared_statements_break_in_transaction_mode(make_bouncer: BouncerFactory) -> None:
    """psycopg's default prepare_threshold=5 through PgBouncer in transaction mode (2
    server connections for 4 clients), with the proxy's rules off (proxy=None): statements
    prepared on one server connection are missing, or already present, on the next.
    prepare_threshold=None (the rule) fixes it."""
    bouncer = make_bouncer("transaction", default_pool_size=2)
    with Pool(bouncer.url("psycopg"), pool_size=4, proxy=None) as pool:
        broken = _parameterised_load(pool)
    with Pool(bouncer.url("psycopg"), pool_size=4, **rules("transaction")) as pool:
        fixed = _parameterised_load(pool)
    kinds = sorted({type(exc).__name__ for exc in broken})
    record("prepared statements, prepare_threshold=5", "transaction", len(broken), ">0", None,
           ", ".join(kinds))  # fmt: skip
    record("prepared statements, prepare_threshold=None", "transaction", len(fixed), "0")
    assert broken and all(is_prepared_statement_mismatch(exc) for exc in broken), broken[:3]
    assert fixed == []


def test_prepared_statements_work_in_session_mode(make_bouncer: BouncerFactory) -> None:
    bouncer = make_bouncer("session", default_pool_size=4)
    with Pool(bouncer.url("psycopg"), pool_size=4) as pool:
        errors = _parameterised_load(pool)
    record("prepared statements, prepare_threshold=5", "session", len(errors), "0")
    assert errors == []


def test_proxy_setting_alone_turns_prepared_statements_off(make_bouncer: BouncerFactory) -> None:
    bouncer = make_bouncer("transaction", default_pool_size=2)
    with Pool(bouncer.url("psycopg"), pool_size=4, proxy="pgbouncer") as pool:
        errors = _parameterised_load(pool)
        assert pool.proxy is not None and pool.proxy.kind == "pgbouncer"
    assert errors == []


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_auto_detects_pgbouncer_and_its_mode(make_bouncer: BouncerFactory, mode: str) -> None:
    """The default, proxy="auto": the first connection finds PgBouncer, its admin console
    tells the mode; transaction mode turns prepared statements off (from that first
    connection on) and session resets into rollbacks, session mode changes nothing."""
    bouncer = make_bouncer(mode, default_pool_size=2)
    with Pool(bouncer.url("psycopg"), pool_size=4, reset="session") as pool:
        errors = _parameterised_load(pool)
        info = pool.proxy
        reset = pool.engine._io.reset_mode
    record("prepared statements, proxy='auto'", mode, len(errors), "0")
    assert info is not None and info.kind == "pgbouncer" and info.pool_mode == mode
    assert info.source == "admin console"
    assert errors == []
    assert reset == ("rollback" if mode == "transaction" else "session")


def test_no_proxy_is_found_on_a_direct_connection() -> None:
    from tests.conftest import reachable_url

    with Pool(reachable_url("postgresql+psycopg"), pool_size=1) as pool:
        pool.connection().close()
        assert pool.proxy is None
    with Pool(reachable_url("mysql+pymysql"), pool_size=1) as pool:
        pool.connection().close()
        assert pool.proxy is None


def test_statement_mode_needs_autocommit(make_bouncer: BouncerFactory) -> None:
    """PgBouncer refuses BEGIN in statement mode and closes the connection; the rule's
    autocommit=True makes each statement its own transaction."""
    bouncer = make_bouncer("statement")
    with _direct(bouncer.port) as conn:  # autocommit off, as a pool's connections have it
        refused = _error_of(lambda: conn.execute("SELECT 1"))
        assert conn.closed
    assert "transaction blocks not allowed in statement pooling mode" in str(refused)
    assert pgbouncer_error_kind(refused) == "config"
    with (
        Pool(bouncer.url("psycopg"), pool_size=1, proxy=None) as pool,  # rules off
        pytest.raises(psycopg.Error),
        pool.connection() as conn,
    ):
        conn.cursor().execute("SELECT 1")
    for settings in (rules("statement"), {}):  # the rule given, or found by proxy="auto"
        with Pool(bouncer.url("psycopg"), pool_size=2, **settings) as pool:
            for _ in range(5):
                with pool.connection() as conn:
                    cursor = conn.cursor()
                    cursor.execute("SELECT 1")
                    assert cursor.fetchall() == [(1,)]
    record("BEGIN in statement mode, then autocommit", "statement", 1, "1", None,
           "config error, fixed by autocommit")  # fmt: skip


def test_session_state_does_not_stay_with_a_client(
    bouncer: DisposablePgBouncer, mode: str
) -> None:
    """Why reset='session' and session-level SET have no meaning in transaction mode: a
    SET outside a transaction stays on the server connection, for whichever client gets
    it next, not with the client that ran it."""
    with _direct(bouncer.port, autocommit=True) as first, _direct(bouncer.port) as second:
        first.execute("SET statement_timeout = '1234ms'")
        seen = second.execute("SHOW statement_timeout").fetchone()
    assert (seen == ("1234ms",)) is (mode == "transaction"), seen


# -- PgBouncer's own errors, triggered for real ----------------------------------------------


def _error_of(action: Any) -> BaseException:
    try:
        action()
    except psycopg.Error as exc:
        return exc
    raise AssertionError("no error")


def test_error_messages_are_classified(make_bouncer: BouncerFactory) -> None:
    bouncer = make_bouncer("transaction", users=("postgres", "app"), client_idle_timeout=1)
    seen: dict[str, BaseException] = {}
    seen["not allowed"] = _error_of(
        lambda: psycopg.connect(host="127.0.0.1", port=bouncer.port, user="app",
                                dbname="pgbouncer", connect_timeout=5)
    )  # fmt: skip
    seen["no such database"] = _error_of(
        lambda: psycopg.connect(host="127.0.0.1", port=bouncer.port, user="postgres",
                                dbname="nosuch", connect_timeout=5)
    )  # fmt: skip
    with _direct(bouncer.port, autocommit=True) as idle:
        idle.execute("SELECT 1")
        time.sleep(2.5)  # client_idle_timeout, checked by PgBouncer once a second
        seen["client_idle_timeout"] = _error_of(lambda: idle.execute("SELECT 1"))
    with _direct(bouncer.port, autocommit=True) as killed:
        killed.execute("SELECT 1")
        bouncer.admin("KILL test")
        time.sleep(0.2)
        seen["database removed"] = _error_of(lambda: killed.execute("SELECT 1"))
    bouncer.admin("RESUME test")
    kinds = {name: pgbouncer_error_kind(exc) for name, exc in seen.items()}
    for name, exc in seen.items():
        assert name in str(exc), (name, exc)
    assert kinds == {
        "not allowed": "config",
        "no such database": "config",
        "client_idle_timeout": "disconnect",
        "database removed": "disconnect",
    }
    # Sent after the login, PgBouncer's errors carry SQLSTATE 08P01 (libpq drops it at login).
    assert getattr(seen["database removed"], "sqlstate", None) == "08P01"
