"""poolwarden.adapters._proxies without I/O: detection, admin console parsing, the rules
each PgBouncer mode gives, and the classification of PgBouncer's and ProxySQL's errors
(the messages as real PgBouncer 1.18 and ProxySQL's sources send them)."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import mysql.connector.errors
import psycopg
import psycopg.errors
import pymysql.err
import pytest
from hypothesis import given
from hypothesis import strategies as st

from poolwarden.adapters._proxies import (
    PGBOUNCER,
    PROXYSQL,
    PROXYSQL_DETECTION_SQL,
    ProxyInfo,
    admin_rows,
    allowed_reset,
    effective_idle_timeout,
    is_connection_limit_error,
    is_pgbouncer,
    is_pgbouncer_admin_version,
    is_prepared_statement_mismatch,
    is_proxysql,
    is_transient_proxysql_error,
    pgbouncer_admin_kwargs,
    pgbouncer_error_kind,
    pgbouncer_info_from_admin,
    proxysql_error_code,
    proxysql_error_kind,
    psycopg_connect_overrides,
    session_state_warning,
)

pids = st.integers(min_value=-(2**31), max_value=2**31 - 1).filter(lambda pid: pid != 0)
MODES = st.sampled_from(["session", "transaction", "statement", None])
REQUESTS = st.sampled_from(["rollback", "session", None])


# -- detection ---------------------------------------------------------------------------


@given(pids, pids)
def test_pgbouncer_is_a_pid_mismatch(info_pid: int, session_pid: int) -> None:
    assert is_pgbouncer(info_pid, (session_pid,)) is (info_pid != session_pid)


@pytest.mark.parametrize(
    "info_pid, row", [(0, (5,)), (None, (5,)), (5, None), (5, ()), (5, ("5",))]
)
def test_pgbouncer_not_claimed_without_evidence(info_pid: Any, row: Any) -> None:
    assert not is_pgbouncer(info_pid, row)


def test_admin_console_version() -> None:
    assert is_pgbouncer_admin_version("1.18.0/bouncer")
    assert not is_pgbouncer_admin_version("15.20 (Debian 15.20-0+deb12u1)")
    assert not is_pgbouncer_admin_version(None)


def test_proxysql_detection() -> None:
    # ProxySQL matches these exact bytes; "SELECT ... LIMIT 1" would reach the server.
    assert PROXYSQL_DETECTION_SQL == "select @@version_comment limit 1"
    assert is_proxysql(("(ProxySQL)",)) and is_proxysql((b"(ProxySQL)",))
    assert not is_proxysql(("mariadb.org binary distribution",))
    assert not is_proxysql(None) and not is_proxysql(())


# -- the admin console -------------------------------------------------------------------

Column = namedtuple("Column", "name type_code")


def test_admin_rows_from_either_description() -> None:
    rows = [("test", "transaction")]
    assert admin_rows([Column("name", 25), Column("pool_mode", 25)], rows) == [
        {"name": "test", "pool_mode": "transaction"}
    ]
    dbapi = [("name", 25, None, None, None, None, None), ("pool_mode", 25) + (None,) * 5]
    assert admin_rows(dbapi, rows) == [{"name": "test", "pool_mode": "transaction"}]


def _shown(
    global_mode: str = "transaction",
    db_mode: Any = None,
    user_mode: Any = None,
    version: str = "PgBouncer 1.18.0",
    prepared: str | None = None,
) -> dict[str, Any]:
    config = [
        {"key": "pool_mode", "value": global_mode},
        {"key": "client_idle_timeout", "value": "30"},
        {"key": "query_wait_timeout", "value": "120"},
    ]
    if prepared is not None:
        config.append({"key": "max_prepared_statements", "value": prepared})
    return {
        "SHOW VERSION": [{"version": version}],
        "SHOW CONFIG": config,
        "SHOW DATABASES": [{"name": "pgbouncer", "pool_mode": "statement"},
                           {"name": "test", "pool_mode": db_mode}],
        "SHOW USERS": [{"name": "app", "pool_mode": user_mode}],
    }  # fmt: skip


def test_pool_mode_precedence_is_pgbouncers() -> None:
    """The user's pool_mode, else the database's, else the global one (server.c)."""
    assert pgbouncer_info_from_admin(_shown(), "test", "app").pool_mode == "transaction"
    assert pgbouncer_info_from_admin(_shown(db_mode="session"), "test", "app").pool_mode == (
        "session"
    )
    both = _shown(db_mode="session", user_mode="statement")
    assert pgbouncer_info_from_admin(both, "test", "app").pool_mode == "statement"
    # Another database's mode (the admin console's "statement") is not ours.
    assert pgbouncer_info_from_admin(_shown(), "other", "nobody").pool_mode == "transaction"


def test_admin_info_fields() -> None:
    info = pgbouncer_info_from_admin(_shown(version="PgBouncer 1.21.0", prepared="100"),
                                     "test", "app")  # fmt: skip
    assert info.version == (1, 21, 0) and info.max_prepared_statements == 100
    assert info.client_idle_timeout == 30.0 and info.query_wait_timeout == 120.0
    assert info.source == "admin console"
    assert pgbouncer_info_from_admin({}, "test", "app").pool_mode is None


def test_admin_kwargs_aim_at_the_console() -> None:
    kwargs = pgbouncer_admin_kwargs({"host": "h", "port": 6432, "user": "u", "password": "p",
                                     "dbname": "app", "target_session_attrs": "read-write",
                                     "prepare_threshold": None})  # fmt: skip
    assert kwargs == {"host": "h", "port": 6432, "user": "u", "password": "p",
                      "dbname": "pgbouncer", "autocommit": True, "connect_timeout": 5}  # fmt: skip


# -- rules -------------------------------------------------------------------------------


@given(MODES)
def test_unknown_mode_is_treated_as_transaction(mode: str | None) -> None:
    info = ProxyInfo(PGBOUNCER, pool_mode=mode)
    assert info.mode == (mode or "transaction")
    assert info.keeps_session_state is (mode == "session")


@pytest.mark.parametrize(
    "version, prepared, ok",
    [((1, 18, 0), None, False), ((1, 21, 0), 0, False), ((1, 21, 0), 200, True),
     ((1, 24, 0), None, False), (None, 200, False)],
)  # fmt: skip
def test_prepared_statements_need_1_21_and_the_setting(
    version: tuple[int, ...] | None, prepared: int | None, ok: bool
) -> None:
    info = ProxyInfo(PGBOUNCER, "transaction", version, max_prepared_statements=prepared)
    assert info.prepared_statements_ok is ok
    assert ("prepare_threshold" not in psycopg_connect_overrides(info)) is ok


def test_connect_overrides_per_mode() -> None:
    assert psycopg_connect_overrides(None) == {}
    assert psycopg_connect_overrides(ProxyInfo(PROXYSQL)) == {}
    assert psycopg_connect_overrides(ProxyInfo(PGBOUNCER, "session")) == {}
    assert psycopg_connect_overrides(ProxyInfo(PGBOUNCER)) == {"prepare_threshold": None}
    assert psycopg_connect_overrides(ProxyInfo(PGBOUNCER, "statement")) == {
        "prepare_threshold": None,
        "autocommit": True,
    }


@given(MODES, REQUESTS)
def test_allowed_reset(mode: str | None, requested: str | None) -> None:
    info = ProxyInfo(PGBOUNCER, pool_mode=mode)
    reset, warning = allowed_reset(info, requested)
    if requested == "session" and mode != "session":
        assert reset == "rollback" and warning and "DISCARD ALL" in warning
    else:
        assert reset == requested and warning is None
    assert (session_state_warning(info) is None) is (mode == "session")


@given(REQUESTS)
def test_reset_unchanged_without_pgbouncer(requested: str | None) -> None:
    assert allowed_reset(None, requested) == (requested, None)
    assert allowed_reset(ProxyInfo(PROXYSQL), requested) == (requested, None)


timeouts = st.one_of(st.none(), st.floats(min_value=0.5, max_value=1e5))


@given(timeouts, timeouts)
def test_effective_idle_timeout(server: float | None, client: float | None) -> None:
    def info(mode: str | None) -> ProxyInfo:
        return ProxyInfo(PGBOUNCER, pool_mode=mode, client_idle_timeout=client)

    assert effective_idle_timeout(None, server) == server
    assert effective_idle_timeout(info("session"), server) == server
    assert effective_idle_timeout(info("transaction"), server) == client
    assert effective_idle_timeout(info("statement"), server) == client
    both = [value for value in (server, client) if value]
    assert effective_idle_timeout(info(None), server) == (min(both) if both else None)


# -- PgBouncer's errors ------------------------------------------------------------------


def _connect_error(message: str) -> psycopg.OperationalError:
    """As libpq reports a login refusal: no SQLSTATE, PgBouncer's text after FATAL."""
    return psycopg.OperationalError(
        f'connection failed: connection to server at "127.0.0.1", port 6432 failed: '
        f"FATAL:  {message}"
    )


