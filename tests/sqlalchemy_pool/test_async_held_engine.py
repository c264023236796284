"""Held connections through SQLAlchemy's asyncio engines: an ``AsyncConnection`` or
``AsyncSession`` kept across a pause longer than the server's idle timeout, every asyncio
driver, real servers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

import poolwarden
from poolwarden.sqlalchemy import create_async_engine
from poolwarden.sqlalchemy._held import WardenFairy
from tests.integration.test_drivers import dialect, kill
from tests.sqlalchemy_pool.test_async_engine import session_id_sql, warden
from tests.sqlalchemy_pool.test_held_engine import Base, committed

pytestmark = pytest.mark.anyio

IDLE_TIMEOUT = 1
PAUSE = IDLE_TIMEOUT + 1.0


def held_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine whose connections the server closes after 1 s idle (in a transaction or
    not)."""
    engine = create_async_engine(url, pool_size=1, max_overflow=0, **kwargs)
    statements = (
        [f"SET SESSION wait_timeout = {IDLE_TIMEOUT}"]
        if dialect(url) == "mysql"
        else [
            f"SET idle_session_timeout = '{IDLE_TIMEOUT}s'",
            f"SET idle_in_transaction_session_timeout = '{IDLE_TIMEOUT}s'",
        ]
    )

    @event.listens_for(engine.sync_engine, "connect")
    def short_timeout(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for sql in statements:
            cursor.execute(sql)
        cursor.close()
        dbapi_connection.commit()

    return engine


@pytest.fixture
async def visit_model(async_db_url: str) -> AsyncIterator[type[Any]]:
    """A mapped class on a fresh table, dropped after the test."""
    name = f"pw_avisits_{uuid.uuid4().hex[:8]}"
    model = type(
        f"AsyncVisit_{name}",
        (Base,),
        {
            "__tablename__": name,
            "__annotations__": {"id": Mapped[int]},
            "id": mapped_column(primary_key=True, autoincrement=False),
        },
    )
    engine = create_async_engine(async_db_url)
    async with engine.begin() as conn:
        await conn.run_sync(model.__table__.create)  # type: ignore[attr-defined]
    yield model
    async with engine.begin() as conn:
        await conn.run_sync(model.__table__.drop)  # type: ignore[attr-defined]
    await engine.dispose()


async def test_connection_held_without_transaction_keeps_working(async_db_url: str) -> None:
    engine = held_engine(async_db_url)
    async with engine.connect() as conn:
        first = (await conn.execute(text(session_id_sql(async_db_url)))).scalar()
        await conn.commit()
        await asyncio.sleep(PAUSE)
        second = (await conn.execute(text(session_id_sql(async_db_url)))).scalar()
        await conn.commit()
        assert second != first  # a new server session, and no error
        raw = await conn.get_raw_connection()
        assert isinstance(raw, WardenFairy)  # the checkout proxy, with the held check
        inner = raw.dbapi_connection.driver_connection  # SQLAlchemy's adapter's, unwrapped
        assert type(inner).__module__.split(".")[0] in ("asyncmy", "aiomysql", "psycopg")
    assert warden(engine).stats().held_replaced == 1
    await engine.dispose()


async def test_session_held_with_transaction_fails_clearly_and_loses_nothing_silently(
    async_db_url: str, visit_model: type[Any]
) -> None:
    engine = held_engine(async_db_url)
    async with AsyncSession(engine) as session:
        session.add(visit_model(id=1))
        await session.commit()
        session.add(visit_model(id=2))
        await session.flush()  # written but uncommitted when the server drops the session
        await asyncio.sleep(PAUSE)
        session.add(visit_model(id=3))
        with pytest.raises(sa_exc.DBAPIError) as caught:
            await session.commit()
        error = caught.value
        assert isinstance(error.orig, poolwarden.ConnectionLost)
        assert error.connection_invalidated  # the dialect took it for a disconnect
        assert "transaction was open" in str(error)
        await session.rollback()
        session.add_all([visit_model(id=2), visit_model(id=3)])  # the unit of work, again
        await session.commit()
    assert committed(async_db_url, visit_model) == [1, 2, 3]
    assert warden(engine).stats().held_lost == 1
    await engine.dispose()


async def test_killed_connection_in_a_session_and_the_retry_helper(
    async_db_url: str, visit_model: type[Any]
) -> None:
    engine = held_engine(async_db_url, held_check_after=0.2)
    killed: list[int] = []

    @poolwarden.retry_on_disconnect(attempts=2)
    async def add_visit(visit_id: int) -> None:
        async with AsyncSession(engine) as session:
            if not killed:
                session_id = await session.execute(text(session_id_sql(async_db_url)))
                killed.append(int(session_id.scalar_one()))
                kill(async_db_url, killed[0])
                await asyncio.sleep(0.5)
            if await session.get(visit_model, visit_id) is None:  # safe to run twice
                session.add(visit_model(id=visit_id))
            await session.commit()

    await add_visit(5)
    stats = warden(engine).stats()
    assert killed and stats.held_lost + stats.held_replaced == 1
    assert committed(async_db_url, visit_model) == [5]
    await engine.dispose()
