"""psycopg2."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar

from .._net.url import URL
from ._postgres import (
    TRANSACTION_ACTIVE,
    TRANSACTION_UNKNOWN,
    PostgresAdapter,
    conninfo_kwargs,
    read_unasked,
)

__all__ = ["Psycopg2Adapter"]


class Psycopg2Adapter(PostgresAdapter):
    """``postgresql+psycopg2://`` (the default PostgreSQL driver, as in SQLAlchemy)."""

    name: ClassVar[str] = "psycopg2"
    module_name: ClassVar[str] = "psycopg2"
    extra: ClassVar[str] = "psycopg2"

    @classmethod
    def url_kwargs(cls, url: URL) -> dict[str, Any]:
        """libpq parameters; psycopg2 passes unknown keywords into the DSN."""
        return conninfo_kwargs(url)

    def _sqlstate(self, exc: BaseException) -> str | None:
        return getattr(exc, "pgcode", None)

    def is_closed(self, raw: Any) -> bool:
        """``closed`` is non-zero once psycopg2 knows the connection is gone."""
        return bool(raw.closed) or self._status(raw) in (TRANSACTION_UNKNOWN, TRANSACTION_ACTIVE)

    def session_state(self, raw: Any) -> Hashable:
        """What ``set_session`` and its attributes set, kept on the connection object."""
        return (raw.isolation_level, raw.readonly, raw.deferrable)

    def readable_means_dead(self, raw: Any) -> bool:
        """Let psycopg2 read what arrived (it may be a NOTIFY); gone if that fails."""
        return read_unasked(self.fileno(raw), raw.poll, lambda: bool(raw.closed))

    def ping(self, raw: Any) -> None:
        """``SELECT 1`` outside any transaction (psycopg2 would otherwise send BEGIN)."""
        idle = not self.needs_rollback(raw)
        autocommit = raw.autocommit
        if idle and not autocommit:
            raw.autocommit = True
        try:
            with raw.cursor() as cursor:
                cursor.execute("SELECT 1")
        finally:
            if idle and not autocommit:
                raw.autocommit = False

    def reset_session(self, raw: Any) -> None:
        """Roll back, then ``DISCARD ALL`` in autocommit mode."""
        if self.needs_rollback(raw):
            raw.rollback()
        autocommit = raw.autocommit
        raw.autocommit = True
        try:
            with raw.cursor() as cursor:
                cursor.execute("DISCARD ALL")
        finally:
            raw.autocommit = autocommit
