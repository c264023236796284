"""Helpers for the example services' tests: a live server in a background thread,
concurrent HTTP clients, ways to break the pool's connections at the server, and a
scrape of the services' ``/metrics``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from werkzeug.serving import WSGIRequestHandler, make_server

from poolwarden import PoolStats
from poolwarden.sqlalchemy import WardenPool
from tests.conftest import _check, mysql_url
from tests.integration.test_drivers import admin

#: Concurrent HTTP clients in each burst of requests.
CLIENTS = 8
#: Seconds anything in these tests may take to start, answer or stop; tests are bounded.
DEADLINE = 10.0

Result = httpx.Response | Exception
T = TypeVar("T")

#: Shared by the clients: each would otherwise load the CA bundle, ~50 ms apiece, though
#: they only speak plain HTTP.
_TLS = ssl.create_default_context()


@dataclass
class Service:
    """An example app being served: its base URL, the app, its engine, and its module."""

    url: str
    app: Any
    engine: sqlalchemy.Engine
    example: Any = None

    @property
    def pool(self) -> WardenPool:
        """The engine's current pool, a WardenPool."""
        pool = self.engine.pool
        assert isinstance(pool, WardenPool)
        return pool


@pytest.fixture
def database_url() -> str:
    """The test MariaDB through PyMySQL; skipped (or failed, under CI) if unreachable."""
    _check("mysql")
    return mysql_url("pymysql")


# -- servers ---------------------------------------------------------------------------
@contextmanager
def serve_asgi(app: Any, loop: asyncio.AbstractEventLoop | None = None) -> Iterator[str]:
    """Run an ASGI app under uvicorn in a background thread; yield its base URL. With
    ``loop`` (from :func:`event_loop_thread`) uvicorn serves on that loop rather than on
    one of its own, so the test can use the app's asyncio connections there too."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # port 0: the kernel picks a free port, no race
    port = sock.getsockname()[1]
    # log_config=None leaves the test's logging alone; uvicorn installs no signal
    # handlers outside the main thread.
    config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    stopped: Callable[[], bool]
    if loop is None:
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn")
        thread.start()
        stopped = lambda: not thread.is_alive()  # noqa: E731
    else:
        serving = asyncio.run_coroutine_threadsafe(server.serve(sockets=[sock]), loop)
        stopped = serving.done
    try:
        wait_for(lambda: server.started or stopped(), "uvicorn to start")
        assert server.started, "uvicorn did not start (see the log for the lifespan error)"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        if loop is None:
            thread.join(DEADLINE)
        else:
            concurrent.futures.wait([serving], DEADLINE)
        sock.close()
        assert stopped(), "uvicorn did not stop"
        if loop is not None:
            serving.result()  # uvicorn's own failure, if any


@contextmanager
def event_loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio event loop running in a background thread, for an asyncio app and for
    what the test does with the app's connections: they belong to the loop that made them.
    At the end, no task may be left on it (a pool not closed leaves its own)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="event loop")
    thread.start()
    try:
        yield loop
    finally:
        left = run_on(loop, _other_tasks()) if thread.is_alive() else []
        loop.call_soon_threadsafe(loop.stop)
        thread.join(DEADLINE)
        assert not thread.is_alive(), "the event loop did not stop"
        loop.run_until_complete(_cancel(left))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        assert not left, f"tasks left running on the event loop: {left}"


async def _other_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def run_on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on ``loop``, in its thread, and wait (at most :data:`DEADLINE`)."""
    return asyncio.run_coroutine_threadsafe(coro, loop).result(DEADLINE)


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without its access log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Run a WSGI app under werkzeug's threaded server in a background thread; yield its
    base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="werkzeug"
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(DEADLINE)
        assert not thread.is_alive(), "werkzeug did not stop"


# -- clients ---------------------------------------------------------------------------
def hammer(
    base_url: str, send: Callable[[httpx.Client, int], httpx.Response], count: int
) -> list[Result]:
    """Make requests ``send(client, i)`` for i in range(count) from :data:`CLIENTS`
    threads at once, each with its own keep-alive client. Returns each request's response
    or exception, in order of i."""
    results: list[Result | None] = [None] * count
    start = threading.Barrier(CLIENTS, timeout=DEADLINE)

    def client(first: int) -> None:
        with httpx.Client(base_url=base_url, timeout=DEADLINE, verify=_TLS) as http:
            start.wait()  # all clients at once: the pool sees concurrent checkouts
            for i in range(first, count, CLIENTS):
                try:
                    results[i] = send(http, i)
                except Exception as exc:  # a failed request is a result, not a crash
                    results[i] = exc

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE * 3)
    assert not any(thread.is_alive() for thread in threads), "HTTP clients hung"
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


def tally(results: list[Result]) -> Counter[int | str]:
    """Status codes, and exception type names for requests that got no response."""
    return Counter(
        r.status_code if isinstance(r, httpx.Response) else type(r).__name__ for r in results
    )


def expect(results: list[Result], status: int) -> list[httpx.Response]:
    """Assert every request got ``status``; return the responses."""
    assert tally(results) == Counter({status: len(results)})
    return [r for r in results if isinstance(r, httpx.Response)]


# -- the pool's connections at the server ----------------------------------------------
def warm(engine: sqlalchemy.Engine, count: int) -> list[int]:
    """Have ``count`` connections open and idle in the engine's pool; return their server
    session ids. They are checked out all at once, so they are ``count`` different ones."""
    with ExitStack() as stack:
        conns = [stack.enter_context(engine.connect()) for _ in range(count)]
        ids = [conn.execute(text("SELECT CONNECTION_ID()")).scalar_one() for conn in conns]
    assert len(set(ids)) == count
    return ids


