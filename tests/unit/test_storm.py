"""The connection-storm guard without a server: the shared gate on a fake clock (spacing,
one probe at a time, recovery, any interleaving), from many threads, its keys and
registry, and the adapters' classification of "server full" errors. Pools sharing a gate
are in ``test_storm_pools``."""

from __future__ import annotations

import gc
import heapq
import random
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poolwarden._core import storm as _storm
from poolwarden._core.storm import ServerKey, StormGate, gate_for, is_limit_error, server_key
from poolwarden.adapters import ADAPTERS, ASYNC_ADAPTERS, Adapter
from tests.fakedb import FakeAdapter, FakeServer

TOO_MANY = 1040
KEY = ServerKey("mysql", "db.example:3306")
FLOOR = StormGate.JITTER_FLOOR


def step(failures: int) -> float:
    """The backoff step after ``failures`` refusals in a row (before jitter)."""
    return min(StormGate.CAP, StormGate.INITIAL * StormGate.FACTOR ** (failures - 1))


def most_probes(seconds: float) -> int:
    """The most probes an open gate can admit within ``seconds`` of opening: each waits at
    least the jittered floor of its step after the refusal before it."""
    elapsed, count = 0.0, 0
    while True:
        elapsed += FLOOR * step(count + 1)
        if elapsed > seconds:
            return count
        count += 1


# -- the gate on a fake clock --------------------------------------------------------------
def test_closed_gate_admits_everyone() -> None:
    gate = StormGate(KEY, random.Random(1))
    tickets = [gate.enter(0.0) for _ in range(5)]
    assert all(ticket and wait == 0.0 for ticket, wait in tickets)
    for ticket, _ in tickets:
        gate.succeeded(ticket, 0.01)
    assert not gate.is_open and gate.attempts == 5


def test_refusals_space_attempts_by_the_backoff() -> None:
    """Never a tight loop: a connector asking again the moment it is refused (and 20 more
    doing the same) gets attempts spaced by the capped, jittered exponential backoff."""
    gate = StormGate(KEY, random.Random(7))
    starts: list[float] = []
    # (time, 0: asks to start / 1: its attempt ends, connector, ticket)
    queue = [(0.0, 0, n, 0) for n in range(21)]  # 21 connectors in a tight loop
    while queue:
        now, kind, who, ticket = heapq.heappop(queue)
        if now > 60.0:
            break
        if kind == 1:
            gate.refused(ticket, now, "Too many connections")
            heapq.heappush(queue, (now, 0, who, 0))  # and asks again at once
            continue
        ticket, wait = gate.enter(now)
        if not ticket:
            assert wait > 0.0
            heapq.heappush(queue, (now + wait, 0, who, 0))
            continue
        starts.append(now)
        heapq.heappush(queue, (now + 0.002, 1, who, ticket))  # refused in 2 ms
    # The first round goes out while the gate is closed (one each); the next wait.
    first_round = [s for s in starts if s == 0.0]
    probes = starts[len(first_round) :]
    assert len(first_round) == 21
    gaps = [b - a for a, b in zip([0.0, *probes], probes, strict=False)]
    for n, gap in enumerate(gaps, start=1):
        # Probe n follows refusal n (the first round's first refusal opened the gate).
        assert FLOOR * step(n) <= gap <= step(n) + 0.01 + StormGate.POLL, (n, gap)
    assert max(gaps) <= StormGate.CAP + 0.01 + StormGate.POLL
    assert len(probes) <= most_probes(60.0) + 1
    assert len(probes) <= 60.0 / (FLOOR * StormGate.CAP) + 5  # ~0.4 attempts/s at the cap
    assert gate.failures == len(probes) + 1


def test_one_probe_at_a_time_and_success_closes() -> None:
    gate = StormGate(KEY, random.Random(3))
    ticket, _ = gate.enter(0.0)
    gate.refused(ticket, 0.0, "Too many connections")
    assert gate.is_open
    assert gate.enter(0.0)[0] == 0  # too early
    probe, wait = gate.enter(gate.next_at)
    assert probe and wait == 0.0
    other, wait = gate.enter(gate.next_at + 10.0)
    assert other == 0 and wait == StormGate.POLL  # a probe flies: look again shortly
    gate.succeeded(probe, gate.next_at + 0.01)
    assert not gate.is_open
    assert all(gate.enter(100.0)[0] for _ in range(3))  # open for everyone again


