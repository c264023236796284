# Generated from src/poolwarden/_async/_io.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""Every driver call the pool makes on its own behalf: open, check, reset, close.

The pool's shell decides *when*; this module knows *how*, through the driver adapter, and
makes sure none of these calls can block for long or leak a password into a message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ._compat import bounded_ping
from ._entry import Entry
from ._greeting import wrong_server_hint
from ._proxy import IN_TRANSACTION
from ._url import SECRET_OPTIONS
from .adapters import Adapter, for_connection

__all__ = ["ConnectionIO"]

log = logging.getLogger("poolwarden")


class ConnectionIO:
    """Driver I/O for one pool: the only place that calls the adapter."""

    def __init__(
        self,
        adapter: Adapter,
        detect_driver: bool,
        configure: Callable[[Any], Any] | None,
        reset_mode: str | None,
        validation_timeout: float,
        probe: bool = True,
    ) -> None:
        self.adapter = adapter
        #: A callable target: recognise the driver from the first connection it returns.
        self._detect_driver = detect_driver
        self._configure = configure
        self.reset_mode = reset_mode
        self.validation_timeout = validation_timeout
        self._probe = probe
        #: What a probe of the URL's port said after connecting first failed: a hint
        #: when another kind of server answers there ("" when not, None: not probed).
        self.server_hint: str | None = None

    # -- open and close ------------------------------------------------------------------
    def open(self) -> tuple[Any, Callable[[], Any] | None]:
        """Connect and configure; return the connection and its liveness probe."""
        raw = self.adapter.connect()
        if self._detect_driver:
            self.adapter = for_connection(raw, self.adapter._connect)
            self._detect_driver = False
        if self._configure is not None:
            try:
                self._configure(raw)
            except BaseException:
                self._close_quietly(raw)
                raise
        return raw, self.make_probe(raw)

    def make_probe(self, raw: Any) -> Callable[[], Any] | None:
        """The adapter's liveness probe for ``raw`` (a zero-timeout poll of its socket
        where the driver owns the socket), or None when off or impossible."""
        return self.adapter.probe_for(raw) if self._probe else None

    def server_idle_timeout(self, raw: Any) -> float | None:
        """The server's idle timeout for this session, or None if it has none or the
        query fails (the pool then falls back to its default lifetime)."""
        try:
            return self.adapter.server_idle_timeout(raw)
        except Exception as exc:
            log.debug("reading the server's idle timeout failed: %s", self.redact(repr(exc)))
            try:
                self.adapter.rollback(raw)
            except Exception:
                pass
            return None

    def close(self, entry: Entry) -> None:
        """Close a connection the pool let go (a broken one through the adapter's
        ``discard``); errors are only logged."""
        if entry.broken:
            try:
                self.adapter.discard(entry.raw, "connection found dead or broken")
            except Exception as exc:
                log.debug("discarding connection #%d failed: %r", entry.id, exc)
        else:
            self._close_quietly(entry.raw, entry.id)

    def _close_quietly(self, raw: Any, entry_id: int = 0) -> None:
        try:
            self.adapter.close(raw)
        except Exception as exc:
            log.debug("closing connection #%d failed: %r", entry_id, exc)

    # -- liveness ------------------------------------------------------------------------
    def looks_dead(self, entry: Entry) -> bool:
        """The socket probe: a zero-timeout poll, about a microsecond, no round trip. An
        idle connection's socket is readable only when the server closed it (or wrote
        something unasked, which the adapter then judges)."""
        probe = entry.probe
        if probe is None or not probe():
            return False
        try:
            return self.adapter.readable_means_dead(entry.raw)
        except Exception:
            return True

    def ping(self, entry: Entry) -> bool:
        """One round trip, cut off after ``validation_timeout``; True if it answered."""
        error = bounded_ping(self.adapter, entry.raw, self.validation_timeout)
        if error is not None:
            text = self.redact(repr(error))
            log.info("connection #%d did not answer a ping: %s", entry.id, text)
        return error is None

    # -- reset ---------------------------------------------------------------------------
    def reset(
        self, entry: Entry, activity: int, saved: dict[str, Any] | None
    ) -> tuple[bool, bool]:
        """Make a returned connection fit for the next borrower.

        Returns (reusable, worked): whether to keep it, and whether any reset was done.
        """
        if entry.broken:
            return False, False
        adapter, raw, mode = self.adapter, entry.raw, self.reset_mode
        worked = False
        try:
            if adapter.is_closed(raw):
                return False, False
            if mode == "session":
                if not adapter.can_reset_session():
                    return False, False  # cannot clear its state: a new connection is the reset
                adapter.reset_session(raw)
                worked = True
            elif mode == "rollback" and activity == IN_TRANSACTION and adapter.needs_rollback(raw):
                adapter.rollback(raw)
                worked = True
            for attribute, value in (saved or {}).items():
                worked = True
                if attribute == "autocommit":
                    adapter.set_autocommit(raw, value)
                else:
                    adapter.set_attribute(raw, attribute, value)
        except Exception as exc:
            disconnect = adapter.is_disconnect(exc, raw)
            log.log(
                logging.INFO if disconnect else logging.WARNING,
                "resetting connection #%d failed (%s); closing it",
                entry.id,
                self.redact(repr(exc)),
            )
            return False, True
        return True, worked

    # -- messages ------------------------------------------------------------------------
    def redact(self, text: str) -> str:
        """``text`` with the connection password, if any, replaced by ``***``."""
        kwargs = self.adapter.kwargs
        for key in SECRET_OPTIONS:
            password = kwargs.get(key)
            if password:
                text = text.replace(str(password), "***")
        return text

    def describe_connect_error(self, exc: BaseException) -> str:
        """The driver's error, password-free, with the adapter's diagnosis if it has one
        and the wrong-server hint if the probe found one."""
        text = self.redact(repr(exc))
        hint = self.adapter.explain_connect_error(exc)
        text = f"{text} ({hint})" if hint else text
        return f"{text}; {self.server_hint}" if self.server_hint else text

    def probe_server(self, exc: BaseException | None) -> str:
        """Once per pool, after connecting failed (or gave no answer in time): ask the
        URL's port which kind of server it is (at most a second, in a thread for an
        asyncio pool) and remember the hint; ``exc``, the driver's error, gets it as a
        note, which tracebacks show."""
        if self.server_hint is None:
            self.server_hint = ""  # probed at most once, even if the probe itself fails
            hint = wrong_server_hint(self.adapter.url)
            self.server_hint = hint or ""
        if exc is not None and self.server_hint and hasattr(exc, "add_note"):
            exc.add_note(f"poolwarden: {self.server_hint}")
        return self.server_hint
