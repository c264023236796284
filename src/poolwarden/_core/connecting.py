"""The small value types of checking out and connecting: a queued checkout, the outcome of
a connect attempt, and the backoff between failed attempts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .entry import Entry
from .stats import error_cause

if TYPE_CHECKING:
    from .core import PoolCore
    from .storm import StormGate

#: Distinct connect-failure causes kept apart; the rest count as ("other", ""), so that a
#: flood of odd errors cannot grow the books (or a metrics backend's label set) unbounded.
_MAX_CAUSES = 32

__all__ = [
    "Backoff",
    "ConnectResult",
    "Waiter",
    "connect_failed",
    "connect_succeeded",
    "opens_wanted",
]


class Waiter:
    """A checkout queued for a connection; ``signal`` is the shell's wake-up handle."""

    __slots__ = ("entry", "error", "signal", "since")

    def __init__(self, since: float, signal: Any) -> None:
        self.since = since
        self.signal = signal
        self.entry: Entry | None = None
        self.error: BaseException | None = None


@dataclass
class ConnectResult:
    """What a finished connect attempt asks of the shell."""

    #: The waiter that received the new connection.
    wake: Waiter | None = None
    #: Waiters whose ``error`` was set to a connect error that retrying will not fix.
    fail: list[Waiter] = field(default_factory=list)
    #: A new connection the pool does not need (closed pool, no room).
    close: Entry | None = None
    #: ``None``: the connector is done. Otherwise seconds to wait before the next attempt.
    again: float | None = None


class Backoff:
    """Capped exponential backoff with jitter between failed connect attempts of one pool,
    and the storm gate its server shares with the process's other pools (see
    :mod:`poolwarden._core.storm`), which spaces attempts to a server out of connection slots."""

    INITIAL = 0.1
    FACTOR = 2.0
    CAP = 2.0
    JITTER = 0.1

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.failures = 0
        self.retry_at = float("-inf")
        #: The server's shared gate, set by the shell's first connector (None until then).
        self.gate: StormGate | None = None

    def holding(self, now: float) -> bool:
        """Whether connecting is paused: this pool's own backoff runs, or the server
        refused someone for lack of slots (its gate is open). Either way one connect
        attempt in flight is enough: more would only queue at the gate or fail alike."""
        gate = self.gate
        return now < self.retry_at or (gate is not None and gate.is_open)

    def failed(self, now: float) -> float:
        """Record a failure; return the delay before the next attempt."""
        base = min(self.CAP, self.INITIAL * self.FACTOR**self.failures)
        self.failures += 1
        delay = base * (1.0 + self._rng.uniform(-self.JITTER, self.JITTER))
        self.retry_at = now + delay
        return delay

    def succeeded(self) -> None:
        """Forget past failures."""
        self.failures = 0
        self.retry_at = float("-inf")


def demand(core: PoolCore) -> int:
    """Connections needed beyond those already being opened."""
    needed = len(core.waiters) + max(0, core.min_idle - len(core.idle))
    return min(
        needed - core.connecting,
        core.max_size - core.total(),
        core.max_connecting - core.connecting,
    )


def opens_wanted(core: PoolCore, now: float) -> int:
    """Reserve and return how many new connect attempts the shell should start.

    While backing off after a failure, or while the server's storm gate is open, at
    most one attempt is in flight; the shell's connector waits until
    ``backoff.retry_at``, and then for the gate, before trying.
    """
    if core.closed:
        return 0
    wanted = max(0, demand(core))
    if core.backoff.holding(now):
        wanted = min(wanted, 0 if core.connecting else 1)
    core.connecting += wanted
    return wanted


def connect_succeeded(
    core: PoolCore,
    raw: Any,
    now: float,
    probe: Any = None,
    open_seconds: float | None = None,
    peer: tuple[str, int] | None = None,
    host: str | None = None,
) -> ConnectResult:
    """A connect attempt returned ``raw`` (connected to ``peer``, opened for ``host``)
    after ``open_seconds``; file it and say whether to open another."""
    core.connecting -= 1
    core.counters.connects += 1
    if open_seconds is not None:
        core.create_time.add_unmarked(open_seconds)
    core.backoff.succeeded()
    entry = Entry(raw, core.next_id, now, core.generation, probe)
    entry.peer, entry.host = peer, host
    core.next_id += 1
    core.expiry.stamp(entry)
    waiter, close = core.place(entry, now)
    result = ConnectResult(wake=waiter, close=close)
    if not core.closed and demand(core) > 0:
        core.connecting += 1
        result.again = 0.0
    return result


def connect_failed(
    core: PoolCore, error: BaseException, now: float, retryable: bool
) -> ConnectResult:
    """A connect attempt raised ``error``.

    Waiters keep waiting through errors that retrying may fix (server down, too many
    connections); for any other error (bad password, unknown database) every waiter
    receives it now, so nobody sits out the timeout on a mistake only a person can fix.
    """
    core.connecting -= 1
    core.counters.connect_failures += 1
    cause = error_cause(error)
    if cause not in core.connect_errors and len(core.connect_errors) >= _MAX_CAUSES:
        cause = ("other", "")
    core.connect_errors[cause] = core.connect_errors.get(cause, 0) + 1
    core.last_connect_error = error
    core.last_connect_error_at = now
    delay = core.backoff.failed(now)
    result = ConnectResult()
    if not retryable:
        while core.waiters:
            waiter = core.waiters.popleft()
            waiter.error = error
            result.fail.append(waiter)
    if not core.closed and demand(core) > 0:
        core.connecting += 1
        result.again = delay
    return result


def resume_connecting(core: PoolCore) -> bool:
    """After a backoff pause: go on (True), or give the reserved slot back (False)."""
    core.connecting -= 1  # decide as if starting afresh
    if not core.closed and demand(core) > 0:
        core.connecting += 1
        return True
    return False


def abandon_connect(core: PoolCore) -> None:
    """Give back a reserved connect slot without an attempt (closing, shutting down)."""
    core.connecting -= 1
