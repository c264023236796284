"""How the command reports what went wrong: one line, no traceback, no password.

Driver errors are turned into a sentence that says what failed (reaching the host, the
login, the database, a query) and keeps the driver's own words, with every password the
command was given replaced by ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from .._net.url import parse_url
from .._net.url_mask import url_text_secrets

__all__ = [
    "CommandError",
    "describe_connect_error",
    "describe_query_error",
    "driver_message",
    "passwords_in",
    "redact",
]


class CommandError(Exception):
    """A problem the user can fix, worded as the one line the command prints."""


def _spellings(raw: str) -> set[str]:
    """A secret as written in the URL, decoded, and encoded again: any may be echoed."""
    decoded = unquote(raw.replace("+", " ")), unquote(raw)
    return {raw, *decoded, *(quote(text, safe="") for text in decoded)}


def passwords_in(url_text: str) -> set[str]:
    """Every password in ``url_text`` (the user part's and the query options'
    ``password``, ``passwd``, ``pwd``, ``sslpassword``), as written and decoded, even in
    a malformed URL (whatever :func:`poolwarden._net.url_mask.mask_url_text` would hide), so
    that no message can echo one."""
    found: set[str] = set()
    for raw in url_text_secrets(url_text):
        found |= _spellings(raw)
    try:
        url = parse_url(url_text)
    except ValueError:
        pass  # what the text holds was found above
    else:
        for secret in url.secrets():
            found |= {secret, quote(secret, safe="")}
    return {secret for secret in found if secret}


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret replaced by ``***``, longest first (one may contain
    another)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def driver_message(exc: BaseException) -> str:
    """The driver's message on one line: ``(1045) Access denied ...`` for the MySQL
    drivers' ``(code, message)`` errors, whitespace collapsed for libpq's multi-line ones."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = f"({args[0]}) {args[1]}"
    else:
        text = str(exc) or type(exc).__name__
    return re.sub(r"\s+", " ", text).strip()


def _error_code(exc: BaseException) -> int | None:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    errno = getattr(exc, "errno", None)
    return errno if isinstance(errno, int) else None


#: (what the failure means, MySQL error codes, a pattern of the drivers' and libpq's own
#: wording, lower-cased); the first match wins.
_CONNECT_FAILURES: tuple[tuple[str, frozenset[int], str], ...] = (
    (
        "the server refused the login (wrong user name or password?)",
        frozenset({1044, 1045, 1251, 1698}),
        r"password authentication failed|authentication failed|no pg_hba\.conf entry"
        r"|no password supplied",
    ),
    ("the server refused the login: no such user", frozenset(), r'role ".*" does not exist'),
    ("the database does not exist", frozenset({1049}), r'database ".*" does not exist'),
    (
        "the server is out of connection slots",
        frozenset({1040, 1203, 1226}),
        r"too many clients|too many connections|remaining connection slots",
    ),
    (
        "connection refused (is the server running and listening there?)",
        frozenset(),
        r"connection refused",
    ),
    (
        "unknown host name",
        frozenset({2005}),
        r"name or service not known|could not translate host name|nodename nor servname"
        r"|temporary failure in name resolution|unknown mysql server host",
    ),
    (
        "no answer in time (host down, a firewall, or the wrong port?)",
        frozenset(),
        r"timed out|timeout|reading initial communication packet",
    ),
    (
        "the host cannot be reached",
        frozenset({2002, 2003}),
        r"no route to host|network is unreachable|could not connect",
    ),
)


def describe_connect_error(exc: BaseException, where: str) -> str:
    """One line saying why connecting to ``where`` (a password-free URL) failed."""
    message = driver_message(exc)
    code = _error_code(exc)
    for meaning, codes, pattern in _CONNECT_FAILURES:
        if code in codes or re.search(pattern, message.lower()):
            return f"cannot connect to {where}: {meaning}: {message}"
    return f"cannot connect to {where}: {message}"


def describe_query_error(exc: BaseException, sql: str) -> str:
    """One line saying that ``sql`` failed and what the server said."""
    shown = re.sub(r"\s+", " ", sql).strip()
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"the query {shown!r} failed: {driver_message(exc)}"
