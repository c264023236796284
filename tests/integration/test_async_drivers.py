"""Every supported asyncio driver against the real MariaDB and PostgreSQL servers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from poolwarden import AsyncPool, ConnectionLost, PoolTimeout
from poolwarden.adapters import ASYNC_ADAPTERS
from tests.conftest import _check, mysql_url
from tests.integration.test_drivers import admin, dialect, kill

pytestmark = pytest.mark.anyio


async def scalar(conn: Any, sql: str) -> Any:
    async with conn.cursor() as cur:
        await cur.execute(sql)
        row = await cur.fetchone()
        await cur.fetchall()
    return row[0] if row is not None else None


async def conn_id(conn: Any, url: str) -> int:
    sql = "SELECT CONNECTION_ID()" if dialect(url) == "mysql" else "SELECT pg_backend_pid()"
    return int(await scalar(conn, sql))


@pytest.fixture
async def atable(async_db_url: str) -> AsyncIterator[str]:
    """A fresh table ``(id INT PRIMARY KEY)``, dropped after."""
    name = f"pw_test_{uuid.uuid4().hex[:10]}"
    with admin(async_db_url) as adm:
        adm.cursor().execute(f"CREATE TABLE {name} (id INT PRIMARY KEY)")
    yield name
    with admin(async_db_url) as adm:
        adm.cursor().execute(f"DROP TABLE {name}")


def session_idle_timeout(url: str, seconds: int) -> Any:
    """A ``configure`` coroutine setting this session's idle timeout on the server."""
    sql = (
        f"SET SESSION wait_timeout = {seconds}"
        if dialect(url) == "mysql"
        else f"SET idle_session_timeout = '{seconds}s'"
    )

    async def configure(raw: Any) -> None:
        cur = raw.cursor()
        if not hasattr(cur, "execute"):  # aiomysql: an awaitable
            cur = await cur
        await cur.execute(sql)
        await cur.close()
        await raw.commit()

    return configure


async def test_query_and_reuse(async_db_url: str) -> None:
    async with AsyncPool(async_db_url, pool_size=2) as pool:
        assert type(pool.engine.adapter) is ASYNC_ADAPTERS[async_db_url.split("://")[0]]
        async with pool.connection() as conn:
            first = await conn_id(conn, async_db_url)
            assert await scalar(conn, "SELECT 1 + 1") == 2
        async with pool.connection() as conn:
            assert await conn_id(conn, async_db_url) == first
        stats = pool.stats()
        assert stats.connects == 1 and stats.checkouts == 2
        # The lifetime came from the server's idle timeout (or the one-hour cap).
        assert pool.engine._core.lifetime is not None and pool.engine._core.lifetime <= 3600


async def test_uncommitted_work_rolled_back_committed_kept(async_db_url: str, atable: str) -> None:
    async with AsyncPool(async_db_url, pool_size=1, max_overflow=0) as pool:
        async with pool.connection() as conn:
            await conn.cursor().execute(f"INSERT INTO {atable} VALUES (7)")
            await conn.commit()
        async with pool.connection() as conn:
            await conn.cursor().execute(f"INSERT INTO {atable} VALUES (8)")  # never committed
        async with pool.connection() as conn:
            assert await scalar(conn, f"SELECT COUNT(*) FROM {atable}") == 1


async def test_session_reset_clears_state(async_db_url: str) -> None:
    set_sql, get_sql, cleared = (
        ("SET @leaked = 42", "SELECT @leaked", None)
        if dialect(async_db_url) == "mysql"
        else (
            "SET application_name = 'leaked'",
            "SELECT current_setting('application_name') = 'leaked'",
            False,
        )
    )
    async with AsyncPool(async_db_url, pool_size=1, max_overflow=0, reset="session") as pool:
        async with pool.connection() as conn:
            session = await conn_id(conn, async_db_url)
            await conn.cursor().execute(set_sql)
            await conn.commit()
        async with pool.connection() as conn:
            assert await conn_id(conn, async_db_url) == session  # reset, not replaced
            assert await scalar(conn, get_sql) == cleared
        assert pool.stats().resets >= 1


async def test_killed_idle_connection_never_reaches_the_caller(async_db_url: str) -> None:
    async with AsyncPool(async_db_url, pool_size=2, max_overflow=0) as pool:
        async with pool.connection() as conn:
            victim = await conn_id(conn, async_db_url)
            await conn.commit()
        kill(async_db_url, victim)
        await asyncio.sleep(0.2)  # the event loop sees the server close it
        async with pool.connection() as conn:
            assert await conn_id(conn, async_db_url) != victim
        assert pool.stats().found_dead == 1


