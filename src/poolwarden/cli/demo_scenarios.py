"""The demo's scenarios: what users hit, on three pools side by side.

Every pool is made by SQLAlchemy's ``create_engine`` with the same URL and sizes, so the
comparison is like for like: QueuePool as it comes, QueuePool with ``pool_pre_ping=True``,
and poolwarden's WardenPool (``poolwarden.sqlalchemy.create_engine``). Each scenario
returns one :class:`Outcome` per pool.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from ..sqlalchemy import create_engine as warden_engine
from . import demo_app
from .errors import driver_message
from .target import Target

__all__ = ["POOLS", "Demo", "Outcome"]

QUEUEPOOL, PRE_PING, POOLWARDEN = "QueuePool", "QueuePool+pre_ping", "poolwarden"
POOLS = (QUEUEPOOL, PRE_PING, POOLWARDEN)

#: The session idle timeout the first scenario sets.
IDLE_TIMEOUT = 1
#: Longest wait for the server to end sessions (past their timeout, or killed).
SERVER_CLOSES_WITHIN = 10.0
#: Requests per scenario: three at once (the pool's three idle connections), then more.
AT_ONCE, AFTERWARDS = 3, 6
LEAK_THRESHOLD = 0.5
CHECKOUT_TIMEOUT = 1.0


@dataclass
class Outcome:
    """What one pool did in one scenario."""

    requests: int = 0
    errors: int = 0
    first_error: str | None = None
    #: What poolwarden's statistics say it did about it.
    note: str = ""
    #: The timeout error's message, in the exhaustion scenario.
    timeout_message: str | None = None
    leak_reports: list[str] = field(default_factory=list)
    per_request_us: float | None = None


class _LeakReports(logging.Handler):
    """Collects poolwarden's leak reports (logger ``poolwarden``, WARNING)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.arrived = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "not returned yet" in message:
            self.messages.append(message)
            self.arrived.set()


