"""The driver-adapter interface: everything the pool asks of a DB-API driver.

One small subclass per driver answers: how to connect from URL parts, which socket a
connection uses, how to ping it, whether a transaction may be open, how to reset its session,
and whether an error means the connection is gone. The base class is the "generic" adapter
used for callables returning connections of a driver poolwarden does not know: it assumes
little and stays safe (it rolls back whenever the connection was used, and closes rather
than reuses a connection when a session reset is asked for).

What needs no I/O — error classification, sockets, transaction flags — lives in
:class:`BaseAdapter`, shared by the sync :class:`Adapter` and the asyncio
:class:`~poolwarden.adapters.AsyncAdapter`, whose I/O methods are coroutines. A driver's
knowledge is written once (``MySQLBase``, ``PostgresBase``) and mixed into both.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable, Hashable, Mapping
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from .._net.probe import make_probe
from .._net.url import URL
from ..errors import ConnectionLost
from ._options import check_url_options, signature_options

__all__ = ["Adapter", "BaseAdapter", "coerce_options"]

Connect = Callable[[], Any]
_A = TypeVar("_A", bound="BaseAdapter")


def coerce_options(
    scheme: str,
    options: Mapping[str, str],
    ints: frozenset[str] = frozenset(),
    floats: frozenset[str] = frozenset(),
    bools: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Turn URL query strings into the types a driver expects, naming any bad value."""
    out: dict[str, Any] = {}
    for key, text in options.items():
        try:
            if key in ints:
                out[key] = int(text)
            elif key in floats:
                out[key] = float(text)
            elif key in bools:
                out[key] = _parse_bool(text)
            else:
                out[key] = text
        except ValueError:
            kind = "an integer" if key in ints else "a number" if key in floats else "a boolean"
            raise ValueError(
                f"target: URL option {key!r} for {scheme} must be {kind}, got {text!r}"
            ) from None
    return out


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