def test_refusals_resume_the_backoff_unless_the_gate_stayed_closed() -> None:
    gate = StormGate(KEY, random.Random(5))
    for _ in range(4):
        ticket, _ = gate.enter(gate.next_at if gate.is_open else 0.0)
        gate.refused(ticket, max(0.0, gate.next_at), "full")
    assert gate.failures == 4
    ticket, _ = gate.enter(gate.next_at)
    closed_at = gate.next_at + 0.01
    gate.succeeded(ticket, closed_at)
    # Refused again soon after one lucky probe: the backoff goes on from where it was.
    ticket, _ = gate.enter(closed_at + 1.0)
    gate.refused(ticket, closed_at + 1.0, "full")
    assert gate.failures == 5
    ticket, _ = gate.enter(gate.next_at)
    gate.succeeded(ticket, 50.0)
    # Closed for longer than RESET_AFTER: a new storm starts from the first step.
    ticket, _ = gate.enter(50.0 + StormGate.RESET_AFTER)
    gate.refused(ticket, 50.0 + StormGate.RESET_AFTER, "full")
    assert gate.failures == 1


def test_attempts_begun_before_the_gate_opened() -> None:
    """Refusals of attempts that were already in flight when the gate opened do not
    escalate the backoff; until they end no probe starts; a stuck one stops counting."""
    gate = StormGate(KEY, random.Random(2))
    first, second, _stuck = (gate.enter(0.0)[0] for _ in range(3))
    gate.refused(first, 0.01, "full")
    opened_until = gate.next_at
    gate.refused(second, 0.02, "full")
    assert gate.failures == 1 and gate.next_at == opened_until
    assert gate.enter(opened_until)[0] == 0  # ``stuck`` still in flight
    probe, _ = gate.enter(StormGate.STALE_AFTER + 1.0)
    assert probe


def test_a_probe_failing_otherwise_still_spaces_the_next() -> None:
    gate = StormGate(KEY, random.Random(4))
    ticket, _ = gate.enter(0.0)
    gate.refused(ticket, 0.0, "full")
    probe, _ = gate.enter(gate.next_at)
    down_at = gate.next_at + 0.01
    gate.failed(probe, down_at)  # "connection refused": the server restarting, say
    assert gate.is_open and gate.failures == 1
    assert gate.next_at >= down_at + FLOOR * step(1)
    assert gate.enter(down_at)[0] == 0


def test_describe_names_the_server_and_what_it_said() -> None:
    gate = StormGate(KEY, random.Random(1))
    assert gate.describe(0.0) is None
    ticket, _ = gate.enter(0.0)
    gate.refused(ticket, 0.0, "OperationalError(1040, 'Too many connections')")
    text = gate.describe(0.0)
    assert text is not None
    assert "mysql db.example:3306" in text and "backs off" in text
    assert "Too many connections" in text
    assert "Too many" not in (gate.describe(0.0, with_cause=False) or "")


@settings(max_examples=150, deadline=None)
@given(
    connectors=st.integers(1, 12),
    durations=st.lists(st.floats(0.0005, 0.8), min_size=1, max_size=8),
    outcomes=st.lists(st.sampled_from(["full", "full", "full", "down", "ok"]), min_size=1),
    seed=st.integers(0, 2**32 - 1),
)
def test_open_gate_never_overlaps_or_rushes(
    connectors: int, durations: list[float], outcomes: list[str], seed: int
) -> None:
    """Whatever the interleaving: while the gate is open no attempt starts beside another
    one, and each probe waits at least the backoff's floor after the news before it."""
    gate = StormGate(KEY, random.Random(seed))
    flying: dict[int, float] = {}
    queue: list[tuple[float, int, int, int]] = [(0.0, 0, n, 0) for n in range(connectors)]
    spaced_from = -1.0  # the refusal (or failed probe) the next probe must keep clear of
    count = 0
    while queue and count < 3000:
        now, kind, who, ticket = heapq.heappop(queue)
        count += 1
        if kind == 0:  # asks to start
            was_open = gate.is_open
            ticket, wait = gate.enter(now)
            if not ticket:
                heapq.heappush(queue, (now + wait, 0, who, 0))
                continue
            if was_open:
                assert not flying, "a probe started beside another attempt"
                assert now - spaced_from >= FLOOR * StormGate.INITIAL - 1e-9
            flying[ticket] = now
            duration = durations[count % len(durations)]
            heapq.heappush(queue, (now + duration, 1, who, ticket))
        else:  # ends
            probe = gate._flying[ticket][1]
            del flying[ticket]
            outcome = outcomes[count % len(outcomes)]
            if outcome == "ok":
                gate.succeeded(ticket, now)
            elif outcome == "full":
                opening = not gate.is_open
                gate.refused(ticket, now, "full")
                if opening or probe:
                    spaced_from = now
            else:
                gate.failed(ticket, now)
                if probe:
                    spaced_from = now
            if now < 120.0:
                heapq.heappush(queue, (now, 0, who, 0))  # a tight loop, as a bad client


