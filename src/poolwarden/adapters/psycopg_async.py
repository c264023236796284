"""psycopg 3's ``AsyncConnection``.

psycopg hands its socket to the event loop only while an operation runs, so an idle
connection's socket is polled exactly as the sync adapter polls it, and libpq reads what
the server sent unasked without blocking.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from ._postgres import IDLE_TIMEOUT_QUERY, idle_timeout_of
from .async_base import AsyncAdapter
from .psycopg import PsycopgBase, forget_prepared

__all__ = ["AsyncPsycopgAdapter"]


class AsyncPsycopgAdapter(PsycopgBase, AsyncAdapter):
    """``postgresql+psycopg://`` (also ``postgresql+psycopg_async://``) in an asyncio pool."""

    @classmethod
    def connect_function(cls, dbapi: ModuleType) -> Callable[..., Any]:
        """``AsyncConnection.connect``."""
        return dbapi.AsyncConnection.connect  # type: ignore[no-any-return]

    async def ping(self, raw: Any) -> None:
        """An empty query: one round trip, no parsing, outside any transaction."""
        if raw.autocommit or self.needs_rollback(raw):
            await raw.execute("")
            return
        await raw.set_autocommit(True)
        await raw.execute("")
        # Not in a ``finally``: after a failed or cancelled ping the connection is closed,
        # and setting it would raise an error that hides the one that counts.
        await raw.set_autocommit(False)

    async def close(self, raw: Any) -> None:
        """Close (libpq sends the terminate message)."""
        await raw.close()

    async def server_idle_timeout(self, raw: Any) -> float | None:
        """The server's ``idle_session_timeout``."""
        cursor = await raw.execute(IDLE_TIMEOUT_QUERY)
        row = await cursor.fetchone()
        await cursor.close()
        if self.needs_rollback(raw):
            await raw.rollback()
        return idle_timeout_of(row)

    async def reset_session(self, raw: Any) -> None:
        """Roll back, then ``DISCARD ALL`` outside a transaction block."""
        if self.needs_rollback(raw):
            await raw.rollback()
        autocommit = raw.autocommit
        await raw.set_autocommit(True)
        # Never prepared (it would delete itself); if it fails the connection is closed.
        await raw.execute("DISCARD ALL", prepare=False)
        forget_prepared(raw)
        await raw.set_autocommit(autocommit)
