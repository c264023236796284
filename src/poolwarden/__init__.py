"""poolwarden: a database connection pool that never hands out a dead connection, never
leaks or hangs silently, and explains itself.

    import poolwarden
    pool = poolwarden.Pool("mysql+pymysql://user:pw@127.0.0.1:3306/db", pool_size=5)
    with pool.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT 1")
"""

from __future__ import annotations

from ._pool import Pool
from ._proxy import PooledConnection, PooledCursor
from ._stats import Percentiles, PoolStats
from ._url import URL, parse_url
from .errors import ConnectionReturned, PoolClosed, PoolError, PoolTimeout

__all__ = [
    "URL",
    "ConnectionReturned",
    "Percentiles",
    "Pool",
    "PoolClosed",
    "PoolError",
    "PoolStats",
    "PoolTimeout",
    "PooledConnection",
    "PooledCursor",
    "parse_url",
]

__version__ = "0.1.0"
