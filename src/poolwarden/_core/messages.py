"""The explanations poolwarden gives when a checkout fails or a held connection is lost."""

from __future__ import annotations

from collections.abc import Callable

from ..adapters.base import BaseAdapter
from ..errors import ConnectionLost
from . import PoolCore

__all__ = ["lost_error", "lost_message", "timeout_message"]


def timeout_message(
    name: str,
    core: PoolCore,
    describe_error: Callable[[BaseException], str],
    waited: float,
    connect_error: BaseException | None,
    now: float,
    hint: str = "",
) -> str:
    """Why a checkout found no connection: the limits, who holds the connections (and
    where the longest-held one was taken), and what connecting said, if it failed."""
    in_use, waiting = len(core.in_use), len(core.waiters)
    text = (
        f"no connection available within {waited:g} s from pool {name}: "
        f"{in_use} of {core.max_size} connections in use "
        f"(pool_size={core.pool_size}, max_overflow={core.max_overflow}), "
        f"{waiting} other checkout(s) waiting"
    )
    if connect_error is not None:
        text += (
            f"; opening a new connection failed {core.backoff.failures} time(s) in a row, "
            f"last with: {describe_error(connect_error)}"
        )
    elif hint:
        text += f"; no connection could be opened yet: {hint}"
    gate = core.backoff.gate
    # The server refused someone for lack of slots: say so, and what it said, even when
    # this pool's own last attempt came before the wait (the gate held its next one back).
    storm = gate.describe(now, with_cause=connect_error is None) if gate is not None else None
    if storm:
        text += f"; {storm}"
    oldest = core.oldest_holder()
    if oldest is not None:
        held = now - oldest.checkout_at
        who = f" by {oldest.thread_name}" if oldest.thread_name else ""
        text += (
            f". The longest-held connection (#{oldest.id}) has been checked out for "
            f"{held:.1f} s, at {oldest.site()}{who}. Connections that are never given "
            "back exhaust the pool: use 'with pool.connection() as conn:' or return "
            "them in a 'finally:' block; set leak_threshold to log the stack of each "
            "connection held too long"
        )
    return text


def lost_message(
    idle: float,
    server_idle_timeout: float | None,
    open_transaction: bool = True,
    session_changed: bool = False,
) -> str:
    """Why a held connection's work or session is gone, and what to do about it."""
    if server_idle_timeout and idle >= server_idle_timeout:
        closed = (
            f"the server closed it (its idle timeout for this session is "
            f"{server_idle_timeout:g} s)"
        )
    else:
        closed = "the server closed it (killed, restarted, or the network path reset)"
    if open_transaction:
        lost = (
            "A transaction was open on it, so its uncommitted work was rolled back by the "
            "server and is lost. Call rollback(), then run the transaction again"
        )
    else:
        lost = (
            "Session state had been set on it (a SET, USE or similar statement, or a driver "
            "call) that a new connection would not have, so it was not replaced unseen. Call "
            "rollback() for a new connection, set up that state again, and go on"
        )
    return (
        f"Lost connection to the server while it was held: it sat unused for {idle:.1f} s "
        f"in the borrower's hands and {closed}. {lost} (commit before long pauses; "
        f"poolwarden.retry_on_disconnect can re-run units of work that are safe to repeat)"
    )


def lost_error(
    adapter: BaseAdapter,
    idle: float,
    server_idle_timeout: float | None,
    open_transaction: bool = True,
    session_changed: bool = False,
) -> ConnectionLost:
    """The :class:`~poolwarden.ConnectionLost` to raise, as the driver's own error type."""
    reason = lost_message(idle, server_idle_timeout, open_transaction, session_changed)
    error = adapter.connection_lost(reason)
    error.reason = reason
    error.idle_seconds = idle
    error.server_idle_timeout = server_idle_timeout
    return error
