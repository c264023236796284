"""Driver questions about SQLAlchemy's connection records, asked of the driver inside.

``WardenPool`` pools SQLAlchemy ``_ConnectionRecord`` objects: creating one connects and
fires SQLAlchemy's ``first_connect`` and ``connect`` events, closing one fires ``close``,
invalidating one fires ``invalidate``. Everything poolwarden needs to know about the
connection itself (its socket, how to ping it, what an error means) is answered by the
poolwarden adapter of the DB-API connection the record holds.

``AsyncWardenPool``'s records hold SQLAlchemy's sync-looking adapter around an asyncio
driver's connection (``AsyncAdapt_asyncmy_connection`` and the like): its questions go to
the asyncio driver's adapter about the driver's own connection, and what creates, closes
or invalidates a record runs in a greenlet, as SQLAlchemy's asyncio engines run pool code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import Pool as SAPool
from sqlalchemy.pool.base import _ConnectionRecord
from sqlalchemy.util.concurrency import greenlet_spawn

from ..adapters import (
    Adapter,
    AsyncAdapter,
    BaseAdapter,
    async_for_connection,
    for_connection,
    for_exception,
)

__all__ = ["AsyncRecordAdapter", "RecordAdapter"]


class _RecordQuestions(BaseAdapter):
    """What needs no I/O, for both kinds: the driver's answer about the connection inside."""

    name = "sqlalchemy"
    dialect = "sqlalchemy"

    def __init__(self, sa_pool: SAPool, description: str, checkout_checks: bool = True) -> None:
        super().__init__(None, self._new_record)
        self._sa_pool = sa_pool
        self._description = description
        #: False when SQLAlchemy's pre-ping checks each checkout instead (as in QueuePool,
        #: whose books then hold an invalidated record where poolwarden would drop it):
        #: the probe then only serves the held-connection check.
        self._checkout_checks = checkout_checks
        #: The adapter of the DB-API driver, known from the first connection.
        self._known: BaseAdapter | None = None

    def _new_record(self) -> _ConnectionRecord:
        record = _ConnectionRecord(self._sa_pool)
        conn = record.dbapi_connection
        if conn is not None:
            if self._known is None:
                self._known = self._recognise(self.inner(conn))
            self.connected(record)
        return record

    def connected(self, record: _ConnectionRecord) -> None:
        """The record holds a new connection (made by poolwarden, or put in by SQLAlchemy:
        a recycle, a reconnect on checkout): note which one, so that WardenPool sees when
        SQLAlchemy puts in another, and the session settings its connect events gave it."""
        fields = record.__dict__
        fields["_poolwarden_conn"] = record.dbapi_connection
        conn = self._conn(record)
        if conn is not None:
            fields["_poolwarden_session"] = self._rules().session_state(conn)

    def _recognise(self, conn: Any) -> BaseAdapter:
        raise NotImplementedError

    def inner(self, dbapi_connection: Any) -> Any:
        """The connection the driver's adapter speaks about."""
        return dbapi_connection

    def _conn(self, raw: Any) -> Any:
        """The driver connection in record ``raw``, or None while the record is empty."""
        conn = raw.dbapi_connection
        return None if conn is None else self.inner(conn)

    def _rules(self) -> BaseAdapter:
        return self._known or BaseAdapter(None, lambda: None)

    # -- the connection inside -----------------------------------------------------------
    def fileno(self, raw: Any) -> int | None:
        conn = self._conn(raw)
        return None if conn is None else self._rules().fileno(conn)

    def probe_for(self, raw: Any) -> Callable[[], Any] | None:
        conn = self._conn(raw)
        return None if conn is None else self._rules().probe_for(conn)

    def is_closed(self, raw: Any) -> bool:
        conn = self._conn(raw)
        return conn is None or raw._is_hard_or_soft_invalidated() or self._rules().is_closed(conn)

    def readable_means_dead(self, raw: Any) -> bool:
        if not self._checkout_checks:
            return False
        conn = self._conn(raw)
        return conn is None or self._rules().readable_means_dead(conn)

    def explain_connect_error(self, exc: BaseException) -> str | None:
        driver = self._known or for_exception(exc)
        return None if driver is None else driver.explain_connect_error(exc)

    def is_disconnect(self, exc: BaseException, raw: Any = None) -> bool:
        conn = None if raw is None else self._conn(raw)
        return self._rules().is_disconnect(exc, conn)

    def is_retryable_connect_error(self, exc: BaseException) -> bool:
        driver = self._known or for_exception(exc)
        return driver is not None and driver.is_retryable_connect_error(exc)

    def peer_of(self, raw: Any) -> tuple[str, int] | None:
        conn = self._conn(raw)
        return None if conn is None else self._rules().peer_of(conn)

    def known_role(self, raw: Any) -> str | None:
        conn = self._conn(raw)
        return None if conn is None else self._rules().known_role(conn)

    @property  # the driver's, known from the first connection
    def role_query(self) -> str | None:  # type: ignore[override]
        return self._rules().role_query

    def role_from_row(self, row: Any) -> str | None:
        return self._rules().role_from_row(row)

    def read_only_error(self, exc: BaseException, raw: Any = None) -> str | None:
        conn = None if raw is None else self._conn(raw)
        return self._rules().read_only_error(exc, conn)

    def is_wrong_role_error(self, exc: BaseException) -> bool:
        driver = self._known or for_exception(exc)
        return driver is not None and driver.is_wrong_role_error(exc)

    def detach(self, raw: Any) -> None:
        conn = self._conn(raw)
        if conn is not None:
            self._rules().detach(conn)

    def describe(self) -> str:
        return self._description


