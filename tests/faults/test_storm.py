"""Connection storms against a full server: MariaDB and PostgreSQL with
``max_connections=20``, every slot an application account may use held by others, then
200 threads on a Pool and 1000 asyncio tasks on an AsyncPool all wanting a connection.

What must hold: connect attempts stay bounded (the storm gate sends the server one at a
time, spaced by its backoff), every caller gets a connection or a PoolTimeout that names
the cause, and once slots are freed the pool recovers. The same storm on SQLAlchemy's
QueuePool is measured for comparison (its figures are reported, not asserted).

Attempts are counted on the client (the pool's own counters; SQLAlchemy's ``do_connect``
event) and on the server (MariaDB's ``Connection_errors_max_connections``, PostgreSQL's
FATAL refusals in its log).
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from poolwarden import AsyncPool, Pool, PoolTimeout
from poolwarden._core.storm import StormGate
from tests.conftest import unavailable
from tests.faults.conftest import record
from tests.servers import DisposableMariaDB, DisposablePostgres

#: Slots: 20 on each server. MariaDB keeps one more for SUPER (root reads its counters
#: through it); PostgreSQL keeps superuser_reserved_connections=3 (17 for the account).
MAX_CONNECTIONS = 20
USER = "storm"
THREADS, TASKS = 200, 1000
POOL_SIZE, MAX_OVERFLOW = 10, 20
#: How long each caller wants its connection: the checkout timeout.
WAIT = 2.5
#: The bound asserted: attempts per second reaching the server, averaged over the storm.
#: With the gate a process sends at most max_connecting (4) attempts before the first
#: refusal opens it, then one probe per pause (at least 0.125, 0.25, 0.5, 1 s...): about
#: 8 attempts in 2.5 s, ~3/s. 20/s leaves a wide margin while any retry loop without
#: backoff (QueuePool's callers retrying: hundreds to thousands a second) fails it.
MAX_RATE = 20.0
#: Bounded wait for recovery: the gate's longest pause, plus connect time and slack.
RECOVERY_WAIT = StormGate.CAP + 5.0

pytestmark = pytest.mark.timeout(60)


def _start(kind: str) -> Any:
    base = Path(tempfile.mkdtemp(prefix=f"poolwarden-storm-{kind}-"))
    try:
        cls = DisposableMariaDB if kind == "mysql" else DisposablePostgres
        server = cls(base, max_connections=MAX_CONNECTIONS)
    except Exception as exc:
        shutil.rmtree(base, ignore_errors=True)
        message = f"cannot start a disposable {kind} server: {exc!r}"
        unavailable(message)
    if kind == "mysql":
        server.execute(
            f"CREATE USER IF NOT EXISTS {USER}@'127.0.0.1'",
            f"GRANT ALL ON test.* TO {USER}@'127.0.0.1'",
        )
    else:
        server.execute(f"CREATE ROLE {USER} LOGIN", f"GRANT ALL ON DATABASE test TO {USER}")
    return server


@pytest.fixture(scope="module", params=["mysql", "postgresql"])
def full_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A server with max_connections=20 and an unprivileged account (module-wide)."""
    server = _start(str(request.param))
    yield server
    server.destroy()


def occupy_all(server: Any) -> list[Any]:
    """Open direct connections as the account until the server refuses one."""
    held: list[Any] = []
    for _ in range(MAX_CONNECTIONS + 5):
        try:
            if server.kind == "mysql":
                import pymysql

                conn: Any = pymysql.connect(
                    host="127.0.0.1", port=server.port, user=USER, database="test"
                )
            else:
                import psycopg

                conn = psycopg.connect(
                    host="127.0.0.1", port=server.port, user=USER, dbname="test"
                )
        except Exception:
            assert len(held) >= MAX_CONNECTIONS - 3, len(held)
            return held
        held.append(conn)
    raise AssertionError("the server never refused a connection")


#: Root sessions opened by :func:`server_attempts`, per server port.
_READINGS: dict[int, int] = {}


def server_attempts(server: Any) -> int:
    """Connection attempts the server has seen so far, refused ones included.

    MariaDB: ``Connections`` (attempts it gave a thread: the spare SUPER slot lets an
    account without SUPER in, to refuse it with 1040 after authentication) plus
    ``Connection_errors_max_connections`` (refused at accept, past even that slot), less
    the root sessions these readings open. PostgreSQL: the FATAL refusals in its log."""
    if server.kind == "mysql":
        rows = server.execute(
            "SHOW GLOBAL STATUS WHERE Variable_name IN "
            "('Connections', 'Connection_errors_max_connections')"
        )
        _READINGS[server.port] = _READINGS.get(server.port, 0) + 1
        return sum(int(value) for _, value in rows) - _READINGS[server.port]
    log = (server.base / "server.log").read_text(errors="replace")
    return sum(
        1
        for line in log.splitlines()
        if "FATAL" in line and ("too many clients" in line or "remaining connection slots" in line)
    )


