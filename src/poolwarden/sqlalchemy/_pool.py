"""``WardenPool``: SQLAlchemy's QueuePool, with poolwarden deciding who gets which connection."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from types import FrameType
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import Pool as SAPool
from sqlalchemy.pool import QueuePool
from sqlalchemy.pool.base import PoolProxiedConnection, _ConnectionRecord

from .._entry import Entry
from .._held import HeldVerdict, check_held
from .._pool import Pool
from .._stats import PoolStats
from ..errors import PoolTimeout
from ._held import HeldConnection
from ._records import RecordAdapter

__all__ = ["WardenPool", "WardenTimeout"]

#: QueuePool's "no limit" for pool_size=0 and max_overflow=-1.
UNLIMITED = 1 << 31
#: The inner pool's ``held_check_after`` when the check is off.
_NEVER = float("inf")


def _library_prefixes() -> tuple[str, ...]:
    """Where SQLAlchemy, poolwarden and the glue around them live: frames there are
    skipped when naming who checked a connection out."""
    prefixes = [contextlib.__file__]
    for name in ("sqlalchemy", "poolwarden", "flask_sqlalchemy", "sqlmodel"):
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            prefixes.append(os.path.join(location, ""))
    return tuple(prefixes)


_LIBRARY_PREFIXES = _library_prefixes()


class WardenTimeout(sa_exc.TimeoutError, PoolTimeout):
    """No connection within the pool timeout: SQLAlchemy's ``TimeoutError`` (so existing
    ``except`` clauses still catch it) with poolwarden's explanation."""


#: Whether a source file belongs to the libraries, by file name: checkouts walk the same
#: few frames over and over, and a dictionary lookup (a string's hash is cached) is cheaper
#: than comparing prefixes. Keyed by file name rather than code object: a code object
#: hashes its name, constants and bytecode on every lookup, which was about a quarter of
#: WardenPool's cost over QueuePool per engine request.
_IN_LIBRARY: dict[str, bool] = {}


def _user_frame(frame: FrameType | None) -> FrameType:
    """The innermost frame outside SQLAlchemy, poolwarden and the framework glue around
    them: where the application asked for a connection."""
    first = frame
    known = _IN_LIBRARY
    while frame is not None:
        filename = frame.f_code.co_filename
        in_library = known.get(filename)
        if in_library is None:
            # "<...>": code SQLAlchemy generates at run time (its ``_go()`` wrappers).
            in_library = known[filename] = filename.startswith(_LIBRARY_PREFIXES) or (
                filename.startswith("<")
            )
        if not in_library:
            return frame
        frame = frame.f_back
    assert first is not None
    return first


def _emptied(record: _ConnectionRecord) -> bool:
    """Whether SQLAlchemy invalidated (or detached) the record's connection. (The pool-wide
    invalidation time that QueuePool also compares is never set by WardenPool.)"""
    return record.dbapi_connection is None or record._soft_invalidate_time > record.starttime


