# Generated from tests/faults/_async/test_held_faults.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""Faults that strike while borrowers hold their connections unused (a long job between two
statements): without a transaction the borrower must see no error; with one it must be told
(ConnectionLost), never lose the work in silence. Written once for both pools (the sync
copy is generated)."""

# mypy: disable-error-code="func-returns-value"
# (the sync copy passes a call's result to ``bounded``, which may be None)
from __future__ import annotations

import time

import pytest

from poolwarden import ConnectionLost, Pool, PooledConnection
from tests.faults.conftest import Target, record
from tests.faults.proxy import FaultProxy

from ._compat import MARKS, blocking, bounded, sleep

pytestmark = [*MARKS, pytest.mark.timeout(120)]

NOTE = "no transaction: went on; in a transaction: ConnectionLost, then rollback"


def statement(conn: PooledConnection) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchall()


def hold_both(pool: Pool) -> tuple[PooledConnection, PooledConnection]:
    """Two borrowers: one committed before its pause, one has a transaction open."""
    idle, busy = pool.getconn(timeout=10), pool.getconn(timeout=10)
    statement(idle)
    idle.commit()
    with busy.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE held_work (id INT)")
        cur.execute("INSERT INTO held_work VALUES (1)")
    return idle, busy


def resume(
    idle: PooledConnection, busy: PooledConnection, started: float
) -> tuple[int, int, float]:
    """Both borrowers go on after the fault: (errors without a transaction, ConnectionLost
    raised with one, seconds until the first went on)."""
    errors = lost = 0
    try:
        bounded(statement(idle), 30, "a statement")
    except Exception:
        errors += 1
    recovery = time.monotonic() - started
    try:
        bounded(statement(busy), 30, "a statement")
    except ConnectionLost:
        lost += 1
        bounded(busy.rollback(), 30, "a rollback")
        # The rollback put a working connection in its place.
        bounded(statement(busy), 30, "a statement")
    idle.close()
    busy.close()
    return errors, lost, recovery


def test_server_restart_while_held(target: Target) -> None:
    server, driver, label = target
    with Pool(server.url(driver), pool_size=2, held_check_after=0.5) as pool:
        idle, busy = hold_both(pool)
        blocking(server.restart)
        sleep(0.5)
        errors, lost, recovery = resume(idle, busy, time.monotonic())
        stats = pool.stats()
    record("server restart while held", label, errors, 0, recovery, NOTE)
    assert errors == 0 and lost == 1, (errors, lost)
    assert stats.held_replaced == 2 and stats.held_lost == 1, stats


def test_connections_reset_while_held(target: Target, proxy: FaultProxy) -> None:
    server, driver, label = target
    url = server.url(driver, port=proxy.port)
    with Pool(url, pool_size=2, held_check_after=0.5) as pool:
        idle, busy = hold_both(pool)
        assert proxy.reset() == 2
        sleep(0.6)
        errors, lost, recovery = resume(idle, busy, time.monotonic())
        stats = pool.stats()
    record("connections reset (RST) while held", label, errors, 0, recovery, NOTE)
    assert errors == 0 and lost == 1, (errors, lost)
    assert stats.held_replaced == 2 and stats.held_lost == 1, stats
