"""The asyncio FastAPI example (SQLModel's AsyncSession on AsyncWardenPool) over real HTTP,
with concurrent clients, while the connections under it die."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
from examples.fastapi_async import app as example
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from poolwarden.sqlalchemy import AsyncWardenPool
from tests.conftest import _check, mysql_url
from tests.examples.conftest import (
    check_scrape,
    drop_table,
    event_loop_thread,
    expect,
    hammer,
    kill,
    run_on,
    scrape,
    serve_asgi,
    wait_for,
    wait_until_gone,
    warm_async,
)

#: The example's pool_size in these tests: every pooled connection gets broken.
POOL = 4

T = TypeVar("T")


@dataclass
class AsyncService:
    """The asyncio example being served: its base URL, its engine, and the event loop
    uvicorn serves it on, where its connections must be used."""

    url: str
    engine: AsyncEngine
    loop: asyncio.AbstractEventLoop

    @property
    def pool(self) -> AsyncWardenPool:
        """The engine's current pool, an AsyncWardenPool."""
        pool = self.engine.sync_engine.pool
        assert isinstance(pool, AsyncWardenPool)
        return pool

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the service's loop; its result."""
        return run_on(self.loop, coro)


@pytest.fixture
def asyncmy_url() -> str:
    """The test MariaDB through asyncmy; skipped (or failed, under CI) if unreachable."""
    _check("mysql")
    return mysql_url("asyncmy")


def name_request_tasks(app: Any) -> Any:
    """The ASGI app with each request's task named after the request ("GET /items"), as
    an application may do so that leak reports say which request took the connection."""

    async def named(scope: Any, receive: Any, send: Any) -> None:
        task = asyncio.current_task()
        if scope["type"] == "http" and task is not None:
            task.set_name(f"{scope['method']} {scope['path']}")
        await app(scope, receive, send)

    return named


async def free_leaked() -> None:
    """Close what the buggy route leaked, giving the connections back."""
    while example.LEAKED:
        await example.LEAKED.pop().close()


async def close_pools(service: AsyncService, first: AsyncWardenPool) -> None:
    """Close the engine's pools: the lifespan's ``engine.dispose()`` swapped in a new one,
    and the first one's tasks would otherwise live until the garbage collector runs."""
    await greenlet_spawn(first.close)
    await greenlet_spawn(service.pool.close)


@pytest.fixture
def start(asyncmy_url: str) -> Iterator[Callable[..., AsyncService]]:
    """Start the example: ``start(url=None, **engine_options)``. At the end: leaked
    sessions closed, server stopped, pools closed, table dropped, event loop stopped."""
    with ExitStack() as stack:
        loop = stack.enter_context(event_loop_thread())

        def start_service(url: str | None = None, **engine_options: Any) -> AsyncService:
            drop_table(example.TABLE)  # a clean table, whatever an earlier run left
            stack.callback(drop_table, example.TABLE)
            app = example.create_app(url or asyncmy_url, **engine_options)
            service = AsyncService("", app.state.engine, loop)
            first = service.pool
            stack.callback(lambda: service.run(close_pools(service, first)))
            service.url = stack.enter_context(serve_asgi(name_request_tasks(app), loop))
            stack.callback(lambda: service.run(free_leaked()))
            return service

        yield start_service


def list_items(http: httpx.Client, i: int) -> httpx.Response:
    return http.get("/items")


@pytest.mark.mysql
def test_crud_with_concurrent_clients(start: Callable[..., AsyncService]) -> None:
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

    # Bad input is refused before it reaches the database.
    assert httpx.post(f"{svc.url}/items", json={"quantity": 1}).status_code == 422

    pool = svc.pool
    wait_for(lambda: pool.stats().in_use == 0, "every connection to be returned")
    stats = pool.stats()
    assert (stats.leaks, stats.timeouts, stats.found_dead) == (0, 0, 0)


@pytest.mark.mysql
@pytest.mark.parametrize("driver", ["asyncmy", "aiomysql"])
def test_connections_idle_past_wait_timeout_are_replaced_unseen(
    start: Callable[..., AsyncService], driver: str
) -> None:
    """The server closes every pooled connection after 2 s idle; no request notices."""
    url = mysql_url(driver, init_command=quote("SET SESSION wait_timeout=2"))
    # max_lifetime=None: no retirement before the server's timeout, so the socket probe
    # alone must catch the closed connections.
    svc = start(url, pool_size=POOL, max_lifetime=None)
    ids = svc.run(warm_async(svc.engine, POOL))
    wait_until_gone(ids)  # the server's wait_timeout closed them all

    expect(hammer(svc.url, list_items, 40), 200)
    stats = svc.pool.stats()
    assert stats.found_dead == POOL
    assert stats.pings == 0  # found by the probe, not by pings


@pytest.mark.mysql
def test_killed_connections_are_replaced_unseen(start: Callable[..., AsyncService]) -> None:
    """Every pooled connection is KILLed at the server; no request notices."""
    svc = start(pool_size=POOL)
    killed = kill(svc.run(warm_async(svc.engine, POOL)))
    assert killed == POOL

    expect(hammer(svc.url, list_items, 40), 200)
    stats = svc.pool.stats()
    assert stats.found_dead == killed
    assert stats.pings == 0


@pytest.mark.mysql
def test_leaked_session_is_reported_with_the_route_and_its_task(
    start: Callable[..., AsyncService], caplog: pytest.LogCaptureFixture
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
    # ... and the report's first line names the route itself, and the request's task.
    where = rf"checked out at {re.escape(example.__file__)}:\d+:buggy_leak"
    site = rf"{where} by task 'GET /buggy/leak':"
    assert re.search(site, report.getMessage()), report.getMessage()
    assert svc.pool.stats().leaks == 1

    svc.run(free_leaked())
    assert svc.pool.stats().in_use == 0


@pytest.mark.mysql
def test_example_engine_uses_async_warden_pool(start: Callable[..., AsyncService]) -> None:
    svc = start(pool_size=3, max_overflow=2)
    pool = svc.pool
    assert (pool.size(), pool.stats().max_overflow) == (3, 2)
    expect(hammer(svc.url, list_items, 16), 200)


@pytest.mark.mysql
def test_metrics_endpoint_reports_the_pool(
    start: Callable[..., AsyncService], asyncmy_url: str, secret_url: Callable[[str], str]
) -> None:
    """``GET /metrics`` is the engine's pool in Prometheus's text format: its counts agree
    with ``pool.stats()``, and the URL's credentials are nowhere in it."""
    url = secret_url(asyncmy_url)
    svc = start(url, pool_size=POOL)
    expect(hammer(svc.url, list_items, 40), 200)
    # One connection kept checked out, so that "used" is not just zero.
    assert httpx.get(f"{svc.url}/buggy/leak").status_code == 200
    wait_for(lambda: svc.pool.stats().in_use == 1, "the other connections to be returned")

    text, samples = scrape(svc.url)
    stats = svc.pool.stats()
    assert stats.checkouts == stats.checkins + 1 > 40
    check_scrape(text, samples, stats, url)
