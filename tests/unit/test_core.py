"""The pool's decisions, driven directly: no threads, no I/O, time passed in."""

from __future__ import annotations

import random

import pytest

from poolwarden._core import Backoff, PoolCore, Waiter
from poolwarden._core.entry import Entry


def make_core(
    pool_size: int = 2, max_overflow: int = 1, min_idle: int = 0, max_connecting: int = 4
) -> PoolCore:
    return PoolCore(
        pool_size=pool_size,
        max_overflow=max_overflow,
        min_idle=min_idle,
        max_connecting=max_connecting,
        rng=random.Random(7),
    )


def open_one(core: PoolCore, now: float = 0.0) -> object:
    """Connect one connection and leave it idle."""
    core.connecting += 1
    result = core.connect_succeeded(object(), now)
    assert result.wake is None and result.close is None
    return result


def take(core: PoolCore, count: int, now: float) -> list[Entry]:
    """Check out ``count`` idle connections."""
    taken = [core.checkout(now) for _ in range(count)]
    assert None not in taken
    return [entry for entry in taken if entry is not None]


def test_starts_empty_and_grows_on_demand() -> None:
    core = make_core()
    assert core.checkout(0.0) is None
    waiter = Waiter(0.0, None)
    core.enqueue(waiter)
    assert core.opens_wanted(0.0) == 1  # one per waiter, not the whole pool
    result = core.connect_succeeded("conn", 0.1)
    assert result.wake is waiter and waiter.entry is not None
    assert waiter.entry.raw == "conn"
    assert list(core.in_use) == [waiter.entry]
    assert core.wait_time.summary().max == pytest.approx(0.1)


def test_idle_reused_most_recently_used_first() -> None:
    core = make_core(pool_size=3)
    for _ in range(3):
        open_one(core)
    first, second = core.checkout(1.0), core.checkout(1.0)
    assert first is not None and second is not None
    core.checkin(first, 2.0, True)
    core.checkin(second, 3.0, True)
    assert core.checkout(4.0) is second


@pytest.mark.parametrize("fifo", [False, True])
def test_idle_order_lifo_or_fifo(fifo: bool) -> None:
    core = make_core(pool_size=3)
    core.fifo = fifo
    for _ in range(3):
        open_one(core)
    a, b, c = take(core, 3, 1.0)
    for entry, now in ((c, 2.0), (a, 3.0), (b, 4.0)):
        core.checkin(entry, now, True)
    # Idle in the order they came back; FIFO takes the one idle longest, LIFO the newest.
    assert core.idle == [c, a, b]
    order = [core.checkout(5.0) for _ in range(3)]
    assert order == ([c, a, b] if fifo else [b, a, c])


@pytest.mark.parametrize("fifo", [False, True])
def test_retirement_and_keepalive_go_by_idle_time_in_either_order(fifo: bool) -> None:
    core = make_core(pool_size=4, max_overflow=0, min_idle=1)
    core.fifo = fifo
    for _ in range(4):
        open_one(core)
    held = take(core, 4, 0.0)
    for entry, now in zip(held, (1.0, 2.0, 3.0, 4.0), strict=True):
        core.checkin(entry, now, True)
    # Due first: the longest idle beyond min_idle (idle_timeout), then the survivor's ping.
    assert core.next_maintenance(5.0, idle_timeout=10.0, keepalive=8.0) == 11.0
    retire, ping = core.due_for_maintenance(12.5, idle_timeout=10.0, keepalive=8.0)
    assert retire == held[:2]  # idle 11.5 and 10.5 s; the third only 9.5 s
    assert ping == held[3:]  # the one min_idle keeps, unused for 8.5 s
    assert core.idle == [held[2]]
    assert core.maintained(held[3], True, 12.6) == (None, None)
    assert core.idle == [held[2], held[3]]  # the pinged one counts as just used


@pytest.mark.parametrize("fifo", [False, True])
def test_shrinking_closes_the_longest_idle_in_either_order(fifo: bool) -> None:
    core = make_core(pool_size=3, max_overflow=0)
    core.fifo = fifo
    for _ in range(3):
        open_one(core)
    held = take(core, 3, 0.0)
    for entry, now in zip((held[1], held[2], held[0]), (1.0, 2.0, 3.0), strict=True):
        core.checkin(entry, now, True)
    assert core.resize(1, 0) == [held[1], held[2]]
    assert core.idle == [held[0]]


def test_returned_connection_goes_to_oldest_waiter() -> None:
    core = make_core(pool_size=1, max_overflow=0)
    open_one(core)
    held = core.checkout(0.0)
    assert held is not None
    w1, w2 = Waiter(1.0, None), Waiter(2.0, None)
    core.enqueue(w1)
    core.enqueue(w2)
    assert core.opens_wanted(2.0) == 0  # no room to grow
    waiter, close = core.checkin(held, 3.0, True)
    assert waiter is w1 and close is None and w1.entry is held
    # nothing idle while someone waits, so a newcomer cannot barge in
    assert core.checkout(3.0) is None


def test_overflow_closed_on_return_down_to_pool_size() -> None:
    core = make_core(pool_size=1, max_overflow=2)
    held = []
    for _ in range(3):
        waiter = Waiter(0.0, None)
        core.enqueue(waiter)
        assert core.opens_wanted(0.0) == 1
        assert core.connect_succeeded(object(), 0.0).wake is waiter
        held.append(waiter.entry)
    assert core.opens_wanted(0.0) == 0 and core.total() == 3
    closes = [core.checkin(e, 1.0, True)[1] for e in held if e is not None]
    assert sum(c is not None for c in closes) == 2
    assert len(core.idle) == 1
    assert core.counters.closes == 2


