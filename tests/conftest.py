"""Shared fixtures: the fake driver, and the real MariaDB and PostgreSQL servers.

The servers are found at POOLWARDEN_TEST_MYSQL (default ``root@127.0.0.1:3306/test``) and
POOLWARDEN_TEST_POSTGRES (default ``postgres@127.0.0.1:5432/test``). When one cannot be
reached its tests are skipped locally, but under CI (``CI=true``) they fail: a skipped
integration suite must never pass for a green run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NoReturn

import pytest

from poolwarden import AsyncPool, Pool
from tests.fakedb import FakeAdapter, FakeServer
from tests.fakedb_async import AsyncFakeAdapter, AsyncFakeServer

MYSQL = os.environ.get("POOLWARDEN_TEST_MYSQL", "root@127.0.0.1:3306/test")
POSTGRES = os.environ.get("POOLWARDEN_TEST_POSTGRES", "postgres@127.0.0.1:5432/test")
MYSQL_DRIVERS = ("pymysql", "mysqldb", "mysqlconnector")
POSTGRES_DRIVERS = ("psycopg", "psycopg2")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> NoReturn:
    """A server, driver or tool a test needs is missing: a skip, or under CI=true a failure."""
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a failure, not a skip)")
    pytest.skip(message)


_reachable: dict[str, str | None] = {}


def _check(kind: str) -> None:
    """Skip (locally) or fail (CI) when the server ``kind`` cannot be reached."""
    if kind not in _reachable:
        url = f"mysql+pymysql://{MYSQL}" if kind == "mysql" else f"postgresql+psycopg://{POSTGRES}"
        try:
            with Pool(url, pool_size=1, timeout=10) as pool, pool.connection() as conn:
                conn.cursor().execute("SELECT 1")
            _reachable[kind] = None
        except Exception as exc:
            _reachable[kind] = f"{kind} server at {url} unreachable: {exc!r}"
    problem = _reachable[kind]
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: a missing server is a failure, not a skip)")
        pytest.skip(problem)


def with_port(url: str, port: int) -> str:
    """``url`` with its server's port replaced by ``port`` (its host and the rest unchanged)."""
    scheme, _, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    credentials, at, hostport = netloc.rpartition("@")
    host = hostport.rsplit(":", 1)[0] if not hostport.endswith("]") else hostport
    return f"{scheme}://{credentials}{at}{host}:{port}{slash}{tail}"


def mysql_address(user: str, query: str = "") -> str:
    """A PyMySQL URL of the test MariaDB for ``user`` (``name`` or ``name:password``)."""
    hostport_db = MYSQL.rpartition("@")[2]
    return f"mysql+pymysql://{user}@{hostport_db}{'?' + query if query else ''}"


def mysql_url(driver: str, **query: str) -> str:
    """URL of the test MariaDB for ``driver``."""
    tail = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return f"mysql+{driver}://{MYSQL}{tail}"


def postgres_url(driver: str, **query: str) -> str:
    """URL of the test PostgreSQL for ``driver``."""
    tail = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return f"postgresql+{driver}://{POSTGRES}{tail}"


@pytest.fixture(params=MYSQL_DRIVERS)
def mysql_driver(request: pytest.FixtureRequest) -> str:
    _check("mysql")
    return str(request.param)


@pytest.fixture(params=POSTGRES_DRIVERS)
def postgres_driver(request: pytest.FixtureRequest) -> str:
    _check("postgres")
    return str(request.param)


@pytest.fixture(
    params=[f"mysql+{d}" for d in MYSQL_DRIVERS] + [f"postgresql+{d}" for d in POSTGRES_DRIVERS]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """A URL for each supported server driver."""
    return reachable_url(str(request.param))


def reachable_url(scheme: str) -> str:
    """The test server's URL for ``dialect+driver``, once the server answers."""
    dialect, _, driver = scheme.partition("+")
    if dialect == "mysql":
        _check("mysql")
        return mysql_url(driver)
    _check("postgres")
    return postgres_url(driver)


@pytest.fixture(autouse=True)
def no_storm_behind() -> Iterator[None]:
    """The storm gates are process-wide (a pool must inherit the backoff of the one a
    dispose() replaced): forget them between tests, so that a test that filled a server
    does not slow the next one's first connect to it."""
    from poolwarden._core import storm as _storm

    _storm.forget_all()
    yield


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def make_pool(server: FakeServer) -> Iterator[object]:
    """Build pools on the fake driver; all are closed after the test."""
    pools: list[Pool] = []

    def make(**kwargs: object) -> Pool:
        kwargs.setdefault("adapter", FakeAdapter(server))
        pool = Pool(server.connect, **kwargs)  # type: ignore[arg-type]
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


@pytest.fixture
async def make_apool(server: FakeServer) -> AsyncIterator[Callable[..., AsyncPool]]:
    """Build asyncio pools on the asyncio fake driver (over ``server``); all are closed
    after the test."""
    aserver = AsyncFakeServer(server)
    pools: list[AsyncPool] = []

    def make(**kwargs: Any) -> AsyncPool:
        kwargs.setdefault("adapter", AsyncFakeAdapter(aserver))
        pool = AsyncPool(aserver.connect, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.close()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``pytest.mark.anyio``) run on asyncio, the asyncio pool's loop."""
    return "asyncio"


ASYNC_URLS = ("mysql+asyncmy", "mysql+aiomysql", "postgresql+psycopg")


@pytest.fixture(params=ASYNC_URLS)
def async_db_url(request: pytest.FixtureRequest) -> str:
    """A URL for each supported asyncio driver (for poolwarden.AsyncPool)."""
    return reachable_url(str(request.param))
