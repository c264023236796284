"""Driver adapters: one small module per DB-API driver, chosen from the URL or the connection;
``async_*`` for the asyncio pool and its drivers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._net.url import URL, parse_url
from .async_base import AsyncAdapter
from .base import Adapter, BaseAdapter
from .mysql_async import AiomysqlAdapter, AsyncmyAdapter
from .mysqlconnector import MySQLConnectorAdapter
from .mysqldb import MySQLdbAdapter
from .psycopg import PsycopgAdapter
from .psycopg2 import Psycopg2Adapter
from .psycopg_async import AsyncPsycopgAdapter
from .pymysql import PyMySQLAdapter
from .sqlite import SQLiteAdapter

__all__ = [
    "ADAPTERS",
    "ASYNC_ADAPTERS",
    "Adapter",
    "AsyncAdapter",
    "BaseAdapter",
    "async_for_connection",
    "async_for_target",
    "for_connection",
    "for_exception",
    "for_target",
    "for_url",
]

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

#: The same for asyncio pools.
ASYNC_ADAPTERS: dict[str, type[AsyncAdapter]] = {
    f"{cls.dialect}+{cls.name}": cls
    for cls in (AsyncmyAdapter, AiomysqlAdapter, AsyncPsycopgAdapter)
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


_ASYNC_BY_PACKAGE: dict[str, type[AsyncAdapter]] = {
    "asyncmy": AsyncmyAdapter,
    "aiomysql": AiomysqlAdapter,
    "psycopg": AsyncPsycopgAdapter,
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


def for_exception(exc: BaseException) -> BaseAdapter | None:
    """The adapter of the driver that raised ``exc`` (to classify a connect error before
    any connection has shown which driver is in use), or None if unknown."""
    package = type(exc).__module__.partition(".")[0]
    cls: type[BaseAdapter] | None = _BY_PACKAGE.get(package) or _ASYNC_BY_PACKAGE.get(package)
    if cls is None:
        return None
    return cls(cls.import_driver(), lambda: None)


def for_target(
    target: Any, connect_args: Mapping[str, Any] | None, adapter: Adapter | None
) -> tuple[Adapter, bool]:
    """The adapter for a pool's ``target`` (URL or callable) and whether the driver is
    still to be recognised from the first connection; every bad argument is a ValueError."""
    _check_target(target, connect_args, adapter, Adapter)
    if adapter is not None:
        return adapter, False
    if isinstance(target, str):
        return for_url(parse_url(target), connect_args or {}), False
    return Adapter(None, target), True


def async_for_connection(raw: Any, connect: Callable[[], Any]) -> AsyncAdapter:
    """:func:`for_connection` for asyncio drivers."""
    cls = _ASYNC_BY_PACKAGE.get(type(raw).__module__.partition(".")[0])
    if cls is None:
        return AsyncAdapter(None, connect)
    return cls(cls.import_driver(), connect)


def async_for_target(
    target: Any, connect_args: Mapping[str, Any] | None, adapter: AsyncAdapter | None
) -> tuple[AsyncAdapter, bool]:
    """:func:`for_target` for an asyncio pool: URLs name asyncio drivers, callables are
    coroutine functions (or return awaitables)."""
    _check_target(target, connect_args, adapter, AsyncAdapter)
    if adapter is not None:
        return adapter, False
    if isinstance(target, str):
        url = parse_url(target, asyncio=True)
        return ASYNC_ADAPTERS[url.scheme].from_url(url, connect_args or {}), False
    return AsyncAdapter(None, target), True


def _check_target(target: Any, connect_args: Any, adapter: Any, kind: type[BaseAdapter]) -> None:
    """Name the first bad argument of a pool's target, connect_args and adapter."""
    if connect_args is not None and not isinstance(connect_args, Mapping):
        raise ValueError(f"connect_args must be a mapping, got {type(connect_args).__name__}")
    if adapter is not None:
        if not isinstance(adapter, kind):
            raise ValueError(f"adapter must be a poolwarden.adapters.{kind.__name__} instance")
        return
    if isinstance(target, str):
        return
    if callable(target):
        if connect_args:
            raise ValueError(
                "connect_args applies to URL targets only; pass them to "
                "your connect callable instead"
            )
        return
    example = "mysql+asyncmy" if kind is AsyncAdapter else "mysql+pymysql"
    raise ValueError(
        f"target must be a database URL such as '{example}://user:pw@host/db' or a "
        "zero-argument callable returning a new connection, got "
        f"{type(target).__name__}"
    )
