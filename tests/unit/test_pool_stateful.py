"""Hypothesis drives a real Pool (threads, locks, connector threads) on the fake driver
through checkouts, returns, failing operations, failing connects, resizes, close, and
connections that die in their borrowers' hands."""

from __future__ import annotations

import time

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from poolwarden import ConnectionLost, Pool, PoolClosed, PooledConnection, PoolTimeout
from tests.fakedb import ACCESS_DENIED, FakeAdapter, FakeServer, OperationalError


class PoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.server = FakeServer()
        self.pool = Pool(
            self.server.connect,
            adapter=FakeAdapter(self.server),
            pool_size=2,
            max_overflow=1,
            timeout=5,
            held_check_after=0,  # check before every operation: no waiting in tests
        )
        self.held: list[PooledConnection] = []

    @initialize(fifo=st.booleans())
    def order(self, fifo: bool) -> None:
        self.pool.engine._core.fifo = fifo  # WardenPool's default; poolwarden.Pool's is LIFO

    def teardown(self) -> None:
        for conn in self.held:
            conn.close()
        self.pool.close()
        # Every connection the pool opened is closed once it is closed and nothing is held.
        deadline = time.monotonic() + 5
        while self.server.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.server.open_connections == []

    @rule()
    def checkout(self) -> None:
        full = len(self.held) >= self.pool.engine._core.max_size
        try:
            conn = self.pool.getconn(timeout=0.05 if full else 5)
        except PoolTimeout:
            assert full
            return
        except PoolClosed:
            assert self.pool.closed
            return
        except OperationalError as exc:
            assert exc.args[0] == ACCESS_DENIED  # injected connect failure
            return
        raw = conn._raw
        assert raw.holder is None, "connection handed to two holders"
        assert raw.alive, "handed out a connection the server had closed"
        raw.holder = conn
        self.held.append(conn)

    @precondition(lambda self: self.held)
    @rule(
        index=st.integers(min_value=0),
        work=st.sampled_from(["none", "select", "commit", "gone", "error"]),
    )
    def use_and_return(self, index: int, work: str) -> None:
        conn = self.held.pop(index % len(self.held))
        if work == "gone":
            self.server.fail("execute", OperationalError(2006, "gone away"))
        elif work == "error":
            self.server.fail("execute", OperationalError(1064, "syntax"))
        if work != "none":
            try:
                conn.cursor().execute("SELECT 1")
                if work == "commit":
                    conn.commit()
            except OperationalError:
                pass
        conn._raw.holder = None
        conn.close()

    @rule(index=st.integers(min_value=0))
    def server_closes_an_idle_connection(self, index: int) -> None:
        held = {id(c._raw) for c in self.held}
        idle = [c for c in self.server.open_connections if id(c) not in held and c.alive]
        if idle:
            idle[index % len(idle)].server_closes()

    @precondition(lambda self: self.held)
    @rule(index=st.integers(min_value=0), in_transaction=st.booleans())
    def held_connection_dies(self, index: int, in_transaction: bool) -> None:
        conn = self.held[index % len(self.held)]
        if conn._entry is None or conn._entry.broken:
            return  # already failed (say its replacement could not connect): not held-alive
        dead = conn._raw
        if in_transaction:
            try:
                conn.cursor().execute("INSERT 1")
            except OperationalError:
                return  # an injected failure, or the pool was closed and it is broken
        dead.server_closes()
        try:
            try:
                conn.cursor().execute("SELECT 1")
            except ConnectionLost:
                assert dead.in_transaction, "reported a transaction that was not open"
                conn.rollback()  # a new connection takes its place
            else:
                assert not dead.in_transaction, "replaced a connection with a transaction open"
        except OperationalError as exc:
            # The replacement's connect failed, or a failure injected for a statement
            # earlier hit the replacement's first one.
            assert exc.args[0] in (ACCESS_DENIED, 2006), exc
            return
        assert conn._raw is not dead and conn._raw.alive and not dead.open
        dead.holder = None
        assert conn._raw.holder is None, "connection handed to two holders"
        conn._raw.holder = conn

    @rule(what=st.sampled_from(["connect", "rollback"]))
    def inject_failure(self, what: str) -> None:
        error = OperationalError(ACCESS_DENIED, "denied") if what == "connect" else None
        self.server.fail(what, error)

    @rule(size=st.integers(0, 3), overflow=st.integers(0, 2))
    def resize(self, size: int, overflow: int) -> None:
        if size + overflow:
            self.pool.resize(pool_size=size, max_overflow=overflow)

    @rule(roll=st.integers(0, 14))
    def close(self, roll: int) -> None:
        if not roll:
            self.pool.close()

    @invariant()
    def books_balance(self) -> None:
        stats = self.pool.stats()
        assert stats.in_use == len(self.held)
        assert stats.checkouts == stats.checkins + stats.in_use
        assert (
            stats.connects
            == stats.closes + stats.idle + stats.in_use + self.pool.engine._core.maintaining
        )
        assert stats.idle + stats.in_use <= stats.pool_size + stats.max_overflow or stats.idle == 0
        assert stats.waiting == 0
        holders = [c._raw for c in self.held]
        assert len(set(map(id, holders))) == len(holders)


# derandomize: the same examples on every run, so CI is repeatable; set it to False to
# explore new sequences locally.
PoolMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None, derandomize=True
)
TestPool = PoolMachine.TestCase
