"""Faults that strike while the pooled connections sit idle: users must see no error.

Written once for both pools (the sync copy is generated). On the asyncio side the event
loop keeps running through every fault (servers are stopped and started in a thread), as
it would in a service: the drivers' protocols see the ends of their streams when the loop
reads them, not when the pool next looks.
"""

from __future__ import annotations

import time
from typing import Literal

import pytest

from poolwarden import AsyncPool
from tests.faults.conftest import Target, record
from tests.faults.proxy import FaultProxy
from tests.faults.sessions import kill_sessions

from ._compat import MARKS, blocking, sleep
from .workload import first_success_after, run, session_idle_timeout, warm

pytestmark = [*MARKS, pytest.mark.timeout(120)]

REQUESTS = 9


@pytest.mark.parametrize("lifetime", ["auto", None], ids=["auto-lifetime", "probe-only"])
async def test_idle_past_session_idle_timeout(
    target: Target, lifetime: Literal["auto"] | None
) -> None:
    """The session's wait_timeout / idle_session_timeout (2 s, set by ``configure``: a
    coroutine on the asyncio side) passes while idle."""
    server, driver, label = target
    configure = session_idle_timeout(server.kind, 2)
    async with AsyncPool(
        server.url(driver), pool_size=3, max_lifetime=lifetime, configure=configure
    ) as pool:
        await warm(pool, 3)
        await sleep(3.0)
        started = time.monotonic()
        errors = await run(pool, REQUESTS)
        recovery = time.monotonic() - started
        stats = pool.stats()
    record(
        f"idle past session idle timeout ({lifetime or 'probe only'})",
        label,
        len(errors),
        0,
        recovery,
    )
    assert errors == []
    if lifetime == "auto":
        # Retired by the housekeeper before the server's timer fired (on a loaded machine
        # the housekeeper may be late for some, and the probe then finds them closed).
        assert stats.retired >= 1 and stats.retired + stats.found_dead >= 3, stats
    else:
        assert stats.found_dead == 3 and stats.retired == 0, stats


async def test_idle_past_global_idle_timeout(target: Target) -> None:
    """The server-wide idle timeout (2 s) passes while idle."""
    server, driver, label = target
    if server.kind == "mysql":
        server.execute("SET GLOBAL wait_timeout = 2")
        restore = ["SET GLOBAL wait_timeout = 28800"]
    else:
        server.execute("ALTER SYSTEM SET idle_session_timeout = '2s'", "SELECT pg_reload_conf()")
        restore = ["ALTER SYSTEM RESET idle_session_timeout", "SELECT pg_reload_conf()"]
    try:
        async with AsyncPool(server.url(driver), pool_size=3) as pool:
            await warm(pool, 3)
            assert pool.engine._core.lifetime is not None and pool.engine._core.lifetime <= 1.6
            await sleep(3.0)
            started = time.monotonic()
            errors = await run(pool, REQUESTS)
            recovery = time.monotonic() - started
            stats = pool.stats()
    finally:
        server.execute(*restore)
    record("idle past global idle timeout", label, len(errors), 0, recovery)
    assert errors == [] and stats.retired >= 1 and stats.retired + stats.found_dead >= 3, stats


async def test_kill_every_pooled_connection(target: Target) -> None:
    server, driver, label = target
    async with AsyncPool(server.url(driver), pool_size=3) as pool:
        before = await warm(pool, 3)
        assert await blocking(kill_sessions, server) == 3
        await sleep(0.2)
        started = time.monotonic()
        errors = await run(pool, REQUESTS)
        recovery = time.monotonic() - started
        after = await warm(pool, 3)
        stats = pool.stats()
    record("KILL of every pooled connection", label, len(errors), 0, recovery)
    assert errors == []
    assert not set(before) & set(after) and stats.found_dead == 3, stats


async def test_server_restart_while_idle(target: Target) -> None:
    server, driver, label = target
    async with AsyncPool(server.url(driver), pool_size=3) as pool:
        await warm(pool, 3)
        await blocking(server.restart)
        back = time.monotonic()
        recovery = await first_success_after(pool, back)
        errors = await run(pool, REQUESTS)
        stats = pool.stats()
    record("server restart while idle", label, len(errors), 0, recovery)
    assert errors == [] and stats.found_dead == 3, stats


