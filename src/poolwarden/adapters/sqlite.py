"""sqlite3 from the standard library (no server, so no socket, ping or disconnects)."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, ClassVar

from .._net.url import URL
from .base import Adapter, coerce_options

__all__ = ["SQLiteAdapter"]


class SQLiteAdapter(Adapter):
    """``sqlite:///path/to/file.db`` (``sqlite://`` for an in-memory database per connection)."""

    name: ClassVar[str] = "pysqlite"
    dialect: ClassVar[str] = "sqlite"
    reports_transaction: ClassVar[bool] = True
    module_name: ClassVar[str] = "sqlite3"
    extra: ClassVar[str] = ""

    @classmethod
    def driver_options(cls, dbapi: ModuleType) -> frozenset[str] | None:
        """``sqlite3.connect`` is built in, without a signature to read: its documented
        keywords (``autocommit`` since Python 3.12)."""
        names = "database timeout detect_types isolation_level check_same_thread factory"
        extra = " cached_statements uri" + (" autocommit" if sys.version_info >= (3, 12) else "")
        return frozenset((names + extra).split())

    @classmethod
    def url_kwargs(cls, url: URL) -> dict[str, Any]:
        """The file path and options. Pooled connections move between threads, so
        ``check_same_thread`` is off unless the URL says otherwise."""
        kwargs: dict[str, Any] = {
            "database": url.database or ":memory:",
            "check_same_thread": False,
        }
        kwargs.update(
            coerce_options(
                url.scheme,
                url.query,
                ints=frozenset({"detect_types", "cached_statements"}),
                floats=frozenset({"timeout"}),
                bools=frozenset({"check_same_thread", "uri", "autocommit"}),
            )
        )
        if kwargs.get("isolation_level", "").lower() == "none":
            kwargs["isolation_level"] = None
        return kwargs

    def needs_rollback(self, raw: Any) -> bool:
        """sqlite3 knows whether it opened a transaction."""
        return bool(raw.in_transaction)

    def can_reset_session(self) -> bool:
        """A database file has no server session; ending the transaction is the reset.
        (Temporary tables do persist: they belong to the connection.)"""
        return False
