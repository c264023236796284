"""The fake driver of ``tests.fakedb`` as an asyncio driver: the same server and connections
(so the same failure switches), with coroutine methods where asyncio drivers have them."""

from __future__ import annotations

import asyncio
from typing import Any

from poolwarden.adapters import AsyncAdapter
from tests.fakedb import SERVER_DOWN, FakeConnection, FakeRules, FakeServer, OperationalError


class AsyncFakeCursor:
    def __init__(self, conn: AsyncFakeConnection) -> None:
        self._cursor = conn.sync.cursor()

    async def execute(self, sql: str, params: Any = None) -> None:
        await asyncio.sleep(0)  # a real driver yields to the loop while it waits
        if sql.startswith("SLOW"):  # a query still running when the task is cancelled
            await asyncio.sleep(60)
        self._cursor.execute(sql, params)

    async def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()

    async def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone()

    async def close(self) -> None:
        self._cursor.close()


class AsyncFakeConnection:
    """An asyncio-style connection over a :class:`FakeConnection` (``.sync``)."""

    def __init__(self, conn: FakeConnection) -> None:
        self.sync = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sync, name)  # the switches and counters: alive, statements, ...

    def cursor(self) -> AsyncFakeCursor:
        self.sync._op("cursor")
        return AsyncFakeCursor(self)

    async def commit(self) -> None:
        await asyncio.sleep(0)
        self.sync.commit()

    async def rollback(self) -> None:
        await asyncio.sleep(0)
        self.sync.rollback()

    async def ping(self) -> None:
        self.sync.pings += 1
        while self.sync.hang:  # an answer that never comes: only a deadline ends this
            await asyncio.sleep(0.01)
        self.sync._op("ping")

    async def reset(self) -> None:
        self.sync.reset()

    async def set_autocommit(self, value: bool) -> None:
        self.sync.autocommit = value

    async def set_isolation_level(self, value: str) -> None:
        self.sync.isolation_level = value

    async def close(self) -> None:
        self.sync.close()


class AsyncFakeServer:
    """``connect`` is a coroutine function; everything else is the sync fake server's."""

    def __init__(self, server: FakeServer) -> None:
        self.sync = server

    async def connect(self) -> AsyncFakeConnection:
        if self.sync.connect_delay:
            await asyncio.sleep(self.sync.connect_delay)
        if not self.sync.is_up:
            raise OperationalError(SERVER_DOWN, "Can't connect to server (Connection refused)")
        connect_delay, self.sync.connect_delay = self.sync.connect_delay, 0.0
        try:
            return AsyncFakeConnection(self.sync.connect())
        finally:
            self.sync.connect_delay = connect_delay


class AsyncFakeAdapter(FakeRules, AsyncAdapter):
    """What poolwarden would know of this driver (as ``tests.fakedb.FakeAdapter``)."""

    def __init__(self, server: AsyncFakeServer) -> None:
        import tests.fakedb as module

        super().__init__(module, server.connect)
        self.server = server

    async def server_idle_timeout(self, raw: Any) -> float | None:
        return self.server.sync.idle_timeout

    async def ping(self, raw: Any) -> None:
        await raw.ping()

    async def reset_session(self, raw: Any) -> None:
        await raw.reset()
