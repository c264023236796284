"""Roles, multi-host URLs and DNS re-resolution against the real servers, every driver.

The shared servers are primaries; a read-only server is a disposable MariaDB with
``read_only=1`` (the shared servers' globals are never changed). A moved name is a
resolver hook whose answer changes from the server to a TCP proxy in front of it: the
connections to the old address must retire, the new ones reach the new address.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import poolwarden
from tests.conftest import IN_CI, reachable_url
from tests.faults.proxy import FaultProxy
from tests.servers import DisposableMariaDB, free_port


@contextlib.contextmanager
def proxy_to(port: int) -> Iterator[FaultProxy]:
    """A TCP proxy to ``port`` on 127.0.0.1: another address for the same server."""
    proxy = FaultProxy(port)
    try:
        yield proxy
    finally:
        proxy.stop()


def _peer_port(conn: Any) -> int:
    peer = conn._entry.peer
    assert peer is not None and peer[0] == "127.0.0.1"
    return int(peer[1])


def test_role_primary_connects_and_remembers_the_peer(db_url: str) -> None:
    port = poolwarden.parse_url(db_url).port
    with poolwarden.Pool(db_url, role="primary", pool_size=1) as pool:
        with pool.connection() as conn:
            conn.cursor().execute("SELECT 1")
            assert _peer_port(conn) == port
        assert pool.stats().wrong_role == 0


def test_a_standby_pool_refuses_a_primary_and_says_why(db_url: str) -> None:
    with poolwarden.Pool(db_url, role="standby", pool_size=1, timeout=1.0) as pool:
        with pytest.raises(poolwarden.PoolTimeout) as caught:
            pool.connection()
        text = str(caught.value)
        assert "standby" in text and ("primary" in text or "not in hot standby" in text)
        assert pool.stats().wrong_role >= 1
        assert pool.stats().connect_failures >= 2  # retried, not given up at once


@pytest.mark.anyio
async def test_asyncio_role_checks(async_db_url: str) -> None:
    port = poolwarden.parse_url(async_db_url, asyncio=True).port
    pool = poolwarden.AsyncPool(async_db_url, role="primary", pool_size=1)
    async with pool, pool.connection() as conn:
        assert _peer_port(conn) == port
    async with poolwarden.AsyncPool(async_db_url, role="standby", timeout=1.0) as pool:
        with pytest.raises(poolwarden.PoolTimeout, match="standby"):
            await pool.connection()
        assert pool.stats().wrong_role >= 1


# -- a read-only MariaDB next to the shared primary -----------------------------------
@pytest.fixture(scope="module")
def replica() -> Iterator[DisposableMariaDB]:
    """A disposable MariaDB in read-only mode, with an unprivileged user ``app``."""
    try:
        server = DisposableMariaDB(Path(tempfile.mkdtemp(prefix="poolwarden-replica-")))
    except (OSError, FileNotFoundError) as exc:  # no MariaDB binaries on this machine
        if IN_CI:
            pytest.fail(f"cannot start a disposable MariaDB: {exc!r}")
        pytest.skip(f"cannot start a disposable MariaDB: {exc!r}")
    server.execute(
        "CREATE USER IF NOT EXISTS root@'127.0.0.1'",
        "SET GLOBAL read_only = 1",
    )
    yield server
    server.destroy()


def test_hosts_are_tried_in_order_by_role(mysql_driver: str, replica: DisposableMariaDB) -> None:
    shared = poolwarden.parse_url(reachable_url(f"mysql+{mysql_driver}"))
    shared_port = shared.port or 3306
    closed = free_port()  # nothing listens there: the first host is down
    hosts = [f"127.0.0.1:{closed}", f"127.0.0.1:{replica.port}", f"127.0.0.1:{shared_port}"]
    url = f"mysql+{mysql_driver}://root@127.0.0.1/test"
    cases = {"primary": shared_port, "standby": replica.port, "prefer-standby": replica.port}
    for role, expected in cases.items():
        pool = poolwarden.Pool(url, hosts=hosts, role=role, pool_size=1, timeout=10)
        with pool, pool.connection() as conn:
            assert _peer_port(conn) == expected, role
    # With no standby listed, prefer-standby takes the primary.
    two = [hosts[0], hosts[2]]
    pool = poolwarden.Pool(url, hosts=two, role="prefer-standby", pool_size=1)
    with pool, pool.connection() as conn:
        assert _peer_port(conn) == shared_port


def test_a_url_listing_only_standbys_names_each_for_a_primary_pool(
    replica: DisposableMariaDB,
) -> None:
    closed = free_port()
    url = f"mysql+pymysql://root@127.0.0.1:{closed},127.0.0.1:{replica.port}/test"
    pool = poolwarden.Pool(url, role="primary", pool_size=1, timeout=1.0)
    with pool, pytest.raises(poolwarden.PoolTimeout) as caught:
        pool.connection()
    cause = caught.value.__cause__
    assert isinstance(cause, poolwarden.WrongRole)
    assert f"127.0.0.1:{replica.port} is standby" in str(cause)
    assert f"127.0.0.1:{closed} is " in str(cause)  # the refused one, with its error


def test_load_balance_hosts_spreads_connections(mysql_driver: str) -> None:
    shared_port = poolwarden.parse_url(reachable_url(f"mysql+{mysql_driver}")).port or 3306
    with proxy_to(shared_port) as proxy:
        hosts = [f"127.0.0.1:{proxy.port}", f"127.0.0.1:{shared_port}"]
        url = f"mysql+{mysql_driver}://root@127.0.0.1/test"
        with poolwarden.Pool(
            url, hosts=hosts, load_balance_hosts="random", pool_size=12, max_overflow=0
        ) as pool:
            conns = [pool.getconn() for _ in range(12)]
            ports = {_peer_port(c) for c in conns}
            for conn in conns:
                conn.close()
    assert ports == {proxy.port, shared_port}  # 12 draws from two hosts: both (p = 1 - 2^-11)


def test_libpq_picks_among_postgres_hosts_itself(postgres_driver: str) -> None:
    closed = free_port()
    port = poolwarden.parse_url(reachable_url(f"postgresql+{postgres_driver}")).port or 5432
    url = f"postgresql+{postgres_driver}://postgres@127.0.0.1:{closed},127.0.0.1:{port}/test"
    pool = poolwarden.Pool(url, role="primary", pool_size=1, timeout=10)
    with pool, pool.connection() as conn:
        assert _peer_port(conn) == port
        assert conn._entry is not None and conn._entry.host == "127.0.0.1"


def test_a_read_only_transaction_of_the_borrower_is_not_a_failover(db_url: str) -> None:
    begin = (
        "START TRANSACTION READ ONLY"
        if db_url.startswith("mysql")
        else "BEGIN TRANSACTION READ ONLY"
    )
    with poolwarden.Pool(db_url, role="primary", pool_size=2) as pool:
        with pool.connection() as conn:
            cur = conn.cursor()
            if db_url.startswith("postgresql"):
                conn.commit()
            cur.execute(begin)
            with pytest.raises(Exception, match=r"(?i)read.only"):
                cur.execute("CREATE TEMPORARY TABLE pw_ro (id int)")
            conn.rollback()
        with pool.connection() as conn:  # checked with the role query, found primary
            conn.cursor().execute("SELECT 1")
        stats = pool.stats()
    assert stats.demotions == 0 and stats.wrong_role == 0


# -- DNS -----------------------------------------------------------------------------
class MovingName:
    """A resolver whose answer for every name is one address, changed by the test."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[tuple[str, int]]:
        self.calls += 1
        return [("127.0.0.1", self.port)]


