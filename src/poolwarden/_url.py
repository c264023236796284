"""SQLAlchemy-style database URLs: ``dialect+driver://user:password@host:port/database?opt=v``.

Only what the pool needs: split the URL into parts the adapters turn into driver arguments,
and render it without its password for every repr, log line and error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = ["URL", "parse_url"]

#: dialect -> (driver used when the URL names none, drivers we support). The defaults are
#: SQLAlchemy's, so a URL that works with ``create_engine`` picks the same driver here.
DIALECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mysql": ("mysqldb", ("pymysql", "mysqldb", "mysqlconnector")),
    "postgresql": ("psycopg2", ("psycopg", "psycopg2")),
    "sqlite": ("pysqlite", ("pysqlite",)),
}
#: The same for asyncio pools: SQLAlchemy has no asyncio default, so these are the drivers
#: its documentation names first.
ASYNC_DIALECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mysql": ("asyncmy", ("asyncmy", "aiomysql")),
    "postgresql": ("psycopg", ("psycopg",)),
    "sqlite": ("", ()),
}
DIALECT_ALIASES = {"mariadb": "mysql", "postgres": "postgresql"}
DRIVER_ALIASES = {
    "mysqlclient": "mysqldb",
    "mysql-connector": "mysqlconnector",
    "sqlite3": "pysqlite",
    # SQLAlchemy's name for psycopg's AsyncConnection in create_async_engine URLs.
    "psycopg_async": "psycopg",
}


#: Query options that carry a password (drivers and libpq accept them in the URL too).
SECRET_OPTIONS = frozenset({"password", "passwd", "pwd", "sslpassword"})


@dataclass(frozen=True)
class URL:
    """A parsed database URL. ``str()`` and ``repr()`` never show the password."""

    dialect: str
    driver: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    query: dict[str, str] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        """``dialect+driver`` as written in SQLAlchemy URLs."""
        return f"{self.dialect}+{self.driver}"

    def render(self, hide_password: bool = True) -> str:
        """The URL as text; the password is replaced by ``***`` unless asked otherwise."""
        netloc = ""
        if self.username is not None:
            netloc = quote(self.username, safe="")
            if self.password is not None:
                netloc += ":" + ("***" if hide_password else quote(self.password, safe=""))
            netloc += "@"
        if self.host is not None:
            netloc += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            netloc += f":{self.port}"
        text = f"{self.scheme}://{netloc}"
        if self.database is not None:
            text += "/" + self.database
        if self.query:
            hidden = SECRET_OPTIONS if hide_password else frozenset()
            text += "?" + "&".join(
                f"{k}={'***' if k.lower() in hidden else quote(v, safe='')}"
                for k, v in self.query.items()
            )
        return text

    def secrets(self) -> set[str]:
        """Every password the URL carries (in the user part or as a query option): the
        strings no message may show."""
        found = {v for k, v in self.query.items() if k.lower() in SECRET_OPTIONS and v}
        if self.password:
            found.add(self.password)
        return found

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"URL({self.render()!r})"


def _check_driver(dialect: str, driver: str, asyncio: bool) -> None:
    """Refuse a driver of the other kind (sync in an asyncio pool, or the reverse) with
    the pool to use instead, and an unknown driver with the list of known ones."""
    mine, other = (ASYNC_DIALECTS, DIALECTS) if asyncio else (DIALECTS, ASYNC_DIALECTS)
    drivers = mine[dialect][1]
    if not drivers:
        raise ValueError(
            f"target: poolwarden has no asyncio driver for {dialect}; use poolwarden.Pool"
        )
    if not driver or driver in drivers:
        return
    allowed = ", ".join(f"{dialect}+{d}" for d in drivers)
    if driver in other[dialect][1]:
        kind, pool = (
            ("a sync", "poolwarden.Pool") if asyncio else ("an asyncio", "poolwarden.AsyncPool")
        )
        raise ValueError(
            f"target: {dialect}+{driver} is {kind} driver: use it with {pool}; "
            f"this pool takes {allowed}"
        )
    raise ValueError(f"target: unknown driver {driver!r} for {dialect}; allowed: {allowed}")


def _bad(target: str, why: str) -> ValueError:
    example = "e.g. 'mysql+pymysql://user:password@127.0.0.1:3306/dbname'"
    return ValueError(f"target: malformed database URL {_scrub(target)!r}: {why} ({example})")


def _scrub(text: str) -> str:
    """Hide anything between ``user:`` and ``@``, and password query options, so a
    malformed URL's password is not echoed."""
    text = _SECRET_QUERY.sub(lambda m: m.group(1) + "***", text)
    head, sep, tail = text.partition("://")
    if not sep:
        return text
    auth, at, rest = tail.rpartition("@")
    if not at or ":" not in auth:
        return text
    return f"{head}://{auth.split(':', 1)[0]}:***@{rest}"


_SECRET_QUERY = re.compile(
    r"([?&](?:" + "|".join(sorted(SECRET_OPTIONS)) + r")=)[^&#]*", re.IGNORECASE
)

#: What to say when urllib cannot split a URL: its own message may quote part of a
#: password that holds a character with a meaning in URLs.
_SPLIT_HINT = (
    "bad host or port; the port must be an integer 0-65535, and a password holding "
    "/ # ? or @ must have them percent-encoded (%2F %23 %3F %40)"
)


def parse_url(target: str, asyncio: bool = False) -> URL:
    """Parse ``target``; raise ``ValueError`` naming what is wrong and what is allowed.
    ``asyncio``: the URL is for an asyncio pool, whose drivers are asyncio drivers."""
    if "://" not in target:
        raise _bad(target, "it has no '://' after the dialect")
    scheme, _, _ = target.partition("://")
    dialect, _, driver = scheme.lower().partition("+")
    dialect = DIALECT_ALIASES.get(dialect, dialect)
    if dialect not in DIALECTS:
        allowed = ", ".join(sorted(DIALECTS))
        raise ValueError(f"target: unknown database dialect {dialect!r}; allowed: {allowed}")
    driver = DRIVER_ALIASES.get(driver, driver)
    _check_driver(dialect, driver, asyncio)
    driver = driver or (ASYNC_DIALECTS if asyncio else DIALECTS)[dialect][0]
    try:
        parts = urlsplit(target)
        port = parts.port
    except ValueError:
        raise _bad(target, _SPLIT_HINT) from None
    if parts.fragment:
        raise _bad(
            target, "a '#' fragment is not allowed (a '#' in a password must be written %23)"
        )
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in query:
            raise _bad(target, f"query option {key!r} is given twice")
        query[key] = value
    database: str | None = unquote(parts.path[1:]) if parts.path else None
    if dialect == "sqlite":
        if parts.netloc:
            raise _bad(target, "sqlite URLs take a path, not a host: 'sqlite:///file.db'")
        return URL(dialect, driver, database=database or None, query=query)
    return URL(
        dialect=dialect,
        driver=driver,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        host=parts.hostname or None,
        port=port,
        database=database or None,
        query=query,
    )
