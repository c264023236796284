"""What poolwarden knows about the proxies that may sit between a pool and its server:
PgBouncer (PostgreSQL) and ProxySQL (MySQL/MariaDB). No I/O and no pool wiring: the pool
runs the queries named here, sync or asyncio alike, and passes their answers in.

PgBouncer
    *Detection.* PgBouncer answers a client's startup itself, with a cancel key of its
    own (BackendKeyData: the "backend pid" libpq reports, ``raw.info.backend_pid``), and
    forwards the server's ``server_version``; so the pid the session reports with
    ``SELECT pg_backend_pid()`` differs from the one in the key. A direct connection, or
    a TCP proxy that only forwards bytes, reports the same pid twice. Its admin console
    (database ``pgbouncer``) reports ``server_version`` ``"1.18.0/bouncer"``.

    *Pool modes.* ``session``: a client keeps one server connection until it
    disconnects, as without PgBouncer. ``transaction``: the server connection is the
    client's for one transaction, then another client's; ``statement``: for one
    statement, and transactions are refused. In the last two nothing set outside a
    transaction (``SET``, prepared statements, temporary tables, advisory locks,
    ``LISTEN``) stays with the client. The mode is known only from the admin console
    (``SHOW DATABASES`` / ``SHOW USERS`` / ``SHOW CONFIG``); without it poolwarden assumes
    ``transaction``, the usual one, whose rules are safe in session mode too.

ProxySQL
    It also answers the client itself: the handshake, ``COM_PING`` (so a ping proves that
    ProxySQL is alive, not that a server is), and exactly ``select @@version_comment
    limit 1`` (lower case, as the mysql client sends it), with ``(ProxySQL)``. A server
    connection is taken for each query (multiplexing), so connecting succeeds even when
    no server is reachable; the query then fails with 9001 or 9002.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._proxysql import (
    PROXYSQL_DETECTION_SQL,
    PROXYSQL_ERRORS,
    is_proxysql,
    is_transient_proxysql_error,
    proxysql_error_code,
    proxysql_error_kind,
    proxysql_limit,
)

__all__ = [
    "PGBOUNCER",
    "PGBOUNCER_ADMIN_COMMANDS",
    "PGBOUNCER_ADMIN_DATABASE",
    "PGBOUNCER_DETECTION_SQL",
    "PROXYSQL",
    "PROXYSQL_DETECTION_SQL",
    "PROXYSQL_ERRORS",
    "ProxyInfo",
    "admin_rows",
    "allowed_reset",
    "effective_idle_timeout",
    "is_connection_limit_error",
    "is_pgbouncer",
    "is_pgbouncer_admin_version",
    "is_prepared_statement_mismatch",
    "is_proxysql",
    "is_transient_proxysql_error",
    "pgbouncer_admin_kwargs",
    "pgbouncer_error_kind",
    "pgbouncer_info_from_admin",
    "proxysql_error_code",
    "proxysql_error_kind",
    "psycopg_connect_overrides",
    "session_state_warning",
]

PGBOUNCER = "pgbouncer"
PROXYSQL = "proxysql"
POOL_MODES = ("session", "transaction", "statement")

# -- PgBouncer: detection -------------------------------------------------------------

#: One round trip that tells PgBouncer (see :func:`is_pgbouncer`). Run it outside a
#: transaction, or roll back after it (behind PgBouncer in transaction mode a transaction
#: left open pins a server connection).
PGBOUNCER_DETECTION_SQL = "SELECT pg_backend_pid()"


def is_pgbouncer(info_pid: Any, row: Sequence[Any] | None) -> bool:
    """Whether the connection goes through PgBouncer (or another pooler that hands out
    cancel keys of its own: Odyssey, PgCat, Supavisor, which need the same rules).

    ``info_pid`` is the pid of the startup's BackendKeyData (psycopg:
    ``raw.info.backend_pid``; psycopg2: ``raw.get_backend_pid()``), ``row`` the row of
    :data:`PGBOUNCER_DETECTION_SQL`. PgBouncer 1.18 makes its key at random (a 32-bit
    number, often negative as libpq shows it), so a match by chance is negligible.
    """
    if not row or not isinstance(info_pid, int) or info_pid == 0:
        return False
    session_pid = row[0]
    return isinstance(session_pid, int) and session_pid != info_pid


def is_pgbouncer_admin_version(server_version: str | None) -> bool:
    """Whether a ``server_version`` parameter is that of PgBouncer's admin console
    (``"1.18.0/bouncer"``); ordinary databases through PgBouncer report the server's."""
    return bool(server_version) and str(server_version).endswith("/bouncer")


