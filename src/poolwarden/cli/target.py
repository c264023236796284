"""The database a command works on: its URL, its driver, and connections to it."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .._net.greeting import wrong_server_hint
from .._net.url import URL, parse_url
from ..adapters import Adapter, for_url
from .errors import CommandError, describe_connect_error, describe_query_error

__all__ = ["DEFAULT_URL", "SERVER_KINDS", "Target", "fetch_all", "resolve_url"]

#: The local MariaDB the project's set-up script prepares.
DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/test"

#: URL options that pick one of several hosts (libpq's).
_HOST_CHOICE = ("target_session_attrs", "load_balance_hosts")

#: Dialects whose servers the command knows how to question.
SERVER_KINDS = ("mysql", "postgresql")


def resolve_url(given: str | None, *fallbacks: str | None) -> str:
    """The URL to use: the one given, else the first fallback set, else ``$DATABASE_URL``."""
    for candidate in (given, *fallbacks, os.environ.get("DATABASE_URL")):
        if candidate:
            return candidate
    raise CommandError(
        "no database URL: give one, e.g. 'mysql+pymysql://user:password@127.0.0.1:3306/db', "
        "or set $DATABASE_URL"
    )


@dataclass
class Target:
    """A database URL, parsed and checked, with what it takes to connect.

    ``str()`` is the URL without its password; the URL as given is kept only to hand it
    to the drivers and to SQLAlchemy.
    """

    text: str = field(repr=False)
    connect_timeout: float = 5.0
    url: URL = field(init=False)

    def __post_init__(self) -> None:
        try:
            self.url = parse_url(self.text)
        except ValueError as exc:
            raise CommandError(str(exc).removeprefix("target: ")) from None

    def __str__(self) -> str:
        return self.url.render()

    @property
    def kind(self) -> str:
        """``mysql``, ``postgresql`` or ``sqlite``."""
        return self.url.dialect

    def for_host(self, host: str, port: int | None) -> Target:
        """The same URL aimed at one of its hosts (``host:port``), without the options
        that choose among several (``target_session_attrs``, ``load_balance_hosts``):
        a connection to that host whatever its role."""
        query = {k: v for k, v in self.url.query.items() if k not in _HOST_CHOICE}
        single = dataclasses.replace(self.url, host=host, port=port, hosts=(), query=query)
        return Target(single.render(hide_password=False), self.connect_timeout)

    @property
    def hosts(self) -> list[tuple[str, int | None]]:
        """Every host of the URL with its port (one for most URLs)."""
        return list(self.url.hosts) or [(self.url.host or "localhost", self.url.port)]

    def require_server(self) -> None:
        """Refuse SQLite and anything else without a server to question."""
        if self.kind not in SERVER_KINDS:
            raise CommandError(
                f"{self.url.scheme} has no server to check: this command works with "
                "MySQL/MariaDB (mysql+pymysql://, mysql+mysqldb://, mysql+mysqlconnector://) "
                "and PostgreSQL (postgresql+psycopg://, postgresql+psycopg2://)"
            )

    def connect_args(self) -> dict[str, Any]:
        """Driver arguments that bound the time a connect may take, unless the URL sets
        its own (mysql-connector calls it ``connection_timeout``; libpq wants whole
        seconds)."""
        if {"connect_timeout", "connection_timeout"} & set(self.url.query):
            return {}
        seconds = max(1, round(self.connect_timeout))
        if self.url.driver == "mysqlconnector":
            return {"connection_timeout": seconds}
        if self.kind in SERVER_KINDS:
            return {"connect_timeout": seconds}
        return {}

    def adapter(self) -> Adapter:
        """The poolwarden driver adapter (explains a missing driver and how to install it)."""
        try:
            return for_url(self.url, self.connect_args())
        except ValueError as exc:
            raise CommandError(str(exc).removeprefix("target: ")) from None

    def connect(self) -> Any:
        """A new DB-API connection; a failure becomes one line saying why.

        The drivers' own connect timeouts do not all cover the whole handshake (PyMySQL
        waits for the server's greeting without one), so the attempt runs in a daemon
        thread and is given up after the timeout: a command ends soon after, and the
        thread with it.
        """
        adapter = self.adapter()
        outcome: dict[str, Any] = {}

        def attempt() -> None:
            try:
                outcome["connection"] = adapter.connect()
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=attempt, name="poolwarden-connect", daemon=True)
        thread.start()
        thread.join(self.connect_timeout + 0.5)
        if thread.is_alive():
            raise CommandError(
                f"cannot connect to {self}: no answer in time (host down, a firewall, or the "
                f"wrong port?): no handshake within {self.connect_timeout:g} s"
                + self._wrong_server()
            )
        if "error" in outcome:
            error = outcome["error"]
            message = describe_connect_error(error, str(self)) + self._wrong_server()
            raise CommandError(message) from error
        return outcome["connection"]

    def _wrong_server(self) -> str:
        """``"; port 3306 answers like MySQL ..."`` when the URL's port belongs to the
        other kind of server (a probe of at most a second, after the connect failed)."""
        hint = wrong_server_hint(self.url)
        return f"; {hint}" if hint else ""

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A DB-API connection, closed afterwards."""
        raw = self.connect()
        try:
            yield raw
        finally:
            try:
                raw.close()
            except Exception:
                pass


def fetch_all(raw: Any, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on ``raw`` and return its rows; a failure names the query."""
    cursor = raw.cursor()
    try:
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    except Exception as exc:
        raise CommandError(describe_query_error(exc, sql)) from exc
    finally:
        cursor.close()
