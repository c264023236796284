"""The "items" CRUD service of ``fastapi_sqlmodel``, asyncio throughout: FastAPI, SQLModel's
``AsyncSession`` and an asyncio driver, on poolwarden's pool.

    uvicorn --factory examples.fastapi_async.app:create_app

The only poolwarden-specific line is the ``create_async_engine`` import: the engine is
SQLAlchemy's ``AsyncEngine``, its pool is :class:`poolwarden.sqlalchemy.AsyncWardenPool`.
The database is ``$DATABASE_URL`` (default: the local MariaDB ``test`` database through
asyncmy; ``mysql+aiomysql://`` and ``postgresql+psycopg://`` work too). ``GET /metrics``
serves the pool's metrics in Prometheus's text format.

``GET /buggy/leak`` is a deliberate bug: it opens a session and never closes it, so that
poolwarden's leak report (logger ``poolwarden``, after ``leak_threshold`` seconds) can be
seen naming it, and the asyncio task that ran it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from poolwarden.metrics import PrometheusCollector
from poolwarden.sqlalchemy import create_async_engine

__all__ = ["DEFAULT_DATABASE_URL", "Item", "ItemCreate", "ItemUpdate", "create_app"]

DEFAULT_DATABASE_URL = "mysql+asyncmy://root@127.0.0.1:3306/test"

#: Pool settings of this example; ``create_app(**engine_options)`` overrides them.
ENGINE_DEFAULTS: dict[str, Any] = {"pool_size": 5, "max_overflow": 10, "leak_threshold": 30.0}

#: The items' table.
TABLE = "pw_example_async_items"

#: Sessions opened by the buggy route and never closed. Holding them here keeps them from
#: being garbage-collected, which would hand their connections back: a real leak.
LEAKED: list[AsyncSession] = []


class ItemCreate(SQLModel):
    """What a client sends to create an item."""

    name: str = Field(max_length=100)
    quantity: int = 0


class Item(ItemCreate, table=True):
    """A stored item."""

    __tablename__ = TABLE

    id: int | None = Field(default=None, primary_key=True)


class ItemUpdate(SQLModel):
    """A partial update: only the fields sent are changed."""

    name: str | None = Field(default=None, max_length=100)
    quantity: int | None = None


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request. ``async with`` closes it however the request ends (an
    error, a cancelled task), which hands its connection back to the pool."""
    async with AsyncSession(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the table at start-up; close the pool's idle connections at shutdown."""
    engine: AsyncEngine = app.state.engine
    async with engine.begin() as conn:
        # This table only: SQLModel.metadata holds every SQLModel table imported.
        await conn.run_sync(SQLModel.metadata.create_all, tables=[SQLModel.metadata.tables[TABLE]])
    yield
    await engine.dispose()


def create_app(database_url: str | None = None, **engine_options: Any) -> FastAPI:
    """The service on its own engine: ``database_url`` (default ``$DATABASE_URL``, else the
    local MariaDB), with :data:`ENGINE_DEFAULTS` updated by ``engine_options`` (any
    SQLAlchemy or WardenPool argument). No connection is made before the first request
    (or the lifespan's start-up), so the app can be built outside any event loop."""
    url = database_url or os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    # pool_pre_ping and pool_recycle are not needed: AsyncWardenPool probes every
    # connection before handing it out and retires them before the server's idle timeout.
    engine = create_async_engine(url, **{**ENGINE_DEFAULTS, **engine_options})
    app = FastAPI(title="poolwarden example: items (asyncio)", lifespan=lifespan)
    app.state.engine = engine
    # The app's own registry rather than prometheus_client.REGISTRY, which refuses the
    # same metric names twice: a second app in one process (tests, a reload) would fail.
    metrics_registry = CollectorRegistry()
    metrics_registry.register(PrometheusCollector(engine))

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """The pool's metrics, for Prometheus to scrape. (A route rather than mounting
        ``make_asgi_app()``: a mount answers ``/metrics`` with a redirect to ``/metrics/``.)
        Collecting only copies the pool's counters: nothing here waits on the database."""
        return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/items", status_code=status.HTTP_201_CREATED)
    async def create_item(data: ItemCreate, session: SessionDep) -> Item:
        """Store a new item."""
        item = Item.model_validate(data)
        session.add(item)
        await session.commit()
        await session.refresh(item)  # committing expired it; asyncio cannot lazy-load
        return item

    @app.get("/items")
    async def list_items(session: SessionDep) -> list[Item]:
        """Every item, by id."""
        return list((await session.exec(select(Item).order_by(col(Item.id)))).all())

    @app.get("/items/{item_id}")
    async def get_item(item_id: int, session: SessionDep) -> Item:
        """One item, or 404."""
        return await _get_or_404(session, item_id)

    @app.patch("/items/{item_id}")
    async def update_item(item_id: int, data: ItemUpdate, session: SessionDep) -> Item:
        """Change the fields sent."""
        item = await _get_or_404(session, item_id)
        item.sqlmodel_update(data.model_dump(exclude_unset=True))
        session.add(item)
        await session.commit()
        await session.refresh(item)
        return item

    @app.delete("/items/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_item(item_id: int, session: SessionDep) -> Response:
        """Delete an item."""
        await session.delete(await _get_or_404(session, item_id))
        await session.commit()
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @app.get("/buggy/leak")
    async def buggy_leak(request: Request) -> dict[str, int]:
        """BUG, on purpose: a session opened outside the request-scoped dependency and
        never closed. Its connection stays checked out; poolwarden reports it, with this
        request's task."""
        session = AsyncSession(request.app.state.engine)
        count = len((await session.exec(select(Item))).all())
        LEAKED.append(session)
        return {"items": count}

    return app


async def _get_or_404(session: AsyncSession, item_id: int) -> Item:
    item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail=f"item {item_id} not found")
    return item
