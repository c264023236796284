"""The pools' types on the data path, checked by mypy (which runs over the tests) and run."""

from __future__ import annotations

import sqlite3
from typing import Any

from typing_extensions import assert_type

from poolwarden import AsyncPool, Pool, PoolSettings
from poolwarden._core.verdicts import Verdict


def test_a_pool_made_from_a_callable_has_its_connection_type() -> None:
    with Pool(lambda: sqlite3.connect(":memory:"), pool_size=1) as pool:
        assert_type(pool, Pool[sqlite3.Connection])
        with pool.connection() as conn:
            raw = conn.raw
            assert_type(raw, sqlite3.Connection)
            assert isinstance(raw, sqlite3.Connection)


def test_a_pool_made_from_a_url_is_any_unless_annotated() -> None:
    with Pool("sqlite:///:memory:", pool_size=1) as pool:
        assert_type(pool, Pool[Any])
        typed: Pool[sqlite3.Connection] = pool
        with typed.connection() as conn:
            assert isinstance(conn.raw, sqlite3.Connection)


async def _async_raw(pool: AsyncPool[sqlite3.Connection]) -> sqlite3.Connection:
    """Not run: mypy checks that an AsyncPool's connections carry its type too."""
    async with pool.connection() as conn:
        return conn.raw


def test_word_settings_are_literals_and_verdicts_an_enum() -> None:
    settings = PoolSettings(reset="session", load_balance_hosts="random", proxy=None)
    assert settings.reset == "session" and settings.balance_random
    assert [v.value for v in Verdict] == ["ok", "retire", "ping", "dead by probe", "dead"]
