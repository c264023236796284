"""The explanations poolwarden gives when a checkout fails."""

from __future__ import annotations

from ._core import PoolCore
from ._io import ConnectionIO

__all__ = ["timeout_message"]


def timeout_message(
    name: str,
    core: PoolCore,
    io: ConnectionIO,
    waited: float,
    connect_error: BaseException | None,
    now: float,
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
            f"last with: {io.describe_connect_error(connect_error)}"
        )
    oldest = core.oldest_holder()
    if oldest is not None:
        held = now - oldest.checkout_at
        who = f" by thread {oldest.thread_name!r}" if oldest.thread_name else ""
        text += (
            f". The longest-held connection (#{oldest.id}) has been checked out for "
            f"{held:.1f} s, at {oldest.site()}{who}. Connections that are never given "
            "back exhaust the pool: use 'with pool.connection() as conn:' or return "
            "them in a 'finally:' block; set leak_threshold to log the stack of each "
            "connection held too long"
        )
    return text
