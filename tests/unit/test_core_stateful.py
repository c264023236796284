"""Hypothesis drives the pool core through random interleavings of everything that can
happen to it, and checks after every step that no connection is ever held twice, the
limits hold, and the books balance."""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from poolwarden._core import PoolCore, Waiter
from poolwarden._core.entry import Entry


class CoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = PoolCore(
            pool_size=2, max_overflow=2, min_idle=0, max_connecting=2, rng=random.Random(0)
        )
        self.now = 0.0
        self.holders: list[Entry] = []
        self.waiters: list[Waiter] = []
        self.ready = 0  # connectors about to attempt a connect
        self.sleeping = 0  # connectors pausing after a failure
        self.raw_ids = 0
        self.pinging: list[Entry] = []  # taken out for a keepalive ping

    def _take(self, waiter: Waiter) -> None:
        assert waiter.entry is not None
        self.waiters.remove(waiter)
        assert waiter.entry not in self.holders, "connection handed to two holders"
        self.holders.append(waiter.entry)

    def _start(self) -> None:
        self.ready += self.core.opens_wanted(self.now)

    @initialize(fifo=st.booleans())
    def order(self, fifo: bool) -> None:
        self.core.fifo = fifo

    @rule(dt=st.floats(min_value=0.0, max_value=3.0))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule()
    def checkout(self) -> None:
        if self.core.closed:
            return
        idle = list(self.core.idle)
        entry = self.core.checkout(self.now)
        if entry is not None:
            assert entry is idle[0 if self.core.fifo else -1], "handed out in the wrong order"
            assert entry not in self.holders
            self.holders.append(entry)
            return
        waiter = Waiter(self.now, None)
        self.core.enqueue(waiter)
        self.waiters.append(waiter)
        self._start()

    @precondition(lambda self: self.holders)
    @rule(index=st.integers(min_value=0), reusable=st.booleans())
    def checkin(self, index: int, reusable: bool) -> None:
        entry = self.holders.pop(index % len(self.holders))
        waiter, _close = self.core.checkin(entry, self.now, reusable)
        if waiter is not None:
            self._take(waiter)
        if _close is not None:
            self._start()

    @precondition(lambda self: self.ready)
    @rule()
    def connect_ok(self) -> None:
        self.ready -= 1
        self.raw_ids += 1
        result = self.core.connect_succeeded(self.raw_ids, self.now)
        if result.wake is not None:
            self._take(result.wake)
        if result.again is not None:
            self.ready += 1

    @precondition(lambda self: self.ready)
    @rule(retryable=st.booleans())
    def connect_fails(self, retryable: bool) -> None:
        self.ready -= 1
        result = self.core.connect_failed(OSError("down"), self.now, retryable)
        for waiter in result.fail:
            assert waiter.error is not None
            self.waiters.remove(waiter)
        if result.again is not None:
            self.sleeping += 1

    @precondition(lambda self: self.sleeping)
    @rule()
    def resume(self) -> None:
        self.sleeping -= 1
        if self.core.resume_connecting():
            self.ready += 1

    @precondition(lambda self: self.waiters)
    @rule(index=st.integers(min_value=0))
    def give_up(self, index: int) -> None:
        waiter = self.waiters[index % len(self.waiters)]
        if self.core.give_up(waiter):
            self._take(waiter)
        else:
            self.waiters.remove(waiter)

    @rule(size=st.integers(0, 3), overflow=st.integers(0, 3), roll=st.integers(0, 4))
    def resize(self, size: int, overflow: int, roll: int) -> None:
        if roll or size + overflow == 0:
            return
        self.core.resize(size, overflow)
        self._start()

    @rule()
    def background_fill(self) -> None:
        self._start()

    @rule(lifetime=st.sampled_from([None, 1.0, 5.0]))
    def set_lifetime(self, lifetime: float | None) -> None:
        self.core.set_lifetime(lifetime)

    @rule(idle_timeout=st.sampled_from([None, 2.0]), keepalive=st.sampled_from([None, 1.0]))
    def housekeeping(self, idle_timeout: float | None, keepalive: float | None) -> None:
        retire, ping = self.core.due_for_maintenance(self.now, idle_timeout, keepalive)
        assert not set(retire) & set(ping)
        if idle_timeout is not None:
            # Only the last min_idle may stay idle past the timeout, whichever end
            # checkouts take from.
            idle = self.core.idle
            spare = idle[: max(0, len(idle) - self.core.min_idle)]
            assert all(self.now - e.last_used < idle_timeout for e in spare)
        self.pinging += ping
        self._start()

    @precondition(lambda self: self.pinging)
    @rule(alive=st.booleans())
    def ping_done(self, alive: bool) -> None:
        waiter, _close = self.core.maintained(self.pinging.pop(0), alive, self.now)
        if waiter is not None:
            self._take(waiter)
        self._start()

    @rule(min_idle=st.integers(0, 2))
    def set_min_idle(self, min_idle: int) -> None:
        core = self.core
        if min_idle <= core.max_size:
            core.resize(core.pool_size, core.max_overflow, min_idle)
            self._start()

    @precondition(lambda self: not self.core.closed)
    @rule(roll=st.integers(0, 19))
    def close(self, roll: int) -> None:
        if roll:  # closing ends the interesting part: make it rare
            return
        _idle, waiters = self.core.close()
        for waiter in waiters:
            self.waiters.remove(waiter)

    @invariant()
    def no_double_hand_out(self) -> None:
        core = self.core
        assert set(core.in_use) == set(self.holders)
        assert len(self.holders) == len(set(self.holders))
        assert not set(core.idle) & set(core.in_use)
        assert not set(self.pinging) & (set(core.idle) | set(core.in_use))
        assert core.maintaining == len(self.pinging)

    @invariant()
    def idle_in_order_of_last_use(self) -> None:
        # Retirement and keepalive take their connections by this order, in both modes.
        last_used = [e.last_used for e in self.core.idle]
        assert last_used == sorted(last_used)

    @invariant()
    def within_limits(self) -> None:
        core = self.core
        open_now = len(core.idle) + len(core.in_use) + core.maintaining
        # Above the limit only after a shrink, and then nothing is kept idle.
        assert open_now <= core.max_size or not core.idle
        assert core.connecting == self.ready + self.sleeping
        assert core.connecting <= core.max_connecting
        if core.waiters:
            assert not core.idle, "a connection sat idle while someone waited"
        # Overflow connections are closed on return, not kept idle.
        assert len(core.idle) <= max(core.pool_size, core.min_idle)

    @invariant()
    def books_balance(self) -> None:
        c = self.core.counters
        assert self.core.checkouts == self.core.checkins + len(self.core.in_use)
        assert c.connects == c.closes + len(self.core.idle) + len(self.core.in_use) + len(
            self.pinging
        )
        assert list(self.core.waiters) == self.waiters


CoreMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestCore = CoreMachine.TestCase