class RecordAdapter(_RecordQuestions, Adapter):
    """The adapter a WardenPool's inner pool uses: its "connections" are records."""

    def _recognise(self, conn: Any) -> BaseAdapter:
        return for_connection(conn, lambda: None)

    @property
    def driver(self) -> Adapter:
        """The DB-API driver's adapter (a cautious generic one until the first connect)."""
        known = self._known
        return known if isinstance(known, Adapter) else Adapter(None, lambda: None)

    def ping(self, raw: Any) -> None:
        conn = self._conn(raw)
        if conn is not None:  # an empty record reconnects when checked out
            self.driver.ping(conn)

    def rollback(self, raw: Any) -> None:
        self.driver.rollback(self._conn(raw))

    def server_idle_timeout(self, raw: Any) -> float | None:
        conn = self._conn(raw)
        return None if conn is None else self.driver.server_idle_timeout(conn)

    def server_role(self, raw: Any) -> str | None:
        conn = self._conn(raw)
        return None if conn is None else self.driver.server_role(conn)

    # -- the record ----------------------------------------------------------------------
    def close(self, raw: Any) -> None:
        """Close through SQLAlchemy, which fires the ``close`` event."""
        raw.close()

    def discard(self, raw: Any, reason: str) -> None:
        """Invalidate through SQLAlchemy, which fires the ``invalidate`` event."""
        raw.invalidate(sa_exc.DisconnectionError(reason))


class AsyncRecordAdapter(_RecordQuestions, AsyncAdapter):
    """The adapter of an AsyncWardenPool's inner asyncio pool: records of asyncio drivers."""

    def _recognise(self, conn: Any) -> BaseAdapter:
        return async_for_connection(conn, lambda: None)

    def inner(self, dbapi_connection: Any) -> Any:
        # SQLAlchemy's adapter around the asyncio driver's connection.
        return getattr(dbapi_connection, "driver_connection", dbapi_connection)

    @property
    def driver(self) -> AsyncAdapter:
        """The asyncio driver's adapter (a cautious generic one until the first connect)."""
        known = self._known
        return known if isinstance(known, AsyncAdapter) else AsyncAdapter(None, lambda: None)

    async def connect(self) -> Any:
        """A new record, made in a greenlet: the dialect's connect awaits the driver."""
        return await greenlet_spawn(self._new_record)

    async def ping(self, raw: Any) -> None:
        conn = self._conn(raw)
        if conn is not None:
            await self.driver.ping(conn)

    async def rollback(self, raw: Any) -> None:
        await self.driver.rollback(self._conn(raw))

    async def server_idle_timeout(self, raw: Any) -> float | None:
        conn = self._conn(raw)
        return None if conn is None else await self.driver.server_idle_timeout(conn)

    async def server_role(self, raw: Any) -> str | None:
        conn = self._conn(raw)
        return None if conn is None else await self.driver.server_role(conn)

    async def close(self, raw: Any) -> None:
        """Close through SQLAlchemy (the ``close`` event), in a greenlet."""
        await greenlet_spawn(raw.close)

    async def discard(self, raw: Any, reason: str) -> None:
        """Invalidate through SQLAlchemy (the ``invalidate`` event), in a greenlet."""
        await greenlet_spawn(raw.invalidate, sa_exc.DisconnectionError(reason))
