"""Faults that strike while borrowers hold their connections unused (a long job between two
statements): without a transaction the borrower must see no error; with one it must be told
(ConnectionLost), never lose the work in silence."""

from __future__ import annotations

import time
from typing import Any

from poolwarden import ConnectionLost, Pool
from tests.faults.conftest import record
from tests.faults.proxy import FaultProxy

NOTE = "no transaction: went on; in a transaction: ConnectionLost, then rollback"


def statement(conn: Any) -> None:
    cursor = conn.cursor()
    cursor.execute("SELECT 1")
    cursor.fetchall()


def hold_both(pool: Pool) -> tuple[Any, Any]:
    """Two borrowers: one committed before its pause, one has a transaction open."""
    idle, busy = pool.getconn(), pool.getconn()
    statement(idle)
    idle.commit()
    busy.cursor().execute("CREATE TEMPORARY TABLE held_work (id INT)")
    busy.cursor().execute("INSERT INTO held_work VALUES (1)")
    return idle, busy


def resume(idle: Any, busy: Any, started: float) -> tuple[int, int, float]:
    """Both borrowers go on after the fault: (errors without a transaction, ConnectionLost
    raised with one, seconds until the first went on)."""
    errors = lost = 0
    try:
        statement(idle)
    except Exception:
        errors += 1
    recovery = time.monotonic() - started
    try:
        statement(busy)
    except ConnectionLost:
        lost += 1
        busy.rollback()
        statement(busy)  # the rollback put a working connection in its place
    idle.close()
    busy.close()
    return errors, lost, recovery


def test_server_restart_while_held(target: tuple[Any, str]) -> None:
    server, driver = target
    with Pool(server.url(driver), pool_size=2, held_check_after=0.5) as pool:
        idle, busy = hold_both(pool)
        server.restart()
        time.sleep(0.5)
        started = time.monotonic()
        errors, lost, recovery = resume(idle, busy, started)
        stats = pool.stats()
    record("server restart while held", driver, errors, 0, recovery, NOTE)
    assert errors == 0 and lost == 1, (errors, lost)
    assert stats.held_replaced == 2 and stats.held_lost == 1


def test_connections_reset_while_held(target: tuple[Any, str], proxy: FaultProxy) -> None:
    server, driver = target
    with Pool(server.url(driver, port=proxy.port), pool_size=2, held_check_after=0.5) as pool:
        idle, busy = hold_both(pool)
        assert proxy.reset() == 2
        time.sleep(0.6)
        errors, lost, recovery = resume(idle, busy, time.monotonic())
        stats = pool.stats()
    record("connections reset (RST) while held", driver, errors, 0, recovery, NOTE)
    assert errors == 0 and lost == 1, (errors, lost)
    assert stats.held_replaced == 2 and stats.held_lost == 1
