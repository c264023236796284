"""mysqlclient (``MySQLdb``): the C MySQL/MariaDB driver."""

from __future__ import annotations

import ctypes
import functools
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

from .._net.url import URL
from ._mysql import SERVER_STATUS_IN_TRANS, MySQLAdapter, login_kwargs
from .base import coerce_options

__all__ = ["MySQLdbAdapter"]

#: URL options that mysqlclient takes inside its ``ssl`` dict rather than as keywords.
SSL_KEYS = {
    "ssl_ca": "ca",
    "ssl_cert": "cert",
    "ssl_key": "key",
    "ssl_capath": "capath",
    "ssl_cipher": "cipher",
}


#: The keywords of ``MySQLdb._mysql.connection()`` (its C source's kwlist), which
#: ``Connection.__init__`` passes on: not introspectable, and not all in its docstring.
_C_EXTENSION_KEYWORDS = frozenset(
    {
        "host", "user", "password", "database", "port", "unix_socket", "conv",
        "connect_timeout", "compress", "named_pipe", "init_command", "read_default_file",
        "read_default_group", "client_flag", "ssl", "ssl_mode", "local_infile",
        "read_timeout", "write_timeout", "charset", "auth_plugin", "server_public_key_path",
    }
)  # fmt: skip


class MySQLdbAdapter(MySQLAdapter):
    """``mysql+mysqldb://`` (the default MySQL driver, as in SQLAlchemy)."""

    name: ClassVar[str] = "mysqldb"
    module_name: ClassVar[str] = "MySQLdb"
    extra: ClassVar[str] = "mysqlclient"
    has_fileno: ClassVar[bool] = True

    @classmethod
    def url_kwargs(cls, url: URL) -> dict[str, Any]:
        """host, port, user, password, database, ``ssl`` dict, then the other options."""
        kwargs = login_kwargs(url)
        options = dict(url.query)
        ssl = {SSL_KEYS[key]: options.pop(key) for key in list(options) if key in SSL_KEYS}
        if ssl:
            kwargs["ssl"] = ssl
        kwargs.update(
            coerce_options(
                url.scheme,
                options,
                ints=cls.INT_OPTIONS | {"local_infile"},
                bools=cls.BOOL_OPTIONS - {"local_infile"},
            )
        )
        return kwargs

    @classmethod
    def driver_options(cls, dbapi: ModuleType) -> frozenset[str] | None:
        """mysqlclient's ``connect(*args, **kwargs)`` documents its keywords in
        ``Connection.__init__``'s docstring, and its C extension takes more than that
        docstring names (``read_timeout``, ``write_timeout``): both, so that no option
        the driver takes is ever refused."""
        import MySQLdb.connections

        doc = MySQLdb.connections.Connection.__init__.__doc__ or ""
        documented = frozenset(re.findall(r":param\s+(?:\w+\s+)?(\w+):", doc))
        return documented | _C_EXTENSION_KEYWORDS if documented else None

    def is_closed(self, raw: Any) -> bool:
        """``open`` turns 0 once the connection is closed."""
        return not raw.open

    def ping(self, raw: Any) -> None:
        """COM_PING (mysqlclient never reconnects by itself unless told to)."""
        raw.ping()

    def known_autocommit(self, raw: Any) -> bool | None:
        """The server's autocommit flag, which mysqlclient keeps from the last OK packet."""
        return bool(raw.get_autocommit())

    def needs_rollback(self, raw: Any) -> bool:
        """mysqlclient does not expose the server's status flags, but MariaDB Connector/C,
        which it is usually built on, does. An error packet carries no flags, so after a
        failed first statement (which may hold row locks) the in-transaction flag is stale:
        trust the flags only to say "autocommit on and no explicit BEGIN", as for PyMySQL.
        Built on another client library: always roll back."""
        if not raw.get_autocommit():  # the server's flag, read without ctypes: the usual case
            return True
        status = _server_status_reader()(raw)
        return True if status is None else bool(status & SERVER_STATUS_IN_TRANS)

    def can_reset_session(self) -> bool:
        """A session reset re-authenticates, so it needs the login: known for URL targets."""
        return "user" in self.kwargs

    def reset_session(self, raw: Any) -> None:
        """mysqlclient has no COM_RESET_CONNECTION; COM_CHANGE_USER to the same login clears
        the session too. It also resets autocommit and skips init_command: restore both."""
        autocommit = raw.get_autocommit()
        kwargs = self.kwargs
        raw.change_user(kwargs["user"], kwargs.get("password", ""), kwargs.get("database"))
        raw.autocommit(autocommit)
        init_command = kwargs.get("init_command")
        if init_command:
            raw.query(init_command)


#: ``MARIADB_CONNECTION_SERVER_STATUS`` in Connector/C's ``enum mariadb_value`` (append-only).
_MARIADB_CONNECTION_SERVER_STATUS = 30


@functools.cache
def _server_status_reader() -> Callable[[Any], int | None]:
    """A function reading a mysqlclient connection's last server status flags through
    ``mariadb_get_info()``, or one returning None when mysqlclient is not linked with
    MariaDB Connector/C (Oracle's libmysqlclient has no such call)."""
    try:
        from MySQLdb import _mysql

        # PyDLL: the call keeps the GIL. It does no I/O, and releasing the GIL would hand it
        # to another thread at every call (a convoy under many threads).
        get_info = ctypes.PyDLL(_mysql.__file__).mariadb_get_info
    except (ImportError, OSError, AttributeError):
        return lambda raw: None
    get_info.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    get_info.restype = ctypes.c_char
    pointer_of = ctypes.pythonapi.PyCapsule_GetPointer
    pointer_of.argtypes = [ctypes.py_object, ctypes.c_char_p]
    pointer_of.restype = ctypes.c_void_p

    def read(raw: Any) -> int | None:
        try:
            capsule = raw._get_native_connection()
            mysql = pointer_of(capsule, b"_mysql.connection.native_connection")
        except Exception:
            return None  # closed, or a mysqlclient without the accessor
        status = ctypes.c_uint(0)
        failed = get_info(mysql, _MARIADB_CONNECTION_SERVER_STATUS, ctypes.byref(status))
        return None if failed != b"\x00" else int(status.value)

    return read
