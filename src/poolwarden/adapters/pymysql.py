"""PyMySQL: the pure-Python MySQL/MariaDB driver."""

from __future__ import annotations

from typing import Any, ClassVar

from ._mysql import SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS, MySQLAdapter

__all__ = ["PyMySQLAdapter"]

#: COM_RESET_CONNECTION; PyMySQL has no constant or method for it.
COM_RESET_CONNECTION = 0x1F


class PyMySQLAdapter(MySQLAdapter):
    """``mysql+pymysql://``."""

    name: ClassVar[str] = "pymysql"
    module_name: ClassVar[str] = "pymysql"
    extra: ClassVar[str] = "pymysql"

    def fileno(self, raw: Any) -> int | None:
        """The socket PyMySQL reads and writes."""
        sock = getattr(raw, "_sock", None)
        return sock.fileno() if sock is not None else None

    def is_closed(self, raw: Any) -> bool:
        """PyMySQL drops its socket when it closes or loses the connection."""
        return getattr(raw, "_sock", None) is None

    def ping(self, raw: Any) -> None:
        """COM_PING, without PyMySQL's silent reconnect."""
        raw.ping(reconnect=False)

    def known_autocommit(self, raw: Any) -> bool | None:
        """The server's autocommit flag from the last OK packet."""
        return bool(raw.server_status & SERVER_STATUS_AUTOCOMMIT)

    def needs_rollback(self, raw: Any) -> bool:
        """PyMySQL updates ``server_status`` from OK packets only, not from the EOF of a
        result set, so after a plain SELECT it may not show the snapshot the SELECT opened.
        Trust it only to say "autocommit on and no explicit BEGIN"; otherwise roll back."""
        status = raw.server_status
        return not status & SERVER_STATUS_AUTOCOMMIT or bool(status & SERVER_STATUS_IN_TRANS)

    def reset_session(self, raw: Any) -> None:
        """COM_RESET_CONNECTION, then the charset, autocommit and init_command PyMySQL set
        at connect, which the reset returned to the server's defaults."""
        raw._execute_command(COM_RESET_CONNECTION, b"")
        raw._read_ok_packet()
        collation = f" COLLATE '{raw.collation}'" if raw.collation else ""
        autocommit = 1 if raw.autocommit_mode else 0
        with raw.cursor() as cursor:
            cursor.execute(f"SET NAMES '{raw.charset}'{collation}, autocommit={autocommit}")
            if raw.init_command:
                cursor.execute(raw.init_command)
