"""Hypothesis drives a real AsyncPool (tasks, connector tasks, one event loop) on the fake
driver: checkouts, returns, waiters that queue and are cancelled, failing operations and
connects, connections that die idle or in their borrowers' hands, resizes and close. After
every step no connection is held twice, none is lost, and the books balance."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from poolwarden import AsyncPool, AsyncPooledConnection, ConnectionLost, PoolClosed, PoolTimeout
from tests.fakedb import ACCESS_DENIED, FakeServer, OperationalError
from tests.fakedb_async import AsyncFakeAdapter, AsyncFakeServer


class AsyncPoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.server = FakeServer()
        aserver = AsyncFakeServer(self.server)
        self.pool = self.run(self._make(aserver))  # made inside the loop: its tasks belong to it
        self.held: list[AsyncPooledConnection] = []
        #: Checkouts started as tasks, still running or not collected yet.
        self.waiters: list[asyncio.Task[AsyncPooledConnection]] = []

    @staticmethod
    async def _make(aserver: AsyncFakeServer) -> AsyncPool:
        pool = AsyncPool(
            aserver.connect,
            adapter=AsyncFakeAdapter(aserver),
            pool_size=2,
            max_overflow=1,
            timeout=5,
            held_check_after=0,  # check before every operation: no waiting in tests
        )
        pool.engine._core.backoff.INITIAL, pool.engine._core.backoff.CAP = (
            0.002,
            0.02,
        )  # short waits
        return pool

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def settle(self) -> None:
        """Let connector tasks and woken waiters run until all wait for something that
        only a rule can bring (the fake driver answers at once; only a connect after a
        failed one sleeps, through its backoff), then collect finished checkouts.
        Waiting for quiet, not for a while, keeps each example's steps repeatable."""

        async def quiet() -> None:
            for _ in range(50):
                await asyncio.sleep(0)

        self.run(quiet())
        # After a failed connect the next one waits out a backoff, in real time: wait for
        # it too, or whether a waiter was served by now would depend on the machine.
        core = self.pool.engine._core
        while core.connecting and core.backoff.retry_at > self.pool.engine.now():
            self.run(asyncio.sleep(core.backoff.retry_at - self.pool.engine.now()))
            self.run(quiet())
        for task in [t for t in self.waiters if t.done()]:
            self.waiters.remove(task)
            if task.cancelled():
                continue
            error = task.exception()
            if error is None:
                self._take(task.result())
            else:
                assert isinstance(error, (PoolClosed, PoolTimeout, OperationalError)), error

    def _take(self, conn: AsyncPooledConnection) -> None:
        raw = conn._raw
        assert raw.holder is None, "connection handed to two holders"
        assert raw.alive, "handed out a connection the server had closed"
        raw.holder = conn
        self.held.append(conn)

    def teardown(self) -> None:
        for task in self.waiters:
            task.cancel()
        self.settle()
        for conn in self.held:
            self.run(conn.close())
        self.run(self.pool.close())
        self.run(asyncio.sleep(0.01))
        assert self.server.open_connections == []
        self.loop.close()

    @rule()
    def checkout(self) -> None:
        full = len(self.held) >= self.pool.engine._core.max_size or self.waiters
        try:
            conn = self.run(self.pool.getconn(timeout=0.02 if full else 5))
        except PoolTimeout:
            assert full
            return
        except PoolClosed:
            assert self.pool.closed
            return
        except OperationalError as exc:
            assert exc.args[0] == ACCESS_DENIED  # injected connect failure
            return
        self._take(conn)

    @rule()
    def start_waiting(self) -> None:
        # A timeout no example reaches: one that ran out in real time part-way through an
        # example would change which rules are enabled when Hypothesis replays it.
        self.waiters.append(self.loop.create_task(self.pool.getconn(timeout=60)))
        self.settle()

    @precondition(lambda self: self.waiters)
    @rule(index=st.integers(min_value=0))
    def cancel_a_waiter(self, index: int) -> None:
        self.waiters[index % len(self.waiters)].cancel()
        self.settle()

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

        async def use() -> None:
            if work != "none":
                try:
                    await conn.cursor().execute("SELECT 1")
                    if work == "commit":
                        await conn.commit()
                except OperationalError:
                    pass
            conn._raw.holder = None
            await conn.close()

        self.run(use())
        self.settle()

    @rule(index=st.integers(min_value=0))
    def server_closes_an_idle_connection(self, index: int) -> None:
        held = {id(c._raw.sync) for c in self.held}
        idle = [c for c in self.server.open_connections if id(c) not in held and c.alive]
        if idle:
            idle[index % len(idle)].server_closes()

    @precondition(lambda self: self.held)
    @rule(index=st.integers(min_value=0), in_transaction=st.booleans())
    def held_connection_dies(self, index: int, in_transaction: bool) -> None:
        conn = self.held[index % len(self.held)]
        if conn._entry is None or conn._entry.broken:
            return
        dead = conn._raw

        async def die_and_go_on() -> bool:
            if in_transaction:
                try:
                    await conn.cursor().execute("INSERT 1")
                except OperationalError:
                    return False
            dead.sync.server_closes()
            try:
                try:
                    await conn.cursor().execute("SELECT 1")
                except ConnectionLost:
                    assert dead.in_transaction, "reported a transaction that was not open"
                    await conn.rollback()
                else:
                    assert not dead.in_transaction, "replaced a connection mid-transaction"
            except OperationalError as exc:
                assert exc.args[0] in (ACCESS_DENIED, 2006), exc
                return False
            return True

        if not self.run(die_and_go_on()):
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
            self.run(self.pool.resize(pool_size=size, max_overflow=overflow))
            self.settle()

    @rule(roll=st.integers(0, 14))
    def close(self, roll: int) -> None:
        if not roll:
            self.run(self.pool.close())
            self.settle()

    @invariant()
    def books_balance(self) -> None:
        stats = self.pool.stats()
        running = [t for t in self.waiters if not t.done()]
        handed = [t for t in self.waiters if t.done() and not t.cancelled() and not t.exception()]
        assert stats.in_use == len(self.held) + len(handed)
        assert stats.checkouts == stats.checkins + stats.in_use
        assert (
            stats.connects
            == stats.closes + stats.idle + stats.in_use + self.pool.engine._core.maintaining
        )
        assert stats.waiting <= len(running)
        holders = [c._raw for c in self.held]
        assert len(set(map(id, holders))) == len(holders)


AsyncPoolMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=30, deadline=None, derandomize=True
)
TestAsyncPool = AsyncPoolMachine.TestCase