def names_cause(server: Any, text: str) -> bool:
    if server.kind == "mysql":
        return "Too many connections" in text
    return "too many clients" in text or "remaining connection slots" in text


@dataclass
class Figures:
    attempts: int
    seconds: float
    server_saw: int

    @property
    def rate(self) -> float:
        """Attempts per second, counted by the client."""
        return self.attempts / self.seconds

    @property
    def server_rate(self) -> float:
        """Attempts per second, counted by the server."""
        return self.server_saw / self.seconds

    def __str__(self) -> str:
        return (
            f"{self.attempts} connect attempts in {self.seconds:.1f} s = {self.rate:.1f}/s "
            f"(server saw {self.server_saw})"
        )


def driver_of(server: Any, asyncio: bool) -> str:
    if server.kind == "mysql":
        return "asyncmy" if asyncio else "pymysql"
    return "psycopg"


def url(server: Any, asyncio: bool = False) -> str:
    return str(server.url(driver_of(server, asyncio), user=USER))


# -- poolwarden ------------------------------------------------------------------------------
def thread_storm(count: int, work: Any) -> list[Any]:
    """Run ``work()`` in ``count`` threads at once; their results or errors."""
    results: list[Any] = []
    lock = threading.Lock()
    go = threading.Event()

    def one() -> None:
        go.wait()
        try:
            outcome = work()
        except Exception as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(WAIT + RECOVERY_WAIT + 10)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    return results


def checkout_and_hold(pool: Pool, timeout: float) -> float:
    """Check out, hold briefly, give back; the moment it got the connection."""
    with pool.connection(timeout=timeout) as conn:
        got = time.monotonic()
        cursor = conn.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        time.sleep(0.05)
    return got


def test_thread_storm_is_bounded_and_recovers(full_server: Any) -> None:
    server = full_server
    label = f"{driver_of(server, False)} {THREADS} threads"
    blockers = occupy_all(server)
    try:
        seen_before = server_attempts(server)
        with Pool(
            url(server), pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, timeout=WAIT
        ) as pool:
            started = time.monotonic()
            outcomes = thread_storm(THREADS, lambda: checkout_and_hold(pool, WAIT))
            stats = pool.stats()
            storm = Figures(
                stats.connects + stats.connect_failures,
                time.monotonic() - started,
                server_attempts(server) - seen_before,
            )
            for conn in blockers:
                conn.close()
            blockers = []
            freed = time.monotonic()
            got = thread_storm(
                POOL_SIZE + MAX_OVERFLOW, lambda: checkout_and_hold(pool, RECOVERY_WAIT)
            )
    finally:
        for conn in blockers:
            conn.close()
    timeouts = [o for o in outcomes if isinstance(o, PoolTimeout)]
    failed_recovery = [g for g in got if not isinstance(g, float)]
    recovery = max(g for g in got if isinstance(g, float)) - freed if not failed_recovery else None
    note = f"{storm}; storm_waits={stats.storm_waits}"
    record("storm: server full, poolwarden", label, len(timeouts), THREADS, recovery, note)
    assert len(timeouts) == len(outcomes) == THREADS, [o for o in outcomes if o not in timeouts]
    assert all(names_cause(server, str(t)) for t in timeouts), str(timeouts[0])
    assert all("backs off" in str(t) for t in timeouts), str(timeouts[0])
    assert storm.rate <= MAX_RATE and storm.server_rate <= MAX_RATE, storm
    assert failed_recovery == [], failed_recovery


def test_pools_of_one_process_share_the_backoff(full_server: Any) -> None:
    """The same 200 threads spread over 4 pools (engines, or pools dispose() recreated):
    one gate for the server, so the process as a whole stays within the bound, not each
    pool: at most max_connecting (4) attempts per pool before the first refusal opens
    the gate, then one probe at a time for all of them."""
    server = full_server
    label = f"{driver_of(server, False)} 4 pools x {THREADS // 4} threads"
    blockers = occupy_all(server)
    pools = [Pool(url(server), pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW) for _ in range(4)]
    try:
        seen_before = server_attempts(server)
        started = time.monotonic()
        turn = itertools.count()
        lock = threading.Lock()

        def caller(timeout: float = WAIT) -> float:
            with lock:
                pool = pools[next(turn) % len(pools)]
            return checkout_and_hold(pool, timeout)

        outcomes = thread_storm(THREADS, caller)
        stats = [pool.stats() for pool in pools]
        storm = Figures(
            sum(s.connects + s.connect_failures for s in stats),
            time.monotonic() - started,
            server_attempts(server) - seen_before,
        )
        for conn in blockers:
            conn.close()
        blockers = []
        freed = time.monotonic()
        got = thread_storm(len(pools) * 5, lambda: caller(RECOVERY_WAIT))
        gates = {id(pool.engine._core.backoff.gate) for pool in pools}
    finally:
        for conn in blockers:
            conn.close()
        for pool in pools:
            pool.close()
    timeouts = [o for o in outcomes if isinstance(o, PoolTimeout)]
    failed_recovery = [g for g in got if not isinstance(g, float)]
    recovery = max(g for g in got if isinstance(g, float)) - freed if not failed_recovery else None
    note = f"{storm}; storm_waits={sum(s.storm_waits for s in stats)}"
    record("storm: server full, poolwarden", label, len(timeouts), THREADS, recovery, note)
    assert len(gates) == 1
    assert len(timeouts) == THREADS and all(names_cause(server, str(t)) for t in timeouts)
    assert storm.rate <= MAX_RATE and storm.server_rate <= MAX_RATE, storm
    assert failed_recovery == [], failed_recovery


