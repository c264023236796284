"""The tests of this directory run on AsyncPool and the asyncio fake driver; their
generated copies in ``_sync/`` on Pool, through ``tests/conftest.py``'s ``make_pool``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from poolwarden import AsyncPool
from tests.fakedb import FakeServer
from tests.fakedb_async import AsyncFakeAdapter, AsyncFakeServer


@pytest.fixture
async def make_pool(server: FakeServer) -> AsyncIterator[Callable[..., AsyncPool]]:
    """Build asyncio pools on the fake driver (over ``server``); all are closed after the
    test."""
    aserver = AsyncFakeServer(server)
    pools: list[AsyncPool] = []

    def make(**kwargs: Any) -> AsyncPool:
        kwargs.setdefault("adapter", AsyncFakeAdapter(aserver))
        pool = AsyncPool(aserver.connect, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.close()
