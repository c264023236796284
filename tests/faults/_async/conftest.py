"""The scenarios of this directory run on every asyncio driver (their generated copies in
``_sync/`` on every sync driver, through ``tests/faults/conftest.py``'s ``target``)."""

from __future__ import annotations

import pytest

from tests.faults.conftest import Target


@pytest.fixture
def target(async_target: Target) -> Target:
    """(running disposable server, asyncio driver, label) for every asyncio driver."""
    return async_target