class CheckedGate(StormGate):
    """Short pauses, and a record of any probe admitted beside another attempt."""

    INITIAL, CAP, POLL = 0.0005, 0.004, 0.0005

    violations = 0

    def enter(self, now: float) -> tuple[int, float]:
        ticket, wait = super().enter(now)
        if ticket:
            with self._lock:
                if self._flying[ticket][1] and len(self._flying) > 1:
                    self.violations += 1
        return ticket, wait


def test_gate_is_thread_safe() -> None:
    gate = CheckedGate(KEY)
    stop = time.monotonic() + 1.0
    errors: list[BaseException] = []

    def connector(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while time.monotonic() < stop:
                ticket, wait = gate.enter(time.monotonic())
                if not ticket:
                    time.sleep(wait)
                    continue
                time.sleep(rng.uniform(0, 0.0005))
                roll = rng.random()
                if roll < 0.7:
                    gate.refused(ticket, time.monotonic(), "full")
                elif roll < 0.85:
                    gate.failed(ticket, time.monotonic())
                else:
                    gate.succeeded(ticket, time.monotonic())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=connector, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == [] and gate.violations == 0
    assert gate._flying == {} and gate.attempts > 100


# -- keys and the registry -----------------------------------------------------------------
def url_adapter(url: str, asyncio: bool = False) -> Any:
    from poolwarden._net.url import parse_url

    parsed = parse_url(url, asyncio=asyncio)
    table = ASYNC_ADAPTERS if asyncio else ADAPTERS
    return table[parsed.scheme].from_url(parsed, {})


def test_keys_name_the_server_never_the_password() -> None:
    first = url_adapter("mysql+pymysql://app:s3cret-pw@db.example/test")
    same = url_adapter("mysql+mysqldb://app:other-pw@db.example:3306/other")
    aio = url_adapter("mysql+asyncmy://app:s3cret-pw@db.example:3306/test", asyncio=True)
    key = server_key(first)
    assert key == server_key(same) == server_key(aio)
    assert str(key) == "mysql app@db.example:3306"
    assert "s3cret" not in repr(key) and "s3cret" not in repr(gate_for(first))
    assert server_key(url_adapter("mysql+pymysql://app@db.example:3307/test")) != key
    # Another account: its own limits, its own gate.
    assert server_key(url_adapter("mysql+pymysql://admin:pw@db.example/test")) != key
    pg = server_key(url_adapter("postgresql+psycopg://u:pw@pg.example/test"))
    assert str(pg) == "postgresql u@pg.example:5432"
    multi = server_key(url_adapter("mysql+pymysql://u:pw@a.example:3306,b.example/test"))
    assert multi.address == "a.example:3306,b.example:3306"


def test_pools_of_one_server_share_a_gate() -> None:
    a = gate_for(url_adapter("mysql+pymysql://app:pw@db.example:3306/test"))
    b = gate_for(url_adapter("mysql+pymysql://app:pw@db.example:3306/test"))
    c = gate_for(url_adapter("mysql+asyncmy://app:pw@db.example:3306/test", asyncio=True))
    assert a is b is c
    assert gate_for(url_adapter("postgresql+psycopg://u@db.example/test")) is not a


def test_callable_targets_are_keyed_by_their_callable() -> None:
    server = FakeServer()
    one, two = FakeAdapter(server), FakeAdapter(server)
    assert gate_for(one) is gate_for(two)
    assert gate_for(FakeAdapter(FakeServer())) is not gate_for(one)

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> None:
            return None

    target = Unhashable()
    assert gate_for(Adapter(None, target)) is gate_for(Adapter(None, target))


def test_registry_keeps_open_gates_and_lets_closed_ones_go() -> None:
    """A pool recreated by dispose() finds the storm its predecessor saw; a gate with
    nothing to remember goes with the last pool using it."""
    closed = gate_for(url_adapter("mysql+pymysql://u@closed.example/test"))
    opened = gate_for(url_adapter("mysql+pymysql://u@full.example/test"))
    ticket, _ = opened.enter(0.0)
    opened.refused(ticket, 0.0, "full")
    keys = {closed.key, opened.key}
    del closed, opened
    gc.collect()
    alive = {gate.key for gate in _storm.gates()}
    assert keys & alive == {ServerKey("mysql", "full.example:3306", "u")}


# -- classification --------------------------------------------------------------------------
def sync_adapter(scheme: str) -> Adapter:
    cls = ADAPTERS[scheme]
    return cls(cls.import_driver(), lambda: None)


@pytest.mark.parametrize("scheme", ["mysql+pymysql", "mysql+mysqldb", "mysql+mysqlconnector"])
def test_mysql_limit_errors(scheme: str) -> None:
    from tests.unit.test_adapters import connector_error, mysqldb_error, pymysql_error

    make = {
        "mysql+pymysql": pymysql_error,
        "mysql+mysqldb": mysqldb_error,
        "mysql+mysqlconnector": connector_error,
    }[scheme]
    adapter = sync_adapter(scheme)
    for code in (1040, 1203, 1226):
        assert adapter.is_connection_limit_error(make(code, "Too many connections")), code
    for code in (2003, 2013, 1045, 1049):
        assert not adapter.is_connection_limit_error(make(code, "other")), code
    assert not adapter.is_connection_limit_error(ValueError("1040 Too many connections"))


def test_asyncmy_limit_error() -> None:
    import asyncmy.errors

    cls = ASYNC_ADAPTERS["mysql+asyncmy"]
    adapter = cls(cls.import_driver(), lambda: None)
    assert adapter.is_connection_limit_error(
        asyncmy.errors.OperationalError(1040, "Too many connections")
    )
    assert not adapter.is_connection_limit_error(
        asyncmy.errors.OperationalError(2003, "Can't connect to MySQL server")
    )


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql+psycopg2"])
def test_postgres_limit_errors(scheme: str) -> None:
    adapter = sync_adapter(scheme)
    dbapi: Any = adapter.dbapi
    server = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
    full = [
        server + "FATAL:  sorry, too many clients already",
        server + "FATAL:  remaining connection slots are reserved for roles with the "
        "SUPERUSER attribute",
        server + 'FATAL:  too many connections for role "app"',
        server + "ERROR:  no more connections allowed (max_client_conn)",  # PgBouncer
    ]
    other = [
        server + "Connection refused",
        server + 'FATAL:  password authentication failed for user "app"',
        server + "FATAL:  the database system is starting up",
    ]
    for text in full:
        assert adapter.is_connection_limit_error(dbapi.OperationalError(text)), text
        assert adapter.is_retryable_connect_error(dbapi.OperationalError(text)), text
    for text in other:
        assert not adapter.is_connection_limit_error(dbapi.OperationalError(text)), text


def test_psycopg_sqlstate_53300() -> None:
    import psycopg

    adapter = sync_adapter("postgresql+psycopg")
    assert adapter.is_connection_limit_error(psycopg.errors.TooManyConnections("x"))


def test_generic_adapters_ask_the_driver_of_the_error() -> None:
    import pymysql

    generic = Adapter(None, lambda: None)  # a callable target before its first connection
    refusal = pymysql.err.OperationalError(1040, "Too many connections")
    assert not generic.is_connection_limit_error(refusal)
    assert is_limit_error(generic, refusal)
    assert not is_limit_error(generic, pymysql.err.OperationalError(2003, "refused"))
    assert not is_limit_error(generic, OSError("Connection refused"))
