"""psycopg 3."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar

from .._net.url import URL
from ._postgres import (
    TRANSACTION_ACTIVE,
    TRANSACTION_UNKNOWN,
    PostgresAdapter,
    PostgresBase,
    conninfo_kwargs,
    read_unasked,
)
from .base import coerce_options

__all__ = ["PsycopgAdapter", "PsycopgBase", "forget_prepared"]


def forget_prepared(raw: Any) -> None:
    """After ``DISCARD ALL``: make psycopg forget the statements it prepared, which the
    server just dropped. psycopg forgets them itself only when DISCARD ALL runs as a
    statement it counts for preparing, and then, after the fifth reset, prepares DISCARD
    ALL too, which deletes itself ("prepared statement ... does not exist" at the next
    reset or query). There is no public call for this; without the attribute (another
    psycopg), the names are dropped on psycopg's next ROLLBACK or DISCARD anyway."""
    prepared = getattr(raw, "_prepared", None)
    if prepared is not None:
        prepared.clear()
        flush = getattr(prepared, "_to_flush", None)
        if flush is not None:
            flush.clear()  # nothing left on the server to deallocate


class PsycopgBase(PostgresBase):
    """psycopg 3 without I/O: what its sync and asyncio connections share."""

    name: ClassVar[str] = "psycopg"
    module_name: ClassVar[str] = "psycopg"
    extra: ClassVar[str] = "psycopg"

    @classmethod
    def url_kwargs(cls, url: URL) -> dict[str, Any]:
        """libpq parameters, except psycopg's own ``autocommit`` and ``prepare_threshold``."""
        kwargs = conninfo_kwargs(url)
        own: dict[str, str] = {
            k: kwargs.pop(k) for k in ("autocommit", "prepare_threshold") if k in kwargs
        }
        kwargs.update(
            coerce_options(
                url.scheme,
                own,
                ints=frozenset({"prepare_threshold"}),
                bools=frozenset({"autocommit"}),
            )
        )
        return kwargs

    def _sqlstate(self, exc: BaseException) -> str | None:
        return getattr(exc, "sqlstate", None)

    def is_closed(self, raw: Any) -> bool:
        """Closed, marked broken by psycopg, or in a state libpq cannot name."""
        return bool(raw.closed or raw.broken) or self._status(raw) in (
            TRANSACTION_UNKNOWN,
            TRANSACTION_ACTIVE,
        )

    def session_state(self, raw: Any) -> Hashable:
        """psycopg's transaction characteristics, kept on the connection object."""
        return (raw.isolation_level, raw.read_only, raw.deferrable)

    def readable_means_dead(self, raw: Any) -> bool:
        """PostgreSQL may write unasked (NOTIFY, parameter changes): let libpq read what
        arrived; the connection is gone if that fails or leaves it bad."""
        pgconn = raw.pgconn
        return read_unasked(self.fileno(raw), pgconn.consume_input, lambda: pgconn.status != 0)


class PsycopgAdapter(PsycopgBase, PostgresAdapter):
    """``postgresql+psycopg://``."""

    def ping(self, raw: Any) -> None:
        """An empty query: one round trip, no parsing, outside any transaction."""
        if raw.autocommit or self.needs_rollback(raw):
            raw.execute("")
            return
        raw.autocommit = True
        try:
            raw.execute("")
        finally:
            raw.autocommit = False

    def reset_session(self, raw: Any) -> None:
        """Roll back, then ``DISCARD ALL`` (which may not run inside a transaction block;
        psycopg notices it and forgets its prepared statements)."""
        if self.needs_rollback(raw):
            raw.rollback()
        autocommit = raw.autocommit
        raw.autocommit = True
        try:
            # Never prepared: after its 5th run psycopg would run it by a name it deletes.
            raw.execute("DISCARD ALL", prepare=False)
            forget_prepared(raw)
        finally:
            raw.autocommit = autocommit
