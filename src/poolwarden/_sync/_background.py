# Generated from src/poolwarden/_async/_background.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""The pool's work off the callers' threads: connecting, and the housekeeper's rounds.

Connector threads (tasks, in the asyncio pool) open connections while the pool wants them,
backing off after failures;
the housekeeper retires connections before the server's idle timer would close them, pings
the ``min_idle`` ones that must survive quiet periods, tops ``min_idle`` up, reports leaks,
and reclaims connections whose proxies were garbage-collected unreturned.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .._core import PoolCore, Waiter
from .._core.callsite import format_stack
from .._core.entry import Entry
from .._core.storm import StormGate, gate_for, is_limit_error
from .._net.servers import address_text, resolve
from ..adapters._proxies import (
    ProxyInfo,
    allowed_reset,
    effective_idle_timeout,
    psycopg_connect_overrides,
    session_state_warning,
)
from ..errors import WrongRole
from ._compat import Event, spawn, wait_event
from ._detect import detect_proxy
from ._housekeeper import Housekeeper
from ._io import ConnectionIO

__all__ = ["Background"]

log = logging.getLogger("poolwarden")

#: (warning, pool name) pairs already logged about a proxy's rules.
_WARNED: set[tuple[str, str]] = set()


class Background:
    """Mixin of :class:`~poolwarden.Pool`: its connector threads and housekeeping."""

    name: str
    _core: PoolCore
    _io: ConnectionIO
    _lock: threading.Lock
    _closing: Event
    _now: Callable[[], float]
    _housekeeper: Housekeeper | None
    _housekeeping_due: float
    _orphans: deque[tuple[Entry, int, dict[str, Any] | None]]
    _leak_threshold: float | None
    _idle_timeout: float | None
    _max_lifetime: float | str | None
    _keepalive_setting: float | str | None
    _keepalive: float | None
    _lifetime_pending: bool
    _proxy_setting: str | None
    _proxy_pending: bool
    _proxy: ProxyInfo | None
    _proxy_overrides: dict[str, Any]
    _server_idle_timeout: float | None
    _dns_refresh: float | None
    _watched: list[tuple[str, int]]
    _dns_due: float

    def _give_back(
        self,
        entry: Entry,
        activity: int,
        saved: dict[str, Any] | None,
    ) -> None:
        raise NotImplementedError

    # -- connecting ----------------------------------------------------------------------
    def _start_connectors(self, count: int) -> None:
        for started in range(count):
            try:
                spawn(self._connector, f"poolwarden-connect {self.name}")
            except RuntimeError:  # shutting down (no threads), or no running event loop
                with self._lock:
                    for _ in range(count - started):
                        self._core.abandon_connect()
                return

    def _connector(self) -> None:
        """Open connections while the pool wants them, pausing after failures."""
        delay = self._core.backoff.retry_at - self._now()  # still backing off?
        while True:
            if delay > 0:
                if wait_event(self._closing, delay):
                    with self._lock:
                        self._core.abandon_connect()
                    return
                with self._lock:
                    if not self._core.resume_connecting():
                        return
            # The storm guard: while the server refuses for lack of slots, the whole
            # process sends it one attempt at a time, spaced (see poolwarden._core.storm).
            gate = self._core.backoff.gate or self._find_gate()
            ticket = self._through_gate(gate)
            if not ticket:
                return
            started = self._now()
            try:
                opened = self._io.open()
                open_seconds = self._now() - started
                if self._lifetime_pending:
                    self._learn_lifetime(opened.raw)
                elif self._proxy_overrides:  # opened while the first one found the proxy
                    self._proxy_fix(opened.raw, self._proxy_overrides)
            except Exception as exc:
                # A server of the wrong role may be mid-failover: retried like one down.
                adapter = self._io.adapter
                wrong_role = isinstance(exc, WrongRole) or adapter.is_wrong_role_error(exc)
                # Out of slots: a full server clears by itself, and it was the right one.
                full = is_limit_error(adapter, exc)
                retryable = full or wrong_role or adapter.is_retryable_connect_error(exc)
                if wrong_role:
                    with self._lock:
                        self._core.counters.wrong_role += 1
                        for peer in getattr(exc, "peers", ()):  # its old connections too
                            self._core.demote(peer, self._now(), self._now())
                if self._core.counters.connects == 0 and not full:  # the wrong port?
                    self._io.probe_server(exc)
                described = self._io.describe_connect_error(exc)  # with the probe's hint
                if full:
                    gate.refused(ticket, self._now(), described)
                else:
                    gate.failed(ticket, self._now())
                log.log(
                    logging.WARNING if self._core.backoff.failures == 0 else logging.DEBUG,
                    "connecting to %s failed: %s%s",
                    self.name,
                    described,
                    " (the server is out of connection slots: every pool of this process "
                    "connecting to it backs off, one attempt at a time)"
                    if full
                    else " (will retry)"
                    if retryable
                    else "",
                )
                with self._lock:
                    result = self._core.connect_failed(exc, self._now(), retryable)
                for waiter in result.fail:
                    waiter.signal.release()
            except BaseException:
                gate.cancel(ticket)
                with self._lock:
                    self._core.abandon_connect()
                raise
            else:
                gate.succeeded(ticket, self._now())
                with self._lock:
                    result = self._core.connect_succeeded(
                        opened.raw,
                        self._now(),
                        opened.probe,
                        open_seconds,
                        opened.peer,
                        opened.host,
                    )
                if self._housekeeper is None:
                    self._ensure_housekeeper()
                if result.wake is not None:
                    result.wake.signal.release()
                if result.close is not None:
                    self._io.close(result.close)
            if result.again is None:
                return
            delay = result.again

    def _find_gate(self) -> StormGate:
        """The storm gate of the pool's server, looked up once (the pool's first attempt)."""
        gate = self._core.backoff.gate = gate_for(self._io.adapter)
        return gate

    def _through_gate(self, gate: StormGate) -> int:
        """Wait until ``gate`` admits a connect attempt; its ticket, or 0 if the pool no
        longer wants the connection (closing, or its waiters gave up meanwhile). Waits in
        the pool's usual way, so an asyncio pool's event loop is never blocked."""
        ticket, wait = gate.enter(self._now())
        if ticket:
            return ticket
        gate.waited()
        with self._lock:
            self._core.counters.storm_waits += 1
        while not ticket:
            if wait_event(self._closing, wait):
                with self._lock:
                    self._core.abandon_connect()
                return 0
            ticket, wait = gate.enter(self._now())
        with self._lock:
            if self._core.resume_connecting():
                return ticket
        gate.cancel(ticket)
        return 0

    def _learn_lifetime(self, raw: Any) -> None:
        """On the first connection: find the proxy in front, if any (and apply its
        rules), read the server's idle timeout and derive the automatic lifetime and
        keepalive interval from it. A connection that breaks meanwhile is closed and the
        error counts as a failed connect."""
        try:
            if self._proxy_pending:  # each connection opened meanwhile asks as well
                info = detect_proxy(self._io.adapter, raw, self._proxy_setting)
                self._use_proxy(info, raw)
                self._proxy_pending = False
            timeout = self._io.server_idle_timeout(raw)
        except BaseException:
            self._io.close_unfiled(raw)
            raise
        timeout = effective_idle_timeout(self._proxy, timeout)
        with self._lock:
            if not self._lifetime_pending:
                return
            self._lifetime_pending = False
            self._server_idle_timeout = timeout
            if self._max_lifetime == "auto":
                self._core.set_lifetime(PoolCore.auto_lifetime(timeout))
            if self._keepalive_setting == "auto" and timeout:
                self._keepalive = timeout / 2
        log.debug(
            "pool %s: server idle timeout %s s, lifetime %s s, keepalive %s s",
            self.name,
            timeout,
            self._core.lifetime,
            self._keepalive,
        )
        self._ensure_housekeeper()

    def _use_proxy(self, info: ProxyInfo | None, raw: Any) -> None:
        """The first connection found ``info`` in front of the server: apply its rules,
        to ``raw`` too."""
        self._proxy_fix(raw, self._proxy_rules(info))

    def _proxy_fix(self, raw: Any, overrides: dict[str, Any]) -> None:
        """Give a connection opened before the proxy's rules were known what they ask."""
        if "prepare_threshold" in overrides:
            raw.prepare_threshold = None
        if overrides.get("autocommit"):
            self._io.adapter.set_autocommit(raw, True)

    def _proxy_rules(self, info: ProxyInfo | None) -> dict[str, Any]:
        """Apply what the proxy in front requires (see :mod:`poolwarden.adapters._proxies`):
        psycopg's connect arguments for the connections to come, the reset, and the
        warnings a configuration that cannot work there deserves. Returns the connect
        arguments it changed."""
        self._proxy = info
        if info is None:
            return {}
        io, adapter = self._io, self._io.adapter
        log.info(
            "pool %s: %s in front of the server (%s%s)",
            self.name,
            info.kind,
            info.source,
            f", {info.mode} mode" if info.mode else "",
        )
        overrides = psycopg_connect_overrides(info) if adapter.name == "psycopg" else {}
        kwargs = adapter.kwargs
        if overrides and isinstance(kwargs, dict):
            kwargs.update(overrides)
        self._proxy_overrides = overrides
        reset, warning = allowed_reset(info, io.reset_mode)
        for text in (warning, session_state_warning(info) if io.configures else None):
            if text and (text, self.name) not in _WARNED:
                _WARNED.add((text, self.name))  # once, not at every pool recreation
                log.warning("pool %s: %s", self.name, text)
        io.reset_mode = reset
        return overrides

    def _close_and_refill(self, entry: Entry) -> None:
        """Close a connection the pool let go, then open others if waiters need them."""
        self._io.close(entry)
        with self._lock:
            opens = self._core.opens_wanted(self._now())
        self._start_connectors(opens)

    def _settle(self, waiter: Waiter | None, close: Entry | None) -> None:
        """Carry out a filing decision: wake the waiter, or close and maybe replace."""
        if waiter is not None:
            waiter.signal.release()
        if close is not None:
            self._close_and_refill(close)

    # -- housekeeping --------------------------------------------------------------------
    def _needs_housekeeper(self) -> bool:
        core = self._core
        return (
            self._leak_threshold is not None
            or core.min_idle > 0
            or self._idle_timeout is not None
            or core.lifetime is not None
            or self._keepalive is not None
            or bool(self._watched)
        )

    def _ensure_housekeeper(self) -> None:
        """Start the housekeeper once there is timed work and the pool is open."""
        with self._lock:
            if self._housekeeper is not None or self._core.closed:
                return
            if not self._needs_housekeeper():
                return
            housekeeper = self._housekeeper = Housekeeper(
                self, f"poolwarden-housekeeper {self.name}"
            )
        try:
            housekeeper.start()
        except RuntimeError:  # shutting down, or no running event loop: at the next chance
            self._housekeeper = None

    def _wake_housekeeper(self, now: float) -> None:
        if self._housekeeper is not None:
            self._housekeeping_due = now  # a round is coming: no need to wake it twice
            self._housekeeper.wake()

    def _housekeep(self) -> float | None:
        """One round of timed work; returns seconds until the next is due."""
        if self._orphans:
            self._reclaim_orphans()
        now = self._now()
        threshold, core = self._leak_threshold, self._core
        with self._lock:
            if core.closed:
                return None
            leaks = core.leaks_due(now, threshold) if threshold is not None else []
            retire, ping = core.due_for_maintenance(now, self._idle_timeout, self._keepalive)
            opens = core.opens_wanted(now)
        if now >= self._dns_due:
            self._refresh_dns(now)
        for entry in leaks:
            self._report_leak(entry, now)
        for entry in retire:
            self._io.close(entry)
        for entry in ping:
            alive = self._io.ping(entry)
            with self._lock:
                core.counters.pings += 1
                core.counters.ping_failures += not alive
                waiter, close = core.maintained(entry, alive, self._now())
            self._settle(waiter, close)
        self._start_connectors(opens)
        with self._lock:
            due = [core.next_maintenance(now, self._idle_timeout, self._keepalive)]
            if threshold is not None:
                due.append(core.next_leak_check(threshold))
            if core.min_idle and len(core.idle) < core.min_idle:
                due.append(core.backoff.retry_at)
            if self._watched:
                due.append(self._dns_due)
            upcoming = [d for d in due if d is not None]
            next_due = min(upcoming) if upcoming else None
        self._housekeeping_due = float("inf") if next_due is None else next_due
        return None if next_due is None else next_due - now

    def _refresh_dns(self, now: float) -> None:
        """Resolve the hosts' names again; connections to an address a name no longer
        resolves to retire over the next few seconds (a resolver error changes nothing:
        a name that does not resolve for a moment must not empty the pool)."""
        assert self._dns_refresh is not None
        self._dns_due = now + self._dns_refresh
        resolver = self._io.resolver or resolve
        spread = min(PoolCore.MOVE_SPREAD, self._dns_refresh)
        for host, port in self._watched:
            try:
                addresses = resolver(host, port)
            except Exception as exc:
                log.debug("pool %s: resolving %s failed: %r", self.name, host, exc)
                continue
            if not addresses:
                continue
            with self._lock:
                found = {(str(a), int(p)) for a, p in addresses}
                moved = self._core.moved(host, found, now, spread)
            if moved:
                log.info(
                    "pool %s: %s now resolves to %s; retiring %d connection(s) to its old "
                    "address over the next %g s",
                    self.name,
                    host,
                    ", ".join(address_text(a, p) for a, p in addresses),
                    moved,
                    spread,
                )

    def _report_leak(self, entry: Entry, now: float) -> None:
        log.warning(
            "connection #%d of pool %s has been checked out for %.1f s (leak_threshold=%g s) "
            "and not returned yet; it was checked out at %s%s:\n%s",
            entry.id,
            self.name,
            now - entry.checkout_at,
            self._leak_threshold,
            entry.site(),
            f" by {entry.thread_name}" if entry.thread_name else "",
            format_stack(entry.stack),
        )

    # -- reclaiming dropped connections --------------------------------------------------
    def _orphaned(self, entry: Entry, activity: int, saved: dict[str, Any] | None) -> None:
        """Called from a proxy's ``__del__``: queue only (deque.append takes no lock)."""
        self._orphans.append((entry, activity, saved))
        if self._housekeeper is not None:
            self._housekeeper.wake()

    def _reclaim_orphans(self) -> None:
        while True:
            try:
                entry, activity, saved = self._orphans.popleft()
            except IndexError:
                return
            with self._lock:
                core = self._core
                if entry.generation != core.generation or entry not in core.in_use:
                    continue
                core.counters.reclaimed += 1
                if not entry.leak_reported:
                    core.counters.leaks += 1
            log.warning(
                "connection #%d of pool %s was garbage-collected without being returned; the "
                "pool reclaimed it. It was checked out at %s%s:\n%s",
                entry.id,
                self.name,
                entry.site(),
                f" by {entry.thread_name}" if entry.thread_name else "",
                format_stack(entry.stack),
            )
            self._give_back(entry, activity, saved)