class BaseAdapter:
    """What the pool knows about one driver without talking to the server: construction
    from a URL, sockets, transaction flags, and what errors mean."""

    #: Driver name as written in URLs (``mysql+<name>``).
    name: ClassVar[str] = "generic"
    dialect: ClassVar[str] = "generic"
    #: Import name of the DB-API module, and the pip extra that installs it.
    module_name: ClassVar[str] = ""
    extra: ClassVar[str] = ""
    #: True when the driver's autocommit is a method (``conn.autocommit(True)``).
    autocommit_is_method: ClassVar[bool] = False
    #: True when :meth:`needs_rollback` reads the server's own transaction state (so it
    #: is right even about statements the pool did not see run).
    reports_transaction: ClassVar[bool] = False
    #: True when the driver's connections have a ``fileno()`` giving their socket
    #: (mysqlclient, psycopg, psycopg2). The generic adapter assumes nothing: a connection
    #: of a driver poolwarden does not know gets no socket probe, only pings.
    has_fileno: ClassVar[bool] = False

    def __init__(
        self,
        dbapi: ModuleType | None,
        connect: Connect,
        url: URL | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.dbapi = dbapi
        self._connect = connect
        self.url = url
        #: The driver keyword arguments, when built from a URL (holds the password: never
        #: put it in a message).
        self.kwargs: Mapping[str, Any] = kwargs or {}
        #: The driver's own connect function, when built from a URL (another host's
        #: connection is made with it and :meth:`connect_kwargs_for`).
        self._driver_connect: Callable[..., Any] | None = None

    # -- construction --------------------------------------------------------------------
    @classmethod
    def import_driver(cls) -> ModuleType:
        """Import the driver module, or explain which extra installs it."""
        try:
            return importlib.import_module(cls.module_name)
        except ImportError as exc:
            raise ValueError(
                f"target: the {cls.dialect}+{cls.name} driver needs the '{cls.module_name}' "
                f"module, which is not installed ({exc}); install it with: "
                f"pip install 'poolwarden[{cls.extra}]'"
            ) from None

    @classmethod
    def from_url(cls: type[_A], url: URL, connect_args: Mapping[str, Any]) -> _A:
        """Build an adapter that connects with the URL's parts plus ``connect_args``."""
        dbapi = cls.import_driver()
        kwargs = {**cls.url_kwargs(url), **connect_args}
        check_url_options(url.scheme, url.query, kwargs, cls.driver_options(dbapi))
        connect = cls.connect_function(dbapi)

        def connect_from_url() -> Any:
            return connect(**kwargs)

        adapter = cls(dbapi, connect_from_url, url, kwargs)
        adapter._driver_connect = connect
        return adapter

    @classmethod
    def url_kwargs(cls, url: URL) -> dict[str, Any]:
        """Driver keyword arguments for ``url``."""
        raise NotImplementedError

    @classmethod
    def connect_function(cls, dbapi: ModuleType) -> Callable[..., Any]:
        """The driver's connect callable."""
        return dbapi.connect  # type: ignore[no-any-return]

    @classmethod
    def driver_options(cls, dbapi: ModuleType) -> frozenset[str] | None:
        """The keyword arguments the driver's connect takes, read from its signature
        (None: it cannot tell, and URL options are passed on unchecked)."""
        return signature_options(cls.connect_function(dbapi))

    # -- the connection, without I/O ----------------------------------------------------
    def fileno(self, raw: Any) -> int | None:
        """The socket file descriptor of ``raw``, if it has one we can reach: its
        ``fileno()`` where :attr:`has_fileno` says the driver offers one (drivers that keep
        the socket elsewhere override this), else None."""
        if not self.has_fileno:
            return None
        try:
            return int(raw.fileno())
        except Exception:
            return None

    def probe_for(self, raw: Any) -> Callable[[], Any] | None:
        """The liveness probe of an idle ``raw``: truthy when the server may have closed it.
        A zero-timeout poll of its socket (asyncio drivers whose sockets the event loop
        reads override it)."""
        return make_probe(self.fileno(raw))

    def is_closed(self, raw: Any) -> bool:
        """True when the driver itself knows ``raw`` is closed or broken (no I/O)."""
        return False

    def readable_means_dead(self, raw: Any) -> bool:
        """The socket of an idle connection is readable: is the connection gone? For most
        protocols, yes: the server only writes unasked when it closes the connection."""
        return True

    def explain_connect_error(self, exc: BaseException) -> str | None:
        """A short diagnosis of a connect error that needs one (server out of slots)."""
        return None

    def new_cursor(self, raw: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """A driver cursor of ``raw`` made with the borrower's arguments."""
        return raw.cursor(*args, **kwargs)

    def needs_rollback(self, raw: Any) -> bool:
        """Whether a transaction may be open on a connection the borrower used."""
        return True

    def can_reset_session(self) -> bool:
        """True when ``reset_session`` really clears session state; otherwise the pool
        closes a connection rather than hand on state it cannot clear."""
        return False

    def get_autocommit(self, raw: Any) -> bool:
        """The connection's autocommit mode."""
        return bool(raw.autocommit)

    def known_autocommit(self, raw: Any) -> bool | None:
        """The autocommit mode as last known without a round trip (the server's own flag
        where the driver keeps it, so a ``SET autocommit`` statement counts), or None."""
        return None

    def session_state(self, raw: Any) -> Hashable:
        """The session settings the driver keeps on ``raw`` itself, without I/O (isolation
        level, read-only, ...; autocommit apart): a held connection whose settings differ
        from the ones it was made with is not replaced by a new one, which would lack
        them. ``None`` where the driver keeps none."""
        return None

    # -- errors --------------------------------------------------------------------------
    def is_disconnect(self, exc: BaseException, raw: Any = None) -> bool:
        """True when ``exc`` means the connection is gone and must not be reused."""
        return False

    def is_retryable_connect_error(self, exc: BaseException) -> bool:
        """True when a failed connect may succeed later without anyone changing anything
        (server starting, down, or full), so waiters should keep waiting."""
        return False

    def is_connection_limit_error(self, exc: BaseException) -> bool:
        """True when a failed connect means the server (or the account) is out of
        connection slots: every pool of the process connecting there then backs off
        together, one attempt at a time (see ``poolwarden._core.storm``)."""
        return False

    def is_wrong_role_error(self, exc: BaseException) -> bool:
        """True when a connect failed because the driver found no server of the role
        asked for (libpq's ``target_session_attrs``)."""
        return False

    def connection_lost(self, message: str) -> ConnectionLost:
        """A :class:`~poolwarden.ConnectionLost` that is also the driver's
        ``OperationalError``, so the borrower's existing ``except`` clauses catch it."""
        base = getattr(self.dbapi, "OperationalError", None)
        lost = _lost_class(base if isinstance(base, type) else None)
        error = lost(*self.lost_error_args(message))
        return error  # type: ignore[no-any-return]

    def lost_error_args(self, message: str) -> tuple[Any, ...]:
        """Constructor arguments of the driver's ``OperationalError`` for a lost connection
        (MySQL drivers put error code 2013 first)."""
        return (message,)

    def held_probe(self, raw: Any, probe: Callable[[], Any]) -> bool:
        """The probe before a held connection's next operation (``probe`` is the one its
        idle checks use): truthy when the server may have closed it."""
        return bool(probe())

    def held_readable_means_dead(self, raw: Any) -> bool:
        """The socket of a connection *in a borrower's hands* is readable: is it gone?
        Unlike an idle pooled connection it may hold a result the borrower has not read
        yet, so drivers that can tell (MySQL's) look closer; the default trusts
        :meth:`readable_means_dead`."""
        return self.readable_means_dead(raw)

    # -- fork ----------------------------------------------------------------------------
    def detach(self, raw: Any) -> None:
        """In a forked child: make sure nothing done with ``raw`` here reaches the server.

        The socket is shared with the parent. Its descriptor is pointed at a dead local
        socket, so whatever the driver writes on close or garbage collection goes nowhere
        and the parent's connection is untouched.
        """
        fd = self.fileno(raw)
        if fd is None or fd < 0:
            return
        left, right = socket.socketpair()
        try:
            os.dup2(left.fileno(), fd)
        except OSError:
            pass
        finally:
            left.close()
            right.close()

    # -- servers and roles ---------------------------------------------------------------
    #: A query whose first row :meth:`role_from_row` reads (None: the role is unknowable).
    role_query: ClassVar[str | None] = None
    #: Whether :attr:`role_query` may leave a transaction (a snapshot) open, to be rolled
    #: back: a round trip MySQL's variables-only query does not need.
    role_query_opens_transaction: ClassVar[bool] = True

    def role_from_row(self, row: Any) -> str | None:
        """The role (``"primary"`` or ``"standby"``) in the row of :attr:`role_query`."""
        return None

    def known_role(self, raw: Any) -> str | None:
        """The server's role as it reported it unasked (no I/O), or None if it does not."""
        return None

    def read_only_error(self, exc: BaseException, raw: Any = None) -> str | None:
        """Whether ``exc`` says the server no longer accepts writes: ``"server"`` (it
        does not), ``"maybe"`` (a role query must confirm it), or None."""
        return None

    def peer_of(self, raw: Any) -> tuple[str, int] | None:
        """The address (ip, port) ``raw`` is connected to, or None (a Unix socket, or a
        driver whose socket is out of reach). Read once per connection."""
        fd = self.fileno(raw)
        if fd is None or fd < 0:
            return None
        try:
            with socket.socket(fileno=os.dup(fd)) as sock:
                peer = sock.getpeername()
        except (OSError, ValueError):
            return None
        return (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None

    def host_of(self, raw: Any) -> str | None:
        """The configured host name ``raw`` was opened for, where the driver picked it
        from several (libpq); None: the URL's."""
        return None

    def hosts(self) -> list[tuple[str, int | None]]:
        """The URL's hosts with their ports (``host1:3306,host2:3307``, or its one host);
        empty for a callable target. Who tries them is :attr:`picks_hosts`'s business."""
        url = self.url
        if url is None:
            return []
        return list(url.hosts) or [(url.host or "localhost", url.port)]

    #: Whether poolwarden picks among a URL's hosts itself (the MySQL drivers), rather
    #: than the driver (libpq).
    picks_hosts: ClassVar[bool] = False

    def apply_role(self, role: str, load_balance: bool) -> None:
        """Ask the driver for ``role`` and random host order where it chooses hosts
        itself (libpq); poolwarden checks the role of every new connection anyway."""

    #: The port servers of this dialect listen on when the URL names none.
    default_port: ClassVar[int] = 0

    def connect_kwargs_for(
        self, host: str, port: int | None, address: str | None = None
    ) -> dict[str, Any]:
        """The driver arguments for a connection to ``host:port`` instead of the URL's
        (to the IP ``address`` a custom resolver gave for that host, if any)."""
        kwargs = {**self.kwargs, "host": address or host}
        if port is not None:
            kwargs["port"] = port
        return kwargs

    def describe(self) -> str:
        """A one-line, password-free description for reprs and logs."""
        return str(self.url) if self.url is not None else f"{self.name} connection factory"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class Adapter(BaseAdapter):
    """How the pool talks to one DB-API driver. Subclasses override what their driver
    offers; the I/O methods here block, and the pool bounds or backgrounds them."""

    def connect(self) -> Any:
        """Open a new DB-API connection."""
        return self._connect()

    def connect_to(self, host: str, port: int | None, address: str | None = None) -> Any:
        """Open a connection to ``host:port`` (at ``address``) with the URL's other
        arguments."""
        assert self._driver_connect is not None, "connect_to needs an adapter from a URL"
        return self._driver_connect(**self.connect_kwargs_for(host, port, address))

    def server_role(self, raw: Any) -> str | None:
        """The server's role: as reported, else from :attr:`role_query` (one round trip,
        outside any transaction); None if unknown."""
        role = self.known_role(raw)
        if role is not None or self.role_query is None:
            return role
        row = self.first_row(raw, self.role_query)
        if self.role_query_opens_transaction and self.needs_rollback(raw):
            self.rollback(raw)
        return self.role_from_row(row)

    def close(self, raw: Any) -> None:
        """Close ``raw``; errors propagate to the caller, which logs them."""
        raw.close()

    def discard(self, raw: Any, reason: str) -> None:
        """Close ``raw``, found dead or broken (``reason`` says how)."""
        self.close(raw)

    def ping(self, raw: Any) -> None:
        """One round trip that raises if the connection is unusable."""
        cursor = raw.cursor()
        try:
            cursor.execute("SELECT 1")
            cursor.fetchall()
        finally:
            cursor.close()

    def server_idle_timeout(self, raw: Any) -> float | None:
        """Seconds after which the server closes this session when idle (None: never or
        unknown). Read once per pool, on its first connection."""
        return None

    def first_row(self, raw: Any, sql: str) -> Any:
        """The first row ``sql`` returns on ``raw`` (None if none), its cursor closed."""
        cursor = raw.cursor()
        try:
            cursor.execute(sql)
            return cursor.fetchone()
        finally:
            cursor.close()

    def rollback(self, raw: Any) -> None:
        """End any open transaction."""
        raw.rollback()

    def reset_session(self, raw: Any) -> None:
        """Clear all session state (variables, temporary tables, settings), keep the
        connect-time configuration. Called only if :meth:`can_reset_session` is true."""
        raise NotImplementedError

    def set_autocommit(self, raw: Any, value: bool) -> None:
        """Set the connection's autocommit mode."""
        raw.autocommit = value

    def set_attribute(self, raw: Any, name: str, value: Any) -> None:
        """Restore a connection attribute the borrower changed (``isolation_level``, ...)."""
        setattr(raw, name, value)


_LOST_CLASSES: dict[type | None, type] = {}


def _lost_class(operational_error: type | None) -> type:
    """``ConnectionLost`` mixed into a driver's ``OperationalError`` (made once per driver)."""
    cls = _LOST_CLASSES.get(operational_error)
    if cls is None:
        bases = (
            (ConnectionLost,)
            if operational_error is None
            else (
                ConnectionLost,
                operational_error,
            )
        )
        cls = type("ConnectionLost", bases, {"__module__": "poolwarden"})
        _LOST_CLASSES[operational_error] = cls
    return cls
