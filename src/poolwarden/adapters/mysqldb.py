"""mysqlclient (``MySQLdb``): the C MySQL/MariaDB driver."""

from __future__ import annotations

from typing import Any, ClassVar

from .._url import URL
from ._mysql import MySQLAdapter, login_kwargs
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


class MySQLdbAdapter(MySQLAdapter):
    """``mysql+mysqldb://`` (the default MySQL driver, as in SQLAlchemy)."""

    name: ClassVar[str] = "mysqldb"
    module_name: ClassVar[str] = "MySQLdb"
    extra: ClassVar[str] = "mysqlclient"

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

    def is_closed(self, raw: Any) -> bool:
        """``open`` turns 0 once the connection is closed."""
        return not raw.open

    def ping(self, raw: Any) -> None:
        """COM_PING (mysqlclient never reconnects by itself unless told to)."""
        raw.ping()

    def needs_rollback(self, raw: Any) -> bool:
        """mysqlclient does not expose the server's in-transaction flag: roll back whenever
        the borrower used the connection."""
        return True

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
