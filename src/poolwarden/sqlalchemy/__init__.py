"""poolwarden for SQLAlchemy: ``WardenPool`` and a ``create_engine`` that uses it;
``AsyncWardenPool`` and ``create_async_engine`` for asyncio engines.

    from poolwarden.sqlalchemy import create_engine
    engine = create_engine("mysql+pymysql://app:secret@db/shop", pool_size=10)

or, keeping SQLAlchemy's own ``create_engine``::

    engine = sqlalchemy.create_engine(url, poolclass=WardenPool, pool_size=10)

and for asyncio::

    from poolwarden.sqlalchemy import create_async_engine
    engine = create_async_engine("mysql+asyncmy://app:secret@db/shop", pool_size=10)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy

from ._held import driver_connection
from ._pool import WardenPool, WardenTimeout
from ._urls import check_url_options_of, engine_url

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ._async_pool import AsyncWardenPool

__all__ = [
    "AsyncWardenPool",
    "WardenPool",
    "WardenTimeout",
    "create_async_engine",
    "create_engine",
    "driver_connection",
]


def create_engine(url: Any, **kwargs: Any) -> sqlalchemy.Engine:
    """:func:`sqlalchemy.create_engine` with ``poolclass=WardenPool``; nothing else changes.

    Every argument is SQLAlchemy's or WardenPool's. ``pool_pre_ping`` is not needed: the
    pool checks each connection before handing it out without a round trip, and pings
    the ones idle long enough to need it. ``pool_recycle`` is not needed either: the
    connections' lifetime is derived from the server's idle timeout.

    A URL that cannot be parsed, or that has a query option the driver's ``connect()``
    does not take, raises ``ValueError`` saying what is wrong (and, for an option, which
    ones the driver takes), with anything that could be a password hidden.
    """
    kwargs.setdefault("poolclass", WardenPool)
    engine = sqlalchemy.create_engine(engine_url(url, asyncio=False), **kwargs)
    _check_options(engine)
    return engine


def create_async_engine(url: Any, **kwargs: Any) -> AsyncEngine:
    """:func:`sqlalchemy.ext.asyncio.create_async_engine` with ``poolclass=AsyncWardenPool``
    (``pool_pre_ping`` and ``pool_recycle`` are not needed here either: see
    :func:`create_engine`). Needs SQLAlchemy's asyncio extra (greenlet).

    A URL naming no driver gets poolwarden's asyncio default, as :class:`poolwarden.AsyncPool`
    does: ``mysql://`` and ``mariadb://`` use asyncmy (``mysql+asyncmy://``),
    ``postgresql://`` psycopg (``postgresql+psycopg://``), where SQLAlchemy would pick a sync
    driver and refuse it. URLs are checked as :func:`create_engine` checks them.
    """
    from sqlalchemy.ext.asyncio import create_async_engine as sqlalchemy_create_async_engine

    from ._async_pool import AsyncWardenPool

    kwargs.setdefault("poolclass", AsyncWardenPool)
    engine = sqlalchemy_create_async_engine(engine_url(url, asyncio=True), **kwargs)
    _check_options(engine.sync_engine)
    return engine


def _check_options(engine: sqlalchemy.Engine) -> None:
    try:
        check_url_options_of(engine)
    except ValueError:
        engine.dispose()  # nothing connected yet; stop the pool's background work
        raise


def __getattr__(name: str) -> Any:
    # AsyncWardenPool needs greenlet, which only SQLAlchemy's asyncio extra installs:
    # imported when asked for, so WardenPool works without it.
    if name == "AsyncWardenPool":
        from ._async_pool import AsyncWardenPool

        return AsyncWardenPool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
