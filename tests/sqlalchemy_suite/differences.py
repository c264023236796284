"""The tests of SQLAlchemy's own suite that pass with QueuePool and cannot pass with
WardenPool, each with why: what it asserts is a QueuePool behaviour poolwarden changes by
design (docs/sqlalchemy.md, "Where it differs, by design").

Every other test QueuePool passes must pass with WardenPool. A test listed here that starts
passing fails the tier too, so the list stays true. Patterns are ``fnmatch`` patterns of
pytest node ids (backend-specific class names end in the server's version).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["DIFFERENCES", "Difference"]


class Difference(NamedTuple):
    """A test that cannot pass with WardenPool, and why."""

    test: str
    why: str


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "test/engine/test_pool.py::QueuePoolTest::test_hanging_connect_within_overflow",
        "its creator reads a threading.local set only in the calling thread; WardenPool "
        "connects in background threads, so that a hanging connect never holds a checkout "
        "past its wait (the test's own point, that one hanging connect blocks nobody, holds)",
    ),
    Difference(
        "test/engine/test_pool.py::QueuePoolTest::test_connect_handler_not_called_for_recycled",
        "it assigns QueuePool's private queue (pool._pool.queue = ...); WardenPool's idle "
        "connections live in poolwarden's pool and _pool is a read-only view of them",
    ),
    Difference(
        "test/engine/test_pool.py::QueuePoolTest::test_connect_checkout_handler_always_gets_info",
        "it assigns QueuePool's private queue (pool._pool.queue = ...); WardenPool's idle "
        "connections live in poolwarden's pool and _pool is a read-only view of them",
    ),
    Difference(
        "test/engine/test_pool.py::QueuePoolTest::test_error_on_pooled_reconnect_cleanup_recycle",
        "it expects a connection left idle past pool_recycle to be still open, waiting to be "
        "reconnected at its next checkout; WardenPool retires it in the background when its "
        "lifetime ends (so one fewer is open, and _overflow is one lower)",
    ),
    Difference(
        "test/ext/asyncio/test_engine.py::AsyncEngineTest_*::test_cant_use_async_pool_w_create_engine",
        "it matches the error's text, which names the pool class: with the substitution the "
        "class is AsyncWardenPool, not AsyncAdaptedQueuePool (the error itself is raised)",
    ),
)
