"""What the engine's parts share: the books and their lock, the driver I/O, the clock.

The engine (``_engine``), its background work (``_background``), the server rules it learns
(``_rules``) and the held-connection checks (``_held``) each get this one object when they are
made, instead of reaching into each other: a part that needs the lock takes ``shared.lock``.
A forked child gets a new lock and closing event in the same object, so every part sees them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .._core import PoolCore
from ._compat import Event
from ._io import ConnectionIO

__all__ = ["Shared"]


class Shared:
    """The state one pool's parts share (see the module docstring)."""

    __slots__ = ("closing", "core", "io", "lock", "name", "now")

    def __init__(
        self, core: PoolCore, io: ConnectionIO, now: Callable[[], float], name: str
    ) -> None:
        #: The pool's books: read and changed only while holding ``lock``.
        self.core = core
        self.io = io
        #: The pool's clock (monotonic seconds).
        self.now = now
        #: The pool's label for logs.
        self.name = name
        self.lock = threading.Lock()
        #: Set when the pool closes: connectors and waits at the storm gate end.
        self.closing = Event()

    def renew_after_fork(self) -> None:
        """In a forked child: a lock another thread of the parent may have held, and an
        event its tasks may wait on, are replaced."""
        self.lock = threading.Lock()
        self.closing = Event()
