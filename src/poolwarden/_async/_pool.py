"""The pool's face: :class:`AsyncPool`, what applications hold; its machinery is the engine."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any, Generic

from .._core.clock import Clock
from .._core.dbapi import ConnT
from .._core.settings import PoolOptions, PoolSettings
from .._core.stats import PoolStats
from .._net.servers import Resolver
from ..adapters import AsyncAdapter
from ..adapters._proxies import ProxyInfo
from ..errors import ConnectionReturned, PoolError
from ._compat import ASYNC
from ._engine import AsyncPoolEngine
from ._proxy import AsyncPooledConnection

if sys.version_info >= (3, 11):
    from typing import Unpack
elif TYPE_CHECKING:  # typing_extensions: for type checkers only (no run-time dependency)
    from typing_extensions import Unpack

__all__ = ["AsyncPool"]


class AsyncPool(Generic[ConnT]):
    """A pool of database connections for asyncio tasks that never hands out a dead one.

    ``target`` is an SQLAlchemy-style URL (``mysql+asyncmy://user:pw@host:3306/db``,
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

    The settings are keyword arguments, or a :class:`~poolwarden.PoolSettings` (shared by
    several pools; keyword arguments then change it for this one), documented there:
    sizes (``pool_size``, ``max_overflow``, ``min_idle``, ``max_connecting``), waiting
    (``timeout``, ``connect_wait``), the reset on return (``reset``), retirement
    (``max_lifetime``, ``idle_timeout``, ``keepalive``), checks (``pre_ping``,
    ``ping_after_idle``, ``validation_timeout``, ``probe``, ``held_check_after``), leak
    reports (``leak_threshold``), servers (``role``, ``hosts``, ``load_balance_hosts``,
    ``dns_refresh``, ``proxy``). An unknown name is a ``TypeError`` that suggests the
    setting probably meant.

    Args:
        target: the URL, or a callable returning a new DB-API connection.
        settings: the settings to start from (default: ``PoolSettings()``).
        connect_args: extra keyword arguments for the driver's ``connect()``.
        configure: called with each new connection before first use (awaited if a coroutine).
        adapter: a :class:`poolwarden.adapters.AsyncAdapter` for a driver poolwarden does
            not know.
        resolver: ``resolver(host, port) -> [(ip, port), ...]``, for service discovery:
            connections then go to the addresses it returns (default: the system's
            resolver, and the driver connects by name).
        name: label for logs and ``repr`` (default: the URL without its password).
        clock: time source, for tests.
    """

    def __init__(
        self,
        target: str | Callable[[], ConnT] | Callable[[], Awaitable[ConnT]],
        settings: PoolSettings | None = None,
        *,
        connect_args: Mapping[str, Any] | None = None,
        configure: Callable[[Any], Any] | None = None,
        adapter: AsyncAdapter | None = None,
        resolver: Resolver | None = None,
        name: str | None = None,
        clock: Clock | None = None,
        **options: Unpack[PoolOptions],
    ) -> None:
        #: The machinery (``poolwarden._async._engine``): for integrations, not for use.
        self.engine = AsyncPoolEngine(
            target,
            PoolSettings.of(type(self).__name__, settings, options),
            connect_args=connect_args,
            configure=configure,
            adapter=adapter,
            resolver=resolver,
            name=name,
            clock=clock,
        )
        self.name = self.engine.name

    # -- checkout ------------------------------------------------------------------------
    if ASYNC:

        def connection(self, timeout: float | None = None) -> _Checkout[ConnT]:
            """Check out a connection. ``async with pool.connection() as conn:`` gives it
            back on exit; ``conn = await pool.connection()`` (or :meth:`getconn`) leaves
            that to :meth:`putconn` or ``await conn.close()``. Waits up to ``timeout``
            seconds (default: the pool's), then raises :class:`PoolTimeout`.
            """
            return _Checkout(self, timeout, sys._getframe(1))

        async def getconn(self, timeout: float | None = None) -> AsyncPooledConnection[ConnT]:
            """Check out a connection (as psycopg_pool names it); give it back with
            :meth:`putconn` or ``await conn.close()``."""
            entry = await self.engine.checkout(timeout, sys._getframe(1))
            return AsyncPooledConnection(self, entry)

    else:

        def connection(self, timeout: float | None = None) -> AsyncPooledConnection[ConnT]:
            """Check out a connection. Use it in a ``with`` block, which gives it back on
            exit::

                with pool.connection() as conn:
                    cur = conn.cursor()
                    cur.execute("SELECT 1")

            or give it back yourself with :meth:`putconn` or its ``close()`` (``getconn``
            is another name for this method). Waits up to ``timeout`` seconds (default:
            the pool's), then raises :class:`PoolTimeout`.
            """
            return AsyncPooledConnection(self, self.engine.checkout(timeout, sys._getframe(1)))

        #: The explicit form's name (as in psycopg_pool): pair it with :meth:`putconn`.
        getconn = connection

    # -- checkin -------------------------------------------------------------------------
    async def putconn(self, conn: AsyncPooledConnection[Any]) -> None:
        """Give back a connection from :meth:`getconn` (``conn.close()`` does the same)."""
        try:
            entry = conn._entry
        except AttributeError:
            entry = None
        if entry is None or conn._pool is not self:
            raise self._bad_return(conn)
        conn._entry = None
        if conn._activity or conn._saved is not None:
            await self.engine.give_back(entry, conn._activity, conn._saved)
        else:
            await self.engine.release(entry)

    def _bad_return(self, conn: Any) -> Exception:
        if not isinstance(conn, AsyncPooledConnection):
            return PoolError(
                f"putconn() takes a connection checked out of this pool, got {conn!r}"
            )
        if conn._pool is not self:
            return PoolError(f"putconn(): {conn!r} belongs to another pool, not {self!r}")
        return ConnectionReturned("this connection was already returned to the pool")

    # -- management ----------------------------------------------------------------------
    async def resize(
        self,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        min_idle: int | None = None,
    ) -> None:
        """Change the limits while the pool is in use. Surplus idle connections close now;
        surplus borrowed ones close when they come back; waiters get new room at once."""
        await self.engine.resize(pool_size, max_overflow, min_idle)

    def stats(self) -> PoolStats:
        """A snapshot of sizes, counters and wait/hold time percentiles."""
        return self.engine.stats()

    async def close(self) -> None:
        """Close the pool: idle connections now, borrowed ones when they come back; threads
        waiting for a connection get :class:`PoolClosed`. Closing twice is harmless."""
        await self.engine.close()

    @property
    def proxy(self) -> ProxyInfo | None:
        """The proxy in front of the server (PgBouncer, ProxySQL), as configured with
        ``proxy`` or found on the first connection; None if none (yet)."""
        return self.engine.proxy

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self.engine.closed

    async def __aenter__(self) -> AsyncPool[ConnT]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.engine.describe()}>"


if ASYNC:

    class _Checkout(Generic[ConnT]):
        """What ``AsyncPool.connection()`` returns: await it, or use it in ``async with``."""

        __slots__ = ("_conn", "_frame", "_pool", "_timeout")

        def __init__(
            self, pool: AsyncPool[ConnT], timeout: float | None, frame: FrameType
        ) -> None:
            self._pool, self._timeout = pool, timeout
            self._frame: FrameType | None = frame
            self._conn: AsyncPooledConnection[ConnT] | None = None

        async def _get(self) -> AsyncPooledConnection[ConnT]:
            frame, self._frame = self._frame, None  # no cycle through the caller's frame
            if frame is None:
                raise PoolError("pool.connection() gives one connection: await it only once")
            pool = self._pool
            entry = await pool.engine.checkout(self._timeout, frame)
            return AsyncPooledConnection(pool, entry)

        def __await__(self) -> Any:
            return self._get().__await__()

        async def __aenter__(self) -> AsyncPooledConnection[ConnT]:
            self._conn = await self._get()
            return self._conn

        async def __aexit__(self, *exc_info: Any) -> None:
            conn = self._conn
            self._conn = None
            if conn is not None and conn._entry is not None:
                await self._pool.putconn(conn)
