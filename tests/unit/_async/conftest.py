"""The tests of this directory run on AsyncPool and the asyncio fake driver; their
generated copies in ``_sync/`` on Pool, through ``tests/conftest.py``'s ``make_pool``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from poolwarden import AsyncPool


@pytest.fixture
def make_pool(make_apool: Callable[..., AsyncPool]) -> Callable[..., AsyncPool]:
    """Here ``make_pool`` makes asyncio pools (``tests/conftest.py``'s ``make_apool``)."""
    return make_apool
