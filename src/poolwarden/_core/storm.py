"""The connection-storm guard: one connect gate per server, shared by every pool in the
process that connects to it.

A server out of connection slots (MySQL/MariaDB 1040, or an account's 1203/1226;
PostgreSQL 53300 "too many clients"; PgBouncer's "no more connections allowed") still does
the work of accepting each connection before it refuses it: a process, or a thread, and a
handshake. Pools that retry such refusals quickly, each on its own, turn a moment of
overload into an outage: during a restart 14 pods opened 10,330 connections against a cap
of 2,688 (temporalio#9747), and a client kept ~12,500 connect attempts per second going
against a failing proxy (porsager/postgres#1179).

So every pool of the process whose target names the same server (dialect, host and port
as configured, and the account: see :class:`ServerKey`; several pools, engines, pools a
``dispose()`` recreated, several event loops or threads) shares one :class:`StormGate`,
found with :func:`gate_for`. A refusal for lack of slots *opens* it. While it is open,
across all those pools, at most one connect attempt at a time goes to that server (a
half-open probe, as a circuit breaker sends), and probes are spaced by a capped
exponential backoff with jitter; the first success *closes* it. Other failures (refused,
server down, a wrong password) change nothing here: each pool's own
:class:`~poolwarden._core.Backoff` spaces those.

The gate decides only; it never sleeps. A connector asks :meth:`StormGate.enter` and, when
told to wait, waits in its pool's usual way (``wait_event(self._closing, delay)``, a thread
or the event loop), so one gate serves sync and asyncio pools alike and never blocks an
event loop. Its lock is held for a few dictionary operations, never across I/O. Times are
the pools' monotonic clocks (``time.monotonic`` unless a test gives a pool its own: pools
sharing a gate must then share that clock).
"""

from __future__ import annotations

import itertools
import math
import os
import random
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..adapters.base import BaseAdapter

__all__ = ["ServerKey", "StormGate", "gate_for", "gates", "is_limit_error", "server_key"]

#: Ports servers listen on when the URL names none, so that ``host`` and ``host:3306``
#: share a gate.
DEFAULT_PORTS = {"mysql": 3306, "postgresql": 5432}


@dataclass(frozen=True)
class ServerKey:
    """Which server a gate guards: its dialect and address as configured (``host:port``,
    every host of a multi-host URL, or a socket path), and the account connecting.

    The account is part of the key because some limits are the account's (MySQL's
    max_user_connections, a PostgreSQL role's CONNECTION LIMIT): one account at its
    limit must not slow another account's pools to the same server. A server-wide limit
    is then probed once per account, and a process rarely uses more than one or two.
    Never a password: no field can hold one, and a connect callable (the key of a pool
    whose target is a callable) is compared but not shown."""

    dialect: str
    address: str
    user: str = ""
    connect: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{self.dialect} {user}{self.address}"


def _address(host: str | None, port: int | str | None) -> str:
    text = "localhost" if not host else f"[{host}]" if ":" in host else host
    return f"{text}:{port}" if port else text


def server_key(adapter: BaseAdapter) -> ServerKey:
    """The key of the server ``adapter`` connects to (see :class:`ServerKey`)."""
    own = getattr(adapter, "storm_key", None)  # an adapter that knows better says so
    if callable(own):
        key = own()
        if isinstance(key, ServerKey):
            return key
    dialect = adapter.dialect
    default = getattr(adapter, "default_port", 0) or DEFAULT_PORTS.get(dialect)
    url, kwargs = adapter.url, adapter.kwargs
    user = str(kwargs.get("user") or (url.username if url is not None else None) or "")
    if url is not None:
        socket_path = url.query.get("unix_socket") or url.query.get("host")
        hosts = url.hosts or ((url.host or socket_path, url.port),)
        if not any(host for host, _ in hosts) and url.database and not default:
            return ServerKey(dialect, url.database)  # a file (SQLite): no server to spare
        address = ",".join(_address(host, port or default) for host, port in hosts)
        return ServerKey(dialect, address, user)
    if kwargs.get("host") or kwargs.get("unix_socket"):
        host = kwargs.get("unix_socket") or kwargs.get("host")
        return ServerKey(dialect, _address(str(host), kwargs.get("port") or default), user)
    connect: Any = adapter._connect
    try:
        hash(connect)
    except TypeError:
        connect = _ByIdentity(connect)
    name = getattr(connect, "__qualname__", None) or type(connect).__qualname__
    return ServerKey(dialect, f"<{name}>", connect=connect)


