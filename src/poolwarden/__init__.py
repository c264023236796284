"""poolwarden: a database connection pool that never hands out a dead connection, never
leaks or hangs silently, and explains itself.

    import poolwarden
    pool = poolwarden.Pool("mysql+pymysql://user:pw@127.0.0.1:3306/db", pool_size=5)
    with pool.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT 1")

and, in asyncio code::

    pool = poolwarden.AsyncPool("mysql+asyncmy://user:pw@127.0.0.1:3306/db", pool_size=5)
    async with pool.connection() as conn:
        async with conn.cursor() as cur:
            await cur.execute("SELECT 1")
"""

from __future__ import annotations

from ._async._pool import AsyncPool
from ._async._proxy import AsyncPooledConnection, AsyncPooledCursor
from ._core.settings import PoolSettings
from ._core.stats import Percentiles, PoolStats
from ._net.url import URL, parse_url
from ._retry import is_disconnect_error, retry_on_disconnect
from ._sync._pool import Pool
from ._sync._proxy import PooledConnection, PooledCursor
from .errors import (
    ConnectionLost,
    ConnectionReturned,
    PoolClosed,
    PoolError,
    PoolTimeout,
    WrongRole,
)

__all__ = [
    "URL",
    "AsyncPool",
    "AsyncPooledConnection",
    "AsyncPooledCursor",
    "ConnectionLost",
    "ConnectionReturned",
    "Percentiles",
    "Pool",
    "PoolClosed",
    "PoolError",
    "PoolSettings",
    "PoolStats",
    "PoolTimeout",
    "PooledConnection",
    "PooledCursor",
    "WrongRole",
    "is_disconnect_error",
    "parse_url",
    "retry_on_disconnect",
]

__version__ = "0.1.0"