class Demo:
    """The scenarios, run against one database."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.url = target.url.render(hide_password=False)
        self.app = demo_app.load()
        mysql = target.kind == "mysql"
        self.idle_sql = (
            f"SET SESSION wait_timeout = {IDLE_TIMEOUT}"
            if mysql
            else f"SET idle_session_timeout = {IDLE_TIMEOUT * 1000}"
        )
        self.session_id_sql = "SELECT CONNECTION_ID()" if mysql else "SELECT pg_backend_pid()"
        self.kill_sql = "KILL CONNECTION {}" if mysql else "SELECT pg_terminate_backend({})"
        self.alive_sql = (
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN ({})"
            if mysql
            else "SELECT count(*) FROM pg_stat_activity WHERE pid IN ({})"
        )

    # -- engines -------------------------------------------------------------------------
    def engines(self, **pool_args: Any) -> dict[str, sqlalchemy.Engine]:
        """The three engines, alike but for their pools."""
        common = {"connect_args": self.target.connect_args(), **pool_args}
        return {
            QUEUEPOOL: sqlalchemy.create_engine(self.url, **common),
            PRE_PING: sqlalchemy.create_engine(self.url, pool_pre_ping=True, **common),
            POOLWARDEN: warden_engine(self.url, leak_threshold=LEAK_THRESHOLD, **common),
        }

    @contextmanager
    def _engines(self, **pool_args: Any) -> Iterator[dict[str, sqlalchemy.Engine]]:
        engines = self.engines(**pool_args)
        try:
            yield engines
        finally:
            for engine in engines.values():
                engine.dispose()

    def _on_connect(self, engine: sqlalchemy.Engine, *sql: str) -> list[int]:
        """Run ``sql`` on every new connection of ``engine`` (committed, so that
        PostgreSQL's transactional SET survives the pool's rollback); return the list the
        session ids of its connections are added to."""
        sessions: list[int] = []

        def run(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            for statement in (*sql, self.session_id_sql):
                cursor.execute(statement)
            sessions.append(int(cursor.fetchone()[0]))
            cursor.close()
            dbapi_connection.commit()

        event.listen(engine, "connect", run)
        return sessions

    def _wait_until_ended(self, admin: Any, sessions: list[int]) -> None:
        """Until the server has ended ``sessions`` (and so closed their sockets): a fixed
        sleep could end too soon on a busy machine, and the demo would show nothing."""
        cursor = admin.cursor()
        deadline = time.monotonic() + SERVER_CLOSES_WITHIN
        try:
            while time.monotonic() < deadline:
                cursor.execute(self.alive_sql.format(", ".join(map(str, sessions))))
                alive = cursor.fetchone()[0]
                admin.rollback()  # PostgreSQL shows activity as of the transaction's start
                if not alive:
                    break
                time.sleep(0.05)
        finally:
            cursor.close()

    @staticmethod
    def _fill(engine: sqlalchemy.Engine, count: int) -> None:
        """Open ``count`` connections at once and give them back: the pool keeps them."""
        connections = [engine.connect() for _ in range(count)]
        for connection in connections:
            connection.exec_driver_sql("SELECT 1")
            connection.close()

    def _requests(self, engine: sqlalchemy.Engine) -> Outcome:
        """Three requests at once (each gets one of the idle connections), then more."""
        outcome = Outcome()
        connections = [engine.connect() for _ in range(AT_ONCE)]
        for connection in connections:
            self._one(outcome, partial(connection.exec_driver_sql, "SELECT 1"))
            connection.close()
        for _ in range(AFTERWARDS):
            self._one(outcome, lambda: self.app["request"](engine))
        return outcome

    @staticmethod
    def _one(outcome: Outcome, request: Callable[[], Any]) -> None:
        outcome.requests += 1
        try:
            request()
        except sa_exc.DBAPIError as exc:
            outcome.errors += 1
            if outcome.first_error is None:
                outcome.first_error = driver_message(exc.orig or exc)

    # -- scenarios -----------------------------------------------------------------------
    def idle_past_timeout(self) -> dict[str, Outcome]:
        """Connections sit idle past the server's idle timeout (a session-level one, so no
        admin rights are needed), then requests arrive."""
        with self._engines(pool_size=AT_ONCE, max_overflow=0) as engines:
            sessions = []
            for engine in engines.values():
                opened = self._on_connect(engine, self.idle_sql)
                self._fill(engine, AT_ONCE)
                sessions += opened
            time.sleep(IDLE_TIMEOUT)
            with self.target.connection() as admin:
                self._wait_until_ended(admin, sessions)
            outcomes = {name: self._requests(engine) for name, engine in engines.items()}
            stats = engines[POOLWARDEN].pool.stats()  # type: ignore[attr-defined]
        done = [
            f"{stats.retired} retired before the server's timeout" if stats.retired else "",
            f"{stats.found_dead} found dead by the socket probe" if stats.found_dead else "",
        ]
        outcomes[POOLWARDEN].note = " and ".join(filter(None, done)) + ", replaced unseen"
        return outcomes

    def killed(self) -> dict[str, Outcome]:
        """Idle connections are killed at the server (``KILL`` of one's own sessions, or
        ``pg_terminate_backend``, from another session of the same user)."""
        with self._engines(pool_size=AT_ONCE, max_overflow=0) as engines:
            sessions = []
            for engine in engines.values():
                opened = self._on_connect(engine)
                self._fill(engine, AT_ONCE)
                sessions += opened
            with self.target.connection() as admin:
                cursor = admin.cursor()
                for session in sessions:
                    cursor.execute(self.kill_sql.format(session))
                    if cursor.description is not None:
                        cursor.fetchall()
                cursor.close()
                admin.commit()
                self._wait_until_ended(admin, sessions)
            outcomes = {name: self._requests(engine) for name, engine in engines.items()}
            stats = engines[POOLWARDEN].pool.stats()  # type: ignore[attr-defined]
        outcomes[
            POOLWARDEN
        ].note = f"{stats.found_dead} found dead by the socket probe and replaced unseen"
        return outcomes

    def held_by_long_jobs(self) -> dict[str, Outcome]:
        """Jobs keep their connections through work that outlasts the server's idle timeout
        (having committed before it, so nothing is lost), then run their next statement.
        No check at checkout helps here: the connections never went back to the pool."""
        with self._engines(pool_size=AT_ONCE, max_overflow=0) as engines:
            sessions: list[int] = []
            held: dict[str, list[Any]] = {}
            for name, engine in engines.items():
                opened = self._on_connect(engine, self.idle_sql)
                held[name] = [engine.connect() for _ in range(AT_ONCE)]
                for connection in held[name]:
                    connection.exec_driver_sql("SELECT 1")
                    connection.commit()
                sessions += opened
            time.sleep(IDLE_TIMEOUT)  # the jobs' long work
            with self.target.connection() as admin:
                self._wait_until_ended(admin, sessions)
            outcomes = {}
            for name, connections in held.items():
                outcome = outcomes[name] = Outcome()
                for connection in connections:
                    self._one(outcome, partial(connection.exec_driver_sql, "SELECT 1"))
                    connection.close()
            stats = engines[POOLWARDEN].pool.stats()  # type: ignore[attr-defined]
        outcomes[POOLWARDEN].note = (
            f"{stats.held_replaced} replaced in the jobs' hands before their next statement "
            "(no transaction was open)"
        )
        return outcomes

    def leak_and_exhaustion(self) -> dict[str, Outcome]:
        """A handler keeps its connection; another does too; the next request finds the
        pool (2 + 0) empty and times out."""
        reports = _LeakReports()
        logger = logging.getLogger("poolwarden")
        logger.addHandler(reports)
        outcomes = {name: Outcome() for name in POOLS}
        held: list[Any] = []
        try:
            with self._engines(
                pool_size=2, max_overflow=0, pool_timeout=CHECKOUT_TIMEOUT
            ) as engines:
                for engine in engines.values():
                    for _ in range(2):
                        self.app["handler_that_forgets_to_return"](engine, held)
                reports.arrived.wait(LEAK_THRESHOLD + 2.0)
                # The three checkouts that time out wait side by side, not one after another.
                threads = [
                    threading.Thread(target=self._run_out, args=(engine, outcomes[name]))
                    for name, engine in engines.items()
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                for connection in held:
                    connection.close()
        finally:
            logger.removeHandler(reports)
        outcomes[POOLWARDEN].leak_reports = reports.messages
        return outcomes

    def _run_out(self, engine: sqlalchemy.Engine, outcome: Outcome) -> None:
        """One more request on a pool whose connections are all held."""
        outcome.requests = 1
        try:
            self.app["request"](engine)
        except sa_exc.TimeoutError as exc:
            outcome.errors = 1
            outcome.timeout_message = str(exc)

    def per_request_cost(self, rounds: int = 8, batch: int = 150) -> dict[str, Outcome]:
        """Median time of a request (check out, ``SELECT 1``, give back) on each pool,
        measured in interleaved rounds so that machine noise hits all three alike."""
        request = self.app["request"]
        samples: dict[str, list[float]] = {name: [] for name in POOLS}
        with self._engines(pool_size=1, max_overflow=0) as engines:
            for engine in engines.values():
                request(engine)
            order = list(POOLS)
            for _ in range(rounds):
                for name in order:
                    engine = engines[name]
                    began = time.perf_counter()
                    for _ in range(batch):
                        request(engine)
                    samples[name].append((time.perf_counter() - began) / batch)
                order.append(order.pop(0))
        return {
            name: Outcome(requests=rounds * batch, per_request_us=statistics.median(values) * 1e6)
            for name, values in samples.items()
        }