async def warm_async(engine: AsyncEngine, count: int) -> list[int]:
    """:func:`warm` for an asyncio engine; to be run on the loop its pool serves."""
    async with AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(engine.connect()) for _ in range(count)]
        ids = [(await c.execute(text("SELECT CONNECTION_ID()"))).scalar_one() for c in conns]
    assert len(set(ids)) == count
    return ids


def kill(ids: list[int]) -> int:
    """``KILL`` these server sessions from a connection outside the pool; wait until the
    server has closed them. Returns how many were killed."""
    killed = 0
    with admin(mysql_url("pymysql")) as conn:
        cursor = conn.cursor()
        for session in ids:
            cursor.execute(f"KILL {int(session)}")
            killed += 1
    wait_until_gone(ids)
    return killed


def wait_until_gone(ids: list[int]) -> None:
    """Wait until none of these server sessions is in the process list any more."""

    with admin(mysql_url("pymysql")) as conn:
        cursor = conn.cursor()

        def gone() -> bool:
            cursor.execute("SELECT id FROM information_schema.processlist")
            return not {row[0] for row in cursor.fetchall()} & set(ids)

        wait_for(gone, "the server to close the sessions", poll=0.1)


def drop_table(name: str) -> None:
    """Drop a test table, from a connection outside any pool."""
    with admin(mysql_url("pymysql")) as conn:
        conn.cursor().execute(f"DROP TABLE IF EXISTS `{name}`")


def wait_for(condition: Callable[[], object], what: str, poll: float = 0.02) -> None:
    """Poll ``condition`` until it is true; fail after :data:`DEADLINE` seconds."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(poll)


# -- /metrics --------------------------------------------------------------------------
#: A database user the metrics tests connect as, with a password distinctive enough that
#: finding it anywhere in a scrape means the URL leaked.
SECRET_USER, SECRET_PASSWORD = "pw_metrics_user", "Sw0rdfish-4c1d-not-for-metrics"

Samples = dict[str, list[Sample]]


@pytest.fixture
def secret_url() -> Iterator[Callable[[str], str]]:
    """``secret_url(url)``: ``url`` as :data:`SECRET_USER` with :data:`SECRET_PASSWORD`, a
    user made for the test (dropped after it). When the server's account may not create
    users, ``url`` itself: the tests then look for its own password, if any."""
    made = False
    try:
        with admin(mysql_url("pymysql")) as conn:
            cursor = conn.cursor()
            cursor.execute(f"DROP USER IF EXISTS '{SECRET_USER}'@'%'")
            cursor.execute(f"CREATE USER '{SECRET_USER}'@'%' IDENTIFIED BY '{SECRET_PASSWORD}'")
            database = sqlalchemy.make_url(mysql_url("pymysql")).database
            cursor.execute(f"GRANT ALL ON `{database}`.* TO '{SECRET_USER}'@'%'")
            made = True
    except Exception:  # no CREATE USER privilege: fall back to the configured account
        pass

    def as_secret_user(url: str) -> str:
        if not made:
            return url
        secret = sqlalchemy.make_url(url).set(username=SECRET_USER, password=SECRET_PASSWORD)
        return secret.render_as_string(hide_password=False)

    try:
        yield as_secret_user
    finally:
        if made:
            with admin(mysql_url("pymysql")) as conn:
                conn.cursor().execute(f"DROP USER IF EXISTS '{SECRET_USER}'@'%'")


def scrape(base_url: str) -> tuple[str, Samples]:
    """``GET /metrics``: its body, and its samples by sample name (as
    ``prometheus_client``'s parser reads them, so the format is checked too)."""
    response = httpx.get(f"{base_url}/metrics", timeout=DEADLINE, verify=_TLS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return response.text, samples


def check_scrape(body: str, samples: Samples, stats: PoolStats, url: str) -> None:
    """The scrape describes exactly the pool whose ``stats`` these are, under the name
    ``host:port/database`` of ``url``, with nothing of its credentials."""
    parsed = sqlalchemy.make_url(url)
    if parsed.password:
        assert str(parsed.password) not in body
    if parsed.username:
        assert f"{parsed.username}@" not in body
    # A pool of an earlier test still alive in this process holds the plain name: then
    # this one is told apart by " #2", " #3"...
    expected = re.escape(f"{parsed.host}:{parsed.port or 3306}/{parsed.database}")
    names = {s.labels["db_client_connection_pool_name"] for ss in samples.values() for s in ss}
    assert len(names) == 1 and re.fullmatch(rf"{expected}( #\d+)?", names.pop())

    def value(name: str, **labels: str) -> float:
        (sample,) = [s for s in samples[name] if labels.items() <= s.labels.items()]
        return sample.value

    count = samples["db_client_connection_count"]
    assert sorted(s.labels["db_client_connection_state"] for s in count) == ["idle", "used"]
    assert value("db_client_connection_count", db_client_connection_state="idle") == stats.idle
    assert value("db_client_connection_count", db_client_connection_state="used") == stats.in_use
    assert value("db_client_connection_max") == stats.pool_size + stats.max_overflow
    assert value("poolwarden_connection_checkouts_total") == stats.checkouts
    assert value("db_client_connection_use_time_seconds_count") == stats.checkins
    assert value("db_client_connection_use_time_seconds_bucket", le="+Inf") == stats.checkins
    assert value("db_client_connection_wait_time_seconds_count") == stats.checkouts
    assert value("db_client_connection_timeouts_total") == stats.timeouts
