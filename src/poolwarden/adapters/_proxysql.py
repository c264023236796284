"""What poolwarden knows about ProxySQL (see :mod:`poolwarden.adapters._proxies`): how it
answers the detection query, and the errors it sends clients. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "PROXYSQL_DETECTION_SQL",
    "PROXYSQL_ERRORS",
    "is_proxysql",
    "is_transient_proxysql_error",
    "proxysql_error_code",
    "proxysql_error_kind",
    "proxysql_limit",
]

#: Exactly as ProxySQL matches it (MySQL_Session.cpp compares bytes: lower case, no
#: trailing semicolon): it answers this itself with ``(ProxySQL)``; a server answers
#: with its own comment (``mariadb.org binary distribution``, ``MySQL Community
#: Server - GPL``).
PROXYSQL_DETECTION_SQL = "select @@version_comment limit 1"


def is_proxysql(row: Sequence[Any] | None) -> bool:
    """Whether the row of :data:`PROXYSQL_DETECTION_SQL` came from ProxySQL."""
    if not row:
        return False
    value = row[0]
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    return str(value).strip() == "(ProxySQL)"


#: The error numbers ProxySQL sends clients (lib/MySQL_Session.cpp), and what they mean.
#: Codes 9004 and 9007-9020 of ProxySQL's enum count monitor and backend failures in its
#: statistics; they are not sent to clients. 9005 and 9006 are sent, but for hostgroup
#: locks, not for lag or pings.
PROXYSQL_ERRORS: dict[int, tuple[str, str]] = {
    9001: ("transient", "Max connect timeout reached while reaching hostgroup N after M ms"),
    9002: ("transient", "Max connect failure while reaching hostgroup N"),
    9003: ("unsupported", "Command not supported"),
    9005: ("session", "Session trying to reach HG N while locked on HG M"),
    9006: ("session", "ProxySQL Error: connection is locked to hostgroup N"),
}


def proxysql_error_code(exc: BaseException) -> int | None:
    """The MySQL error number of a driver's exception (PyMySQL, mysqlclient, asyncmy,
    aiomysql: ``args[0]``; mysql-connector: ``errno``)."""
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], BaseException):
        args = args[0].args
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):
        return args[0]
    errno = getattr(exc, "errno", None)
    return errno if isinstance(errno, int) and not isinstance(errno, bool) else None


def proxysql_error_kind(exc: BaseException) -> str | None:
    """ProxySQL's own error as ``"transient"`` (no server of the hostgroup could be
    reached in time; the statement never reached one, so running it again later is
    safe), ``"session"`` (this client session is locked to a hostgroup: use a new
    connection), ``"unsupported"``, ``"limit"`` (ProxySQL's own connection limits), or
    ``None``."""
    code = proxysql_error_code(exc)
    if code in PROXYSQL_ERRORS:
        return PROXYSQL_ERRORS[code][0]
    if proxysql_limit(code, str(exc).lower()):
        return "limit"
    return None


def proxysql_limit(code: int | None, text: str) -> bool:
    """Whether ProxySQL's error ``code`` with message ``text`` says it is out of slots."""
    # 1040 is also ProxySQL's "User '%s' can only connect locally": the message decides.
    if code == 1040:
        return "too many connections" in text
    return code == 1226 and "max_user_connections" in text


def is_transient_proxysql_error(exc: BaseException) -> bool:
    """ProxySQL's 9001 or 9002: its hostgroup had no reachable server within
    ``mysql-connect_timeout_server_max`` / ``mysql-connect_retries_on_failure``. The
    client connection to ProxySQL is fine (not a disconnect), the statement never ran;
    the condition clears when a server comes back or a failover completes."""
    return proxysql_error_kind(exc) == "transient"