# -- PgBouncer: the admin console -----------------------------------------------------

PGBOUNCER_ADMIN_DATABASE = "pgbouncer"
#: What :func:`pgbouncer_info_from_admin` reads; each is one simple-protocol query.
PGBOUNCER_ADMIN_COMMANDS = ("SHOW VERSION", "SHOW CONFIG", "SHOW DATABASES", "SHOW USERS")

#: libpq parameters that would make libpq ask the admin console for ``SHOW
#: transaction_read_only`` (which it cannot answer), or that only the pool's own
#: connections need.
_NOT_FOR_ADMIN = ("target_session_attrs", "load_balance_hosts", "prepare_threshold")


def pgbouncer_admin_kwargs(connect_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The pool's connect keywords, aimed at the admin console: the same address and
    login, database ``pgbouncer``, autocommit (it has no transactions). Only a user listed
    in PgBouncer's ``admin_users`` or ``stats_users`` gets in; others are refused with
    ``not allowed``, and the mode stays unknown."""
    kwargs = {k: v for k, v in connect_kwargs.items() if k not in _NOT_FOR_ADMIN}
    kwargs["dbname"] = PGBOUNCER_ADMIN_DATABASE
    kwargs["autocommit"] = True
    kwargs.setdefault("connect_timeout", 5)
    return kwargs


def admin_rows(
    description: Iterable[Any] | None, rows: Iterable[Sequence[Any]]
) -> list[dict[str, Any]]:
    """Rows as dictionaries keyed by column name (``cursor.description`` entries are
    psycopg ``Column`` objects or DB-API 7-tuples)."""
    names = [getattr(column, "name", None) or column[0] for column in description or ()]
    return [dict(zip(names, row, strict=False)) for row in rows]


def _version(text: Any) -> tuple[int, ...] | None:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", str(text or ""))
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def _seconds(value: Any) -> float | None:
    """A PgBouncer time setting as SHOW CONFIG shows it (seconds, maybe fractional); 0
    or missing: none."""
    try:
        seconds = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


@dataclass(frozen=True)
class ProxyInfo:
    """A proxy in front of the server, and what is known about it.

    ``pool_mode``: PgBouncer's mode for the pool's database and user (``None``: not
    known, treated as ``"transaction"``). ``version``: PgBouncer's, from the admin
    console. ``source``: how it is known (``"configured"``, ``"detected"``, ``"admin
    console"``).
    """

    kind: str
    pool_mode: str | None = None
    version: tuple[int, ...] | None = None
    max_prepared_statements: int | None = None
    client_idle_timeout: float | None = None
    query_wait_timeout: float | None = None
    source: str = "configured"

    @property
    def mode(self) -> str | None:
        """The pool mode the rules follow: the known one, else ``"transaction"``
        (PgBouncer); ``None`` for ProxySQL."""
        if self.kind != PGBOUNCER:
            return None
        return self.pool_mode or "transaction"

    @property
    def keeps_session_state(self) -> bool:
        """Whether session state set by a borrower stays with the client connection.
        ProxySQL tracks what a session sets and keeps that session on one server
        connection meanwhile; PgBouncer does so only in session mode."""
        return self.kind != PGBOUNCER or self.mode == "session"

    @property
    def prepared_statements_ok(self) -> bool:
        """Whether protocol-level prepared statements work: in session mode, or from
        PgBouncer 1.21 with ``max_prepared_statements`` > 0 (known, not assumed: 1.24's
        default is 200, but a configuration may say 0)."""
        if self.kind != PGBOUNCER or self.mode == "session":
            return True
        return (
            self.version is not None
            and self.version >= (1, 21)
            and (self.max_prepared_statements or 0) > 0
        )


def _pool_mode(
    config: Mapping[str, str],
    databases: Sequence[Mapping[str, Any]],
    users: Sequence[Mapping[str, Any]],
    database: str | None,
    user: str | None,
) -> str | None:
    # PgBouncer's own order (pool_pool_mode in server.c): the user's, else the
    # database's, else the global setting.
    for rows, key in ((users, user), (databases, database)):
        for row in rows:
            if key is not None and row.get("name") == key and row.get("pool_mode"):
                return str(row["pool_mode"])
    mode = config.get("pool_mode")
    return mode if mode in POOL_MODES else None


def pgbouncer_info_from_admin(
    shown: Mapping[str, Sequence[Mapping[str, Any]]],
    database: str | None,
    user: str | None,
) -> ProxyInfo:
    """What the admin console said, as a :class:`ProxyInfo`. ``shown`` maps each of
    :data:`PGBOUNCER_ADMIN_COMMANDS` to its rows (see :func:`admin_rows`); a command
    missing or failed counts as no rows. ``database`` and ``user``: the pool's."""
    version_rows = shown.get("SHOW VERSION") or ()
    version = _version(next(iter(version_rows[0].values()), None)) if version_rows else None
    config = {str(row.get("key")): str(row.get("value")) for row in shown.get("SHOW CONFIG") or ()}
    mode = _pool_mode(
        config, shown.get("SHOW DATABASES") or (), shown.get("SHOW USERS") or (), database, user
    )
    prepared = config.get("max_prepared_statements")
    return ProxyInfo(
        PGBOUNCER,
        pool_mode=mode,
        version=version,
        max_prepared_statements=int(prepared) if prepared and prepared.isdigit() else None,
        client_idle_timeout=_seconds(config.get("client_idle_timeout")),
        query_wait_timeout=_seconds(config.get("query_wait_timeout")),
        source="admin console",
    )


# -- rules ------------------------------------------------------------------------------


def psycopg_connect_overrides(info: ProxyInfo | None) -> dict[str, Any]:
    """Keywords for psycopg's ``connect()`` that the proxy requires (they win over the
    user's ``connect_args``, and the pool says so once if they differ).

    Behind PgBouncer without prepared-statement support, ``prepare_threshold=None``:
    psycopg prepares a query on its 5th run on one server connection and later runs it
    by name on whatever server connection PgBouncer lends next, which fails with
    ``prepared statement "_pg3_0" does not exist`` (26000) or ``... already exists``
    (42P05). In statement mode also ``autocommit=True``: PgBouncer refuses ``BEGIN``
    there ("transaction blocks not allowed in statement pooling mode", and closes the
    connection).
    """
    if info is None or info.kind != PGBOUNCER:
        return {}
    overrides: dict[str, Any] = {}
    if not info.prepared_statements_ok:
        overrides["prepare_threshold"] = None
    if info.mode == "statement":
        overrides["autocommit"] = True
    return overrides


def allowed_reset(info: ProxyInfo | None, requested: str | None) -> tuple[str | None, str | None]:
    """The reset a returned connection gets behind this proxy, and a warning to log once
    if that is not what was asked for.

    Behind PgBouncer in transaction or statement mode ``reset="session"`` becomes
    ``"rollback"``: ``DISCARD ALL`` would run on whichever server connection PgBouncer
    lends for that one statement (not one the borrower used), so it clears nothing of
    the borrower's and costs a server round trip per return; with PgBouncer 1.21's
    prepared statements it also drops statements PgBouncer believes prepared on that
    server connection (fixed only in 1.22). PgBouncer itself resets a server connection
    between clients in session mode (``server_reset_query``).
    """
    if requested != "session" or info is None or info.keeps_session_state:
        return requested, None
    return "rollback", (
        f"reset='session' is not possible behind PgBouncer in {info.mode} mode: no "
        "session state stays with a client connection there, and DISCARD ALL would run "
        "on a server connection of another transaction; returned connections are only "
        "rolled back. Do not rely on SET, temporary tables or advisory locks outside "
        "a transaction."
    )


def session_state_warning(info: ProxyInfo | None) -> str | None:
    """A warning for a pool whose ``configure`` callback sets session state, which
    behind PgBouncer in transaction/statement mode applies to one server connection
    (whichever served it), not to the client's later transactions."""
    if info is None or info.keeps_session_state:
        return None
    return (
        f"behind PgBouncer in {info.mode} mode, what configure() sets for the session "
        "(SET, prepared statements) applies to one server connection, not to this "
        "client's later transactions: use SET LOCAL inside transactions, or PgBouncer's "
        "connect_query / the role's settings (ALTER ROLE ... SET)"
    )


def effective_idle_timeout(info: ProxyInfo | None, server_timeout: float | None) -> float | None:
    """The idle timeout that can close a pooled connection, for ``max_lifetime="auto"``
    and ``keepalive="auto"``.

    Behind PgBouncer the connection is to PgBouncer. In transaction and statement mode
    PgBouncer's ``client_idle_timeout`` closes idle clients, and the server's
    ``idle_session_timeout`` (what ``pg_settings`` shows through PgBouncer) closes only
    PgBouncer's idle server connections, which clients never notice. In session mode it
    is the other way round: a client keeps its server connection, which the server's
    timeout closes (and PgBouncer the client with it), while ``client_idle_timeout``
    skips clients that hold a server connection (janitor.c). With the mode unknown both
    count (retiring early is harmless).
    """
    if info is None or info.kind != PGBOUNCER:
        return server_timeout
    if info.pool_mode == "session":
        candidates = [server_timeout]
    elif info.pool_mode is None:
        candidates = [server_timeout, info.client_idle_timeout]
    else:
        candidates = [info.client_idle_timeout]
    values = [value for value in candidates if value]
    return min(values) if values else None


# -- PgBouncer: its errors ---------------------------------------------------------------
#
# PgBouncer sends its own errors with SQLSTATE 08P01 (protocol_violation), always FATAL,
# then closes the client connection (proto.c send_pooler_error); 1.20+ forwards a
# server's login error with the server's SQLSTATE. libpq's connect errors carry no
# SQLSTATE at all, only the text ("connection failed: ... FATAL:  <message>"), so the
# messages decide. Fragments are lower case; the first kind that matches wins.

_PGBOUNCER_ERRORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # A configuration or login problem: retrying will not help.
    (
        "config",
        (
            "no such database",
            "no such user",
            "password authentication failed",
            '"trust" authentication failed',
            "sasl authentication failed",
            "login rejected",
            "unsupported startup parameter",
            "unsupported options startup parameter",
            "no username supplied",
            "ssl required",
            "server login failed: wrong password type",
            "transaction blocks not allowed in statement pooling mode",
            "not allowed",  # the admin console, for a user not in admin_users/stats_users
        ),
    ),
    # Out of client slots: the storm guard's business.
    (
        "limit",
        (
            "no more connections allowed (max_client_conn)",
            "client connections exceeded (max_db_client_connections)",
            "client connections exceeded (max_user_client_connections)",
        ),
    ),
    # PgBouncer cannot reach or log in to the server, or is going away: a new
    # connection may work later.
    (
        "retryable",
        (
            "server_login_retry",  # "server login has been failing, try again later"
            "pgbouncer cannot connect to server",  # the same, before 1.17
            "query_wait_timeout",  # no server connection came within the limit
            "client_login_timeout",
            "pooler is shutting down",
            "server shutting down",
            "bouncer config error",  # its generic message for a server lost at login
            "is disabled",  # DISABLE <db> on the admin console, until ENABLE
            "suspend_timeout",
        ),
    ),
    # The client connection was closed under the borrower (it is gone: replace it).
    (
        "disconnect",
        (
            "server conn crashed?",
            "database removed",  # KILL <db>, or the database left the configuration
            "client_idle_timeout",
            "query_timeout",
            "idle transaction timeout",
            "database configuration changed",
            "connect string changed",
            "admin forced disconnect",  # KILL_CLIENT (1.23+)
            "unexpected eof",
        ),
    ),
)


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return str(state) if state else None


def pgbouncer_error_kind(exc: BaseException) -> str | None:
    """PgBouncer's own error as ``"config"`` (fix the configuration; do not retry),
    ``"limit"`` (out of client slots), ``"retryable"`` (PgBouncer cannot serve now; a
    new connection may work later), ``"disconnect"`` (the client connection was closed),
    or ``None`` (not PgBouncer's, or not known: the driver adapter decides)."""
    state = _sqlstate(exc)
    if state not in (None, "08P01"):
        return None  # a server's error (PgBouncer 1.20+ forwards their SQLSTATE)
    text = str(exc).lower()
    for kind, fragments in _PGBOUNCER_ERRORS:
        if any(fragment in text for fragment in fragments):
            return kind
    return None


def is_prepared_statement_mismatch(exc: BaseException) -> bool:
    """psycopg's automatic prepared statements (``_pg3_N``) meeting a server connection
    that does not have them (26000) or already has another with that name (42P05): the
    mark of PgBouncer in transaction/statement mode with ``prepare_threshold`` on."""
    state = _sqlstate(exc)
    text = str(exc)
    return state in ("26000", "42P05") and '"_pg3_' in text


def is_connection_limit_error(exc: BaseException) -> bool:
    """A proxy refusing a connection for lack of slots: PgBouncer's ``max_client_conn``
    (and 1.24's ``max_db_client_connections`` / ``max_user_client_connections``),
    ProxySQL's ``mysql-max_connections`` (1040 "Too many connections") and a ProxySQL
    user's ``max_connections`` (1226). By message and code alone, so it works on any
    driver's exception; the servers' own limits are the adapters' business."""
    if pgbouncer_error_kind(exc) == "limit":
        return True
    return proxysql_limit(proxysql_error_code(exc), str(exc).lower())
