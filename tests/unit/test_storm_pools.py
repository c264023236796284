"""The connection-storm guard in pools on the fake driver: PoolCore keeping to one attempt
while the gate is open, several pools (sync and asyncio) sharing one gate, a recreated
pool inheriting the backoff, and a server that is down rather than full."""

from __future__ import annotations

import asyncio
import gc
import random
import threading
import time
from typing import Any

import pytest

from poolwarden import AsyncPool, Pool, PoolTimeout
from poolwarden._core import PoolCore, Waiter
from poolwarden._core import storm as _storm
from poolwarden._core.storm import StormGate
from tests.fakedb import SERVER_DOWN, FakeAdapter, FakeServer, OperationalError
from tests.fakedb_async import AsyncFakeAdapter, AsyncFakeServer
from tests.unit.test_storm import KEY, TOO_MANY, most_probes


# -- the pool's books ------------------------------------------------------------------------
def test_open_gate_keeps_a_pool_to_one_attempt() -> None:
    core = PoolCore(pool_size=5, max_overflow=5, min_idle=0, max_connecting=4)
    core.backoff.gate = gate = StormGate(KEY, random.Random(1))
    for _ in range(10):
        core.enqueue(Waiter(0.0, None))
    ticket, _ = gate.enter(0.0)
    gate.refused(ticket, 0.0, "full")
    assert core.opens_wanted(100.0) == 1  # past its own backoff, but the gate is open
    assert core.opens_wanted(100.0) == 0
    probe, _ = gate.enter(100.0)
    gate.succeeded(probe, 100.0)
    assert core.opens_wanted(100.0) == 3  # max_connecting again


# -- pools on the fake driver ----------------------------------------------------------------
class LimitedServer(FakeServer):
    """A fake server with ``capacity`` connection slots, counting connect attempts."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.attempts: list[float] = []

    def connect(self) -> Any:
        with self.lock:
            self.attempts.append(time.monotonic())
        if len(self.open_connections) >= self.capacity:
            raise OperationalError(TOO_MANY, "Too many connections")
        return super().connect()


class LimitRules:
    """Teaches the fake driver's adapters what 1040 means."""

    def is_connection_limit_error(self, exc: BaseException) -> bool:
        return isinstance(exc, OperationalError) and exc.args[0] == TOO_MANY

    def is_retryable_connect_error(self, exc: BaseException) -> bool:
        return isinstance(exc, OperationalError) and exc.args[0] in (TOO_MANY, SERVER_DOWN)


class LimitedAdapter(LimitRules, FakeAdapter):
    pass


class AsyncLimitedAdapter(LimitRules, AsyncFakeAdapter):
    pass


def checkout_all(pools: list[Pool], per_pool: int, timeout: float) -> list[Any]:
    """``per_pool`` threads per pool each check out once; their connections or errors."""
    results: list[Any] = []
    lock = threading.Lock()

    def one(pool: Pool) -> None:
        try:
            conn = pool.getconn(timeout=timeout)
        except Exception as exc:
            outcome: Any = exc
        else:
            time.sleep(0.01)
            conn.close()
            outcome = conn
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one, args=(p,)) for p in pools for _ in range(per_pool)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 15)
    assert not any(t.is_alive() for t in threads), "a checkout hung"
    return results


def test_pools_share_the_gate_and_the_storm_stays_bounded() -> None:
    server = LimitedServer(capacity=0)
    pools = [
        Pool(server.connect, adapter=LimitedAdapter(server), pool_size=5, timeout=1.5)
        for _ in range(4)
    ]
    try:
        started = time.monotonic()
        outcomes = checkout_all(pools, per_pool=10, timeout=1.5)
        storm = time.monotonic() - started
        assert len(outcomes) == 40 and all(isinstance(o, PoolTimeout) for o in outcomes)
        for outcome in outcomes:
            assert "Too many connections" in str(outcome) and "backs off" in str(outcome)
        gates = {id(pool.engine._core.backoff.gate) for pool in pools}
        assert len(gates) == 1
        # At most max_connecting per pool before the gate opened, then the probes.
        assert len(server.attempts) <= 4 * 4 + most_probes(storm) + 1, server.attempts
        assert sum(pool.stats().storm_waits for pool in pools) >= 1
        server.capacity = 100
        freed = time.monotonic()
        recovered = checkout_all(pools, per_pool=3, timeout=StormGate.CAP + 5)
        assert not [o for o in recovered if isinstance(o, Exception)], recovered
        assert time.monotonic() - freed < StormGate.CAP + 5
    finally:
        for pool in pools:
            pool.close()


def test_a_recreated_pool_inherits_the_backoff() -> None:
    """dispose() makes a new pool: it must not open a new storm."""
    server = LimitedServer(capacity=0)
    first = Pool(server.connect, adapter=LimitedAdapter(server), timeout=0.3)
    with pytest.raises(PoolTimeout):
        first.getconn()
    first.close()
    gate_id = id(first.engine._core.backoff.gate)
    del first
    gc.collect()
    (gate,) = _storm.gates()
    assert id(gate) == gate_id and gate.is_open
    gate.next_at = time.monotonic() + 30.0  # deep in the backoff
    attempts = len(server.attempts)
    second = Pool(server.connect, adapter=LimitedAdapter(server), timeout=0.3)
    try:
        with pytest.raises(PoolTimeout) as info:
            second.getconn()
        assert len(server.attempts) == attempts  # the new pool sent nothing
        assert second.stats().storm_waits == 1 and second.engine._core.backoff.gate is gate
        text = str(info.value)
        assert "Too many connections" in text and "backs off" in text, text
    finally:
        second.close()


def test_a_server_down_leaves_the_gate_closed() -> None:
    server = LimitedServer(capacity=10)
    server.down()
    with Pool(server.connect, adapter=LimitedAdapter(server), timeout=0.5) as pool:
        with pytest.raises(PoolTimeout) as info:
            pool.getconn()
        gate = pool.engine._core.backoff.gate
        assert gate is not None and not gate.is_open
        assert pool.stats().storm_waits == 0 and pool.stats().connect_failures >= 2
        assert "backs off" not in str(info.value)


def test_async_pools_storm_without_blocking_the_loop() -> None:
    server = LimitedServer(capacity=0)

    async def main() -> None:
        target = AsyncFakeServer(server)
        pools = [
            AsyncPool(target.connect, adapter=AsyncLimitedAdapter(target), timeout=1.2)
            for _ in range(2)
        ]
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        async def one(pool: AsyncPool) -> Any:
            try:
                async with pool.connection():
                    return None
            except PoolTimeout as exc:
                return exc

        tick = asyncio.create_task(ticker())
        started = time.monotonic()
        outcomes = await asyncio.gather(*(one(p) for p in pools for _ in range(100)))
        storm = time.monotonic() - started
        done.set()
        await tick
        assert all(isinstance(o, PoolTimeout) for o in outcomes)
        assert all("Too many connections" in str(o) for o in outcomes)
        assert ticks >= 20  # the loop ran on while the connectors waited at the gate
        assert pools[0].engine._core.backoff.gate is pools[1].engine._core.backoff.gate
        assert len(server.attempts) <= 2 * 4 + most_probes(storm) + 1, server.attempts
        server.capacity = 100
        again = await asyncio.wait_for(
            asyncio.gather(*(pool.getconn(timeout=StormGate.CAP + 5) for pool in pools)),
            StormGate.CAP + 10,
        )
        for pool, conn in zip(pools, again, strict=True):
            await pool.putconn(conn)
            await pool.close()

    asyncio.run(main())
