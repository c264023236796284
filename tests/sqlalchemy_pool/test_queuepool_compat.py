"""WardenPool against QueuePool: the same scenarios on both pools must give the same
observable results (sizes, status, events, errors), apart from the documented differences."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool

from poolwarden import PoolTimeout
from poolwarden.sqlalchemy import WardenPool, WardenTimeout
from tests.fakedb import FakeServer
from tests.integration.test_drivers import dialect

EVENTS = (
    "connect",
    "first_connect",
    "checkout",
    "checkin",
    "reset",
    "invalidate",
    "soft_invalidate",
    "close",
    "detach",
    "close_detached",
)

Scenario = Callable[[Any, list[str]], list[Any]]


def run(pool_class: type, scenario: Scenario, **kwargs: Any) -> tuple[list[Any], list[str]]:
    server = FakeServer()
    pool = pool_class(server.connect, **kwargs)
    seen: list[str] = []
    for name in EVENTS:
        event.listen(pool, name, lambda *_, name=name: seen.append(name))
    try:
        return scenario(pool, seen), seen
    finally:
        pool.dispose()
        if isinstance(pool, WardenPool):
            pool.close()


def same_on_both(scenario: Scenario, **kwargs: Any) -> list[Any]:
    queue_result, queue_events = run(QueuePool, scenario, **kwargs)
    warden_result, warden_events = run(WardenPool, scenario, **kwargs)
    assert warden_result == queue_result
    assert warden_events == queue_events
    return warden_result


def sizes(pool: Any) -> tuple[int, int, int, int]:
    return (pool.size(), pool.checkedin(), pool.checkedout(), pool.overflow())


def test_sizes_and_status_through_overflow() -> None:
    def scenario(pool: Any, seen: list[str]) -> list[Any]:
        trace: list[Any] = [sizes(pool), pool.status()]
        held = [pool.connect() for _ in range(3)]
        trace += [sizes(pool), pool.status()]
        for conn in held:
            conn.close()
        trace += [sizes(pool), pool.status(), pool.timeout()]
        return trace

    same_on_both(scenario, pool_size=2, max_overflow=2, timeout=7)


def test_events_for_checkout_return_invalidate_detach() -> None:
    def scenario(pool: Any, seen: list[str]) -> list[Any]:
        trace: list[Any] = []
        conn = pool.connect()
        conn.cursor().execute("SELECT 1")
        conn.close()
        trace.append(list(seen))
        conn = pool.connect()
        conn.invalidate()
        conn.close()
        trace.append(sizes(pool))
        conn = pool.connect()
        conn.invalidate(soft=True)
        conn.close()
        conn = pool.connect()  # soft-invalidated: recycled on this checkout
        trace.append(sizes(pool))
        conn.detach()
        trace.append(sizes(pool))
        conn.close()  # a detached connection is really closed
        other = pool.connect()
        other.close()
        trace.append(sizes(pool))
        return trace

    same_on_both(scenario, pool_size=2, max_overflow=0)


def test_timeout_is_sqlalchemys_timeout_error() -> None:
    def scenario(pool: Any, seen: list[str]) -> list[Any]:
        held = pool.connect()
        with pytest.raises(sa_exc.TimeoutError) as info:
            pool.connect()
        held.close()
        phrase = "QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 0.20"
        return [info.value.code, str(info.value).startswith(phrase)]

    assert same_on_both(scenario, pool_size=1, max_overflow=0, timeout=0.2) == ["3o7r", True]


def test_warden_timeout_explains_itself() -> None:
    server = FakeServer()
    pool = WardenPool(server.connect, pool_size=1, max_overflow=0, timeout=0.2)
    held = pool.connect()
    with pytest.raises(WardenTimeout) as info:
        pool.connect()
    assert isinstance(info.value, PoolTimeout) and isinstance(info.value, TimeoutError)
    assert "test_queuepool_compat.py" in str(info.value)  # names who holds the connection
    held.close()
    pool.close()


def test_unlimited_sizes() -> None:
    def scenario(pool: Any, seen: list[str]) -> list[Any]:
        held = [pool.connect() for _ in range(25)]
        trace: list[Any] = [sizes(pool)]
        for conn in held:
            conn.close()
        trace.append(sizes(pool))
        return trace

    same_on_both(scenario, pool_size=0, max_overflow=-1)
    same_on_both(scenario, pool_size=3, max_overflow=-1)


def test_dispose_keeps_checked_out_usable_and_recreate_copies() -> None:
    # One documented difference: after dispose(), QueuePool forgets the connections still
    # checked out (checkedout() says 0, and -1 once one comes back); WardenPool counts them.
    def scenario(pool: Any, seen: list[str]) -> list[Any]:
        idle, held = pool.connect(), pool.connect()
        idle.close()
        pool.dispose()
        trace: list[Any] = [pool.checkedin()]
        held.cursor().execute("SELECT 1")
        held.close()
        trace.append(pool.checkedin())
        fresh = pool.recreate()
        trace += [type(fresh) is type(pool), fresh.size(), fresh.timeout(), sizes(fresh)]
        conn = fresh.connect()  # the listeners came along
        conn.close()
        fresh.dispose()
        return trace

    same_on_both(scenario, pool_size=2, max_overflow=1, timeout=3)


def test_garbage_collected_connection_comes_back() -> None:
    def scenario(pool: Any, seen: list[str]) -> list[Any]:
        def forgetful() -> None:
            conn = pool.connect()
            conn.cursor().execute("SELECT 1")

        forgetful()
        gc.collect()
        return [sizes(pool), seen.count("checkin"), seen.count("reset")]

    same_on_both(scenario, pool_size=2, max_overflow=0)


def test_reset_on_return_styles() -> None:
    for style in ("rollback", "commit", None):

        def scenario(pool: Any, seen: list[str]) -> list[Any]:
            conn = pool.connect()
            raw = conn.dbapi_connection
            conn.cursor().execute("SELECT 1")
            conn.close()
            return [raw.rollbacks, raw.in_transaction]

        same_on_both(scenario, pool_size=1, max_overflow=0, reset_on_return=style)


def test_dispose_keeps_counting_checked_out_connections() -> None:
    server = FakeServer()
    pool = WardenPool(server.connect, pool_size=2, max_overflow=1)
    idle, held = pool.connect(), pool.connect()
    idle.close()
    pool.dispose()
    assert sizes(pool) == (2, 0, 1, -1)
    held.close()
    assert sizes(pool) == (2, 1, 0, -1)
    pool.close()


def test_logs_where_queuepool_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Logging set up for SQLAlchemy's pools (``sqlalchemy.pool``) covers WardenPool, and
    SQLAlchemy's pool messages do not land in poolwarden's own logger."""

    def scenario(pool: Any, seen: list[str]) -> list[Any]:
        with caplog.at_level("DEBUG", logger="sqlalchemy.pool"):
            pool.connect().close()
        return sorted({r.name.rsplit(".", 1)[0] for r in caplog.records if "pool" in r.name})

    caplog.clear()
    queue = run(QueuePool, scenario)[0]
    caplog.clear()
    warden = run(WardenPool, scenario)[0]
    assert queue == ["sqlalchemy.pool.impl"] and warden == queue


