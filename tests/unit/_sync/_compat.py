"""The thread half of what the pool tests written once are written against
(``_async/_compat.py`` is the asyncio half, with the same names). Written by hand."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from tests.faults._sync._compat import (
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
    """The :class:`tests.fakedb.FakeConnection` behind a pooled connection's ``raw``."""
    return raw


def appending(seen: list[Any]) -> Configure:
    """A ``configure`` callback that records each new connection in ``seen``."""
    return seen.append


def set_setting(conn: Any, name: str, value: Any) -> None:
    """Change a setting of a pooled connection as a borrower does: DB-API's attribute
    assignment (``conn.autocommit = True``)."""
    setattr(conn, name, value)


@contextlib.contextmanager
def named(name: str) -> Iterator[None]:
    """Run the block as a request's thread named ``name`` would: the current thread renamed
    meanwhile (the name a leak report gives)."""
    thread = threading.current_thread()
    before = thread.name
    thread.name = name
    try:
        yield
    finally:
        thread.name = before
