"""mysql-connector-python: Oracle's MySQL driver (pure Python or its C extension)."""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from .._net.url import URL
from ._mysql import MySQLAdapter, login_kwargs
from .base import coerce_options

__all__ = ["MySQLConnectorAdapter"]


class MySQLConnectorAdapter(MySQLAdapter):
    """``mysql+mysqlconnector://``."""

    name: ClassVar[str] = "mysqlconnector"
    module_name: ClassVar[str] = "mysql.connector"
    extra: ClassVar[str] = "mysql-connector"
    autocommit_is_method: ClassVar[bool] = False

    BOOL_OPTIONS: ClassVar[frozenset[str]] = MySQLAdapter.BOOL_OPTIONS | {
        "use_pure",
        "buffered",
        "raw",
        "get_warnings",
        "raise_on_warnings",
        "consume_results",
        "use_unicode",
        "compress",
    }

    @classmethod
    def driver_options(cls, dbapi: ModuleType) -> frozenset[str] | None:
        """``connect(*args, **kwargs)``: the keywords are those of its default
        configuration, plus the pooling ones."""
        from mysql.connector import constants

        names = set(getattr(constants, "DEFAULT_CONFIGURATION", {}))
        names |= set(getattr(constants, "CNX_POOL_ARGS", ()))
        return frozenset(names) or None

    @classmethod
    def url_kwargs(cls, url: URL) -> dict[str, Any]:
        """host, port, user, password, database, then the options; mysql-connector calls
        the connect timeout ``connection_timeout``."""
        kwargs = login_kwargs(url)
        options = coerce_options(
            url.scheme,
            url.query,
            ints=cls.INT_OPTIONS | {"connection_timeout"},
            bools=cls.BOOL_OPTIONS,
        )
        if "connect_timeout" in options:
            options["connection_timeout"] = options.pop("connect_timeout")
        kwargs.update(options)
        return kwargs

    def fileno(self, raw: Any) -> int | None:
        """The pure-Python connection keeps a socket wrapper; the C extension does not
        expose its descriptor."""
        wrapper = getattr(raw, "_socket", None)
        sock = getattr(wrapper, "sock", None)
        try:
            return sock.fileno() if sock is not None else None
        except OSError:
            return None

    def is_closed(self, raw: Any) -> bool:
        """Closing (or a read/write timeout, which closes too) leaves the pure-Python
        connection with no socket, or a closed one."""
        if not hasattr(raw, "_socket"):
            return False  # the C extension: no cheap way to tell
        wrapper = raw._socket
        sock = getattr(wrapper, "sock", None)
        return wrapper is None or sock is None or sock.fileno() == -1

    def is_disconnect(self, exc: BaseException, raw: Any = None) -> bool:
        """Also its read and write timeouts, after which it has closed the connection
        (their code, 3024, means a server-side statement timeout elsewhere)."""
        errors = getattr(self.dbapi, "errors", None)
        timeouts = tuple(
            getattr(errors, name)
            for name in ("ReadTimeoutError", "WriteTimeoutError")
            if hasattr(errors, name)
        )
        if timeouts and isinstance(exc, timeouts):
            return True
        return super().is_disconnect(exc, raw)

    def lost_error_args(self, message: str) -> tuple[Any, ...]:
        """mysql-connector's errors take the message first, then the code."""
        return (message, 2013)

    def ping(self, raw: Any) -> None:
        """COM_PING, without reconnecting."""
        raw.ping(reconnect=False)

    def needs_rollback(self, raw: Any) -> bool:
        """mysql-connector tracks the server's in-transaction flag from OK and EOF packets,
        but an error packet carries no flags, so after a failed first statement (which may
        hold row locks) the flag is stale. Trust it only with autocommit on (as set through
        the driver; it does not keep the server's autocommit flag)."""
        if not getattr(raw, "_autocommit", False):
            return True
        return bool(raw.in_transaction) or bool(getattr(raw, "unread_result", False))

    def reset_session(self, raw: Any) -> None:
        """COM_RESET_CONNECTION; the driver re-applies charset, autocommit, time zone,
        sql_mode and init_command after it."""
        if getattr(raw, "unread_result", False):
            raw.consume_results()
        if not raw.cmd_reset_connection():
            raise self.dbapi.OperationalError("COM_RESET_CONNECTION failed")  # type: ignore[union-attr]

    def get_autocommit(self, raw: Any) -> bool:
        """A property on this driver."""
        return bool(raw.autocommit)

    def set_autocommit(self, raw: Any, value: bool) -> None:
        """A property on this driver (one round trip)."""
        raw.autocommit = value