def test_min_idle_keeps_overflow_open_and_asks_for_fill() -> None:
    core = make_core(pool_size=1, max_overflow=2, min_idle=2)
    assert core.opens_wanted(0.0) == 2
    core.connect_succeeded("a", 0.0)
    core.connect_succeeded("b", 0.0)
    assert len(core.idle) == 2 and core.opens_wanted(0.0) == 0
    e = core.checkout(0.0)
    assert e is not None
    assert core.opens_wanted(0.0) == 1  # idle fell below min_idle


def test_broken_connection_closed_and_replaced_for_waiter() -> None:
    core = make_core(pool_size=1, max_overflow=0)
    open_one(core)
    held = core.checkout(0.0)
    assert held is not None
    core.enqueue(Waiter(1.0, None))
    waiter, close = core.checkin(held, 2.0, reusable=False)
    assert waiter is None and close is held
    assert core.opens_wanted(2.0) == 1


def test_permanent_connect_error_fails_waiters_now() -> None:
    core = make_core()
    waiters = [Waiter(0.0, None), Waiter(0.0, None)]
    for w in waiters:
        core.enqueue(w)
    assert core.opens_wanted(0.0) == 2
    error = RuntimeError("access denied")
    result = core.connect_failed(error, 0.1, retryable=False)
    assert result.fail == waiters and all(w.error is error for w in waiters)
    assert result.again is None
    assert core.connect_failed(error, 0.1, retryable=False).again is None
    assert core.connecting == 0 and not core.waiters


def test_retryable_connect_error_keeps_waiters_and_backs_off() -> None:
    core = make_core()
    waiter = Waiter(0.0, None)
    core.enqueue(waiter)
    assert core.opens_wanted(0.0) == 1
    result = core.connect_failed(OSError("refused"), 0.0, retryable=True)
    assert result.fail == [] and result.again is not None and result.again > 0
    assert core.connecting == 1  # the connector keeps its slot while it waits
    assert core.opens_wanted(0.01) == 0  # nobody else hammers the server meanwhile
    assert core.resume_connecting() is True
    ok = core.connect_succeeded("conn", 1.0)
    assert ok.wake is waiter
    assert core.backoff.failures == 0


def test_connector_stops_when_nobody_needs_it() -> None:
    core = make_core()
    waiter = Waiter(0.0, None)
    core.enqueue(waiter)
    core.opens_wanted(0.0)
    core.connect_failed(OSError("refused"), 0.0, retryable=True)
    assert core.give_up(waiter) is False  # waiter timed out
    assert core.resume_connecting() is False
    assert core.connecting == 0
    assert core.counters.timeouts == 1


def test_backoff_doubles_to_cap_with_jitter() -> None:
    backoff = Backoff(random.Random(1))
    delays = [backoff.failed(0.0) for _ in range(8)]
    for delay, base in zip(delays, [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0], strict=True):
        assert base * 0.9 <= delay <= base * 1.1
    backoff.succeeded()
    assert backoff.failures == 0 and backoff.retry_at == float("-inf")


def test_resize_down_closes_surplus_idle_oldest_first() -> None:
    core = make_core(pool_size=3, max_overflow=0)
    for _ in range(3):
        open_one(core)
    bottom = core.idle[0]
    surplus = core.resize(1, 0)
    assert surplus[0] is bottom and len(surplus) == 2 and len(core.idle) == 1


def test_resize_up_lets_waiters_connect() -> None:
    core = make_core(pool_size=1, max_overflow=0)
    open_one(core)
    core.checkout(0.0)
    core.enqueue(Waiter(0.0, None))
    assert core.opens_wanted(0.0) == 0
    core.resize(2, 0)
    assert core.opens_wanted(0.0) == 1


def test_leaks_reported_once_in_checkout_order() -> None:
    core = make_core(pool_size=3)
    for _ in range(3):
        open_one(core)
    a = core.checkout(0.0)
    b = core.checkout(5.0)
    assert core.next_leak_check(10.0) == 10.0
    assert core.leaks_due(11.0, 10.0) == [a]
    assert core.leaks_due(12.0, 10.0) == []
    assert core.next_leak_check(10.0) == 15.0
    assert core.leaks_due(15.0, 10.0) == [b]
    assert core.counters.leaks == 2


def test_close_returns_idle_and_waiters_and_closes_returns() -> None:
    core = make_core(pool_size=2)
    open_one(core)
    open_one(core)
    held = core.checkout(0.0)
    assert held is not None
    w = Waiter(0.0, None)
    core.waiters.append(w)
    idle, waiters = core.close()
    assert len(idle) == 1 and waiters == [w]
    assert core.opens_wanted(0.0) == 0
    assert core.checkin(held, 1.0, True) == (None, held)


def test_forget_all_after_fork() -> None:
    core = make_core(pool_size=2)
    open_one(core)
    open_one(core)
    core.checkout(0.0)
    entries = core.forget_all()
    assert len(entries) == 2 and core.total() == 0 and core.generation == 1


def test_snapshot_percentiles() -> None:
    core = make_core(pool_size=1, max_overflow=0)
    open_one(core)
    for hold in (0.001, 0.002, 0.003, 0.1):
        entry = core.checkout(0.0)
        assert entry is not None
        core.checkin(entry, hold, True)
    stats = core.snapshot()
    assert stats.hold_time.count == 4
    assert stats.hold_time.p50 == pytest.approx(0.002)
    assert stats.hold_time.p99 == pytest.approx(0.1)
    assert stats.checkouts == 4 and stats.checkins == 4 and stats.idle == 1
