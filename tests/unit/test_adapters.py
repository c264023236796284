"""Error classification per driver, with each driver's real exception classes (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from poolwarden.adapters import ADAPTERS, Adapter


def adapter(scheme: str) -> Adapter:
    cls = ADAPTERS[scheme]
    return cls(cls.import_driver(), lambda: None)


def pymysql_error(code: int, text: str = "x", kind: str = "OperationalError") -> Any:
    import pymysql

    return getattr(pymysql.err, kind)(code, text)


def mysqldb_error(code: int, text: str = "x") -> Any:
    import MySQLdb

    return MySQLdb.OperationalError(code, text)


def connector_error(code: int, text: str = "x") -> Any:
    import mysql.connector

    return mysql.connector.errors.OperationalError(msg=text, errno=code)


MYSQL_ERRORS = [pymysql_error, mysqldb_error, connector_error]
MYSQL_SCHEMES = ["mysql+pymysql", "mysql+mysqldb", "mysql+mysqlconnector"]


@pytest.mark.parametrize(("scheme", "make"), list(zip(MYSQL_SCHEMES, MYSQL_ERRORS, strict=True)))
@pytest.mark.parametrize(
    "code", [1053, 1927, 2002, 2003, 2006, 2013, 2014, 2045, 2055, 4031, 10053, 10054]
)
def test_mysql_disconnect_codes(scheme: str, make: Any, code: int) -> None:
    assert adapter(scheme).is_disconnect(make(code))


@pytest.mark.parametrize(("scheme", "make"), list(zip(MYSQL_SCHEMES, MYSQL_ERRORS, strict=True)))
@pytest.mark.parametrize("code", [1062, 1064, 1205, 1213, 1317, 1045])
def test_mysql_ordinary_errors_are_not_disconnects(scheme: str, make: Any, code: int) -> None:
    assert not adapter(scheme).is_disconnect(make(code, "Duplicate entry or syntax"))


@pytest.mark.parametrize(("scheme", "make"), list(zip(MYSQL_SCHEMES, MYSQL_ERRORS, strict=True)))
def test_mysql_connect_retry_classes(scheme: str, make: Any) -> None:
    a = adapter(scheme)
    for code in (2002, 2003, 2013, 1040, 1203, 1226, 1053):
        assert a.is_retryable_connect_error(make(code)), code
    for code in (1045, 1049, 1130, 2005):
        assert not a.is_retryable_connect_error(make(code)), code


def test_mysql_messages_without_codes() -> None:
    a = adapter("mysql+pymysql")
    assert a.is_disconnect(pymysql_error(0, "", kind="InterfaceError"))
    assert a.is_disconnect(pymysql_error(0, "Connection was killed", kind="InterfaceError"))
    c = adapter("mysql+mysqlconnector")
    import mysql.connector

    assert c.is_disconnect(
        mysql.connector.errors.OperationalError("MySQL Connection not available.")
    )


def test_foreign_exceptions_are_never_disconnects() -> None:
    for scheme in ADAPTERS:
        assert not adapter(scheme).is_disconnect(ValueError("2006 server has gone away"))
        assert not adapter(scheme).is_retryable_connect_error(OSError("Connection refused"))


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql+psycopg2"])
def test_postgres_classification(scheme: str) -> None:
    a = adapter(scheme)
    dbapi: Any = a.dbapi
    lost = dbapi.OperationalError(
        "consuming input failed: server closed the connection unexpectedly"
    )
    terminated = dbapi.OperationalError("terminating connection due to administrator command")
    syntax = dbapi.ProgrammingError('syntax error at or near "SELEC"')
    assert a.is_disconnect(lost) and a.is_disconnect(terminated)
    assert not a.is_disconnect(syntax)
    refused = dbapi.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        "Connection refused"
    )
    starting = dbapi.OperationalError("FATAL:  the database system is starting up")
    full = dbapi.OperationalError("FATAL:  sorry, too many clients already")
    password = dbapi.OperationalError('FATAL:  password authentication failed for user "app"')
    missing = dbapi.OperationalError('FATAL:  database "nope" does not exist')
    for error in (refused, starting, full):
        assert a.is_retryable_connect_error(error), error
    for error in (password, missing):
        assert not a.is_retryable_connect_error(error), error


def test_psycopg_sqlstates() -> None:
    import psycopg

    a = adapter("postgresql+psycopg")
    assert a.is_disconnect(psycopg.errors.AdminShutdown("bye"))  # 57P01
    assert a.is_disconnect(psycopg.errors.ConnectionFailure("x"))  # 08006
    assert not a.is_disconnect(psycopg.errors.UniqueViolation("dup"))
    assert a.is_retryable_connect_error(psycopg.errors.TooManyConnections("full"))  # 53300
    assert a.is_retryable_connect_error(psycopg.errors.CannotConnectNow("starting"))  # 57P03
