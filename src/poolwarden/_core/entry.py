"""The long-lived slot that owns one pooled DB-API connection."""

from __future__ import annotations

from collections.abc import Callable
from types import CodeType
from typing import Any

from .callsite import line_of

__all__ = ["Entry"]


class Entry:
    """One open connection and what the pool knows about it.

    An entry lives as long as its connection; each checkout gets a new, short-lived proxy
    (:class:`~poolwarden.PooledConnection`) that points back here. Fields are read and
    written under the pool's lock, except ``raw`` and ``probe``, which change only while
    checked out, by the holder (a held connection found dead is replaced in place).
    """

    __slots__ = (
        "broken",
        "checked_at",
        "checkout_at",
        "created_at",
        "expires_at",
        "generation",
        "host",
        "id",
        "last_used",
        "leak_reported",
        "peer",
        "probe",
        "raw",
        "site_code",
        "site_lasti",
        "stack",
        "thread_name",
    )

    def __init__(
        self,
        raw: Any,
        entry_id: int,
        now: float,
        generation: int,
        probe: Callable[[], Any] | None = None,
    ) -> None:
        self.raw = raw
        self.id = entry_id
        self.created_at = now
        #: Last time the server saw this connection used (returned, or pinged).
        self.last_used = now
        #: Last time it was known to work: connected or pinged. A disconnect elsewhere makes
        #: every connection checked before it suspect.
        self.checked_at = now
        #: When it must be retired (its lifetime, jittered); infinity for no limit.
        self.expires_at = float("inf")
        self.checkout_at = now
        self.generation = generation
        #: A zero-timeout poll of the connection's socket: truthy when it is readable,
        #: which for an idle connection means the server closed it (or wrote unasked).
        self.probe = probe
        #: Set when an operation failed in a way that leaves the connection unusable.
        self.broken = False
        self.leak_reported = False
        #: Where the current holder checked it out: code object and bytecode offset (cheaper
        #: to read than the line number, which is worked out only when reported).
        self.site_code: CodeType | None = None
        self.site_lasti = 0
        #: Frames (code, line) of the checkout, kept only when leak detection is on.
        self.stack: list[tuple[CodeType, int]] | None = None
        #: Who checked it out, as reports name it ("thread 'worker-3'", "task 'Task-7'").
        self.thread_name = ""
        #: The address the connection reached (ip, port), and the configured host name it
        #: was opened for: a failover demotes a peer, a DNS change retires a host's old peers.
        self.peer: tuple[str, int] | None = None
        self.host: str | None = None

    def site(self) -> str:
        """``file:line:function`` of the current checkout, or ``"unknown"``."""
        code = self.site_code
        if code is None:
            return "unknown"
        return f"{code.co_filename}:{line_of(code, self.site_lasti)}:{code.co_name}"

    def __repr__(self) -> str:
        return f"<Entry #{self.id} {'broken' if self.broken else 'ok'}>"
