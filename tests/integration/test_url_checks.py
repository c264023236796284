"""Against the real servers: an unknown URL option is named with the allowed ones before
any connect, valid options still connect; a URL aimed at the other kind of server's port
gets a plain hint; ``create_async_engine("mysql://...")`` uses asyncmy."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy

import poolwarden
from poolwarden import PoolTimeout, parse_url
from poolwarden.sqlalchemy import create_async_engine, create_engine
from tests.conftest import mysql_url, postgres_url, reachable_url, with_port

#: (URL scheme, an option the driver takes, an option name only libpq or the driver knows)
DRIVERS = [
    ("mysql+pymysql", "connect_timeout=5", "charset"),
    ("mysql+mysqldb", "connect_timeout=5", "charset"),
    ("postgresql+psycopg", "application_name=pw_test", "sslmode"),
]


@pytest.mark.parametrize(("scheme", "valid", "listed"), DRIVERS)
def test_unknown_option_is_named(scheme: str, valid: str, listed: str) -> None:
    url = reachable_url(scheme)
    with pytest.raises(ValueError) as info:
        poolwarden.Pool(f"{url}?bogus_option=1")
    message = str(info.value)
    assert message.startswith(f"target: unknown URL option 'bogus_option' for {scheme}; allowed: ")
    assert listed in message.partition("allowed: ")[2].split(", ")
    expected = re.escape(f"url: unknown URL option 'bogus_option' for {scheme}; allowed: ")
    with pytest.raises(ValueError, match=expected):
        create_engine(f"{url}?bogus_option=1")
    # What the driver does take still works, through both.
    with poolwarden.Pool(f"{url}?{valid}", pool_size=1) as pool, pool.connection() as conn:
        conn.cursor().execute("SELECT 1")
    engine = create_engine(f"{url}?{valid}")
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    engine.dispose()


#: The options the docs recommend for bounding reads on a dead path (docs/pool.md), which the
#: option check must never refuse: some are not in the drivers' signatures or docstrings.
TIMEOUT_OPTIONS = [
    ("mysql+pymysql", "read_timeout=3&write_timeout=3&connect_timeout=3"),
    ("mysql+mysqldb", "read_timeout=3&write_timeout=3&connect_timeout=3"),
    ("mysql+mysqlconnector", "connection_timeout=3"),
    ("postgresql+psycopg", "keepalives_idle=30&keepalives_interval=5&tcp_user_timeout=3000"),
    ("postgresql+psycopg2", "keepalives_idle=30&keepalives_count=3&connect_timeout=3"),
]


@pytest.mark.parametrize(("scheme", "options"), TIMEOUT_OPTIONS)
def test_the_documented_timeout_options_are_taken(scheme: str, options: str) -> None:
    url = f"{reachable_url(scheme)}?{options}"
    with poolwarden.Pool(url, pool_size=1) as pool, pool.connection() as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT 1")
        assert cursor.fetchall()[0][0] == 1


@pytest.mark.anyio
async def test_async_engine_mysql_url_uses_asyncmy() -> None:
    url = reachable_url("mysql+pymysql").replace("mysql+pymysql://", "mysql://")
    engine = create_async_engine(url, pool_size=1)
    try:
        assert engine.url.drivername == "mysql+asyncmy"
        async with engine.connect() as connection:
            result = await connection.execute(sqlalchemy.text("SELECT VERSION()"))
            assert "mariadb" in str(result.scalar()).lower()
            raw = await connection.get_raw_connection()
            assert type(raw.driver_connection).__module__.startswith("asyncmy")
    finally:
        await engine.dispose()


def ports() -> tuple[int, int]:
    reachable_url("mysql+pymysql")
    reachable_url("postgresql+psycopg")
    mysql = parse_url(mysql_url("pymysql")).port or 3306
    return mysql, parse_url(postgres_url("psycopg")).port or 5432


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_postgres_url_at_the_mysql_port(driver: str, caplog: pytest.LogCaptureFixture) -> None:
    mysql_port, _ = ports()
    url = with_port(postgres_url(driver), mysql_port)
    hint = f"port {mysql_port} answers like MySQL (its greeting), not PostgreSQL"
    with (
        caplog.at_level(logging.WARNING, logger="poolwarden"),
        pytest.raises(Exception) as info,  # the driver's own error, with a note
        poolwarden.Pool(url, timeout=5) as pool,
        pool.connection(),
    ):
        pass
    notes = getattr(info.value, "__notes__", [])
    assert any(hint in note for note in notes), (info.value, notes)
    assert hint in caplog.text


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_mysql_url_at_the_postgres_port(driver: str) -> None:
    _, postgres_port = ports()
    url = with_port(mysql_url(driver, connect_timeout="1"), postgres_port)
    with (
        pytest.raises(PoolTimeout) as info,
        poolwarden.Pool(url, timeout=2) as pool,
        pool.connection(),
    ):
        pass
    assert f"port {postgres_port} answers like PostgreSQL, not MySQL" in str(info.value)


@pytest.mark.anyio
async def test_asyncio_pool_gets_the_hint_too() -> None:
    mysql_port, _ = ports()
    url = with_port(postgres_url("psycopg"), mysql_port)
    with pytest.raises(Exception) as info:
        async with poolwarden.AsyncPool(url, timeout=5) as pool, pool.connection():
            pass
    notes = getattr(info.value, "__notes__", [])
    assert any(f"port {mysql_port} answers like MySQL" in note for note in notes), notes
