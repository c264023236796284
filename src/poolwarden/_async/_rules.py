"""What the pool learns about its server on the first connection, and the rules that follow.

The server's idle timeout for a session sets the automatic lifetime and keepalive; a proxy
in front (PgBouncer, ProxySQL: :mod:`poolwarden.adapters._proxies` knows what each requires)
changes psycopg's connect arguments, the reset on return and the lifetime. Both are read
once per pool, before the first connection is handed out.
"""

from __future__ import annotations

import logging
from typing import Any

from .._core.settings import PoolSettings
from ..adapters._proxies import (
    ProxyInfo,
    allowed_reset,
    effective_idle_timeout,
    psycopg_connect_overrides,
    session_state_warning,
)
from ._detect import detect_proxy
from ._shared import Shared

__all__ = ["ServerRules"]

log = logging.getLogger("poolwarden")

#: (warning, pool name) pairs already logged about a proxy's rules.
_WARNED: set[tuple[str, str]] = set()


class ServerRules:
    """The server facts one pool depends on, learned from its first connection."""

    def __init__(self, shared: Shared, settings: PoolSettings) -> None:
        self._shared = shared
        self._proxy_setting = settings.proxy
        self._lifetime_setting = settings.max_lifetime
        self._keepalive_setting = settings.keepalive
        #: The proxy in front: known from ``proxy``, or found on the first connection.
        self.proxy: ProxyInfo | None = None
        #: The server's idle timeout for a session, once read (for ConnectionLost).
        self.server_idle_timeout: float | None = None
        #: psycopg connect arguments the proxy requires (applied to new connections).
        self._overrides: dict[str, Any] = {}
        self._proxy_pending = settings.proxy in ("auto", "pgbouncer")
        if settings.proxy in ("pgbouncer", "proxysql"):
            # Its rules hold from the first connect; the first connection may say more.
            self._apply(ProxyInfo(settings.proxy))
        #: The automatic lifetime and keepalive wait for the server's idle timeout.
        self.pending = self._proxy_pending or "auto" in (
            settings.max_lifetime,
            settings.keepalive,
        )

    async def after_open(self, raw: Any) -> bool:
        """A connection was just opened: learn from it if the pool still needs to (True
        then: the lifetime and keepalive are known now), or give it the proxy's rules."""
        if self.pending:
            return await self._learn(raw)
        if self._overrides:  # opened while the first one found the proxy
            await self._fix(raw, self._overrides)
        return False

    async def _learn(self, raw: Any) -> bool:
        """On the first connection: find the proxy in front, if any (and apply its
        rules), read the server's idle timeout and derive the automatic lifetime and
        keepalive interval from it. A connection that breaks meanwhile is closed and the
        error counts as a failed connect."""
        shared = self._shared
        io = shared.io
        try:
            if self._proxy_pending:  # each connection opened meanwhile asks as well
                info = await detect_proxy(io.adapter, raw, self._proxy_setting)
                await self._fix(raw, self._apply(info))
                self._proxy_pending = False
            timeout = await io.server_idle_timeout(raw)
        except BaseException:
            await io.close_unfiled(raw)
            raise
        timeout = effective_idle_timeout(self.proxy, timeout)
        core = shared.core
        with shared.lock:
            if not self.pending:
                return False
            self.pending = False
            self.server_idle_timeout = timeout
            core.learned_idle_timeout(timeout, self._lifetime_setting, self._keepalive_setting)
        log.debug(
            "pool %s: server idle timeout %s s, lifetime %s s, keepalive %s s",
            shared.name,
            timeout,
            core.lifetime,
            core.keepalive,
        )
        return True

    async def _fix(self, raw: Any, overrides: dict[str, Any]) -> None:
        """Give a connection opened before the proxy's rules were known what they ask."""
        if "prepare_threshold" in overrides:
            raw.prepare_threshold = None
        if overrides.get("autocommit"):
            await self._shared.io.adapter.set_autocommit(raw, True)

    def _apply(self, info: ProxyInfo | None) -> dict[str, Any]:
        """Apply what the proxy in front requires (see :mod:`poolwarden.adapters._proxies`):
        psycopg's connect arguments for the connections to come, the reset, and the
        warnings a configuration that cannot work there deserves. Returns the connect
        arguments it changed."""
        self.proxy = info
        if info is None:
            return {}
        name, io = self._shared.name, self._shared.io
        adapter = io.adapter
        log.info(
            "pool %s: %s in front of the server (%s%s)",
            name,
            info.kind,
            info.source,
            f", {info.mode} mode" if info.mode else "",
        )
        overrides = psycopg_connect_overrides(info) if adapter.name == "psycopg" else {}
        kwargs = adapter.kwargs
        if overrides and isinstance(kwargs, dict):
            kwargs.update(overrides)
        self._overrides = overrides
        reset, warning = allowed_reset(info, io.reset_mode)
        for text in (warning, session_state_warning(info) if io.configures else None):
            if text and (text, name) not in _WARNED:
                _WARNED.add((text, name))  # once, not at every pool recreation
                log.warning("pool %s: %s", name, text)
        io.reset_mode = reset
        return overrides