class _ByIdentity:
    """An unhashable connect callable, compared by identity (kept alive by the key)."""

    __slots__ = ("target",)

    def __init__(self, target: Any) -> None:
        self.target = target

    def __hash__(self) -> int:
        return id(self.target)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.target is self.target


def is_limit_error(adapter: BaseAdapter, exc: BaseException) -> bool:
    """Whether a failed connect means the server is out of connection slots: the adapter's
    :meth:`~poolwarden.adapters.BaseAdapter.is_connection_limit_error`, or, for an adapter
    that does not know the driver yet (a callable target before its first connection,
    SQLAlchemy's records), that of the driver whose error it is."""
    if adapter.is_connection_limit_error(exc):
        return True
    if adapter.dialect in DEFAULT_PORTS:
        return False  # a driver adapter has answered for its own errors
    from ..adapters import for_exception

    try:
        driver = for_exception(exc)
    except Exception:  # the driver module cannot be imported here after all
        return False
    return driver is not None and driver.is_connection_limit_error(exc)


class StormGate:
    """The shared connect gate of one server (see the module docstring).

    ``enter`` is asked before every connect attempt of every pool using the gate; an
    admitted attempt reports how it ended with exactly one of ``succeeded``, ``refused``
    (out of slots), ``failed`` (anything else) or ``cancel`` (not made, or abandoned).
    """

    #: The first pause after a refusal. A refusal costs the server a process or thread
    #: and a handshake, so a process starts at four attempts a second at most; slots free
    #: whenever clients disconnect, so a quarter second still catches one freed at once.
    INITIAL = 0.25
    FACTOR = 2.0
    #: The longest pause. HikariCP caps its refill backoff at 5 s too: in a long storm
    #: each process sends one attempt per 2.5-5 s to the server (14 pods: 3-6 a second in
    #: all), and capacity that comes back is found within 5 s.
    CAP = 5.0
    #: "Equal jitter": each pause is drawn from [half, all] of the backoff step, so that
    #: processes restarted together drift apart, while the half keeps a hard floor on the
    #: spacing (which bounds the attempt rate whatever the luck).
    JITTER_FLOOR = 0.5
    #: Seconds the gate must stay closed before its refusals are forgotten: a server that
    #: takes one connection and refuses the next resumes the backoff where it was, rather
    #: than from the start after every lucky probe.
    RESET_AFTER = 2 * CAP
    #: Longest a connector waits before looking again while another attempt is in flight
    #: (that attempt's success closes the gate at any moment). Looking costs a lock.
    POLL = 0.25
    #: An attempt in flight for this long (a driver without a connect timeout, facing a
    #: server that does not answer) stops holding back probes from other pools.
    STALE_AFTER = 30.0

    def __init__(self, key: ServerKey, rng: random.Random | None = None) -> None:
        self.key = key
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        #: Open: the server refused for lack of slots, and no connect succeeded since.
        self.is_open = False
        #: Refusals counted for the backoff (probes' and the one that opened the gate).
        self.failures = 0
        #: When the next probe may start (monotonic seconds).
        self.next_at = -math.inf
        self.closed_at = -math.inf
        #: What the last refusal said (described, password-free, by the pool that saw it).
        self.cause = ""
        #: Attempts in flight: ticket -> (start, whether it was a probe of the open gate).
        self._flying: dict[int, tuple[float, bool]] = {}
        self._tickets = itertools.count(1)
        #: Attempts admitted, refusals seen, and attempts that had to wait (all pools).
        self.attempts = 0
        self.refusals = 0
        self.waits = 0

    # -- the connectors' side ------------------------------------------------------------
    def enter(self, now: float) -> tuple[int, float]:
        """Ask to start a connect attempt. Returns ``(ticket, 0.0)`` when it may start now
        (the ticket goes back to :meth:`succeeded`, :meth:`refused`, :meth:`failed` or
        :meth:`cancel`), or
        ``(0, seconds)`` to wait before asking again."""
        with self._lock:
            if self.is_open:
                busy = any(now - start < self.STALE_AFTER for start, _ in self._flying.values())
                if busy:
                    return 0, self.POLL
                if now < self.next_at:
                    return 0, self.next_at - now  # nothing in flight could close it sooner
            ticket = next(self._tickets)
            self._flying[ticket] = (now, self.is_open)
            self.attempts += 1
            return ticket, 0.0

    def waited(self) -> None:
        """Count an attempt that ``enter`` held back (once per attempt, however often it
        asked)."""
        with self._lock:
            self.waits += 1

    def succeeded(self, ticket: int, now: float) -> None:
        """The attempt connected: the server has room again, the gate closes."""
        with self._lock:
            self._flying.pop(ticket, None)
            if self.is_open:
                self.is_open = False
                self.closed_at = now
                _OPEN.discard(self)

    def refused(self, ticket: int, now: float, cause: str) -> None:
        """The server refused the attempt for lack of slots (``cause``: what it said,
        password-free): the gate opens, or a probe's refusal lengthens the pause."""
        with self._lock:
            _, probe = self._flying.pop(ticket, (now, False))
            self.refusals += 1
            self.cause = cause
            if not self.is_open:
                if now - self.closed_at >= self.RESET_AFTER:
                    self.failures = 0
                self.failures += 1
                self.is_open = True
                self.next_at = now + self._pause()
                _OPEN.add(self)  # kept, even if every pool using it goes (dispose())
            elif probe:
                self.failures += 1
                self.next_at = now + self._pause()
            # Else an attempt begun before the gate opened: the refusal that opened it
            # already counts for the same news.

    def failed(self, ticket: int, now: float) -> None:
        """The attempt ended another way (server down, bad password): nothing learnt
        about capacity. A failed probe still spaces the next one, so that an open
        gate never lets attempts through back to back."""
        with self._lock:
            _, probe = self._flying.pop(ticket, (now, False))
            if self.is_open and probe:
                self.next_at = max(self.next_at, now + self._pause())

    def cancel(self, ticket: int) -> None:
        """Give back an admission that was not used (the pool no longer wanted the
        connection, or the attempt was cancelled): nothing learnt, nothing delayed."""
        with self._lock:
            self._flying.pop(ticket, None)

    def _pause(self) -> float:
        step = min(self.CAP, self.INITIAL * self.FACTOR ** max(0, self.failures - 1))
        return step * self._rng.uniform(self.JITTER_FLOOR, 1.0)

    # -- reporting -----------------------------------------------------------------------
    def describe(self, now: float, with_cause: bool = True) -> str | None:
        """While open: what the gate is doing, for a PoolTimeout's message; else None."""
        with self._lock:
            if not self.is_open:
                return None
            wait = self.next_at - now
            text = (
                f"the server ({self.key}) is refusing connections for lack of slots "
                f"({self.failures} refusal(s) in a row): every pool of this process "
                "connecting to it backs off, one connect attempt at a time, "
                + (f"the next in {wait:.1f} s" if wait > 0 else "one due now")
            )
            if with_cause and self.cause:
                text += f"; it last said: {self.cause}"
            return text

    def __repr__(self) -> str:
        state = f"open, {self.failures} refusal(s)" if self.is_open else "closed"
        return f"<StormGate {self.key} {state}>"

    def _after_fork(self) -> None:
        """In a forked child: the parent's attempts in flight are not the child's, and its
        lock may have been held by a thread that does not exist here."""
        self._lock = threading.Lock()
        self._flying.clear()


