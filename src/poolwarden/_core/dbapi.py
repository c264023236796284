"""The types on the data path: the DB-API connection the pools are generic over, and the
literal values of the settings that take words.

``Pool(lambda: psycopg.connect(...))`` is a ``Pool[psycopg.Connection]``: its connections'
``raw`` is the driver's type. A pool made from a URL cannot know the driver's class before it
connects, so it is a ``Pool[Any]`` unless annotated (``pool: Pool[psycopg.Connection]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

__all__ = ["ConnT", "DBAPIConnection", "Lifetime", "LoadBalance", "ProxyKind", "ResetMode"]


class DBAPIConnection(Protocol):
    """What every DB-API 2.0 connection has (PEP 249); asyncio drivers' methods return
    awaitables, which the ``object`` results admit."""

    def close(self) -> object: ...

    def commit(self) -> object: ...

    def rollback(self) -> object: ...

    def cursor(self, *args: Any, **kwargs: Any) -> Any: ...


if TYPE_CHECKING:  # a default (PEP 696) needs typing_extensions, for type checkers only
    from typing_extensions import TypeVar

    ConnT = TypeVar("ConnT", bound=DBAPIConnection, default=Any)
else:
    from typing import TypeVar

    ConnT = TypeVar("ConnT")

#: What a connection coming back goes through: a rollback, a session reset, or nothing.
ResetMode = Literal["rollback", "session"]
#: ``max_lifetime`` and ``keepalive``: seconds, ``"auto"`` (from the server), or None.
Lifetime = float | Literal["auto"] | None
#: The order hosts are tried in.
LoadBalance = Literal["disable", "random"]
#: What sits between the pool and the server (``"auto"``: found on the first connection).
ProxyKind = Literal["auto", "pgbouncer", "proxysql"]
