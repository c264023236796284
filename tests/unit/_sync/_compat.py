"""The thread half of what the pool tests written once are written against
(``_async/_compat.py`` is the asyncio half, with the same names). Written by hand."""

from __future__ import annotations

from typing import Any

from tests.faults._sync._compat import ASYNC, MARKS, Started, outcome_of, sleep, start, until

__all__ = ["ASYNC", "MARKS", "Started", "fake", "outcome_of", "sleep", "start", "until"]


def fake(raw: Any) -> Any:
    """The :class:`tests.fakedb.FakeConnection` behind a pooled connection's ``raw``."""
    return raw