@pytest.mark.parametrize("use_lifo", [False, True])
def test_connections_handed_out_in_queuepools_order(db_url: str, use_lifo: bool) -> None:
    """``pool_use_lifo`` means the same on both pools: by default the connection idle
    longest comes first (FIFO), with ``pool_use_lifo=True`` the most recently returned.
    Connections are told apart by their server session id."""
    session_id = text(
        "SELECT CONNECTION_ID()" if dialect(db_url) == "mysql" else "SELECT pg_backend_pid()"
    )

    def trace(pool_class: type) -> list[int]:
        engine = sqlalchemy.create_engine(
            db_url, poolclass=pool_class, pool_size=3, max_overflow=0, pool_use_lifo=use_lifo
        )
        try:
            first = [engine.connect() for _ in range(3)]
            ids = [conn.execute(session_id).scalar() for conn in first]
            for index in (1, 2, 0):  # idle from now on in this order
                first[index].close()

            def take() -> tuple[int, sqlalchemy.Connection]:
                conn = engine.connect()
                return ids.index(conn.execute(session_id).scalar()), conn

            a, held_a = take()
            held_a.close()
            (b, held_b), (c, held_c) = take(), take()
            held_b.close()
            d, held_d = take()
            held_c.close()
            held_d.close()
            return [a, b, c, d]
        finally:
            engine.dispose()
            if isinstance(engine.pool, WardenPool):
                engine.pool.close()

    queue = trace(QueuePool)
    assert queue == ([0, 0, 2, 0] if use_lifo else [1, 2, 0, 1])
    assert trace(WardenPool) == queue
