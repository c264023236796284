"""Driver questions about SQLAlchemy's connection records, asked of the driver inside.

``WardenPool`` pools SQLAlchemy ``_ConnectionRecord`` objects: creating one connects and
fires SQLAlchemy's ``first_connect`` and ``connect`` events, closing one fires ``close``,
invalidating one fires ``invalidate``. Everything poolwarden needs to know about the
connection itself (its socket, how to ping it, what an error means) is answered by the
poolwarden adapter of the DB-API connection the record holds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import Pool as SAPool
from sqlalchemy.pool.base import _ConnectionRecord

from ..adapters import Adapter, for_connection, for_exception
from ._held import unwrapped

__all__ = ["RecordAdapter"]


class RecordAdapter(Adapter):
    """The adapter a WardenPool's inner pool uses: its "connections" are records."""

    name = "sqlalchemy"
    dialect = "sqlalchemy"

    def __init__(self, sa_pool: SAPool, description: str) -> None:
        super().__init__(None, self._new_record)
        self._sa_pool = sa_pool
        self._description = description
        #: The adapter of the DB-API driver, known from the first connection.
        self._driver: Adapter | None = None

    def _new_record(self) -> _ConnectionRecord:
        record = _ConnectionRecord(self._sa_pool)
        if self._driver is None and record.dbapi_connection is not None:
            self._driver = for_connection(record.dbapi_connection, lambda: None)
        return record

    @property
    def driver(self) -> Adapter:
        """The DB-API driver's adapter (a cautious generic one until the first connect)."""
        return self._driver or Adapter(None, lambda: None)

    # -- the connection inside -----------------------------------------------------------
    def fileno(self, raw: Any) -> int | None:
        conn = unwrapped(raw.dbapi_connection)
        return None if conn is None else self.driver.fileno(conn)

    def is_closed(self, raw: Any) -> bool:
        conn = unwrapped(raw.dbapi_connection)
        return conn is None or raw._is_hard_or_soft_invalidated() or self.driver.is_closed(conn)

    def ping(self, raw: Any) -> None:
        conn = unwrapped(raw.dbapi_connection)
        if conn is not None:  # an empty record reconnects when checked out
            self.driver.ping(conn)

    def rollback(self, raw: Any) -> None:
        self.driver.rollback(unwrapped(raw.dbapi_connection))

    def readable_means_dead(self, raw: Any) -> bool:
        conn = unwrapped(raw.dbapi_connection)
        return conn is None or self.driver.readable_means_dead(conn)

    def server_idle_timeout(self, raw: Any) -> float | None:
        conn = unwrapped(raw.dbapi_connection)
        return None if conn is None else self.driver.server_idle_timeout(conn)

    def explain_connect_error(self, exc: BaseException) -> str | None:
        driver = self._driver or for_exception(exc)
        return None if driver is None else driver.explain_connect_error(exc)

    def is_disconnect(self, exc: BaseException, raw: Any = None) -> bool:
        conn = None if raw is None else unwrapped(raw.dbapi_connection)
        return self.driver.is_disconnect(exc, conn)

    def is_retryable_connect_error(self, exc: BaseException) -> bool:
        driver = self._driver or for_exception(exc)
        return driver is not None and driver.is_retryable_connect_error(exc)

    def detach(self, raw: Any) -> None:
        conn = unwrapped(raw.dbapi_connection)
        if conn is not None:
            self.driver.detach(conn)

    # -- the record ----------------------------------------------------------------------
    def close(self, raw: Any) -> None:
        """Close through SQLAlchemy, which fires the ``close`` event."""
        raw.close()

    def discard(self, raw: Any, reason: str) -> None:
        """Invalidate through SQLAlchemy, which fires the ``invalidate`` event."""
        raw.invalidate(sa_exc.DisconnectionError(reason))

    def describe(self) -> str:
        return self._description
