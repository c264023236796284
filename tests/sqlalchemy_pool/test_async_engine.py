"""AsyncWardenPool under SQLAlchemy's asyncio engines, every asyncio driver, real servers;
side by side with AsyncAdaptedQueuePool where both must behave alike."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from poolwarden.sqlalchemy import AsyncWardenPool, WardenTimeout
from poolwarden.sqlalchemy import create_async_engine as warden_engine
from tests.conftest import _check, mysql_url
from tests.integration.test_drivers import dialect, kill
from tests.sqlalchemy_pool.test_engine import Base, Note, count_pings, kill_all

pytestmark = pytest.mark.anyio


def warden(engine: AsyncEngine) -> AsyncWardenPool:
    pool = engine.sync_engine.pool
    assert isinstance(pool, AsyncWardenPool)
    return pool


def session_id_sql(url: str) -> str:
    return "SELECT CONNECTION_ID()" if dialect(url) == "mysql" else "SELECT pg_backend_pid()"


def idle_timeout_on_connect(engine: AsyncEngine, url: str, seconds: int) -> None:
    """Give every new connection of ``engine`` a short server-side idle timeout."""
    sql = (
        f"SET SESSION wait_timeout = {seconds}"
        if dialect(url) == "mysql"
        else f"SET idle_session_timeout = '{seconds}s'"
    )

    @event.listens_for(engine.sync_engine, "connect")
    def short_timeout(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(sql)
        cursor.close()
        dbapi_connection.commit()


async def requests(engine: AsyncEngine, count: int, tasks: int = 3) -> list[BaseException]:
    errors: list[BaseException] = []

    async def work() -> None:
        for _ in range(count // tasks):
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except Exception as exc:
                errors.append(exc)

    await asyncio.gather(*(work() for _ in range(tasks)))
    return errors


async def warm(engine: AsyncEngine, count: int) -> None:
    conns = [await engine.connect() for _ in range(count)]
    for conn in conns:
        await conn.execute(text("SELECT 1"))
        await conn.close()


async def test_orm_async_session_round_trip(async_db_url: str) -> None:
    engine = warden_engine(async_db_url, pool_size=2)
    assert isinstance(engine.sync_engine.pool, AsyncWardenPool)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    try:
        async with AsyncSession(engine) as session:
            session.add_all([Note(body="a"), Note(body="b")])
            await session.commit()
        async with AsyncSession(engine) as session:
            notes = (await session.execute(sqlalchemy.select(Note.body))).scalars()
            assert sorted(notes) == ["a", "b"]
        stats = warden(engine).stats()
        assert stats.in_use == 0 and stats.checkouts >= 3
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
        await engine.dispose()


async def test_plain_create_async_engine_with_poolclass(async_db_url: str) -> None:
    engine = create_async_engine(
        async_db_url, poolclass=AsyncWardenPool, pool_size=3, pool_timeout=5, leak_threshold=60
    )
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    pool = warden(engine)
    assert pool.size() == 3 and pool.timeout() == 5 and pool._warden._leak_threshold == 60
    await engine.dispose()


@pytest.mark.parametrize("pool_class", [AsyncWardenPool, AsyncAdaptedQueuePool])
async def test_idle_past_server_timeout(async_db_url: str, pool_class: type) -> None:
    """The 2006 "gone away" of asyncio users: the default pool passes it on; AsyncWardenPool
    (probe only, no lifetime) replaces the dead connections unseen."""
    options: dict[str, Any] = {"max_lifetime": None} if pool_class is AsyncWardenPool else {}
    engine = create_async_engine(async_db_url, poolclass=pool_class, pool_size=3, **options)
    idle_timeout_on_connect(engine, async_db_url, 1)
    await warm(engine, 3)
    await asyncio.sleep(2.0)
    errors = await requests(engine, 9)
    if pool_class is AsyncWardenPool:
        assert errors == [] and warden(engine).stats().found_dead == 3
    else:
        assert errors and all(isinstance(e, sa_exc.DBAPIError) for e in errors)
    await engine.dispose()


async def test_lifetime_from_server_idle_timeout(async_db_url: str) -> None:
    engine = warden_engine(async_db_url, pool_size=3)
    idle_timeout_on_connect(engine, async_db_url, 2)
    await warm(engine, 3)
    assert warden(engine)._warden._core.lifetime == pytest.approx(1.6)
    await asyncio.sleep(3.0)
    assert await requests(engine, 9) == []
    stats = warden(engine).stats()
    assert stats.retired + stats.found_dead >= 3 and stats.retired >= 1
    await engine.dispose()


async def test_kill_of_idle_connections_goes_unseen(async_db_url: str) -> None:
    engine = warden_engine(async_db_url, pool_size=3)
    await warm(engine, 3)
    kill_all(async_db_url)
    await asyncio.sleep(0.2)
    assert await requests(engine, 9) == []
    assert warden(engine).stats().found_dead >= 3
    await engine.dispose()


async def test_disconnect_seen_by_the_engine_replaces_the_older_connections(
    async_db_url: str,
) -> None:
    """As with AsyncAdaptedQueuePool: once the engine sees a disconnect, every connection
    opened before it is replaced at its next checkout."""
    engine = warden_engine(async_db_url, pool_size=3, ping_after_idle=60, held_check_after=None)
    sql = text(session_id_sql(async_db_url))
    async with engine.connect() as a, engine.connect() as b, engine.connect() as conn:
        old = {(await x.execute(sql)).scalar() for x in (a, b, conn)}
        for x in (a, b, conn):
            await x.commit()
        victim = (await conn.execute(sql)).scalar()
        await conn.commit()
        kill(async_db_url, int(str(victim)))
        await asyncio.sleep(0.1)
        with pytest.raises(sa_exc.DBAPIError) as info:
            await conn.execute(text("SELECT 1"))
    assert await requests(engine, 6, tasks=2) == []
    async with engine.connect() as a, engine.connect() as b, engine.connect() as c:
        served = {(await x.execute(sql)).scalar() for x in (a, b, c)}
    assert victim not in served
    if info.value.connection_invalidated:
        assert not served & old
    await engine.dispose()


async def test_pool_pre_ping_and_recycle_are_honoured(async_db_url: str) -> None:
    """pool_pre_ping is SQLAlchemy's own, as with AsyncAdaptedQueuePool; pool_recycle is
    the connections' lifetime."""
    engine = warden_engine(async_db_url, pool_size=1, pool_pre_ping=True, pool_recycle=1)
    pings = count_pings(engine.sync_engine)
    await warm(engine, 1)
    await requests(engine, 3, tasks=1)
    assert len(pings) >= 3 and warden(engine).stats().pings == 0
    await asyncio.sleep(1.2)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert warden(engine).stats().retired >= 1
    await engine.dispose()


