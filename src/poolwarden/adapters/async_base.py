"""The asyncio half of the adapter interface: the same questions, I/O as coroutines.

``AsyncAdapter`` is to :class:`~poolwarden.AsyncPool` what :class:`Adapter` is to
:class:`~poolwarden.Pool`. Everything that needs no round trip (sockets, flags, error
classification) comes from :class:`BaseAdapter` and the drivers' shared bases, so a MySQL
error code means the same to both pools. The generic adapter here serves a callable target
returning connections of an asyncio driver poolwarden does not know: it awaits what the
driver returns as awaitable and assumes as little as the sync generic adapter.
"""

from __future__ import annotations

import inspect
from typing import Any

from .base import BaseAdapter

__all__ = ["AsyncAdapter", "maybe_await"]


async def maybe_await(value: Any) -> Any:
    """``value``, awaited if the driver returned an awaitable."""
    if inspect.isawaitable(value):
        return await value
    return value


class AsyncAdapter(BaseAdapter):
    """How the asyncio pool talks to one asyncio driver."""

    async def connect(self) -> Any:
        """Open a new connection."""
        return await maybe_await(self._connect())

    async def connect_to(self, host: str, port: int | None, address: str | None = None) -> Any:
        """Open a connection to ``host:port`` (at ``address``) with the URL's other
        arguments."""
        assert self._driver_connect is not None, "connect_to needs an adapter from a URL"
        kwargs = self.connect_kwargs_for(host, port, address)
        return await maybe_await(self._driver_connect(**kwargs))

    async def server_role(self, raw: Any) -> str | None:
        """The server's role: as reported, else from :attr:`role_query` (one round trip,
        outside any transaction); None if unknown."""
        role = self.known_role(raw)
        if role is not None or self.role_query is None:
            return role
        row = await self.first_row(raw, self.role_query)
        if self.role_query_opens_transaction and self.needs_rollback(raw):
            await self.rollback(raw)
        return self.role_from_row(row)

    async def first_row(self, raw: Any, sql: str) -> Any:
        """The first row ``sql`` returns on ``raw`` (None if none), its cursor closed."""
        cursor = await maybe_await(self.new_cursor(raw, (), {}))
        try:
            await maybe_await(cursor.execute(sql))
            return await maybe_await(cursor.fetchone())
        finally:
            await maybe_await(cursor.close())

    async def close(self, raw: Any) -> None:
        """Close ``raw``; errors propagate to the caller, which logs them."""
        await maybe_await(raw.close())

    async def discard(self, raw: Any, reason: str) -> None:
        """Close ``raw``, found dead or broken (``reason`` says how)."""
        await self.close(raw)

    async def ping(self, raw: Any) -> None:
        """One round trip that raises if the connection is unusable."""
        cursor = await maybe_await(self.new_cursor(raw, (), {}))
        try:
            await cursor.execute("SELECT 1")
            await cursor.fetchall()
        finally:
            await maybe_await(cursor.close())

    async def server_idle_timeout(self, raw: Any) -> float | None:
        """Seconds after which the server closes this session when idle (None: never or
        unknown). Read once per pool, on its first connection."""
        return None

    async def rollback(self, raw: Any) -> None:
        """End any open transaction."""
        await raw.rollback()

    async def reset_session(self, raw: Any) -> None:
        """Clear all session state; called only if :meth:`can_reset_session` is true."""
        raise NotImplementedError

    async def set_autocommit(self, raw: Any, value: bool) -> None:
        """Set the connection's autocommit mode."""
        await raw.set_autocommit(value)

    async def set_attribute(self, raw: Any, name: str, value: Any) -> None:
        """Restore a connection setting the borrower changed: asyncio drivers change
        settings with a coroutine (psycopg's ``set_isolation_level``, ...)."""
        await getattr(raw, f"set_{name}")(value)