class WardenPool(QueuePool):
    """A drop-in for SQLAlchemy's ``QueuePool`` that never hands out a dead connection::

        engine = create_engine(url, poolclass=WardenPool, pool_size=10, max_overflow=5)

    It accepts every argument QueuePool accepts (``pool_size``, ``max_overflow``,
    ``pool_timeout``, ``pool_recycle``, ``pool_pre_ping``, ``pool_use_lifo``,
    ``pool_reset_on_return``, events, …), keeps its methods (``status()``, ``size()``,
    ``checkedin()``, ``checkedout()``, ``overflow()``, ``dispose()``, ``recreate()``) and
    its events, and adds poolwarden's: a socket probe at every checkout, a bounded ping
    after idleness, a lifetime read from the server, keepalive, fair waiting, outage
    backoff, leak reports, ``stats()`` and fork safety. Differences from QueuePool:

    - ``pool_recycle`` becomes the connections' lifetime (jittered); without it the
      lifetime comes from the server's idle timeout (``max_lifetime="auto"``).
    - ``pool_pre_ping`` pings every checkout, bounded by ``validation_timeout``; without it
      poolwarden's socket probe and ping-after-idle do the job without a round trip.
    - A disconnect seen by the engine makes older idle connections suspect (each is pinged
      before reuse) instead of recycling them all.
    - While the database is down or full, checkouts wait up to ``pool_timeout`` while
      connecting is retried with backoff, instead of failing at once.

    Idle connections are handed out in QueuePool's order: the one idle longest first
    (FIFO, the default), or with ``pool_use_lifo=True`` the most recently used. FIFO has
    a cost under light load: with fewer than one checkout per idle connection every
    ``ping_after_idle`` seconds (5 s), each connection has sat idle that long when its
    turn comes and is pinged at checkout (a round trip, which pre_ping pays on every
    checkout), and ``idle_timeout`` seldom finds one idle long enough to retire. LIFO
    keeps reusing the few most recently used connections, which need no ping, and
    leaves the rest idle until they are retired.

    A connection a ``Session`` or ``Connection`` keeps across a pause longer than
    ``held_check_after`` is checked before its next statement: if the server closed it, it
    is replaced in place when no transaction was open, and the statement raises
    :class:`poolwarden.ConnectionLost` (a disconnect to SQLAlchemy) when one was.

    Extra arguments (pass them to ``create_engine`` as they are): ``min_idle``,
    ``max_lifetime``, ``idle_timeout``, ``keepalive``, ``ping_after_idle``,
    ``validation_timeout``, ``probe``, ``leak_threshold``, ``max_connecting``,
    ``held_check_after`` — as for :class:`poolwarden.Pool`.
    """

    #: SQLAlchemy names a pool's logger after its class's module; log where QueuePool logs
    #: instead, so that logging set up for ``sqlalchemy.pool`` (or ``echo_pool``) covers
    #: WardenPool too, and SQLAlchemy's pool messages stay out of the ``poolwarden`` logger.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.WardenPool"

    def __init__(
        self,
        creator: Any,
        pool_size: int = 5,
        max_overflow: int = 10,
        timeout: float = 30.0,
        use_lifo: bool = False,
        # Not keyword-only: create_engine() finds a pool's arguments among its positional
        # ones only.
        min_idle: int = 0,
        max_lifetime: float | str | None = "auto",
        idle_timeout: float | None = None,
        keepalive: float | str | None = "auto",
        ping_after_idle: float | None = 5.0,
        validation_timeout: float = 5.0,
        probe: bool = True,
        leak_threshold: float | None = None,
        max_connecting: int = 4,
        held_check_after: float | None = 1.0,
        **kw: Any,
    ) -> None:
        recycle = kw.pop("recycle", -1)
        pre_ping = bool(kw.pop("pre_ping", False))
        # SQLAlchemy's own recycle and pre-ping stay off: poolwarden does both, jittered and
        # bounded by a deadline, before the record ever reaches SQLAlchemy's checkout.
        SAPool.__init__(self, creator, recycle=-1, pre_ping=False, **kw)
        self._warden_args: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "timeout": timeout,
            "use_lifo": use_lifo,
            "min_idle": min_idle,
            "max_lifetime": max_lifetime,
            "idle_timeout": idle_timeout,
            "keepalive": keepalive,
            "ping_after_idle": ping_after_idle,
            "validation_timeout": validation_timeout,
            "probe": probe,
            "leak_threshold": leak_threshold,
            "max_connecting": max_connecting,
            "held_check_after": held_check_after,
            "recycle": recycle,
            "pre_ping": pre_ping,
        }
        if max_lifetime == "auto" and recycle is not None and recycle > -1:
            max_lifetime = float(recycle) or None  # QueuePool's pool_recycle, if given
        self._size = pool_size
        self._max_overflow = -1 if pool_size == 0 else max_overflow
        self._timeout = timeout
        dialect = getattr(self._dialect, "name", None)
        driver = getattr(self._dialect, "driver", None)
        label = self._orig_logging_name or (f"{dialect}+{driver}" if dialect else "sqlalchemy")
        self._warden = self._inner_pool(
            creator,
            label,
            pool_size=pool_size or UNLIMITED,
            max_overflow=UNLIMITED if self._max_overflow == -1 else max_overflow,
            timeout=timeout,
            min_idle=min_idle,
            reset=None,  # SQLAlchemy resets on return (pool_reset_on_return)
            max_lifetime=max_lifetime,
            idle_timeout=idle_timeout,
            keepalive=keepalive,
            pre_ping=pre_ping,
            ping_after_idle=ping_after_idle,
            validation_timeout=validation_timeout,
            probe=probe,
            leak_threshold=leak_threshold,
            max_connecting=max_connecting,
            held_check_after=held_check_after,
        )
        # QueuePool's order (FIFO unless use_lifo); poolwarden.Pool's own default is LIFO.
        self._warden._core.fifo = not use_lifo

    _records: RecordAdapter

    def _inner_pool(self, creator: Any, label: str, **kwargs: Any) -> Pool:
        """The poolwarden pool deciding who gets which record."""
        self._records = RecordAdapter(self, label)
        return Pool(creator, adapter=self._records, name=f"WardenPool {label}", **kwargs)

    def _checkout_entry(self) -> Entry:
        """Check out an entry for whoever called ``_do_get``."""
        return self._warden._acquire(None, _user_frame(sys._getframe(2)))

    def _checkin_entry(self, entry: Entry) -> None:
        self._warden._release(entry)

    # -- what HeldConnection asks of the driver (AsyncWardenPool's answers are awaited) ---
    def _held_inner(self, dbapi_connection: Any) -> Any:
        """The connection the driver's adapter speaks about."""
        return dbapi_connection

    def _held_verdict(self, conn: Any, probe: Any, used: bool) -> HeldVerdict | None:
        """Is the held connection ``conn`` dead? (See ``poolwarden._held.check_held``.)"""
        timeout = self._warden._io.validation_timeout
        return check_held(self._records.driver, conn, probe, used, timeout)

    def _held_set_autocommit(self, conn: Any, value: bool) -> None:
        self._records.driver.set_autocommit(conn, value)

    # -- the two hooks SQLAlchemy's Pool asks of an implementation ------------------------
    def _do_get(self) -> _ConnectionRecord:
        try:
            entry = self._checkout_entry()
        except PoolTimeout as error:
            raise WardenTimeout(
                f"QueuePool limit of size {self._size} overflow {self._max_overflow} reached, "
                f"connection timed out, timeout {self._timeout:.2f}: {error}",
                code="3o7r",
            ) from error.__cause__
        record: _ConnectionRecord = entry.raw
        if _emptied(record):
            # Invalidated or detached while out, and kept, as QueuePool keeps such records:
            # reconnect now (SQLAlchemy would in a moment) so the new socket gets probed.
            try:
                record.get_connection()
            except BaseException:
                self._checkin_entry(entry)
                raise
            self._warden._renewed(entry)
        record._poolwarden_entry = entry  # type: ignore[attr-defined]
        conn = record.dbapi_connection
        if type(conn) is HeldConnection:
            conn._state.last_op = entry.checkout_at  # a new borrower's pause starts now
        elif self._warden._held_check_after != _NEVER:
            # Checked before statements after a pause in the borrower's hands.
            record.dbapi_connection = HeldConnection(conn, record, self, entry)
        return record

    def _do_return_conn(self, record: Any) -> None:
        entry = record.__dict__.pop("_poolwarden_entry", None)
        if entry is None:
            return  # not ours (a record from before recreate(), or returned twice)
        if _emptied(record):
            entry.probe = None  # its socket is gone; it reconnects at its next checkout
        self._checkin_entry(entry)

    def _invalidate(
        self,
        connection: PoolProxiedConnection,
        exception: BaseException | None = None,
        _checkin: bool = True,
    ) -> None:
        """The engine saw a disconnect on ``connection``: invalidate it, and have every
        idle connection not checked since pinged before reuse, rather than recycling them
        all at once (QueuePool's pool-wide invalidation)."""
        self._warden._suspect_others()
        if _checkin and getattr(connection, "is_valid", False):
            connection.invalidate(exception)

    # -- QueuePool's public methods ------------------------------------------------------
    def recreate(self) -> WardenPool:
        """A new, empty pool with the same arguments and event listeners."""
        self.logger.info("Pool recreating")
        args = dict(self._warden_args)
        return self.__class__(
            self._creator,
            echo=self.echo,
            logging_name=self._orig_logging_name,
            reset_on_return=self._reset_on_return,
            _dispatch=self.dispatch,
            dialect=self._dialect,
            **args,
        )

    def dispose(self) -> None:
        """Close the idle connections; checked-out ones stay usable, as with QueuePool."""
        self._warden._close_idle()
        self.logger.info("Pool disposed. %s", self.status())

    def status(self) -> str:
        return (
            f"Pool size: {self.size()}  Connections in pool: {self.checkedin()} "
            f"Current Overflow: {self.overflow()} Current Checked out connections: "
            f"{self.checkedout()}"
        )

    def size(self) -> int:
        return self._size

    def timeout(self) -> float:
        return self._timeout

    def checkedin(self) -> int:
        return len(self._warden._core.idle)

    def checkedout(self) -> int:
        return len(self._warden._core.in_use)

    def overflow(self) -> int:
        """Connections beyond ``pool_size`` (negative while below it, as QueuePool's)."""
        if not self._size:
            return 0
        return self._warden._core.total() - self._size

    def stats(self) -> PoolStats:
        """poolwarden's statistics: sizes, counters, wait and hold times."""
        return self._warden.stats()

    def close(self) -> None:
        """Close the pool for good (threads, idle connections); the engine then needs a
        new pool (``engine.dispose()`` makes one)."""
        self._warden.close()

    def __repr__(self) -> str:
        return f"<WardenPool {self._warden!r}>"
