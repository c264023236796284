"""The FastAPI + SQLModel example over real HTTP, with connections dying underneath it."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from examples.fastapi_sqlmodel import app as example

from poolwarden.sqlalchemy import WardenPool
from tests.examples.conftest import (
    Service,
    drop_table,
    expect,
    hammer,
    kill,
    serve_asgi,
    wait_for,
    wait_until_gone,
    warm,
)

#: The example's pool_size in these tests: every pooled connection gets broken.
POOL = 4
TABLE = example.Item.__tablename__


@pytest.fixture
def start(database_url: str) -> Iterator[Callable[..., Service]]:
    """Start the example on a live server: ``start(url=None, **engine_options)``. At the
    end: leaked sessions closed, server stopped, pools closed, table dropped."""
    with ExitStack() as stack:

        def start_service(url: str | None = None, **engine_options: Any) -> Service:
            drop_table(TABLE)  # a clean table, whatever an earlier run left
            stack.callback(drop_table, TABLE)
            app = example.create_app(url or database_url, **engine_options)
            service = Service("", app, app.state.engine)
            stack.callback(close_pools, service, service.pool)
            service.url = stack.enter_context(serve_asgi(app))
            stack.callback(free_leaked)
            return service

        yield start_service


def close_pools(service: Service, first: WardenPool) -> None:
    """Close the engine's pools: the lifespan's ``engine.dispose()`` swapped in a new one,
    and the first one's threads would otherwise live until the garbage collector runs."""
    first.close()
    service.pool.close()


def free_leaked() -> None:
    """Close what the buggy route leaked, giving the connections back."""
    while example.LEAKED:
        example.LEAKED.pop().close()


def list_items(http: httpx.Client, i: int) -> httpx.Response:
    return http.get("/items")


@pytest.mark.mysql
def test_crud_with_concurrent_clients(start: Callable[..., Service]) -> None:
    svc = start()
    count = 40

    created = expect(
        hammer(svc.url, lambda http, i: http.post("/items", json={"name": f"item {i}"}), count),
        201,
    )
    items = {r.json()["name"]: r.json() for r in created}
    assert sorted(items) == sorted(f"item {i}" for i in range(count))
    assert all(item["quantity"] == 0 for item in items.values())
    ids = [items[f"item {i}"]["id"] for i in range(count)]
    assert len(set(ids)) == count

    listed = httpx.get(f"{svc.url}/items").json()
    assert [item["id"] for item in listed] == sorted(ids)

    got = expect(hammer(svc.url, lambda http, i: http.get(f"/items/{ids[i]}"), count), 200)
    assert [r.json()["name"] for r in got] == [f"item {i}" for i in range(count)]

    updated = expect(
        hammer(
            svc.url, lambda http, i: http.patch(f"/items/{ids[i]}", json={"quantity": i}), count
        ),
        200,
    )
    assert [(r.json()["name"], r.json()["quantity"]) for r in updated] == [
        (f"item {i}", i) for i in range(count)
    ]

    expect(hammer(svc.url, lambda http, i: http.delete(f"/items/{ids[i]}"), count), 204)
    expect(hammer(svc.url, lambda http, i: http.get(f"/items/{ids[i]}"), count), 404)
    assert httpx.get(f"{svc.url}/items").json() == []

    pool = svc.pool
    wait_for(lambda: pool.stats().in_use == 0, "every connection to be returned")
    stats = pool.stats()
    assert (stats.leaks, stats.timeouts, stats.found_dead) == (0, 0, 0)


@pytest.mark.mysql
def test_connections_idle_past_wait_timeout_are_replaced_unseen(
    start: Callable[..., Service], database_url: str
) -> None:
    """The server closes every pooled connection after 2 s idle; no request notices."""
    url = f"{database_url}?init_command={quote('SET SESSION wait_timeout=2')}"
    # max_lifetime=None: no retirement before the server's timeout, so the socket probe
    # alone must catch the closed connections.
    svc = start(url, pool_size=POOL, max_lifetime=None)
    ids = warm(svc.engine, POOL)
    wait_until_gone(ids)  # the server's wait_timeout closed them all

    expect(hammer(svc.url, list_items, 40), 200)
    stats = svc.pool.stats()
    assert stats.found_dead == POOL
    assert stats.pings == 0  # found by the probe, not by pings


@pytest.mark.mysql
def test_killed_connections_are_replaced_unseen(start: Callable[..., Service]) -> None:
    """Every pooled connection is KILLed at the server; no request notices."""
    svc = start(pool_size=POOL)
    killed = kill(warm(svc.engine, POOL))
    assert killed == POOL

    expect(hammer(svc.url, list_items, 40), 200)
    stats = svc.pool.stats()
    assert stats.found_dead == killed
    assert stats.pings == 0


@pytest.mark.mysql
def test_leaked_session_is_reported_with_the_route(
    start: Callable[..., Service], caplog: pytest.LogCaptureFixture
) -> None:
    svc = start(leak_threshold=0.5)

    def leak_reports() -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if r.name == "poolwarden"
            and r.levelno == logging.WARNING
            and "has been checked out" in r.getMessage()
        ]

    with caplog.at_level(logging.WARNING, logger="poolwarden"):
        assert httpx.get(f"{svc.url}/buggy/leak").status_code == 200
        assert len(example.LEAKED) == 1
        wait_for(leak_reports, "the leak report")
    (report,) = leak_reports()
    # The stack where the connection was checked out runs through the buggy route.
    route = rf'File "{re.escape(example.__file__)}", line \d+, in buggy_leak'
    assert re.search(route, report.getMessage()), report.getMessage()
    # ... and the report's first line names the route itself as where it was taken.
    site = rf"checked out at {re.escape(example.__file__)}:\d+:buggy_leak"
    assert re.search(site, report.getMessage()), report.getMessage()
    assert svc.pool.stats().leaks == 1

    free_leaked()
    assert svc.pool.stats().in_use == 0
