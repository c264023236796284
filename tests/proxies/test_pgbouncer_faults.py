"""Capacity and in-flight faults through PgBouncer, and PgBouncer's own faults under load
(restart, admin KILL, RECONNECT, PAUSE): a query in flight may fail, with an error the
adapter recognises; nothing after it does, and the pool recovers by itself."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from poolwarden import Pool, PoolTimeout
from poolwarden.adapters._proxies import is_connection_limit_error, pgbouncer_error_kind
from tests.faults._sync._compat import outcome_of
from tests.faults._sync.workload import failures, request, request_in_task, run, warm
from tests.faults.sessions import occupy, sleep_sql
from tests.proxies.conftest import BouncerFactory, record, rules
from tests.proxies.pgbouncer import DisposablePgBouncer
from tests.servers import DisposablePostgres

REQUESTS = 9


def _pool(bouncer: DisposablePgBouncer, mode: str, **kwargs: Any) -> Pool:
    kwargs.setdefault("pool_size", 3)
    return Pool(bouncer.url("psycopg"), **rules(mode), **kwargs)


# -- capacity ---------------------------------------------------------------------------


def test_max_client_conn_used_up_then_freed(make_bouncer: BouncerFactory) -> None:
    """PgBouncer refuses clients beyond max_client_conn ("no more connections allowed",
    08P01); the pool waits and retries, and connects once a client leaves."""
    bouncer = make_bouncer("transaction", max_client_conn=2)
    blockers = occupy(bouncer, "postgres", 2)
    with pytest.raises(psycopg.OperationalError) as refused:
        occupy(bouncer, "postgres", 1)
    assert is_connection_limit_error(refused.value), refused.value
    with _pool(bouncer, "transaction", pool_size=2) as pool:
        task = request_in_task(pool, timeout=20)
        time.sleep(1.0)
        assert not task.done()  # still waiting, not failed
        blockers.pop().close()
        freed = time.monotonic()
        outcome = outcome_of(task, 30)
        stats = pool.stats()
        adapter = pool.engine.adapter
    for conn in blockers:
        conn.close()
    done = outcome
    recovery = done - freed if isinstance(done, float) else None
    record("max_client_conn used up, then freed", "transaction", int(recovery is None), "0",
           recovery)  # fmt: skip
    assert isinstance(done, float), done
    assert stats.connect_failures >= 1 and recovery is not None and recovery < 10
    assert adapter.is_connection_limit_error(refused.value)  # the storm guard sees it too


def test_max_client_conn_never_freed_times_out_with_cause(make_bouncer: BouncerFactory) -> None:
    bouncer = make_bouncer("transaction", max_client_conn=1)
    blockers = occupy(bouncer, "postgres", 1)
    try:
        with _pool(bouncer, "transaction") as pool, pytest.raises(PoolTimeout) as info:
            pool.getconn(timeout=1.5)
    finally:
        for conn in blockers:
            conn.close()
    record("max_client_conn never freed", "transaction", 1, "1", None, "PoolTimeout")
    cause = info.value.__cause__
    assert cause is not None and is_connection_limit_error(cause), repr(cause)


def test_server_down_at_start_then_up(
    make_bouncer: BouncerFactory, mode: str, running_postgres: DisposablePostgres
) -> None:
    """The server is down when the pool first connects through a fresh PgBouncer: logins
    fail ("server login has been failing ... (server_login_retry)", 08P01) until it is
    back; the checkout waits through them."""
    running_postgres.stop()
    bouncer = make_bouncer(mode)
    with _pool(bouncer, mode) as pool:
        task = request_in_task(pool, timeout=30)
        time.sleep(1.5)
        assert not task.done()
        running_postgres.start()
        up = time.monotonic()
        outcome = outcome_of(task, 40)
        errors = run(pool, 6, workers=2)
        stats = pool.stats()
    done = outcome
    recovery = done - up if isinstance(done, float) else None
    record("server down at start, up later", mode, int(recovery is None) + len(errors), "0",
           recovery, f"{stats.connect_failures} connect failures")  # fmt: skip
    assert isinstance(done, float), done
    # A fresh PgBouncer holds the login while it retries the server (server_login_retry,
    # 1 s here) for up to query_wait_timeout (5 s): the connect may not even fail.
    assert errors == []
    assert recovery is not None and recovery < 10


def test_server_down_for_good_times_out_with_cause(
    make_bouncer: BouncerFactory, running_postgres: DisposablePostgres
) -> None:
    """PgBouncer cannot log in to the server: the first login waits query_wait_timeout
    (1 s) and fails with it, later ones at once with "server login has been failing,
    try again later (server_login_retry)". The pool retries them all; its PoolTimeout
    carries the last, which PgBouncer's rules call retryable."""
    running_postgres.stop()
    bouncer = make_bouncer("transaction", query_wait_timeout=1)
    with _pool(bouncer, "transaction") as pool, pytest.raises(PoolTimeout) as info:
        pool.getconn(timeout=3.0)
    stats = pool.stats()
    cause = info.value.__cause__
    record(
        "server down for good", "transaction", 1, "1", None, _first_line([cause] if cause else [])
    )
    assert cause is not None and pool.engine.adapter.is_retryable_connect_error(cause), repr(cause)
    assert pgbouncer_error_kind(cause) == "retryable" and stats.connect_failures >= 1