def test_task_storm_is_bounded_and_recovers(full_server: Any) -> None:
    server = full_server
    label = f"{driver_of(server, True)} {TASKS} tasks"
    blockers = occupy_all(server)

    async def one(pool: AsyncPool, timeout: float) -> Any:
        try:
            async with pool.connection(timeout=timeout) as conn:
                got = time.monotonic()
                await asyncio.sleep(0.05)
                del conn
                return got
        except Exception as exc:
            return exc

    async def main() -> tuple[list[Any], Figures, int, list[Any], float]:
        nonlocal blockers
        seen_before = server_attempts(server)
        pool = AsyncPool(
            url(server, asyncio=True), pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, timeout=WAIT
        )
        async with pool:
            started = time.monotonic()
            outcomes = await asyncio.gather(*(one(pool, WAIT) for _ in range(TASKS)))
            stats = pool.stats()
            storm = Figures(
                stats.connects + stats.connect_failures,
                time.monotonic() - started,
                server_attempts(server) - seen_before,
            )
            for conn in blockers:
                conn.close()
            blockers = []
            freed = time.monotonic()
            size = POOL_SIZE + MAX_OVERFLOW
            got = await asyncio.gather(*(one(pool, RECOVERY_WAIT) for _ in range(size)))
        return list(outcomes), storm, stats.storm_waits, list(got), freed

    try:
        outcomes, storm, waits, got, freed = asyncio.run(main())
    finally:
        for conn in blockers:
            conn.close()
    timeouts = [o for o in outcomes if isinstance(o, PoolTimeout)]
    failed_recovery = [g for g in got if not isinstance(g, float)]
    recovery = max(g for g in got if isinstance(g, float)) - freed if not failed_recovery else None
    note = f"{storm}; storm_waits={waits}"
    record("storm: server full, poolwarden", label, len(timeouts), TASKS, recovery, note)
    assert len(timeouts) == len(outcomes) == TASKS, [o for o in outcomes if o not in timeouts]
    assert all(names_cause(server, str(t)) for t in timeouts), str(timeouts[0])
    assert all("backs off" in str(t) for t in timeouts), str(timeouts[0])
    assert storm.rate <= MAX_RATE and storm.server_rate <= MAX_RATE, storm
    assert failed_recovery == [], failed_recovery


# -- QueuePool, for comparison ----------------------------------------------------------------
def test_queuepool_thread_storm_for_comparison(full_server: Any) -> None:
    """The same callers on SQLAlchemy's QueuePool, which connects in the caller's thread
    and raises the refusal at once: a caller that wants its connection for WAIT seconds
    can only ask again. Measured, not asserted."""
    import sqlalchemy  # a dependency of the tests: missing is a failure, not a skip

    server = full_server
    engine = sqlalchemy.create_engine(
        url(server), pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_timeout=3
    )
    attempts: list[None] = []
    sqlalchemy.event.listen(engine, "do_connect", lambda *_: attempts.append(None))
    blockers = occupy_all(server)
    try:
        seen_before = server_attempts(server)
        started = time.monotonic()
        deadline = started + WAIT

        def want_a_connection() -> Any:
            while True:
                try:
                    with engine.connect() as conn:
                        conn.exec_driver_sql("SELECT 1")
                        return None
                except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.TimeoutError) as exc:
                    # A TimeoutError: QueuePool lets pool_size + max_overflow connects run
                    # at once; the others wait pool_timeout, unwoken when a connect fails.
                    if time.monotonic() >= deadline:
                        return exc

        outcomes = thread_storm(THREADS, want_a_connection)
        storm = Figures(
            len(attempts), time.monotonic() - started, server_attempts(server) - seen_before
        )
    finally:
        for conn in blockers:
            conn.close()
        engine.dispose()
    errors = [o for o in outcomes if o is not None]
    named = sum(names_cause(server, str(e)) for e in errors)
    note = f"{storm}; {named} errors name the cause, {len(errors) - named} are bare timeouts"
    label = f"{driver_of(server, False)} {THREADS} threads"
    record("storm: server full, QueuePool (compare)", label, len(errors), THREADS, None, note)
    # Nobody got a connection; each error is the driver's refusal or QueuePool's timeout.
    assert len(errors) == THREADS, outcomes
    assert all(names_cause(server, str(e)) or "QueuePool limit" in str(e) for e in errors)
    assert len(attempts) >= POOL_SIZE + MAX_OVERFLOW, storm
