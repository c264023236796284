"""Both example services (FastAPI + SQLModel, Flask + Flask-SQLAlchemy) over real HTTP,
with concurrent clients, while the connections under them die."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from types import ModuleType
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from examples.fastapi_sqlmodel import app as fastapi_example
from examples.flask_sqlalchemy import app as flask_example

from poolwarden.sqlalchemy import WardenPool
from tests.examples.conftest import (
    Service,
    check_scrape,
    drop_table,
    expect,
    hammer,
    kill,
    scrape,
    serve_asgi,
    serve_wsgi,
    wait_for,
    wait_until_gone,
    warm,
)

#: The example's pool_size in these tests: every pooled connection gets broken.
POOL = 4


def free_leaked(example: ModuleType) -> None:
    """Close what the buggy route leaked, giving the connections back."""
    while example.LEAKED:
        example.LEAKED.pop().close()


def close_pools(service: Service, first: WardenPool) -> None:
    """Close the engine's pools: FastAPI's lifespan ``engine.dispose()`` swapped in a new
    one, and the first one's threads would otherwise live until the garbage collector runs."""
    first.close()
    service.pool.close()


def launch(stack: ExitStack, example: ModuleType, url: str, **options: Any) -> Service:
    """Start ``example`` on a live server; register its clean-up on ``stack``."""
    table = example.Item.__tablename__
    drop_table(table)  # a clean table, whatever an earlier run left
    stack.callback(drop_table, table)
    app = example.create_app(url, **options)
    if example is fastapi_example:
        service = Service("", app, app.state.engine, example)
        stack.callback(close_pools, service, service.pool)
        service.url = stack.enter_context(serve_asgi(app))
    else:
        with app.app_context():
            service = Service("", app, example.db.engine, example)
        stack.callback(service.pool.close)
        service.url = stack.enter_context(serve_wsgi(app))
    stack.callback(free_leaked, example)
    return service


@pytest.fixture(params=[fastapi_example, flask_example], ids=["fastapi", "flask"])
def start(request: pytest.FixtureRequest, database_url: str) -> Iterator[Callable[..., Service]]:
    """Start the example: ``start(url=None, **engine_options)``. At the end: leaked
    sessions closed, server stopped, pools closed, table dropped."""
    with ExitStack() as stack:

        def start_service(url: str | None = None, **engine_options: Any) -> Service:
            return launch(stack, request.param, url or database_url, **engine_options)

        yield start_service


def list_items(http: httpx.Client, i: int) -> httpx.Response:
    return http.get("/items")


@pytest.mark.mysql
def test_crud_with_concurrent_clients(start: Callable[..., Service]) -> None:
    svc = start()
    count = 40

    def create(http: httpx.Client, i: int) -> httpx.Response:
        return http.post("/items", json={"name": f"item {i}"})

    created = expect(hammer(svc.url, create, count), 201)
    items = {r.json()["name"]: r.json() for r in created}
    assert sorted(items) == sorted(f"item {i}" for i in range(count))
    assert all(item["quantity"] == 0 for item in items.values())
    ids = [items[f"item {i}"]["id"] for i in range(count)]
    assert len(set(ids)) == count

    listed = httpx.get(f"{svc.url}/items").json()
    assert [item["id"] for item in listed] == sorted(ids)

    got = expect(hammer(svc.url, lambda http, i: http.get(f"/items/{ids[i]}"), count), 200)
    assert [r.json()["name"] for r in got] == [f"item {i}" for i in range(count)]

    def update(http: httpx.Client, i: int) -> httpx.Response:
        return http.patch(f"/items/{ids[i]}", json={"quantity": i})

    updated = expect(hammer(svc.url, update, count), 200)
    assert [(r.json()["name"], r.json()["quantity"]) for r in updated] == [
        (f"item {i}", i) for i in range(count)
    ]

    expect(hammer(svc.url, lambda http, i: http.delete(f"/items/{ids[i]}"), count), 204)
    expect(hammer(svc.url, lambda http, i: http.get(f"/items/{ids[i]}"), count), 404)
    assert httpx.get(f"{svc.url}/items").json() == []

    # Bad input is refused before it reaches the database (FastAPI's code for it is 422).
    assert httpx.post(f"{svc.url}/items", json={"quantity": 1}).status_code in (400, 422)

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
        assert len(svc.example.LEAKED) == 1
        wait_for(leak_reports, "the leak report")
    (report,) = leak_reports()
    # The stack where the connection was checked out runs through the buggy route.
    route = rf'File "{re.escape(svc.example.__file__)}", line \d+, in buggy_leak'
    assert re.search(route, report.getMessage()), report.getMessage()
    # ... and the report's first line names the route itself as where it was taken.
    site = rf"checked out at {re.escape(svc.example.__file__)}:\d+:buggy_leak"
    assert re.search(site, report.getMessage()), report.getMessage()
    assert svc.pool.stats().leaks == 1

    free_leaked(svc.example)
    assert svc.pool.stats().in_use == 0


@pytest.mark.mysql
def test_example_engine_uses_warden_pool(start: Callable[..., Service]) -> None:
    svc = start(pool_size=3, max_overflow=2)
    pool = svc.pool
    assert (pool.size(), pool.stats().max_overflow) == (3, 2)
    expect(hammer(svc.url, list_items, 16), 200)


@pytest.mark.mysql
def test_metrics_endpoint_reports_the_pool(
    start: Callable[..., Service], database_url: str, secret_url: Callable[[str], str]
) -> None:
    """``GET /metrics`` is the engine's pool in Prometheus's text format: its counts agree
    with ``pool.stats()``, and the URL's credentials are nowhere in it."""
    url = secret_url(database_url)
    svc = start(url, pool_size=POOL)
    expect(hammer(svc.url, list_items, 40), 200)
    # One connection kept checked out, so that "used" is not just zero.
    assert httpx.get(f"{svc.url}/buggy/leak").status_code == 200
    wait_for(lambda: svc.pool.stats().in_use == 1, "the other connections to be returned")

    text, samples = scrape(svc.url)
    stats = svc.pool.stats()
    assert stats.checkouts == stats.checkins + 1 > 40
    check_scrape(text, samples, stats, url)
