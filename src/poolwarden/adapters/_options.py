"""Which keyword arguments a driver's ``connect()`` takes, so that a URL option it does
not know is refused by name, with the list of the ones it does, before the driver's own
``unexpected keyword argument`` (or libpq's ``invalid connection option``) reaches a
checkout."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["LIBPQ_KEYWORDS", "check_url_options", "libpq_keywords", "signature_options"]

#: libpq's connection keywords (PostgreSQL 17), for when psycopg 3, which can ask libpq
#: itself, is not installed.
LIBPQ_KEYWORDS = frozenset(
    {
        "application_name",
        "channel_binding",
        "client_encoding",
        "connect_timeout",
        "dbname",
        "fallback_application_name",
        "gssdelegation",
        "gssencmode",
        "gsslib",
        "host",
        "hostaddr",
        "keepalives",
        "keepalives_count",
        "keepalives_idle",
        "keepalives_interval",
        "krbsrvname",
        "load_balance_hosts",
        "options",
        "passfile",
        "password",
        "port",
        "replication",
        "require_auth",
        "requirepeer",
        "service",
        "ssl_max_protocol_version",
        "ssl_min_protocol_version",
        "sslcert",
        "sslcertmode",
        "sslcompression",
        "sslcrl",
        "sslcrldir",
        "sslkey",
        "sslmode",
        "sslnegotiation",
        "sslpassword",
        "sslrootcert",
        "sslsni",
        "target_session_attrs",
        "tcp_user_timeout",
        "user",
    }
)


def signature_options(function: Callable[..., Any]) -> frozenset[str] | None:
    """The named parameters ``function`` accepts by keyword; None when its signature
    cannot be read or names none (``*args, **kwargs``)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = frozenset(p.name for p in parameters if p.kind in kinds and p.name != "self")
    return names or None


def libpq_keywords() -> frozenset[str]:
    """The connection keywords of the libpq psycopg 3 was built with, else
    :data:`LIBPQ_KEYWORDS`."""
    try:
        from psycopg import pq

        return frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())
    except Exception:  # psycopg missing, or a libpq that cannot say
        return LIBPQ_KEYWORDS


def check_url_options(
    scheme: str,
    query: Iterable[str],
    passed: Mapping[str, Any],
    allowed: frozenset[str] | None,
    argument: str = "target",
) -> None:
    """Refuse the first URL option (of ``query``) passed to the driver as a keyword
    argument (a key of ``passed``) that the driver does not take; nothing is checked when
    ``allowed`` is None (the driver's arguments are unknown)."""
    if allowed is None:
        return
    for key in query:
        if key in passed and key not in allowed:
            raise ValueError(
                f"{argument}: unknown URL option {key!r} for {scheme}; allowed: "
                + ", ".join(sorted(allowed))
            )
