"""SQLAlchemy-style database URLs: ``dialect+driver://user:password@host:port/database?opt=v``.

Only what the pool needs: split the URL into parts the adapters turn into driver arguments,
and render it without its password for every repr, log line and error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from .url_mask import SECRET_OPTIONS, authority_end, mask_url_text

__all__ = ["SECRET_OPTIONS", "URL", "malformed_url_error", "parse_url"]

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
    #: Every host of a multi-host URL (``host1:3306,host2:3307``), the first being
    #: ``host``/``port``; empty for a URL with one host.
    hosts: tuple[tuple[str, int | None], ...] = ()

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
        netloc += ",".join(
            _host_text(host, port) for host, port in (self.hosts or [(self.host, self.port)])
        )
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


def _host_text(host: str | None, port: int | None) -> str:
    text = "" if host is None else f"[{host}]" if ":" in host else host
    return text if port is None else f"{text}:{port}"


#: One host of a multi-host URL: ``[v6]``, ``[v6]:port``, ``name`` or ``name:port``.
_HOST_PIECE = re.compile(
    r"\[(?P<v6>[^\[\]/]*)\](?::(?P<v6port>[^,]*))?|(?P<name>[^:,\[\]]*)(?::(?P<port>[^,]*))?"
)


def _split_hosts(target: str) -> tuple[str, tuple[tuple[str, int | None], ...]]:
    """For a URL listing several hosts, the URL with only the first (for the rest of the
    parsing) and every host with its port; a URL with one host comes back unchanged."""
    scheme, _, rest = target.partition("://")
    netloc_end = authority_end(rest, 0)
    netloc = rest[:netloc_end]
    userinfo, at, hostport = netloc.rpartition("@")
    if "," not in hostport:
        return target, ()
    hosts: list[tuple[str, int | None]] = []
    for piece in hostport.split(","):
        match = _HOST_PIECE.fullmatch(piece)
        host = (
            (match.group("v6") if match.group("v6") is not None else match.group("name"))
            if match
            else ""
        )
        port_text = (match.group("v6port") or match.group("port") or "") if match else ""
        problem = _port_problem(port_text, quotable=bool(at))
        if problem is None and piece.endswith(":"):
            problem = "a ':' must be followed by a port number 1-65535"
        if not host or problem is not None:
            raise _bad(target, problem or "an empty host in the list of hosts")
        hosts.append((unquote(host), int(port_text) if port_text else None))
    first = hostport.split(",")[0]
    return f"{scheme}://{userinfo}{at}{first}{rest[netloc_end:]}", tuple(hosts)


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


def _bad(target: str, why: str, argument: str = "target") -> ValueError:
    example = "e.g. 'mysql+pymysql://user:password@127.0.0.1:3306/dbname'"
    return ValueError(
        f"{argument}: malformed database URL {mask_url_text(target)!r}: {why} ({example})"
    )


def malformed_url_error(text: str, argument: str = "url") -> ValueError:
    """The error for URL ``text`` that another parser (SQLAlchemy's) refused: what is
    wrong with it, if poolwarden can tell, and the URL with anything that could be a
    password hidden (that parser's own message may quote one)."""
    problem = "no '://' after the scheme" if "://" not in text else _syntax_problem(text)
    return _bad(text, problem or "SQLAlchemy cannot parse it", argument)


#: A '%' that does not start a percent-escape.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODE = "percent-encode / ? # @ and % in a password (%2F %3F %23 %40 %25)"


def _port_problem(text: str, quotable: bool) -> str | None:
    """What is wrong with the port text (None: nothing); the text is quoted only when it
    cannot be a password (``quotable``: an ``@`` ends the user part before it)."""
    if text == "" or (text.isdigit() and 1 <= int(text) <= 65535):
        return None
    shown = repr(text) if quotable else "text that is not one"
    return f"port must be a number 1-65535, got {shown}"


def _syntax_problem(target: str) -> str | None:
    """The first thing wrong with the shape of ``target`` (None: nothing found), worded
    without quoting anything that could be a password."""
    rest = target.partition("://")[2]
    netloc_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, after = rest[:netloc_end], rest[netloc_end:]
    path = re.split(r"[?#]", after, maxsplit=1)[0]
    if netloc.count("@") > 1:
        return "more than one '@' before the host: " + _ENCODE
    userinfo, at, hostport = netloc.rpartition("@")
    if not at and "@" in path:
        return "an '@' after the host: " + _ENCODE
    if "[" in hostport or "]" in hostport:
        match = re.fullmatch(r"\[[^\[\]/]*\](?::(.*))?", hostport)
        if match is None:
            return "unbalanced '[' or ']' around the host (an IPv6 host is written [::1])"
        port_text = match.group(1) or ""
    elif hostport.count(":") > 1:
        return "an IPv6 host must be in brackets, e.g. [::1]:5432"
    else:
        port_text = hostport.partition(":")[2]
    problem = _port_problem(port_text, quotable=bool(at))
    if problem is not None:
        if not at and "@" in after:
            return f"{problem}; " + _ENCODE
        return problem
    for part, text in (("user name or password", userinfo), ("host", hostport), ("path", path)):
        if _BAD_ESCAPE.search(text):
            return f"a '%' in the {part} is not followed by two hex digits: " + _ENCODE
    return None


#: What to say when urllib still cannot split a URL: its own message may quote part of a
#: password that holds a character with a meaning in URLs.
_SPLIT_HINT = "bad host or port; " + _ENCODE


def parse_url(target: str, asyncio: bool = False) -> URL:
    """Parse ``target``; raise ``ValueError`` naming what is wrong and what is allowed.
    ``asyncio``: the URL is for an asyncio pool, whose drivers are asyncio drivers."""
    if "://" not in target:
        raise _bad(target, "no '://' after the scheme")
    scheme, _, _ = target.partition("://")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(\+[A-Za-z0-9_-]+)?", scheme):
        raise _bad(target, "the text before '://' must be dialect+driver, e.g. mysql+pymysql")
    dialect, _, driver = scheme.lower().partition("+")
    dialect = DIALECT_ALIASES.get(dialect, dialect)
    if dialect not in DIALECTS:
        allowed = ", ".join(sorted(DIALECTS))
        raise ValueError(f"target: unknown database dialect {dialect!r}; allowed: {allowed}")
    driver = DRIVER_ALIASES.get(driver, driver)
    _check_driver(dialect, driver, asyncio)
    driver = driver or (ASYNC_DIALECTS if asyncio else DIALECTS)[dialect][0]
    if dialect != "sqlite":
        target, hosts = _split_hosts(target)
    else:
        hosts = ()
    # SQLite URLs hold a file path, in which any character is allowed.
    problem = None if dialect == "sqlite" else _syntax_problem(target)
    if problem is not None:
        raise _bad(target, problem)
    try:
        parts = urlsplit(target)
        port = parts.port
    except ValueError:
        parts = None  # raised below: urllib's message, which may quote a password, is
        # then not kept as the error's __context__ either
    if parts is None:
        raise _bad(target, _SPLIT_HINT)
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
        hosts=hosts,
    )