async def test_leak_report_names_the_application_code_and_task(
    async_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = warden_engine(async_db_url, pool_size=2, leak_threshold=0.2)

    async def report_handler_that_forgets() -> Any:
        conn = await engine.connect()
        await conn.execute(text("SELECT 1"))
        return conn

    with caplog.at_level(logging.WARNING, logger="poolwarden"):
        held = await asyncio.create_task(report_handler_that_forgets(), name="GET /report")
        deadline = time.monotonic() + 5
        while "has been checked out" not in caplog.text and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    await held.close()
    site = caplog.text.split("checked out at", 1)[1].split("\n", 1)[0]
    assert "test_async_engine.py" in site and "report_handler_that_forgets" in site
    assert "task 'GET /report'" in site
    assert warden(engine).stats().leaks == 1
    await engine.dispose()


async def test_dispose_and_keep_going(async_db_url: str) -> None:
    engine = warden_engine(async_db_url, pool_size=2)
    await warm(engine, 2)
    old_pool = engine.sync_engine.pool
    await engine.dispose()
    assert engine.sync_engine.pool is not old_pool
    assert isinstance(engine.sync_engine.pool, AsyncWardenPool)
    assert await requests(engine, 4, tasks=2) == []
    await engine.dispose()


# -- side by side with AsyncAdaptedQueuePool ---------------------------------------------
EVENTS = ("connect", "first_connect", "checkout", "checkin", "reset", "invalidate", "close")

Scenario = Callable[[AsyncEngine], Awaitable[list[Any]]]


async def same_on_both(scenario: Scenario, **kwargs: Any) -> list[Any]:
    """Run ``scenario`` on an engine with each pool; the results and the pool events seen
    must be the same."""
    _check("mysql")
    outcomes = []
    for pool_class in (AsyncAdaptedQueuePool, AsyncWardenPool):
        engine = create_async_engine(mysql_url("asyncmy"), poolclass=pool_class, **kwargs)
        seen: list[str] = []
        for name in EVENTS:
            note = seen.append
            event.listen(engine.sync_engine.pool, name, lambda *_, n=name, note=note: note(n))
        try:
            outcomes.append((await scenario(engine), seen))
        finally:
            await engine.dispose()
    (queue_result, queue_events), (warden_result, warden_events) = outcomes
    assert warden_result == queue_result
    assert warden_events == queue_events
    return warden_result


def sizes(engine: AsyncEngine) -> tuple[int, int, int, int]:
    pool: Any = engine.sync_engine.pool
    return (pool.size(), pool.checkedin(), pool.checkedout(), pool.overflow())


async def test_sizes_status_and_events_as_asyncadaptedqueuepool() -> None:
    async def scenario(engine: AsyncEngine) -> list[Any]:
        seen = [sizes(engine)]
        a, b, c = [await engine.connect() for _ in range(3)]
        for conn in (a, b, c):
            await conn.execute(text("SELECT 1"))
        seen.append(sizes(engine))
        await a.close()
        seen.append(sizes(engine))
        await b.invalidate()
        await b.close()
        await c.close()
        seen.append(sizes(engine))
        return seen

    result = await same_on_both(scenario, pool_size=2, max_overflow=1)
    assert result[1] == (2, 0, 3, 1)


async def test_timeout_is_sqlalchemys_and_explains_itself() -> None:
    async def scenario(engine: AsyncEngine) -> list[Any]:
        held = await engine.connect()
        await held.execute(text("SELECT 1"))
        with pytest.raises(sa_exc.TimeoutError) as info:
            await engine.connect()
        await held.close()
        return [info.value.code, "QueuePool limit of size 1 overflow 0" in str(info.value)]

    assert await same_on_both(scenario, pool_size=1, max_overflow=0, pool_timeout=0.2) == [
        "3o7r",
        True,
    ]
    engine = warden_engine(mysql_url("asyncmy"), pool_size=1, max_overflow=0, pool_timeout=0.2)
    held = await engine.connect()
    with pytest.raises(WardenTimeout, match="longest-held connection"):
        await engine.connect()
    await held.close()
    await engine.dispose()


async def test_garbage_collected_connection_comes_back() -> None:
    async def scenario(engine: AsyncEngine) -> list[Any]:
        async def forget() -> None:
            conn = await engine.connect()
            await conn.execute(text("SELECT 1"))

        # Garbage of earlier tests (an unclosed transport's ResourceWarning) is collected
        # first, so that the collection below finds only this test's connection.
        gc.collect()
        with pytest.warns(sa_exc.SAWarning, match="garbage collector"):
            await forget()
            gc.collect()
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return [engine.sync_engine.pool.checkedout()]  # type: ignore[attr-defined]

    assert await same_on_both(scenario, pool_size=1, max_overflow=0, pool_timeout=2) == [0]
