"""Faults that strike while borrowers hold their connections unused (a long job between two
statements): without a transaction the borrower must see no error; with one it must be told
(ConnectionLost), never lose the work in silence. Written once for both pools (the sync
copy is generated)."""

# mypy: disable-error-code="func-returns-value"
# (the sync copy passes a call's result to ``bounded``, which may be None)
from __future__ import annotations

import time

import pytest

from poolwarden import AsyncPool, AsyncPooledConnection, ConnectionLost
from tests.faults.conftest import Target, record
from tests.faults.proxy import FaultProxy

from ._compat import MARKS, blocking, bounded, sleep

pytestmark = [*MARKS, pytest.mark.timeout(120)]

NOTE = "no transaction: went on; in a transaction: ConnectionLost, then rollback"


async def statement(conn: AsyncPooledConnection) -> None:
    async with conn.cursor() as cur:
        await cur.execute("SELECT 1")
        await cur.fetchall()


async def hold_both(pool: AsyncPool) -> tuple[AsyncPooledConnection, AsyncPooledConnection]:
    """Two borrowers: one committed before its pause, one has a transaction open."""
    idle, busy = await pool.getconn(timeout=10), await pool.getconn(timeout=10)
    await statement(idle)
    await idle.commit()
    async with busy.cursor() as cur:
        await cur.execute("CREATE TEMPORARY TABLE held_work (id INT)")
        await cur.execute("INSERT INTO held_work VALUES (1)")
    return idle, busy


async def resume(
    idle: AsyncPooledConnection, busy: AsyncPooledConnection, started: float
) -> tuple[int, int, float]:
    """Both borrowers go on after the fault: (errors without a transaction, ConnectionLost
    raised with one, seconds until the first went on)."""
    errors = lost = 0
    try:
        await bounded(statement(idle), 30, "a statement")
    except Exception:
        errors += 1
    recovery = time.monotonic() - started
    try:
        await bounded(statement(busy), 30, "a statement")
    except ConnectionLost:
        lost += 1
        await bounded(busy.rollback(), 30, "a rollback")
        # The rollback put a working connection in its place.
        await bounded(statement(busy), 30, "a statement")
    await idle.close()
    await busy.close()
    return errors, lost, recovery


async def test_server_restart_while_held(target: Target) -> None:
    server, driver, label = target
    async with AsyncPool(server.url(driver), pool_size=2, held_check_after=0.5) as pool:
        idle, busy = await hold_both(pool)
        await blocking(server.restart)
        await sleep(0.5)
        errors, lost, recovery = await resume(idle, busy, time.monotonic())
        stats = pool.stats()
    record("server restart while held", label, errors, 0, recovery, NOTE)
    assert errors == 0 and lost == 1, (errors, lost)
    assert stats.held_replaced == 2 and stats.held_lost == 1, stats


async def test_connections_reset_while_held(target: Target, proxy: FaultProxy) -> None:
    server, driver, label = target
    url = server.url(driver, port=proxy.port)
    async with AsyncPool(url, pool_size=2, held_check_after=0.5) as pool:
        idle, busy = await hold_both(pool)
        assert proxy.reset() == 2
        await sleep(0.6)
        errors, lost, recovery = await resume(idle, busy, time.monotonic())
        stats = pool.stats()
    record("connections reset (RST) while held", label, errors, 0, recovery, NOTE)
    assert errors == 0 and lost == 1, (errors, lost)
    assert stats.held_replaced == 2 and stats.held_lost == 1, stats
