"""Faults that strike while the pooled connections sit idle: users must see no error."""

from __future__ import annotations

import time
from typing import Any

import pytest

from poolwarden import Pool
from tests.faults.conftest import record
from tests.faults.proxy import FaultProxy
from tests.faults.workload import first_success_after, run, session_idle_timeout, warm

REQUESTS = 9


@pytest.mark.parametrize("lifetime", ["auto", None], ids=["auto-lifetime", "probe-only"])
def test_idle_past_session_idle_timeout(target: tuple[Any, str], lifetime: str | None) -> None:
    """The session's wait_timeout / idle_session_timeout (2 s) passes while idle."""
    server, driver = target
    configure = session_idle_timeout(server.kind, 2)
    with Pool(server.url(driver), pool_size=3, max_lifetime=lifetime, configure=configure) as pool:
        warm(pool, 3)
        time.sleep(3.0)
        started = time.monotonic()
        errors = run(pool, REQUESTS)
        recovery = time.monotonic() - started
        stats = pool.stats()
    record(
        f"idle past session idle timeout ({lifetime or 'probe only'})",
        driver,
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


def test_idle_past_global_idle_timeout(target: tuple[Any, str]) -> None:
    """The server-wide idle timeout (2 s) passes while idle."""
    server, driver = target
    if server.kind == "mysql":
        server.execute("SET GLOBAL wait_timeout = 2")
        restore = ["SET GLOBAL wait_timeout = 28800"]
    else:
        server.execute("ALTER SYSTEM SET idle_session_timeout = '2s'", "SELECT pg_reload_conf()")
        restore = ["ALTER SYSTEM RESET idle_session_timeout", "SELECT pg_reload_conf()"]
    try:
        with Pool(server.url(driver), pool_size=3) as pool:
            warm(pool, 3)
            assert pool.engine._core.lifetime is not None and pool.engine._core.lifetime <= 1.6
            time.sleep(3.0)
            started = time.monotonic()
            errors = run(pool, REQUESTS)
            recovery = time.monotonic() - started
            stats = pool.stats()
    finally:
        server.execute(*restore)
    record("idle past global idle timeout", driver, len(errors), 0, recovery)
    assert errors == [] and stats.retired >= 1 and stats.retired + stats.found_dead >= 3


def kill_sessions(server: Any) -> int:
    """Kill every session on the test database; return how many."""
    if server.kind == "mysql":
        rows = server.execute(
            "SELECT id FROM information_schema.processlist "
            "WHERE db = 'test' AND id <> CONNECTION_ID()"
        )
        for (session,) in rows:
            server.execute(f"KILL {session}")
        return len(rows)
    rows = server.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = 'test' AND pid <> pg_backend_pid()"
    )
    return len(rows)


def test_kill_every_pooled_connection(target: tuple[Any, str]) -> None:
    server, driver = target
    with Pool(server.url(driver), pool_size=3) as pool:
        before = warm(pool, 3)
        assert kill_sessions(server) == 3
        time.sleep(0.2)
        started = time.monotonic()
        errors = run(pool, REQUESTS)
        recovery = time.monotonic() - started
        after = warm(pool, 3)
        stats = pool.stats()
    record("KILL of every pooled connection", driver, len(errors), 0, recovery)
    assert errors == []
    assert not set(before) & set(after) and stats.found_dead == 3


def test_server_restart_while_idle(target: tuple[Any, str]) -> None:
    server, driver = target
    with Pool(server.url(driver), pool_size=3) as pool:
        warm(pool, 3)
        server.restart()
        back = time.monotonic()
        recovery = first_success_after(pool, back)
        errors = run(pool, REQUESTS)
        stats = pool.stats()
    record("server restart while idle", driver, len(errors), 0, recovery)
    assert errors == [] and stats.found_dead == 3


def test_server_killed_and_restarted_while_idle(target: tuple[Any, str]) -> None:
    """A crash (SIGKILL / immediate stop) instead of a clean shutdown."""
    server, driver = target
    with Pool(server.url(driver), pool_size=3) as pool:
        warm(pool, 3)
        server.stop(kill=True)
        server.start()
        back = time.monotonic()
        recovery = first_success_after(pool, back)
        errors = run(pool, REQUESTS)
    record("server crash + restart while idle", driver, len(errors), 0, recovery)
    assert errors == []


def test_blackholed_network_while_idle(target: tuple[Any, str], proxy: FaultProxy) -> None:
    """The network path of every idle connection dies silently (no FIN, no RST); new
    connections get through. Only a ping can tell, and it must not hang."""
    server, driver = target
    url = server.url(driver, port=proxy.port)
    with Pool(url, pool_size=3, ping_after_idle=0.5, validation_timeout=1.0) as pool:
        warm(pool, 3)
        assert proxy.blackhole() == 3
        time.sleep(0.6)
        started = time.monotonic()
        errors = run(pool, REQUESTS)
        recovery = time.monotonic() - started
        stats = pool.stats()
    record(
        "black-holed network while idle",
        driver,
        len(errors),
        0,
        recovery,
        "validation_timeout=1 s",
    )
    assert errors == []
    assert stats.ping_failures >= 1 and stats.found_dead == 3, stats
    assert recovery < 10


def test_connections_reset_while_idle(target: tuple[Any, str], proxy: FaultProxy) -> None:
    """Something on the path resets every idle connection (RST)."""
    server, driver = target
    with Pool(server.url(driver, port=proxy.port), pool_size=3) as pool:
        warm(pool, 3)
        assert proxy.reset() == 3
        time.sleep(0.1)
        started = time.monotonic()
        errors = run(pool, REQUESTS)
        recovery = time.monotonic() - started
        stats = pool.stats()
    record("connections reset (RST) while idle", driver, len(errors), 0, recovery)
    assert errors == [] and stats.found_dead == 3


def test_slow_network_is_not_mistaken_for_a_dead_one(
    target: tuple[Any, str], proxy: FaultProxy
) -> None:
    """50 ms of latency on every chunk: pings are slower but answer within the deadline."""
    server, driver = target
    url = server.url(driver, port=proxy.port)
    with Pool(url, pool_size=2, ping_after_idle=0.2, validation_timeout=2.0) as pool:
        warm(pool, 2)
        proxy.delay(0.05)
        time.sleep(0.3)
        errors = run(pool, 4, threads=2)
        stats = pool.stats()
        proxy.delay(0)
    record("50 ms network delay", driver, len(errors), 0, None)
    assert errors == [] and stats.ping_failures == 0 and stats.found_dead == 0
