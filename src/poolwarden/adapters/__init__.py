"""Driver adapters: one small module per DB-API driver, chosen from the URL or the connection."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._url import URL
from .base import Adapter
from .mysqlconnector import MySQLConnectorAdapter
from .mysqldb import MySQLdbAdapter
from .psycopg import PsycopgAdapter
from .psycopg2 import Psycopg2Adapter
from .pymysql import PyMySQLAdapter
from .sqlite import SQLiteAdapter

__all__ = ["ADAPTERS", "Adapter", "for_connection", "for_exception", "for_url"]

#: ``dialect+driver`` -> adapter class.
ADAPTERS: dict[str, type[Adapter]] = {
    f"{cls.dialect}+{cls.name}": cls
    for cls in (
        PyMySQLAdapter,
        MySQLdbAdapter,
        MySQLConnectorAdapter,
        PsycopgAdapter,
        Psycopg2Adapter,
        SQLiteAdapter,
    )
}

#: Top-level package of a connection's class -> adapter class, to recognise the driver of
#: a connection made by a user's callable.
_BY_PACKAGE: dict[str, type[Adapter]] = {
    "pymysql": PyMySQLAdapter,
    "MySQLdb": MySQLdbAdapter,
    "mysql": MySQLConnectorAdapter,
    "psycopg": PsycopgAdapter,
    "psycopg2": Psycopg2Adapter,
    "sqlite3": SQLiteAdapter,
}


def for_url(url: URL, connect_args: Mapping[str, Any]) -> Adapter:
    """The adapter for ``url``'s dialect and driver (raises ``ValueError`` if not installed)."""
    return ADAPTERS[url.scheme].from_url(url, connect_args)


def for_connection(raw: Any, connect: Callable[[], Any]) -> Adapter:
    """An adapter for connections like ``raw`` made by ``connect``: the driver's adapter
    when its package is one we know, else the cautious generic one."""
    package = type(raw).__module__.partition(".")[0]
    cls = _BY_PACKAGE.get(package)
    if cls is None:
        return Adapter(None, connect)
    return cls(cls.import_driver(), connect)


def for_exception(exc: BaseException) -> Adapter | None:
    """The adapter of the driver that raised ``exc`` (to classify a connect error before
    any connection has shown which driver is in use), or None if unknown."""
    package = type(exc).__module__.partition(".")[0]
    cls = _BY_PACKAGE.get(package)
    if cls is None:
        return None
    return cls(cls.import_driver(), lambda: None)
