"""poolwarden for SQLAlchemy: ``WardenPool`` and a ``create_engine`` that uses it.

    from poolwarden.sqlalchemy import create_engine
    engine = create_engine("mysql+pymysql://app:secret@db/shop", pool_size=10)

or, keeping SQLAlchemy's own ``create_engine``::

    engine = sqlalchemy.create_engine(url, poolclass=WardenPool, pool_size=10)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy

from ._held import driver_connection
from ._pool import WardenPool, WardenTimeout

__all__ = ["WardenPool", "WardenTimeout", "create_engine", "driver_connection"]


def create_engine(url: Any, **kwargs: Any) -> sqlalchemy.Engine:
    """:func:`sqlalchemy.create_engine` with ``poolclass=WardenPool``; nothing else changes.

    Every argument is SQLAlchemy's or WardenPool's. ``pool_pre_ping`` is not needed: the
    pool checks each connection before handing it out without a round trip, and pings
    the ones idle long enough to need it. ``pool_recycle`` is not needed either: the
    connections' lifetime is derived from the server's idle timeout.
    """
    kwargs.setdefault("poolclass", WardenPool)
    return sqlalchemy.create_engine(url, **kwargs)
