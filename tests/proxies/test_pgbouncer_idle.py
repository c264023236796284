"""Faults that strike while the pool's connections to PgBouncer sit idle, in transaction
and session mode: users must see no error, and the pool hands out no dead connection.

Through PgBouncer a fault on the server side reaches the pool's connections only in
session mode (a client keeps its server connection); in transaction mode PgBouncer
absorbs it and the pool's connections stay good. Faults of PgBouncer itself (restart,
``KILL``, ``client_idle_timeout``) close them in both modes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from poolwarden import Pool
from tests.faults._sync.workload import first_success_after, run, warm
from tests.faults.conftest import wait_until
from tests.faults.sessions import kill_sessions
from tests.proxies.conftest import BouncerFactory, record, rules
from tests.proxies.pgbouncer import DisposablePgBouncer
from tests.servers import DisposablePostgres

REQUESTS = 9


def _pool(bouncer: DisposablePgBouncer, mode: str, **kwargs: Any) -> Pool:
    return Pool(bouncer.url("psycopg"), pool_size=3, **rules(mode), **kwargs)


def test_client_idle_timeout(make_bouncer: BouncerFactory, mode: str) -> None:
    """PgBouncer's client_idle_timeout (1 s) closes idle clients that hold no server
    connection: all of them in transaction mode, none in session mode (a client keeps
    its server connection there, and the timeout skips it)."""
    bouncer = make_bouncer(mode, client_idle_timeout=1)
    with _pool(bouncer, mode) as pool:
        warm(pool, 3)
        if mode == "transaction":
            # PgBouncer's janitor looks once a second: wait until it closed all three.
            wait_until(lambda: _clients(bouncer) == 0, timeout=10)
        else:
            time.sleep(2.5)
            assert _clients(bouncer) == 3
        started = time.monotonic()
        errors = run(pool, REQUESTS)
        recovery = time.monotonic() - started
        stats = pool.stats()
    record("client_idle_timeout (1 s) while idle", mode, len(errors), "0", recovery)
    assert errors == [], errors
    if mode == "transaction":
        # Closed by PgBouncer and caught by the probe, or retired before: the automatic
        # lifetime follows client_idle_timeout there (80% of it).
        assert stats.found_dead + stats.retired >= 3, stats
    else:
        assert stats.found_dead == 0, stats


def _clients(bouncer: DisposablePgBouncer) -> int:
    return sum(1 for row in bouncer.show("CLIENTS") if row["database"] == "test")


def test_server_sessions_killed_while_idle(
    bouncer: DisposablePgBouncer, mode: str, running_postgres: DisposablePostgres
) -> None:
    """pg_terminate_backend() of every server connection PgBouncer holds."""
    with _pool(bouncer, mode) as pool:
        warm(pool, 3)
        killed = kill_sessions(running_postgres)
        time.sleep(0.2)
        started = time.monotonic()
        errors = run(pool, REQUESTS)
        recovery = time.monotonic() - started
        stats = pool.stats()
    record(
        "server sessions killed while idle", mode, len(errors), "0", recovery, f"{killed} killed"
    )
    assert killed >= 1 and errors == []
    # Session mode: each client lost its server connection, and PgBouncer closed it.
    # Transaction mode: PgBouncer dropped its idle server connections, clients kept theirs.
    assert stats.found_dead == (3 if mode == "session" else 0), stats


def test_server_restart_while_idle(
    bouncer: DisposablePgBouncer, mode: str, running_postgres: DisposablePostgres
) -> None:
    with _pool(bouncer, mode) as pool:
        warm(pool, 3)
        running_postgres.restart()
        back = time.monotonic()
        recovery = first_success_after(pool, back)
        errors = run(pool, REQUESTS)
        stats = pool.stats()
    record("server restart while idle", mode, len(errors), "0", recovery)
    assert errors == [] and stats.found_dead == (3 if mode == "session" else 0), stats


def test_pgbouncer_restart_while_idle(bouncer: DisposablePgBouncer, mode: str) -> None:
    with _pool(bouncer, mode) as pool:
        warm(pool, 3)
        bouncer.restart()
        back = time.monotonic()
        recovery = first_success_after(pool, back)
        errors = run(pool, REQUESTS)
        stats = pool.stats()
    record("PgBouncer restart while idle", mode, len(errors), "0", recovery)
    assert errors == [] and stats.found_dead == 3, stats


def test_admin_reconnect_while_idle(bouncer: DisposablePgBouncer, mode: str) -> None:
    """RECONNECT closes each server connection once released: the clients never notice."""
    with _pool(bouncer, mode) as pool:
        warm(pool, 3)
        before = {row["remote_pid"] for row in bouncer.show("SERVERS")}
        bouncer.admin("RECONNECT test")
        errors = run(pool, REQUESTS)
        after = {row["remote_pid"] for row in bouncer.show("SERVERS")}
        stats = pool.stats()
    record("admin RECONNECT while idle", mode, len(errors), "0", None)
    assert errors == [] and stats.found_dead == 0, stats
    if mode == "transaction":
        assert before and not before & after, (before, after)  # all server connections new
    else:
        assert before == after  # released only when their clients disconnect


def test_admin_kill_while_idle(bouncer: DisposablePgBouncer, mode: str) -> None:
    """KILL drops every client and server connection of the database, and holds new
    logins until RESUME (here 0.5 s later): the checkout waits, then succeeds."""
    with _pool(bouncer, mode) as pool:
        warm(pool, 3)
        bouncer.admin("KILL test")
        resume = threading.Timer(0.5, bouncer.admin, ("RESUME test",))
        resume.start()
        started = time.monotonic()
        errors = run(pool, REQUESTS)
        recovery = time.monotonic() - started
        resume.join()
        stats = pool.stats()
    record("admin KILL + RESUME while idle", mode, len(errors), "0", recovery)
    assert errors == [] and stats.found_dead == 3, stats