def _wait_for(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


@pytest.mark.parametrize("scheme", ["mysql+pymysql", "mysql+mysqldb", "postgresql+psycopg"])
def test_a_moved_name_retires_old_connections_and_new_ones_follow(scheme: str) -> None:
    real = poolwarden.parse_url(reachable_url(scheme))
    assert real.port is not None
    user = "root" if scheme.startswith("mysql") else "postgres"
    with proxy_to(real.port) as proxy:
        name = MovingName(real.port)
        url = f"{scheme}://{user}@db.poolwarden.test:{real.port}/test"
        with poolwarden.Pool(url, resolver=name, dns_refresh=0.2, pool_size=3) as pool:
            conns = [pool.getconn() for _ in range(3)]
            assert {_peer_port(c) for c in conns} == {real.port}
            for conn in conns:
                conn.close()
            name.port = proxy.port  # the name now points elsewhere
            assert _wait_for(lambda: pool.stats().moved == 3, 5.0)
            assert _wait_for(lambda: pool.stats().idle == 0, 5.0)  # retired, not kept
            conns = [pool.getconn() for _ in range(3)]
            assert {_peer_port(c) for c in conns} == {proxy.port}
            for conn in conns:
                conn.close()
            assert pool.stats().moved == 3  # the new ones are where the name points


def test_asyncio_pool_follows_a_moved_name() -> None:
    real = poolwarden.parse_url(reachable_url("mysql+asyncmy"), asyncio=True)
    assert real.port is not None

    async def scenario(proxy: FaultProxy) -> None:
        name = MovingName(real.port or 3306)
        url = f"mysql+asyncmy://root@db.poolwarden.test:{real.port}/test"
        async with poolwarden.AsyncPool(url, resolver=name, dns_refresh=0.2, pool_size=2) as pool:
            conns = [await pool.getconn() for _ in range(2)]
            for conn in conns:
                await conn.close()
            name.port = proxy.port
            for _ in range(100):
                if pool.stats().moved == 2 and pool.stats().idle == 0:
                    break
                await asyncio.sleep(0.05)
            assert pool.stats().moved == 2
            async with pool.connection() as conn:
                assert _peer_port(conn) == proxy.port

    with proxy_to(real.port) as proxy:
        asyncio.run(scenario(proxy))


def test_bad_arguments_name_themselves() -> None:
    url = "mysql+pymysql://root@127.0.0.1/test"
    with pytest.raises(ValueError, match="role must be one of"):
        poolwarden.Pool(url, role="writer")
    with pytest.raises(ValueError, match="load_balance_hosts must be one of"):
        poolwarden.Pool(url, load_balance_hosts="round-robin")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="proxy must be one of"):
        poolwarden.Pool(url, proxy="haproxy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resolver must be a callable"):
        poolwarden.Pool(url, resolver="8.8.8.8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dns_refresh must be"):
        poolwarden.Pool(url, dns_refresh=-1)
