"""asyncmy and aiomysql: the asyncio MySQL/MariaDB drivers (both ports of PyMySQL).

Their sockets belong to the event loop, which reads whatever arrives. When the server
closes an idle connection, the loop sees the end of the stream and marks the protocol
(asyncmy) or the stream reader (aiomysql) as ended, or closes the transport; a poll of the
file descriptor would be wrong then (the number may already belong to another socket). So
the probe asks the driver's own state first, and polls the socket only while the
transport is open, to catch what arrived before the loop ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from .._net.probe import make_probe
from .._net.url import URL
from ._mysql import (
    IDLE_TIMEOUT_QUERY,
    SERVER_STATUS_AUTOCOMMIT,
    SERVER_STATUS_IN_TRANS,
    MySQLBase,
    closing_packet,
    idle_timeout_of,
    socket_says_closed,
)
from .async_base import AsyncAdapter, maybe_await

__all__ = ["AiomysqlAdapter", "AsyncmyAdapter"]

#: COM_RESET_CONNECTION; neither driver has a method for it.
COM_RESET_CONNECTION = 0x1F


class _AsyncMySQLAdapter(MySQLBase, AsyncAdapter):
    """What asyncmy and aiomysql share; subclasses say where the transport and the
    unread bytes are."""

    # -- the transport, without I/O ------------------------------------------------------
    def _transport(self, raw: Any) -> Any:
        """The connection's asyncio transport, or None once closed."""
        raise NotImplementedError

    def _ended(self, raw: Any) -> bool:
        """The driver saw the end of the stream or an error on it."""
        raise NotImplementedError

    def _unread(self, raw: Any) -> bytes:
        """Up to 7 bytes the loop received that nobody has read yet."""
        raise NotImplementedError

    def fileno(self, raw: Any) -> int | None:
        """The transport's socket, while it is open."""
        transport = self._transport(raw)
        sock = None if transport is None else transport.get_extra_info("socket")
        try:
            return None if sock is None else int(sock.fileno())
        except OSError:
            return None

    def is_closed(self, raw: Any) -> bool:
        """Closed, closing, or ended by the server."""
        transport = self._transport(raw)
        return transport is None or transport.is_closing() or self._ended(raw)

    def _stirred(self, raw: Any) -> Callable[[], bool]:
        """A check, without I/O, that the loop saw something on this connection: the end of
        the stream, an error, or bytes nobody asked for (bound to this connection's own
        transport and buffers, which never change: the pool never reconnects in place)."""
        raise NotImplementedError

    def probe_for(self, raw: Any) -> Callable[[], Any] | None:
        """The driver's state: truthy when the loop saw the server close the connection or
        write unasked. No poll of the socket: the loop itself reads it between the tasks'
        steps, so a poll would only see what arrived during the current step, at the cost
        of a system call on every checkout (3% of an engine request)."""
        if self._transport(raw) is None:
            return None
        return self._stirred(raw)

    def held_probe(self, raw: Any, probe: Callable[[], Any]) -> bool:
        """The driver's state, then a poll of the socket: a borrower that kept its
        connection may have blocked the loop all along (CPU work, a blocking call), so
        the loop may not have read what the server sent."""
        if probe():
            return True
        poll = make_probe(self.fileno(raw))
        return poll is not None and bool(poll())

    def held_readable_means_dead(self, raw: Any) -> bool:
        """As for the sync drivers, but the unread bytes may sit in the loop's buffer
        rather than in the socket: look there first."""
        if self.is_closed(raw):
            return True
        head = self._unread(raw)
        if head:
            return closing_packet(head)
        return socket_says_closed(self.fileno(raw))

    def known_autocommit(self, raw: Any) -> bool | None:
        """The server's autocommit flag from the last OK packet."""
        return bool(raw.server_status & SERVER_STATUS_AUTOCOMMIT)

    def needs_rollback(self, raw: Any) -> bool:
        """PyMySQL's rule (see its adapter): trust the status flags only to say
        "autocommit on and no explicit BEGIN"; otherwise roll back."""
        status = raw.server_status
        return not status & SERVER_STATUS_AUTOCOMMIT or bool(status & SERVER_STATUS_IN_TRANS)

    def lost_error_args(self, message: str) -> tuple[Any, ...]:
        """``(2013, message)`` as for the sync drivers."""
        return (2013, message)

    # -- I/O -----------------------------------------------------------------------------
    async def ping(self, raw: Any) -> None:
        """COM_PING, without the driver's silent reconnect."""
        await raw.ping(reconnect=False)

    async def close(self, raw: Any) -> None:
        """COM_QUIT, then close."""
        await raw.ensure_closed()

    async def discard(self, raw: Any, reason: str) -> None:
        """Close the transport: a dead connection gets no goodbye."""
        raw.close()

    async def rollback(self, raw: Any) -> None:
        """ROLLBACK."""
        await raw.rollback()

    async def set_autocommit(self, raw: Any, value: bool) -> None:
        """Set autocommit (one round trip unless it is already so)."""
        await raw.autocommit(value)

    async def server_idle_timeout(self, raw: Any) -> float | None:
        """The session's ``wait_timeout``."""
        cursor = self.new_cursor(raw, (), {})
        try:
            await cursor.execute(IDLE_TIMEOUT_QUERY)
            row = await cursor.fetchone()
        finally:
            await maybe_await(cursor.close())
        await raw.rollback()
        return idle_timeout_of(row)

    def can_reset_session(self) -> bool:
        """COM_RESET_CONNECTION clears a MySQL session."""
        return True

    async def reset_session(self, raw: Any) -> None:
        """COM_RESET_CONNECTION, then the charset, autocommit and init command the driver
        set at connect, which the reset returned to the server's defaults."""
        await raw._execute_command(COM_RESET_CONNECTION, b"")
        await raw._read_ok_packet()
        statements = [f"SET NAMES '{raw._charset}'"]
        if raw.autocommit_mode is not None:
            statements.append(f"SET autocommit={1 if raw.autocommit_mode else 0}")
        init_command = self._init_command(raw)
        if init_command:
            statements.append(init_command)
        cursor = self.new_cursor(raw, (), {})
        try:
            for statement in statements:
                await cursor.execute(statement)
        finally:
            await maybe_await(cursor.close())

    def _init_command(self, raw: Any) -> str | None:
        raise NotImplementedError


