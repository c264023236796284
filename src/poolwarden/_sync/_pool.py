# Generated from src/poolwarden/_async/_pool.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""The pool: a thin I/O shell around :class:`~poolwarden._core.PoolCore`."""

from __future__ import annotations

import logging
import math
import random
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

from .._core import PoolCore, Waiter
from .._core import fork as _fork
from .._core.activity import UNTOUCHED
from .._core.callsite import capture_stack
from .._core.clock import Clock, MonotonicClock
from .._core.config import (
    PROXIES,
    check_choice,
    check_count,
    check_lifetime,
    check_optional_seconds,
    check_reset,
    check_seconds,
    check_sizes,
)
from .._core.entry import Entry
from .._core.messages import timeout_message
from .._core.stats import MetricsReading, PoolStats, SampleCursor
from .._net.servers import Resolver, address_text, check_resolver, watched_names, with_hosts
from ..adapters import Adapter, for_target
from ..adapters._proxies import ProxyInfo
from ..adapters._roles import check_role
from ..errors import (
    ConnectionReturned,
    PoolClosed,
    PoolError,
    PoolTimeout,
    fresh_error,
)
from ._background import Background
from ._compat import Event, current_name, new_signal, wait_signal
from ._held import Holders
from ._housekeeper import Housekeeper
from ._io import ConnectionIO
from ._proxy import PooledConnection

__all__ = ["Pool"]

log = logging.getLogger("poolwarden")