@pytest.mark.parametrize(
    "message, kind",
    [
        ("no more connections allowed (max_client_conn)", "limit"),
        ("client connections exceeded (max_db_client_connections)", "limit"),
        ("server login has been failing, try again later (server_login_retry)", "retryable"),
        ("pgbouncer cannot connect to server", "retryable"),
        ("query_wait_timeout", "retryable"),
        ("client_login_timeout (server down)", "retryable"),
        ('database "test" is disabled', "retryable"),
        ("pooler is shutting down", "retryable"),
        ("no such database: nosuch", "config"),
        ("not allowed", "config"),
        ("password authentication failed", "config"),
        ("server login has been failing, cached error: password authentication failed "
         "for user \"app\" (server_login_retry)", "config"),
        ("unsupported startup parameter: search_path", "config"),
    ],
)  # fmt: skip
def test_pgbouncer_connect_errors(message: str, kind: str) -> None:
    exc = _connect_error(message)
    assert pgbouncer_error_kind(exc) == kind
    assert is_connection_limit_error(exc) is (kind == "limit")


@pytest.mark.parametrize(
    "message, kind",
    [("server conn crashed?", "disconnect"), ("database removed", "disconnect"),
     ("client_idle_timeout", "disconnect"), ("query_timeout", "disconnect"),
     ("idle transaction timeout", "disconnect"), ("query_wait_timeout", "retryable"),
     ("transaction blocks not allowed in statement pooling mode", "config")],
)  # fmt: skip
def test_pgbouncer_session_errors(message: str, kind: str) -> None:
    """After the login PgBouncer's errors arrive with SQLSTATE 08P01."""
    exc = psycopg.errors.ProtocolViolation(message)
    assert exc.sqlstate == "08P01" and pgbouncer_error_kind(exc) == kind