async def test_idle_past_session_idle_timeout_costs_no_error(async_db_url: str) -> None:
    configure = session_idle_timeout(async_db_url, 1)
    async with AsyncPool(
        async_db_url, pool_size=3, max_lifetime=None, configure=configure
    ) as pool:
        held = [await pool.getconn() for _ in range(3)]
        for conn in held:
            await conn.close()
        await asyncio.sleep(2.5)
        errors = 0
        for _ in range(6):
            try:
                async with pool.connection() as conn:
                    assert await scalar(conn, "SELECT 1") == 1
            except Exception:
                errors += 1
        assert errors == 0
        assert pool.stats().found_dead == 3


async def test_held_connection_killed_without_transaction_is_replaced(async_db_url: str) -> None:
    async with AsyncPool(async_db_url, pool_size=1, held_check_after=0.2) as pool:
        async with pool.connection() as conn:
            victim = await conn_id(conn, async_db_url)
            await conn.commit()
            kill(async_db_url, victim)
            await asyncio.sleep(0.5)
            assert await conn_id(conn, async_db_url) != victim  # no error: replaced
        assert pool.stats().held_replaced == 1


async def test_held_connection_killed_while_the_loop_was_blocked(async_db_url: str) -> None:
    """The borrower blocked the event loop (CPU work, a blocking call) while the server
    killed its connection: the loop never read the end of the stream, and the check
    before the next statement must find it all the same."""
    async with AsyncPool(async_db_url, pool_size=1, held_check_after=0.2) as pool:
        async with pool.connection() as conn:
            victim = await conn_id(conn, async_db_url)
            await conn.commit()
            kill(async_db_url, victim)
            time.sleep(0.5)  # blocks the loop: nothing reads the socket meanwhile
            assert await conn_id(conn, async_db_url) != victim  # no error: replaced
        assert pool.stats().held_replaced == 1


async def test_held_connection_killed_in_a_transaction_says_so(
    async_db_url: str, atable: str
) -> None:
    async with AsyncPool(async_db_url, pool_size=1, held_check_after=0.2) as pool:
        async with pool.connection() as conn:
            victim = await conn_id(conn, async_db_url)
            await conn.cursor().execute(f"INSERT INTO {atable} VALUES (1)")
            kill(async_db_url, victim)
            await asyncio.sleep(0.5)
            with pytest.raises(ConnectionLost, match="uncommitted work"):
                await conn.cursor().execute(f"INSERT INTO {atable} VALUES (2)")
            await conn.rollback()
            await conn.cursor().execute(f"INSERT INTO {atable} VALUES (3)")
            await conn.commit()
        async with pool.connection() as conn:
            assert await scalar(conn, f"SELECT COUNT(*) FROM {atable}") == 1


@pytest.mark.parametrize("driver", ["asyncmy", "aiomysql"])
async def test_unread_result_is_not_taken_for_a_dead_connection(driver: str) -> None:
    """An unbuffered result not read yet (in the socket or the loop's buffer) makes the
    probe fire too: the held check must look closer instead of declaring a live connection
    dead. (MySQL only: libpq reads whole results, so nothing is left unread there.)"""
    from poolwarden._async._held import check_held

    _check("mysql")
    async with AsyncPool(mysql_url(driver), pool_size=1) as pool, pool.connection() as conn:
        raw, module = conn.raw, pool.engine.adapter.dbapi
        assert module is not None
        cur = pool.engine.adapter.new_cursor(raw, (module.cursors.SSCursor,), {})
        await cur.execute("SELECT seq FROM seq_1_to_100000")
        assert await cur.fetchone() is not None
        await asyncio.sleep(0.2)
        entry = conn._entry
        assert entry is not None and entry.probe is not None and entry.probe()
        assert await check_held(pool.engine.adapter, raw, entry.probe, True, 5.0) is None
        assert len(await cur.fetchall()) == 99999
        await cur.close()


async def test_timeout_names_the_holder(async_db_url: str) -> None:
    async with AsyncPool(async_db_url, pool_size=1, max_overflow=0) as pool:
        holder = await pool.getconn()
        started = time.monotonic()
        with pytest.raises(PoolTimeout, match=r"test_async_drivers.py:\d+:test_timeout_names"):
            await pool.getconn(timeout=0.2)
        assert time.monotonic() - started >= 0.19
        await holder.close()


async def test_many_tasks_share_a_small_pool(async_db_url: str) -> None:
    async with AsyncPool(async_db_url, pool_size=4, max_overflow=0) as pool:

        async def request(i: int) -> int:
            async with pool.connection() as conn:
                return int(await scalar(conn, f"SELECT {i}"))

        results = await asyncio.gather(*(request(i) for i in range(200)))
        assert results == list(range(200))
        stats = pool.stats()
        assert stats.connects <= 4 and stats.checkouts == 200 and stats.in_use == 0