class AsyncmyAdapter(_AsyncMySQLAdapter):
    """``mysql+asyncmy://`` (the default for ``mysql://`` in an asyncio pool)."""

    name: ClassVar[str] = "asyncmy"
    module_name: ClassVar[str] = "asyncmy"
    extra: ClassVar[str] = "asyncmy"

    def _transport(self, raw: Any) -> Any:
        return raw._transport

    def _ended(self, raw: Any) -> bool:
        proto = raw._proto
        return proto is None or bool(proto.eof) or proto.exc is not None

    def _unread(self, raw: Any) -> bytes:
        proto = raw._proto
        if proto is None or proto.length <= proto.pos:
            return b""
        return bytes(proto.buffer[proto.pos : min(proto.pos + 7, proto.length)])

    def _stirred(self, raw: Any) -> Callable[[], bool]:
        transport, proto = raw._transport, raw._proto

        def stirred() -> bool:
            return bool(
                transport.is_closing()
                or proto.eof
                or proto.exc is not None
                or proto.length > proto.pos
            )

        return stirred

    def _init_command(self, raw: Any) -> str | None:
        return raw._init_command  # type: ignore[no-any-return]


class AiomysqlAdapter(_AsyncMySQLAdapter):
    """``mysql+aiomysql://``."""

    name: ClassVar[str] = "aiomysql"
    module_name: ClassVar[str] = "aiomysql"
    extra: ClassVar[str] = "aiomysql"

    @classmethod
    def url_kwargs(cls, url: URL) -> dict[str, Any]:
        """As for asyncmy, but aiomysql calls the database ``db``."""
        kwargs = super().url_kwargs(url)
        if "database" in kwargs:
            kwargs["db"] = kwargs.pop("database")
        return kwargs

    def new_cursor(self, raw: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """aiomysql's ``cursor()`` returns an awaitable wrapping a finished future; the
        cursor inside is ready now."""
        made = raw.cursor(*args, **kwargs)
        future = getattr(made, "_coro", None)
        return future.result() if isinstance(future, asyncio.Future) else made

    def _transport(self, raw: Any) -> Any:
        writer = raw._writer
        return None if writer is None else writer.transport

    def _ended(self, raw: Any) -> bool:
        reader = raw._reader
        return reader is None or bool(reader.eof_received) or reader.exception() is not None

    def _unread(self, raw: Any) -> bytes:
        reader = raw._reader
        return b"" if reader is None else bytes(reader._buffer[:7])

    def _stirred(self, raw: Any) -> Callable[[], bool]:
        transport, reader = raw._writer.transport, raw._reader

        def stirred() -> bool:
            return bool(
                transport.is_closing()
                or reader.eof_received
                or reader.exception() is not None
                or reader._buffer
            )

        return stirred

    def _init_command(self, raw: Any) -> str | None:
        return raw.init_command  # type: ignore[no-any-return]