#: Gates by server, alive while a pool uses them ...
_GATES: weakref.WeakValueDictionary[ServerKey, StormGate] = weakref.WeakValueDictionary()
#: ... or while open: a pool recreated by ``dispose()`` then finds its predecessor's
#: backoff and does not start a new storm.
_OPEN: set[StormGate] = set()
_REGISTRY_LOCK = threading.Lock()


def gate_for(adapter: BaseAdapter) -> StormGate:
    """The gate of the server ``adapter`` connects to, shared process-wide."""
    try:
        key = server_key(adapter)
    except Exception:  # an adapter of odd shape: a gate of its own rather than no pool
        key = ServerKey(adapter.dialect, "<adapter>", connect=_ByIdentity(adapter))
    with _REGISTRY_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = StormGate(key)
        return gate


def gates() -> list[StormGate]:
    """Every gate alive now (for diagnostics and tests)."""
    with _REGISTRY_LOCK:
        return list(_GATES.values())


def forget_all() -> None:
    """Drop every gate, open or not (tests: each starts without a storm behind it)."""
    with _REGISTRY_LOCK:
        _GATES.clear()
        _OPEN.clear()


def _after_fork_in_child() -> None:
    global _REGISTRY_LOCK
    _REGISTRY_LOCK = threading.Lock()
    for gate in list(_GATES.values()):
        gate._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