def test_a_servers_error_is_not_pgbouncers() -> None:
    # PgBouncer 1.20+ forwards a server's login error with the server's SQLSTATE.
    assert pgbouncer_error_kind(psycopg.errors.TooManyConnections("too many clients")) is None
    assert pgbouncer_error_kind(psycopg.errors.QueryCanceled("query_timeout")) is None
    assert pgbouncer_error_kind(ValueError("something else")) is None


def test_prepared_statement_mismatch() -> None:
    assert is_prepared_statement_mismatch(
        psycopg.errors.InvalidSqlStatementName('prepared statement "_pg3_0" does not exist')
    )
    assert is_prepared_statement_mismatch(
        psycopg.errors.DuplicatePreparedStatement('prepared statement "_pg3_3" already exists')
    )
    assert not is_prepared_statement_mismatch(
        psycopg.errors.InvalidSqlStatementName('prepared statement "mine" does not exist')
    )


# -- ProxySQL's errors -------------------------------------------------------------------


def _mysql_errors(code: int, message: str) -> list[BaseException]:
    """The same server error as PyMySQL and mysql-connector raise it."""
    return [
        pymysql.err.OperationalError(code, message),
        mysql.connector.errors.OperationalError(msg=message, errno=code, sqlstate="HY000"),
    ]


@pytest.mark.parametrize(
    "code, message, kind",
    [
        (9001, "Max connect timeout reached while reaching hostgroup 0 after 10000ms",
         "transient"),
        (9002, "Max connect failure while reaching hostgroup 1", "transient"),
        (9003, "Command not supported", "unsupported"),
        (9005, "Session trying to reach HG 1 while locked on HG 0 . Rejecting query: ...",
         "session"),
        (9006, "ProxySQL Error: connection is locked to hostgroup 0 but trying to reach "
         "hostgroup 1", "session"),
        (1040, "Too many connections", "limit"),
        (1226, "User 'app' has exceeded the 'max_user_connections' resource (current value: "
         "10)", "limit"),
        (1040, "User 'app' can only connect locally", None),
        (2013, "Lost connection to MySQL server during query", None),
    ],
)  # fmt: skip
def test_proxysql_errors(code: int, message: str, kind: str | None) -> None:
    for exc in _mysql_errors(code, message):
        assert proxysql_error_code(exc) == code
        assert proxysql_error_kind(exc) == kind
        assert is_transient_proxysql_error(exc) is (kind == "transient")
        assert is_connection_limit_error(exc) is (kind == "limit")


@given(st.integers(min_value=1, max_value=65535).filter(
    lambda code: code not in (9001, 9002, 9003, 9005, 9006, 1040, 1226)))  # fmt: skip
def test_other_codes_are_not_proxysqls(code: int) -> None:
    exc = pymysql.err.OperationalError(code, "Too many connections max_user_connections")
    assert proxysql_error_kind(exc) is None and not is_transient_proxysql_error(exc)


def test_error_codes_of_odd_exceptions() -> None:
    assert proxysql_error_code(ValueError("9001")) is None
    assert proxysql_error_code(RuntimeError(True)) is None
    wrapped = RuntimeError(pymysql.err.OperationalError(9001, "Max connect timeout"))
    assert proxysql_error_code(wrapped) == 9001