class Pool(Background, Holders):
    """A thread-safe pool of DB-API connections that never hands out a dead one.

    ``target`` is an SQLAlchemy-style URL (``mysql+pymysql://user:pw@host:3306/db``,
    ``postgresql+psycopg://…``, ``sqlite:///file.db``; query options go to the driver) or a
    zero-argument callable returning a new connection.

    Sizing follows SQLAlchemy's QueuePool: the pool starts empty, grows to ``pool_size``
    connections as needed, then opens up to ``max_overflow`` more, which are closed when
    returned. A checkout that finds nothing free waits up to ``timeout`` seconds, in
    first-come first-served order, then raises :class:`~poolwarden.PoolTimeout`.

    Before an idle connection is handed out, a liveness probe (a zero-timeout poll of its
    socket, about a microsecond) shows whether the server closed it; one idle for
    ``ping_after_idle`` seconds, or suspect after a disconnect elsewhere, must also answer
    a ping. Dead ones are replaced without the caller noticing.

    Args:
        pool_size: connections kept open once opened (>= 0).
        max_overflow: extra connections allowed under load, closed on return (>= 0).
        timeout: default seconds a checkout waits (>= 0; 0: not at all); ``None``: without
            limit (as QueuePool's ``timeout=None``).
        connect_wait: seconds a checkout that finds room in the pool waits for the
            connection opened for it, when longer than ``timeout`` (SQLAlchemy's
            ``pool_timeout`` bounds only the wait for a connection someone else holds);
            ``None``: ``timeout``.
        min_idle: idle connections opened and kept ready in the background.
        reset: what happens when a connection comes back: ``"rollback"`` (default) ends any
            transaction that may be open, including a read snapshot; ``"session"`` also
            clears session state (variables, temporary tables, ``SET SESSION``) with
            COM_RESET_CONNECTION or ``DISCARD ALL``; ``None`` does nothing.
        max_lifetime: seconds after which a connection is retired (when idle, or when it
            comes back). ``"auto"`` (default): 80% of the server's idle timeout for the
            session (MySQL ``wait_timeout``, PostgreSQL ``idle_session_timeout``), at most
            an hour; ``None``: no limit. Shortened by up to 10% each, so they do not all
            expire together.
        idle_timeout: seconds after which idle connections beyond ``min_idle`` are closed.
        keepalive: seconds of idleness after which the ``min_idle`` connections are pinged
            in the background, so the server does not close them in quiet periods;
            ``"auto"`` (default): half the server's idle timeout; ``None``: never.
        pre_ping: ping every connection before handing it out (one round trip each).
        ping_after_idle: ping a connection idle at least this many seconds before handing
            it out (catches network paths that died silently); ``None``: never.
        validation_timeout: seconds a ping may take before the connection counts as dead.
        probe: check each idle connection's socket before handing it out.
        leak_threshold: seconds after which a connection still checked out is logged, once,
            with the stack that checked it out (``None``: off). The report shows the
            application's frames only, and counts those of the event loop, the
            frameworks and poolwarden it leaves out; set the environment variable
            ``POOLWARDEN_FULL_STACKS=1`` for every frame.
        held_check_after: seconds a borrower may leave its connection unused before the
            next operation first probes it (no round trip). If the server closed it
            meanwhile, it is replaced in place when no transaction was open, or the
            operation raises :class:`~poolwarden.ConnectionLost` when one was.
            ``None``: never check.
        max_connecting: connect attempts allowed at the same time.
        role: the server role the pool needs: ``"any"`` (default), ``"primary"`` (a
            server that accepts writes), ``"standby"`` (one that does not) or
            ``"prefer-standby"`` (libpq's ``target_session_attrs`` words). Checked on
            every connect and with every ping the pool makes anyway (after idleness); a
            connect that reaches another role is retried with backoff (:class:`WrongRole`).
            With ``"primary"``, an error saying the server became read-only (MySQL 1290,
            1836; PostgreSQL 25006 from a server reporting itself read-only) retires
            every connection to that server: a failover costs the writes in flight.
        hosts: servers to use instead of the URL's host (``["db1:3306", "db2"]``); a URL
            may list them too (``mysql+pymysql://u:pw@db1:3306,db2:3306/app``). Tried in
            order until one has the ``role`` needed (libpq does this itself for psycopg).
        load_balance_hosts: ``"disable"`` (in order) or ``"random"`` (shuffled for each
            connect, spreading the pool's connections over the hosts).
        dns_refresh: seconds between re-resolutions of host names (not of IP addresses);
            connections to an address a name no longer resolves to are retired over the
            next few seconds. ``None``: never.
        resolver: ``resolver(host, port) -> [(ip, port), ...]``, for service discovery:
            connections then go to the addresses it returns (default: the system's
            resolver, and the driver connects by name).
        proxy: what sits between the pool and the server: ``"auto"`` (detected on the
            first connection), ``"pgbouncer"``, ``"proxysql"`` or ``None`` (none).
        connect_args: extra keyword arguments for the driver's ``connect()``.
        configure: called with each new connection before first use.
        adapter: a :class:`poolwarden.adapters.Adapter` for a driver poolwarden does
            not know.
        name: label for logs and ``repr`` (default: the URL without its password).
        clock: time source, for tests.
    """

    def __init__(
        self,
        target: str | Callable[[], Any],
        *,
        pool_size: int = 5,
        max_overflow: int = 10,
        timeout: float | None = 30.0,
        connect_wait: float | None = None,
        min_idle: int = 0,
        reset: str | None = "rollback",
        max_lifetime: float | str | None = "auto",
        idle_timeout: float | None = None,
        keepalive: float | str | None = "auto",
        pre_ping: bool = False,
        ping_after_idle: float | None = 5.0,
        validation_timeout: float = 5.0,
        probe: bool = True,
        leak_threshold: float | None = None,
        held_check_after: float | None = 1.0,
        max_connecting: int = 4,
        role: str = "any",
        hosts: Sequence[str] | None = None,
        load_balance_hosts: str = "disable",
        dns_refresh: float | None = 30.0,
        resolver: Resolver | None = None,
        proxy: str | None = "auto",
        connect_args: Mapping[str, Any] | None = None,
        configure: Callable[[Any], Any] | None = None,
        adapter: Adapter | None = None,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        pool_size, max_overflow, min_idle = check_sizes(pool_size, max_overflow, min_idle)
        limit = check_optional_seconds("timeout", timeout, zero_ok=True)
        self._timeout = math.inf if limit is None else limit
        #: The least a checkout that has a connection opened for it waits.
        self._connect_wait = check_optional_seconds("connect_wait", connect_wait) or 0.0
        self._leak_threshold = check_optional_seconds("leak_threshold", leak_threshold)
        held_after = check_optional_seconds("held_check_after", held_check_after, zero_ok=True)
        self._held_check_after = float("inf") if held_after is None else held_after
        #: The server's idle timeout for a session, once read (for ConnectionLost).
        self._server_idle_timeout: float | None = None
        self._idle_timeout = check_optional_seconds("idle_timeout", idle_timeout)
        self._max_lifetime = check_lifetime("max_lifetime", max_lifetime)
        self._keepalive_setting = check_lifetime("keepalive", keepalive)
        setting = self._keepalive_setting
        #: Effective keepalive interval; an automatic one is known after the first connect.
        self._keepalive: float | None = setting if isinstance(setting, float) else None
        if not isinstance(pre_ping, bool) or not isinstance(probe, bool):
            raise ValueError("pre_ping and probe must be True or False")
        after_idle = check_optional_seconds("ping_after_idle", ping_after_idle)
        #: A ping is due once idle this long; 0 pings every time, infinity never.
        self._ping_after_idle = (
            0.0 if pre_ping else float("inf") if after_idle is None else after_idle
        )
        if configure is not None and not callable(configure):
            raise ValueError(
                f"configure must be a callable taking a connection, got {configure!r}"
            )
        role = check_role(role)
        balance = check_choice("load_balance_hosts", load_balance_hosts, ("disable", "random"))
        self._proxy_setting = check_choice("proxy", proxy, PROXIES)
        #: Seconds between re-resolutions of the hosts' names (None: never).
        self._dns_refresh = check_optional_seconds("dns_refresh", dns_refresh)
        resolver = check_resolver(resolver)
        if hosts is not None:
            target = with_hosts(target, hosts)
        adapter, detect = for_target(target, connect_args, adapter)
        if role == "any":  # a PostgreSQL URL may ask with libpq's own option
            asked = adapter.kwargs.get("target_session_attrs")
            role = check_role(asked, "target_session_attrs") if asked else role
        adapter.apply_role(role, balance == "random")
        self._io = ConnectionIO(
            adapter,
            detect,
            configure,
            check_reset(reset),
            check_seconds("validation_timeout", validation_timeout),
            probe,
            role,
            resolver,
            random.shuffle if balance == "random" else None,
        )
        self._io.on_wrong_role = self._wrong_role_seen
        #: Host names to re-resolve, and when next.
        self._watched = watched_names(adapter) if self._dns_refresh is not None else []
        self._dns_due = -math.inf if self._watched else math.inf
        self.name = name or adapter.describe()
        self._now = (clock or MonotonicClock()).monotonic
        self._core = PoolCore(
            pool_size=pool_size,
            max_overflow=max_overflow,
            min_idle=min_idle,
            max_connecting=check_count("max_connecting", max_connecting, minimum=1),
        )
        if isinstance(self._max_lifetime, float):
            self._core.set_lifetime(self._max_lifetime)
        #: The automatic lifetime and keepalive wait for the server's idle timeout.
        #: The proxy in front: known from ``proxy``, found on the first connection.
        self._proxy: ProxyInfo | None = None
        #: psycopg connect arguments the proxy requires (applied to new connections).
        self._proxy_overrides: dict[str, Any] = {}
        self._proxy_pending = self._proxy_setting in ("auto", "pgbouncer")
        if self._proxy_setting in ("pgbouncer", "proxysql"):
            # Its rules hold from the first connect; the first connection may say more.
            self._proxy_rules(ProxyInfo(self._proxy_setting))
        self._lifetime_pending = self._proxy_pending or "auto" in (
            self._max_lifetime,
            self._keepalive_setting,
        )
        self._lock = threading.Lock()
        self._closing = Event()
        #: Entries of proxies the garbage collector dropped unreturned, with what they did.
        self._orphans: deque[tuple[Entry, int, dict[str, Any] | None]] = deque()
        self._housekeeper: Housekeeper | None = None
        #: When the housekeeper's next round is due (monotonic seconds).
        self._housekeeping_due = float("inf")
        _fork.register(self)
        self._start_background()

    def _start_background(self) -> None:
        """Open ``min_idle`` connections (with the housekeeper to keep them). Other timed
        work waits for the first connection, so that merely creating a pool, say at import
        time before a server forks its workers, starts no thread."""
        if self._core.min_idle:
            self._ensure_housekeeper()
        with self._lock:
            opens = self._core.opens_wanted(self._now())
        self._start_connectors(opens)

    @property
    def _adapter(self) -> Adapter:
        return self._io.adapter

    # -- checkout ------------------------------------------------------------------------
    def connection(self, timeout: float | None = None) -> PooledConnection:
        """Check out a connection. Use it in a ``with`` block, which gives it back on
        exit::

            with pool.connection() as conn:
                cur = conn.cursor()
                cur.execute("SELECT 1")

        or give it back yourself with :meth:`putconn` or its ``close()`` (``getconn``
        is another name for this method). Waits up to ``timeout`` seconds (default:
        the pool's), then raises :class:`PoolTimeout`.
        """
        return PooledConnection(self, self._acquire(timeout, sys._getframe(1)))

    #: The explicit form's name (as in psycopg_pool): pair it with :meth:`putconn`.
    getconn = connection

    def _acquire(self, timeout: float | None, frame: FrameType) -> Entry:
        """Check out an entry for the caller at ``frame``: the body of :meth:`connection`,
        also used by pools that hand out their own proxies (SQLAlchemy's)."""
        entry, now, fit = self._take_idle(frame)
        if entry is None or not fit:
            entry = self._checkout_slowly(entry, timeout, now, frame)
        if self._core.min_idle or self._leak_threshold is not None:
            self._after_checkout(entry, now, frame)  # leak reports, refills
        return entry

    def _take_idle(self, frame: FrameType) -> tuple[Entry | None, float, bool]:
        """The part of a checkout that needs no I/O, the whole of it most times: an idle
        entry (or None), the time, and whether the entry passed the quick checks. (Kept
        apart so that SQLAlchemy's asyncio pool need not go through the event loop when
        nothing waits.)"""
        now = self._now()
        core = self._core
        with self._lock:
            if core.closed:
                raise PoolClosed(f"the pool {self.name} is closed")
            entry = core.checkout(now)
        if entry is None:
            return None, now, False
        entry.site_code = frame.f_code
        entry.site_lasti = frame.f_lasti
        # The quick checks; only a connection that fails one costs more.
        fit = not (
            now >= entry.expires_at
            or now - entry.last_used >= self._ping_after_idle
            or entry.checked_at <= core.suspect_before
            or (entry.probe is not None and entry.probe())
        )
        return entry, now, fit

    def _checkout_slowly(
        self, entry: Entry | None, timeout: float | None, now: float, frame: FrameType
    ) -> Entry:
        """The rest of a checkout that :meth:`_take_idle` could not finish: wait for a
        connection, or check the one it found properly."""
        limit = (
            self._timeout if timeout is None else check_seconds("timeout", timeout, zero_ok=True)
        )
        if entry is None:
            return self._wait(limit, now, frame)
        return self._revalidate(entry, limit, now, frame)

    def _after_checkout(self, entry: Entry, now: float, frame: FrameType) -> None:
        """Leak-detection bookkeeping, and waking the housekeeper when it has work."""
        core = self._core
        refill = (
            core.min_idle > len(core.idle) and not core.connecting and core.total() < core.max_size
        )
        if self._leak_threshold is not None:
            entry.stack = capture_stack(frame)
            entry.thread_name = current_name()
            refill = refill or now + self._leak_threshold < self._housekeeping_due
        if refill:
            self._housekeep_soon(now)

    def _revalidate(self, entry: Entry, limit: float, started: float, frame: FrameType) -> Entry:
        """An idle connection failed a quick check (or needs a ping): check it properly,
        and replace it, as often as needed, until one is fit or ``limit`` seconds passed."""
        deadline = started + limit
        core, io = self._core, self._io
        while True:
            now = self._now()
            try:
                if now >= entry.expires_at:
                    verdict = "retire"
                elif io.looks_dead(entry):  # no probe (probe=False): never "dead" here
                    verdict = "dead by probe"
                elif core.needs_ping(entry, now, self._ping_after_idle):
                    verdict = "ok" if io.ping(entry) else "dead"
                    with self._lock:
                        core.counters.pings += 1
                        if verdict == "ok":
                            core.passed_check(entry, now)
                        else:
                            core.counters.ping_failures += 1
                            core.suspect_all(now)
                else:
                    verdict = "ok"
            except BaseException:
                with self._lock:
                    core.discard(entry)
                io.close(entry)
                raise
            if verdict == "ok":
                return entry
            entry.broken = verdict != "retire"
            with self._lock:
                core.discard(entry, retired=not entry.broken)
                core.counters.found_dead += entry.broken
                core.counters.dead_by_probe += verdict == "dead by probe"
                replacement = core.checkout(now)
                if replacement is not None:
                    replacement.site_code = frame.f_code
                    replacement.site_lasti = frame.f_lasti
            io.close(entry)
            if replacement is None:
                return self._wait(max(deadline - now, 1e-3), started, frame)
            entry = replacement

    def _wait(self, wait: float, now: float, frame: FrameType) -> Entry:
        """Queue for a connection for up to ``wait`` seconds (infinity: no limit)."""
        if self._orphans:
            self._reclaim_orphans()
        signal = new_signal()
        waiter = Waiter(now, signal)
        with self._lock:
            core = self._core
            if core.closed:
                raise PoolClosed(f"the pool {self.name} is closed")
            entry = core.checkout(now)
            if entry is None:
                core.enqueue(waiter)
                opens = core.opens_wanted(now)
        if entry is not None:  # one came back meanwhile: it was just in use, so it is fit
            entry.site_code = frame.f_code
            entry.site_lasti = frame.f_lasti
            return entry
        self._start_connectors(opens)
        if opens:
            wait = max(wait, self._connect_wait)
        try:
            got = wait_signal(signal, wait)
        except BaseException:
            self._abandon(waiter)
            raise
        hint = ""
        if not got and core.counters.connects == 0 and core.connecting:
            # Never connected, a connect still hanging: a driver waiting for a greeting
            # the server at that port will never send (PyMySQL at PostgreSQL's port)?
            hint = self._io.probe_server(None)
        with self._lock:
            if not got and not core.give_up(waiter):
                error = core.last_connect_error
                if core.last_connect_error_at < now:
                    error = None
                raise PoolTimeout(
                    timeout_message(
                        self.name,
                        core,
                        self._io.describe_connect_error,
                        wait,
                        error,
                        self._now(),
                        hint if error is None else "",
                    )
                ) from error
            entry = waiter.entry
        if entry is None:
            raise fresh_error(waiter.error)
        entry.site_code = frame.f_code
        entry.site_lasti = frame.f_lasti
        return entry

    def _abandon(self, waiter: Waiter) -> None:
        """The waiting thread was interrupted (or the task cancelled): leave the queue,
        giving back anything that reached it meanwhile, so no slot is lost."""
        with self._lock:
            handed = self._core.give_up(waiter)
        if handed and waiter.entry is not None:
            self._give_back(waiter.entry, UNTOUCHED, None)

    # -- checkin -------------------------------------------------------------------------
    def putconn(self, conn: PooledConnection) -> None:
        """Give back a connection from :meth:`getconn` (``conn.close()`` does the same)."""
        try:
            entry = conn._entry
        except AttributeError:
            entry = None
        if entry is None or conn._pool is not self:
            raise self._bad_return(conn)
        conn._entry = None
        if conn._activity or conn._saved is not None:
            self._give_back(entry, conn._activity, conn._saved)
            if self._orphans:
                self._reclaim_orphans()
        else:
            self._release(entry)

    def _release(self, entry: Entry) -> None:
        """File an entry that needs no reset: the body of :meth:`putconn` for untouched
        connections, also used by pools whose own proxies did the reset (SQLAlchemy's)."""
        if entry.leak_reported or self._orphans:  # _release_needs_io, inlined: hot path
            self._give_back(entry, UNTOUCHED, None)
            if self._orphans:
                self._reclaim_orphans()
            return
        close = self._file_untouched(entry)
        if close is not None:
            self._close_and_refill(close)

    def _release_needs_io(self, entry: Entry) -> bool:
        """Whether returning an untouched ``entry`` needs more than :meth:`_file_untouched`:
        a leak report to close, or connections of cancelled tasks to reclaim."""
        return entry.leak_reported or bool(self._orphans)

    def _file_untouched(self, entry: Entry) -> Entry | None:
        """The books of an unremarkable return, without I/O: the waiter it goes to is
        woken; the entry is returned if it must be closed instead."""
        now = self._now()
        with self._lock:
            core = self._core
            if entry.generation != core.generation:
                return None  # inherited from the parent process: never touch it
            waiter, close = core.checkin(entry, now, True)
        if waiter is not None:
            waiter.signal.release()
        elif close is None and entry.expires_at < self._housekeeping_due:
            self._wake_housekeeper(now)  # the housekeeper's plan missed this retirement
        return close

    def _bad_return(self, conn: Any) -> Exception:
        if not isinstance(conn, PooledConnection):
            return PoolError(
                f"putconn() takes a connection checked out of this pool, got {conn!r}"
            )
        if conn._pool is not self:
            return PoolError(f"putconn(): {conn!r} belongs to another pool, not {self!r}")
        return ConnectionReturned("this connection was already returned to the pool")

    def _give_back(
        self,
        entry: Entry,
        activity: int,
        saved: dict[str, Any] | None,
    ) -> None:
        reusable, worked, interrupted = True, False, None
        if activity != UNTOUCHED or saved is not None:
            try:
                reusable, worked = self._io.reset(entry, activity, saved)
            except BaseException as exc:  # interrupted mid-reset: its state is unknown
                reusable, worked, interrupted = False, True, exc
        now = self._now()
        with self._lock:
            core = self._core
            if entry.generation == core.generation:  # else the parent's: never touch it
                if worked:
                    core.counters.resets += 1
                    core.counters.reset_failures += not reusable
                waiter, close = core.checkin(entry, now, reusable)
            else:
                waiter, close = None, None
        self._settle(waiter, close)
        if entry.leak_reported:
            log.info(
                "connection #%d reported as possibly leaked was returned after %.1f s",
                entry.id,
                now - entry.checkout_at,
            )
        if interrupted is not None:
            raise interrupted

    # -- management ----------------------------------------------------------------------
    def resize(
        self,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        min_idle: int | None = None,
    ) -> None:
        """Change the limits while the pool is in use. Surplus idle connections close now;
        surplus borrowed ones close when they come back; waiters get new room at once."""
        core = self._core
        size, overflow, idle = check_sizes(
            core.pool_size if pool_size is None else pool_size,
            core.max_overflow if max_overflow is None else max_overflow,
            core.min_idle if min_idle is None else min_idle,
        )
        with self._lock:
            surplus = core.resize(size, overflow, idle)
            opens = core.opens_wanted(self._now())
        for entry in surplus:
            self._io.close(entry)
        self._start_connectors(opens)
        self._ensure_housekeeper()

    def _renewed(self, entry: Entry, held: bool = False) -> None:
        """``entry``'s holder replaced the connection inside it (SQLAlchemy reconnects an
        invalidated or recycled record in place; ``held``: a dead one found in the
        borrower's hands): probe the new socket, restart its lifetime."""
        now = self._now()
        probe = self._io.make_probe(entry.raw)
        with self._lock:
            entry.probe = probe
            if held:
                self._core.replaced_held(entry, now)
            else:
                self._core.renewed(entry, now)

    def _close_idle(self) -> None:
        """Close every idle connection now, and pause the background work until the next
        connect or checkout that needs it; the pool stays open (SQLAlchemy's dispose,
        after which an engine usually drops the pool for a new one: its housekeeper must
        not keep it alive, nor refill it)."""
        with self._lock:
            core = self._core
            idle, core.idle = core.idle, []
            core.counters.closes += len(idle)
            housekeeper, self._housekeeper = self._housekeeper, None
            self._housekeeping_due = float("inf")
        if housekeeper is not None:
            housekeeper.stop()
        for entry in idle:
            self._io.close(entry)

    # -- failover ------------------------------------------------------------------------
    def _read_only_seen(self, entry: Entry, exc: BaseException, verdict: str) -> None:
        """An operation on ``entry`` failed because its server is read-only (``verdict``
        ``"server"``), or perhaps is (``"maybe"``: its next ping checks the role). No I/O:
        called from the proxies' error path, and SQLAlchemy's."""
        if self._io.role != "primary":
            return
        if self._proxy is not None and self._proxy.kind == "proxysql":
            return  # it routes each statement: its address is no one server to demote
        if verdict != "server":
            entry.checked_at = -math.inf  # suspect: pinged, with the role, before reuse
            return
        now = self._now()
        with self._lock:
            demoted = self._core.demote(entry.peer, entry.checked_at, now)
        where = address_text(*entry.peer) if entry.peer else self.name
        if hasattr(exc, "add_note"):
            exc.add_note(
                f"poolwarden: the server at {where} became read-only (a failover?): the "
                "pool is closing its connections to it and reconnecting to the primary"
            )
        if demoted:
            log.warning(
                "pool %s: the server at %s became read-only (a failover?); closing its "
                "connections and reconnecting to a primary",
                self.name,
                where,
            )
            self._housekeep_soon(now)

    def _wrong_role_seen(self, entry: Entry) -> None:
        """A ping found ``entry``'s server in the wrong role: demote the server."""
        now = self._now()
        with self._lock:
            demoted = self._core.demote(entry.peer, now, now)
        if demoted:
            self._housekeep_soon(now)

    def _housekeep_soon(self, now: float) -> None:
        """Have the housekeeper do a round now (close retired idle connections, refill),
        starting it if it was paused (by _close_idle) or never started."""
        if self._housekeeper is None:
            self._ensure_housekeeper()
        else:
            self._wake_housekeeper(now)

    def stats(self) -> PoolStats:
        """A snapshot of sizes, counters and wait/hold time percentiles."""
        with self._lock:
            return self._core.snapshot()

    def _read_metrics(self, since: SampleCursor) -> MetricsReading:
        """What :mod:`poolwarden.metrics` reads: gauges, counters and the new samples."""
        with self._lock:
            return self._core.metrics_reading(since)

    def close(self) -> None:
        """Close the pool: idle connections now, borrowed ones when they come back; threads
        waiting for a connection get :class:`PoolClosed`. Closing twice is harmless."""
        with self._lock:
            if self._core.closed:
                return
            idle, waiters = self._core.close()
        self._closing.set()
        for waiter in waiters:
            waiter.error = PoolClosed(f"the pool {self.name} was closed while waiting")
            waiter.signal.release()
        for entry in idle:
            self._io.close(entry)
        if self._housekeeper is not None:
            self._housekeeper.stop()

    @property
    def proxy(self) -> ProxyInfo | None:
        """The proxy in front of the server (PgBouncer, ProxySQL), as configured with
        ``proxy`` or found on the first connection; None if none (yet)."""
        return self._proxy

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._core.closed

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        core = self._core
        state = (
            "closed"
            if core.closed
            else f"idle={len(core.idle)} in_use={len(core.in_use)} waiting={len(core.waiters)}"
        )
        size = f"{core.pool_size}+{core.max_overflow}"
        return f"<{type(self).__name__} {self.name} size={size} {state}>"

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's connections without touching them at the
        server, and start afresh with new locks and threads."""
        self._lock = threading.Lock()
        self._closing = Event()
        self._orphans.clear()
        self._housekeeper = None
        for entry in self._core.forget_all():
            self._io.adapter.detach(entry.raw)
        if self._core.closed:
            self._closing.set()
            return
        self._start_background()