def test_query_wait_timeout(make_bouncer: BouncerFactory) -> None:
    """All server connections busy longer than query_wait_timeout (1 s): PgBouncer
    fails the waiting query with 08P01 "query_wait_timeout" and closes the client. That
    request fails; the pool replaces the connection and later requests succeed."""
    bouncer = make_bouncer("transaction", default_pool_size=1, query_wait_timeout=1)
    holder = occupy(bouncer, "postgres", 1)[0]
    with _pool(bouncer, "transaction") as pool:
        warm(pool, 1)
        holder.execute("SELECT 1")  # a transaction left open holds the only server conn
        task = request_in_task(pool)
        outcome = outcome_of(task, 30)
        holder.rollback()
        errors = run(pool, REQUESTS)
        adapter = pool.engine.adapter
    holder.close()
    inflight = failures(outcome)
    record("query_wait_timeout (1 s)", "transaction", len(inflight) + len(errors), "1", None,
           "08P01 query_wait_timeout")  # fmt: skip
    assert len(inflight) == 1 and errors == []
    assert "query_wait_timeout" in str(inflight[0]) and adapter.is_disconnect(inflight[0])
    assert pgbouncer_error_kind(inflight[0]) == "retryable"


# -- in flight --------------------------------------------------------------------------


@pytest.mark.parametrize("crash", [False, True], ids=["restart", "crash"])
def test_server_fault_mid_query(
    bouncer: DisposablePgBouncer, mode: str, running_postgres: DisposablePostgres, crash: bool
) -> None:
    """The server restarts (57P01, forwarded by PgBouncer) or crashes (PgBouncer's own
    08P01 "server conn crashed?") under a running query."""
    with _pool(bouncer, mode) as pool:
        warm(pool, 3)
        task = request_in_task(pool, sleep_sql("postgresql", 10))
        time.sleep(0.5)
        if crash:
            running_postgres.stop(kill=True)
            running_postgres.start()
        else:
            running_postgres.restart()
        back = time.monotonic()
        outcome = outcome_of(task, 30)
        inflight = failures(outcome)
        errors = run(pool, REQUESTS)
        recovery = time.monotonic() - back
        adapter = pool.engine.adapter
    scenario = f"server {'crash' if crash else 'restart'} mid-query"
    record(scenario, mode, len(inflight) + len(errors), "1", recovery, _first_line(inflight))
    assert len(inflight) == 1 and errors == []
    assert adapter.is_disconnect(inflight[0]), repr(inflight[0])
    if crash:
        assert "server conn crashed?" in str(inflight[0])
        assert pgbouncer_error_kind(inflight[0]) == "disconnect"


