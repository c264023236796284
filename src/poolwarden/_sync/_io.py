# Generated from src/poolwarden/_async/_io.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run the tool (CI runs it with --check).
"""Every driver call the pool makes on its own behalf: open, check, reset, close.

The pool's shell decides *when*; this module knows *how*, through the driver adapter, and
makes sure none of these calls can block for long or leak a password into a message.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, NamedTuple

from .._core.activity import IN_TRANSACTION
from .._core.entry import Entry
from .._core.settings import PoolSettings
from .._net.greeting import wrong_server_hint
from .._net.servers import Resolver, address_text, check_resolver, with_hosts
from .._net.url import SECRET_OPTIONS
from ..adapters import Adapter, for_connection, for_target
from ..adapters._roles import accepts, check_role
from ..adapters.base import BaseAdapter
from ..errors import WrongRole
from ._compat import bounded_ping

__all__ = ["ConnectionIO", "Opened"]


class Opened(NamedTuple):
    """A new connection, its liveness probe, the address it reached and the configured
    host it was opened for."""

    raw: Any
    probe: Callable[[], Any] | None
    peer: tuple[str, int] | None
    host: str | None


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
        role: str = "any",
        resolver: Resolver | None = None,
        shuffle: Callable[[list[Any]], None] | None = None,
    ) -> None:
        self.adapter = adapter
        #: The server role the pool needs (``"any"``: no check).
        self.role = role
        #: A custom resolver (service discovery, tests): connections go to the addresses
        #: it returns. None: drivers resolve names themselves.
        self.resolver = resolver
        #: Shuffles the hosts before each connect (``load_balance_hosts="random"``).
        self._shuffle = shuffle
        #: Told when a ping finds a connection's server in the wrong role (the pool then
        #: demotes that server).
        self.on_wrong_role: Callable[[Entry], None] | None = None
        #: A callable target: recognise the driver from the first connection it returns.
        self._detect_driver = detect_driver
        self._configure = configure
        self.reset_mode = reset_mode
        self.validation_timeout = validation_timeout
        self._probe = probe
        #: What a probe of the URL's port said after connecting first failed: a hint
        #: when another kind of server answers there ("" when not, None: not probed).
        self.server_hint: str | None = None

    @staticmethod
    def for_target(
        target: Any,
        settings: PoolSettings,
        connect_args: Any,
        configure: Callable[[Any], Any] | None,
        adapter: Adapter | BaseAdapter | None,
        resolver: Resolver | None,
    ) -> ConnectionIO:
        """The driver I/O for a pool of ``target`` with ``settings``: the driver's adapter,
        told which server role to look for and how to order the hosts."""
        if configure is not None and not callable(configure):
            raise ValueError(
                f"configure must be a callable taking a connection, got {configure!r}"
            )
        resolver = check_resolver(resolver)
        if settings.hosts is not None:
            target = with_hosts(target, settings.hosts)
        adapter, detect = for_target(target, connect_args, adapter)  # type: ignore[arg-type]
        role = settings.role
        if role == "any":  # a PostgreSQL URL may ask with libpq's own option
            asked = adapter.kwargs.get("target_session_attrs")
            role = check_role(asked, "target_session_attrs") if asked else role
        adapter.apply_role(role, settings.balance_random)
        io = ConnectionIO(
            adapter,
            detect,
            configure,
            settings.reset,
            settings.validation_timeout,
            settings.probe,
            role,
            resolver,
            random.shuffle if settings.balance_random else None,
        )
        return io

    # -- open and close ------------------------------------------------------------------
    def open(self) -> Opened:
        """Connect (to the first host, in order, whose server has the role the pool
        needs), configure; return the connection, its probe, peer and host."""
        candidates = self._candidates()
        if not candidates:
            raw = self.adapter.connect()
            if self._detect_driver:
                self.adapter = for_connection(raw, self.adapter._connect)
                self._detect_driver = False
            url = self.adapter.url
            host = self.adapter.host_of(raw) or (url.host if url is not None else None)
            if self.role != "any":
                found = self._role_on_connect(raw)
                if not accepts(self.role, found):
                    peer = self.adapter.peer_of(raw)
                    self._close_quietly(raw)
                    where = address_text(*peer) if peer else address_text(host, None)
                    raise self._wrong_role({where: str(found)}, [peer] if peer else [])
        else:
            raw, host = self._open_first_fit(candidates)
        self._configure_new(raw)
        return Opened(raw, self.make_probe(raw), self.adapter.peer_of(raw), host)

    def _candidates(self) -> list[tuple[str, int | None, str | None]]:
        """(host, port, address to connect to) for each server poolwarden itself picks
        from, in the order to try them; empty when the driver picks (libpq)."""
        hosts = self.adapter.hosts()
        if self.resolver is None and (len(hosts) <= 1 or not self.adapter.picks_hosts):
            return []  # one host resolved by the driver, or a driver that picks (libpq)
        if self._shuffle is not None:
            self._shuffle(hosts)
        if self.resolver is None:
            return [(host, port, None) for host, port in hosts]
        return [
            (host, found_port, ip)
            for host, port in hosts
            for ip, found_port in self.resolver(host, port or self.adapter.default_port)
        ]

    def _open_first_fit(
        self, candidates: list[tuple[str, int | None, str | None]]
    ) -> tuple[Any, str]:
        """Try ``candidates`` in order; for ``prefer-standby`` a primary is kept as the
        fallback while the rest are tried for a standby."""
        found: dict[str, str] = {}
        peers: list[tuple[str, int]] = []
        fallback: tuple[Any, str] | None = None
        last_error: BaseException | None = None
        for host, port, ip in candidates:
            where = address_text(ip or host, port)
            try:
                raw = self.adapter.connect_to(host, port, ip)
            except Exception as exc:
                found[where] = self.redact(repr(exc))
                last_error = exc
                continue
            try:
                role = self._role_on_connect(raw) if self.role != "any" else None
            except BaseException:
                self._close_quietly(raw)
                raise
            if accepts(self.role, role, last_chance=False):
                if fallback is not None:
                    self._close_quietly(fallback[0])
                return raw, host
            found[where] = str(role)
            peer = self.adapter.peer_of(raw)
            if peer is not None:
                peers.append(peer)
            if fallback is None and accepts(self.role, role):
                fallback = (raw, host)
            else:
                self._close_quietly(raw)
        if fallback is not None:
            return fallback
        if last_error is not None and len(found) == 1:
            raise last_error  # one server, unreachable: the driver's own error says it best
        if last_error is not None and all(v != "None" and "(" in v for v in found.values()):
            raise last_error  # none answered at all
        raise self._wrong_role(found, peers)

    def _wrong_role(self, found: dict[str, str], peers: list[tuple[str, int]]) -> WrongRole:
        tried = "; ".join(f"{where} is {what}" for where, what in found.items())
        error = WrongRole(
            f"no server with role {self.role!r} answered: {tried} (a failover in progress, "
            "or the URL names the wrong servers; retrying)"
        )
        error.needed, error.found, error.peers = self.role, found, peers
        return error

    def _role_on_connect(self, raw: Any) -> str | None:
        """The role of a new connection's server (free where it is reported, else one
        query, bounded as a ping is)."""
        found: list[str | None] = []

        def read_role(conn: Any) -> None:
            found.append(self.adapter.server_role(conn))

        error = bounded_ping(self.adapter, raw, self.validation_timeout, read_role)
        if error is not None:
            raise error
        return found[0] if found else None

    def _configure_new(self, raw: Any) -> None:
        """Run the user's ``configure`` on a new connection (closing it if that fails)."""
        if self._configure is not None:
            try:
                self._configure(raw)
            except BaseException:
                self._close_quietly(raw)
                raise

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
            if self.adapter.is_closed(raw):
                raise  # the connection broke (a proxy closed it): not one to hand out
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

    @property
    def configures(self) -> bool:
        """Whether the user's ``configure`` runs on each new connection."""
        return self._configure is not None

    def close_unfiled(self, raw: Any) -> None:
        """Close a new connection the pool's books never received (errors only logged)."""
        self._close_quietly(raw)

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
        """One round trip, cut off after ``validation_timeout``; True if it answered (and,
        when the pool needs a role, its server still has it: for MySQL the role query is
        the ping, for PostgreSQL the role comes with any answer)."""
        if self.role == "any":
            error = bounded_ping(self.adapter, entry.raw, self.validation_timeout)
            found = None
        else:
            roles: list[str | None] = []
            error = bounded_ping(
                self.adapter, entry.raw, self.validation_timeout, self._role_ping(roles)
            )
            found = roles[0] if roles else None
        if error is not None:
            text = self.redact(repr(error))
            log.info("connection #%d did not answer a ping: %s", entry.id, text)
            return False
        if self.role != "any" and not accepts(self.role, found):
            log.warning(
                "connection #%d reaches a server that is now %s, not %s: a failover? "
                "closing the pool's connections to it",
                entry.id,
                found or "of unknown role",
                self.role,
            )
            if self.on_wrong_role is not None:
                self.on_wrong_role(entry)
            return False
        return True

    def _role_ping(self, roles: list[str | None]) -> Callable[[Any], Any]:
        adapter = self.adapter

        def role_ping(raw: Any) -> None:
            if adapter.role_query is not None and adapter.known_role(raw) is None:
                roles.append(adapter.server_role(raw))  # the query is the round trip
            else:
                adapter.ping(raw)
                roles.append(adapter.known_role(raw))  # reported with the answer

        return role_ping

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
