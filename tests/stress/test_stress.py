"""Bounded stress: many more threads than connections. No deadlock (every thread finishes
in bounded time), no lost slot (the books balance afterwards), no double hand-out (each
connection has one holder at a time), nobody starves (every thread gets its turns)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest

from poolwarden import Pool
from tests.conftest import mysql_url
from tests.fakedb import FakeAdapter, FakeServer, OperationalError

pytestmark = pytest.mark.stress

THREADS = 120
ROUNDS = 40


def hammer(pool: Pool, rounds: int, work: Any) -> tuple[list[BaseException], Counter[int]]:
    errors: list[BaseException] = []
    done: Counter[int] = Counter()
    start = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        rng = random.Random(index)
        start.wait()
        for _ in range(rounds):
            try:
                with pool.connection(timeout=30) as conn:
                    work(conn, rng)
                done[index] += 1
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "threads still blocked: deadlock or lost slot"
    return errors, done


def test_stress_fake_driver_with_failures() -> None:
    server = FakeServer()
    lock = threading.Lock()
    double: list[int] = []

    def work(conn: Any, rng: random.Random) -> None:
        raw = conn.raw
        with lock:
            if raw.holder is not None:
                double.append(raw.id)
            raw.holder = threading.get_ident()
        roll = rng.random()
        try:
            if roll < 0.02:
                server.fail("execute", OperationalError(2006, "gone away"))
            conn.cursor().execute("SELECT 1")
            if roll < 0.5:
                conn.commit()
            time.sleep(rng.random() * 0.0005)
        except OperationalError:
            pass
        finally:
            with lock:
                raw.holder = None

    with Pool(server.connect, adapter=FakeAdapter(server), pool_size=5, max_overflow=5) as pool:
        errors, done = hammer(pool, ROUNDS, work)
        stats = pool.stats()
    assert errors == [] and double == []
    assert sorted(done.values()) == [ROUNDS] * THREADS
    assert stats.checkouts == stats.checkins == THREADS * ROUNDS
    assert stats.in_use == 0 and stats.waiting == 0 and stats.timeouts == 0
    assert stats.connects == stats.closes + stats.idle
    assert stats.peak_in_use <= 10 and stats.idle <= 5
    assert stats.discards >= 1  # the injected disconnects were not reused


def test_stress_real_mariadb(mysql_driver: str) -> None:
    lock = threading.Lock()
    holders: dict[int, int] = {}
    double: list[int] = []

    def work(conn: Any, rng: random.Random) -> None:
        cur = conn.cursor()
        cur.execute("SELECT CONNECTION_ID()")
        (conn_id,) = cur.fetchone()
        cur.fetchall()
        with lock:
            if conn_id in holders:
                double.append(conn_id)
            holders[conn_id] = threading.get_ident()
        time.sleep(rng.random() * 0.001)
        with lock:
            holders.pop(conn_id, None)

    with Pool(mysql_url(mysql_driver), pool_size=5, max_overflow=5) as pool:
        errors, done = hammer(pool, 10, work)
        stats = pool.stats()
    assert errors == [] and double == []
    assert sorted(done.values()) == [10] * THREADS
    assert stats.checkouts == stats.checkins == THREADS * 10
    assert stats.in_use == 0 and stats.timeouts == 0 and stats.peak_in_use <= 10
    assert stats.connects == stats.closes + stats.idle
