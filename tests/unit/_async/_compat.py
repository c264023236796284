"""The asyncio half of what the pool tests written once are written against
(``_sync/_compat.py`` is the thread half, with the same names). Written by hand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from tests.faults._async._compat import (
    ASYNC,
    MARKS,
    Configure,
    Started,
    outcome_of,
    sleep,
    start,
    until,
)

__all__ = [
    "ASYNC",
    "MARKS",
    "Started",
    "appending",
    "fake",
    "named",
    "outcome_of",
    "set_setting",
    "sleep",
    "start",
    "until",
]


def fake(raw: Any) -> Any:
    """The :class:`tests.fakedb.FakeConnection` behind a pooled connection's ``raw`` (the
    asyncio fake driver wraps one)."""
    return raw.sync


def appending(seen: list[Any]) -> Configure:
    """A ``configure`` callback that records each new connection in ``seen``: a coroutine
    function here (the pool awaits it), which yields to the event loop first."""

    async def configure(raw: Any) -> None:
        await asyncio.sleep(0)
        seen.append(raw)

    return configure


async def set_setting(conn: Any, name: str, value: Any) -> None:
    """Change a setting of a pooled connection as a borrower does: a property setter cannot
    await, so the asyncio proxy takes psycopg's ``await conn.set_<name>(value)``."""
    await getattr(conn, f"set_{name}")(value)


@contextlib.contextmanager
def named(name: str) -> Iterator[None]:
    """Run the block as a request's task named ``name`` would: the current task renamed
    meanwhile (the name a leak report gives)."""
    task = asyncio.current_task()
    assert task is not None
    before = task.get_name()
    task.set_name(name)
    try:
        yield
    finally:
        task.set_name(before)
