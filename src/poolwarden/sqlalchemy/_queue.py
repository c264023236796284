"""What a ``WardenPool`` keeps where QueuePool keeps its queue (``pool._pool``).

Code written against QueuePool — its own tests, monitoring that reads pool internals — looks
at ``pool._pool.maxsize``, ``qsize()``, ``empty()``, ``use_lifo`` or ``queue``. WardenPool's
connections live in a poolwarden pool instead; this object holds it (and the adapter that
answers its questions about SQLAlchemy's records) under that name, and answers those reads.
It is a view: the idle connections cannot be changed through it.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.pool.base import _ConnectionRecord

__all__ = ["ConnectionQueue"]

#: The poolwarden engine (``PoolEngine`` or ``AsyncPoolEngine``) and its record adapter.
W = TypeVar("W")
R = TypeVar("R")


class ConnectionQueue(Generic[W, R]):
    """A WardenPool's connections: the poolwarden pool holding its SQLAlchemy connection
    records, with QueuePool's queue's read-only interface."""

    __slots__ = ("hooks", "maxsize", "records", "use_lifo", "warden")

    def __init__(self, warden: W, records: R, hooks: Any, maxsize: int, use_lifo: bool) -> None:
        #: The poolwarden engine deciding who gets which record.
        self.warden = warden
        #: How that engine makes, checks and closes records.
        self.records = records
        #: What the held-connection check of the pool's proxies asks (a ``HeldHooks``).
        self.hooks = hooks
        #: QueuePool's ``pool_size`` (0: no limit).
        self.maxsize = maxsize
        self.use_lifo = use_lifo

    @property
    def queue(self) -> deque[_ConnectionRecord]:
        """The idle records, the next to be handed out first (a copy)."""
        idle = self.warden.idle_connections()  # type: ignore[attr-defined]
        # PoolCore keeps them longest idle first; LIFO hands out from the other end.
        return deque(reversed(idle) if self.use_lifo else idle)

    def qsize(self) -> int:
        """How many records are idle."""
        return self.warden.sizes().idle  # type: ignore[attr-defined, no-any-return]

    def empty(self) -> bool:
        """True when no record is idle."""
        return self.qsize() == 0

    def full(self) -> bool:
        """True when ``maxsize`` records are idle (never, without a limit)."""
        return 0 < self.maxsize <= self.qsize()

    def __repr__(self) -> str:
        return f"<ConnectionQueue of {self.warden!r}>"

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"WardenPool keeps no QueuePool queue: its '_pool' offers only maxsize, use_lifo, "
            f"queue, qsize(), empty() and full(), read-only (not {name!r})"
        )