def _first_line(errors: list[BaseException]) -> str:
    return str(errors[0]).strip().splitlines()[0][:60] if errors else ""


# -- PgBouncer's own faults under load ------------------------------------------------------

THREADS = 4


class Load:
    """``THREADS`` threads making short requests until stopped; errors are collected
    with the time they happened."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.errors: list[tuple[float, BaseException]] = []
        self.done = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work) for _ in range(THREADS)]

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                request(self.pool, "SELECT pg_sleep(0.01)", timeout=20)
                self.done += 1
            except Exception as exc:
                self.errors.append((time.monotonic(), exc))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        assert not any(t.is_alive() for t in self._threads), "a request hung"


#: PAUSE in session mode waits for clients to leave (see test_pause_in_session_mode...).
UNDER_LOAD = [
    (mode, fault)
    for mode in ("transaction", "session")
    for fault in ("restart", "KILL", "RECONNECT", "PAUSE")
    if (mode, fault) != ("session", "PAUSE")
]


@pytest.mark.parametrize(("mode", "fault"), UNDER_LOAD)
def test_pgbouncer_fault_under_load(bouncer: DisposablePgBouncer, mode: str, fault: str) -> None:
    """While four threads make requests: PgBouncer restarts, or the admin console KILLs
    the database (then RESUMEs it 0.3 s later), RECONNECTs it, or PAUSEs it for 0.3 s.
    A restart or KILL may fail the requests in flight (one per thread at most); a
    RECONNECT or PAUSE fails none. Afterwards no request fails."""
    with _pool(bouncer, mode, pool_size=THREADS) as pool:
        with Load(pool) as load:
            struck = time.monotonic()
            if fault == "restart":
                bouncer.restart()
            elif fault == "KILL":
                bouncer.admin("KILL test")
                time.sleep(0.3)
                bouncer.admin("RESUME test")
            elif fault == "RECONNECT":
                bouncer.admin("RECONNECT test")
            else:
                bouncer.admin("PAUSE test")
                time.sleep(0.3)
                bouncer.admin("RESUME test")
            done_at_fault = load.done
            time.sleep(0.7)
        errors = [exc for _, exc in load.errors]
        after = run(pool, REQUESTS, workers=3)
        stats = pool.stats()
        adapter = pool.engine.adapter
    last = max((at for at, _ in load.errors), default=struck)
    note = f"{len(errors)} in flight; last {last - struck:.2f} s after; {load.done} requests"
    expected = f"<= {THREADS}" if fault in ("restart", "KILL") else "0"
    record(f"PgBouncer {fault} under load", mode, len(errors) + len(after), expected, None, note)
    assert after == [] and load.done > done_at_fault
    if fault in ("restart", "KILL"):
        assert len(errors) <= THREADS, errors
        assert all(adapter.is_disconnect(exc) for exc in errors), errors
    else:
        assert errors == [] and stats.found_dead == 0, (errors, stats)


@pytest.mark.parametrize("mode", ["session"])
def test_pause_in_session_mode_waits_for_the_pool(bouncer: DisposablePgBouncer, mode: str) -> None:
    """PAUSE completes once every server connection is released; in session mode that is
    when its client disconnects, so it waits for the pool's idle connections to close
    (here: the pool is closed 1 s later), and the admin console answers only then."""
    pool = _pool(bouncer, mode)
    warm(pool, 3)
    outcome: list[float] = []
    pause = threading.Thread(target=lambda: outcome.append(len(bouncer.admin("PAUSE test"))))
    pause.start()
    pause.join(1.0)
    waited = not outcome
    pool.close()
    closed = time.monotonic()
    pause.join(20)
    released = time.monotonic() - closed
    bouncer.admin("RESUME test")
    record("PAUSE with idle session-mode clients", mode, 0, "0", released,
           "completes when the pool closes")  # fmt: skip
    assert waited and outcome == [0] and released < 5