async def test_server_killed_and_restarted_while_idle(target: Target) -> None:
    """A crash (SIGKILL / immediate stop) instead of a clean shutdown."""
    server, driver, label = target
    async with AsyncPool(server.url(driver), pool_size=3) as pool:
        await warm(pool, 3)
        await blocking(server.stop, kill=True)
        await blocking(server.start)
        back = time.monotonic()
        recovery = await first_success_after(pool, back)
        errors = await run(pool, REQUESTS)
    record("server crash + restart while idle", label, len(errors), 0, recovery)
    assert errors == []


async def test_blackholed_network_while_idle(target: Target, proxy: FaultProxy) -> None:
    """The network path of every idle connection dies silently (no FIN, no RST); new
    connections get through. Only a ping can tell, and it must not hang: the thread pool's
    watchdog gives it up after ``validation_timeout``, the asyncio pool cancels it."""
    server, driver, label = target
    url = server.url(driver, port=proxy.port)
    async with AsyncPool(url, pool_size=3, ping_after_idle=0.5, validation_timeout=1.0) as pool:
        await warm(pool, 3)
        assert proxy.blackhole() == 3
        await sleep(0.6)
        started = time.monotonic()
        errors = await run(pool, REQUESTS)
        recovery = time.monotonic() - started
        stats = pool.stats()
    record(
        "black-holed network while idle",
        label,
        len(errors),
        0,
        recovery,
        "validation_timeout=1 s",
    )
    assert errors == []
    assert stats.ping_failures >= 1 and stats.found_dead == 3, stats
    assert recovery < 10


async def test_connections_reset_while_idle(target: Target, proxy: FaultProxy) -> None:
    """Something on the path resets every idle connection (RST)."""
    server, driver, label = target
    async with AsyncPool(server.url(driver, port=proxy.port), pool_size=3) as pool:
        await warm(pool, 3)
        assert proxy.reset() == 3
        await sleep(0.1)
        started = time.monotonic()
        errors = await run(pool, REQUESTS)
        recovery = time.monotonic() - started
        stats = pool.stats()
    record("connections reset (RST) while idle", label, len(errors), 0, recovery)
    assert errors == [] and stats.found_dead == 3, stats


async def test_slow_network_is_not_mistaken_for_a_dead_one(
    target: Target, proxy: FaultProxy
) -> None:
    """50 ms of latency on every chunk: pings are slower but answer within the deadline."""
    server, driver, label = target
    url = server.url(driver, port=proxy.port)
    async with AsyncPool(url, pool_size=2, ping_after_idle=0.2, validation_timeout=2.0) as pool:
        await warm(pool, 2)
        proxy.delay(0.05)
        await sleep(0.3)
        errors = await run(pool, 4, workers=2)
        stats = pool.stats()
        proxy.delay(0)
    record("50 ms network delay", label, len(errors), 0, None)
    assert errors == [] and stats.ping_failures == 0 and stats.found_dead == 0, stats


async def test_blackholed_ping_is_cut_off_at_validation_timeout(
    target: Target, proxy: FaultProxy
) -> None:
    """One idle connection on a black-holed path, one request: the ping must be given up
    after ``validation_timeout`` (1 s) -- by the thread pool's watchdog, by cancelling it
    in the asyncio pool -- and a new connection take its place. The bound checked is
    generous (3 s): the point is that the deadline the pool was given holds, not how fast
    it is."""
    server, driver, label = target
    url = server.url(driver, port=proxy.port)
    async with AsyncPool(url, pool_size=1, ping_after_idle=0.5, validation_timeout=1.0) as pool:
        await warm(pool, 1)
        assert proxy.blackhole() == 1
        await sleep(0.6)
        started = time.monotonic()
        errors = await run(pool, 1, workers=1)
        took = time.monotonic() - started
        stats = pool.stats()
    record(
        "black-holed idle connection: ping deadline",
        label,
        len(errors),
        0,
        took,
        "validation_timeout=1 s; recovery = that one ping + a connect",
    )
    assert errors == [] and stats.ping_failures == 1 and stats.found_dead == 1, stats
    assert took < 3.0, f"a ping with validation_timeout=1 s took {took:.1f} s"
