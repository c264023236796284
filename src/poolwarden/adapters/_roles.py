"""Server roles: which servers accept writes, what a read-only error means, and which
roles a pool accepts. No I/O: the adapters run the queries and pass the answers here.

A pool says what it needs with ``role``, in libpq's ``target_session_attrs`` words:
``"any"``, ``"primary"`` (a server that accepts writes), ``"standby"`` (one that does not)
and ``"prefer-standby"`` (a standby if one answers, else any).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MYSQL_READ_ONLY_CODES",
    "MYSQL_ROLE_QUERY",
    "POSTGRES_ROLE_QUERY",
    "PRIMARY",
    "ROLES",
    "STANDBY",
    "accepts",
    "check_role",
    "libpq_target",
    "mysql_read_only_error",
    "mysql_role_of",
    "postgres_role_of",
    "postgres_role_reported",
]

PRIMARY = "primary"
STANDBY = "standby"
ROLES = ("any", PRIMARY, STANDBY, "prefer-standby")

#: libpq's names for the same needs: ``primary`` there means "not in recovery", which a
#: fenced primary (``default_transaction_read_only = on``) still is, so a pool that needs
#: writes asks for ``read-write``.
_LIBPQ = {
    "any": "any",
    PRIMARY: "read-write",
    STANDBY: "standby",
    "prefer-standby": "prefer-standby",
}
_FROM_LIBPQ = {
    "any": "any",
    "read-write": PRIMARY,
    "primary": PRIMARY,
    "read-only": STANDBY,
    "standby": STANDBY,
    "prefer-standby": "prefer-standby",
}

#: ``read_only`` (``super_read_only`` implies it) and InnoDB's own read-only mode (Aurora
#: readers, ``--innodb-read-only``); both variables exist on MySQL and MariaDB.
MYSQL_ROLE_QUERY = "SELECT @@global.read_only, @@global.innodb_read_only"

#: For servers older than PostgreSQL 14, which do not report ``in_hot_standby``.
POSTGRES_ROLE_QUERY = (
    "SELECT pg_catalog.pg_is_in_recovery(), current_setting('default_transaction_read_only')"
)

#: MySQL/MariaDB errors a read-only server raises for a write. 1290 is also raised for other
#: server options (``--skip-grant-tables``...), so its message must name read-only; 1792 is
#: raised for a transaction the borrower started READ ONLY too, so it is confirmed first.
MYSQL_READ_ONLY_CODES = {
    1290: "server",  # ER_OPTION_PREVENTS_STATEMENT: --read-only / --super-read-only
    1836: "server",  # ER_READ_ONLY_MODE: Running in read-only mode (innodb_read_only)
    1792: "maybe",  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
    1874: "server",  # ER_INNODB_READ_ONLY: InnoDB is in read only mode
}


def check_role(value: Any, name: str = "role") -> str:
    """A role name from :data:`ROLES` (libpq's ``target_session_attrs`` words accepted)."""
    if isinstance(value, str) and value.strip().lower() in _FROM_LIBPQ:
        return _FROM_LIBPQ[value.strip().lower()]
    allowed = ", ".join(repr(r) for r in ROLES)
    raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def libpq_target(role: str) -> str:
    """The ``target_session_attrs`` value that asks libpq for ``role``."""
    return _LIBPQ[role]


def accepts(role: str, found: str | None, last_chance: bool = True) -> bool:
    """Whether a pool that needs ``role`` may use a server found to be ``found`` (None:
    unknown, which never passes a real check: a server mid-failover may not say yet).
    ``prefer-standby`` takes a primary only as the ``last_chance``."""
    if role == "any":
        return True
    if found is None:
        return False
    if role == "prefer-standby":
        return found == STANDBY or last_chance
    return found == role


def mysql_role_of(row: Any) -> str | None:
    """The role in the row :data:`MYSQL_ROLE_QUERY` returned."""
    if not row:
        return None
    return STANDBY if any(int(value or 0) for value in row) else PRIMARY


def _on(value: Any) -> bool:
    return str(value).strip().lower() in ("on", "true", "1", "t", "yes")


def postgres_role_reported(status: Any) -> str | None:
    """The role from the parameters the server reports unasked (PostgreSQL 14+), or None
    if it reports no ``in_hot_standby``. ``status(name)`` reads one parameter."""
    hot_standby = status("in_hot_standby")
    if hot_standby is None:
        return None
    read_only = status("default_transaction_read_only")
    return STANDBY if _on(hot_standby) or _on(read_only) else PRIMARY


def postgres_role_of(row: Any) -> str | None:
    """The role in the row :data:`POSTGRES_ROLE_QUERY` returned."""
    if not row:
        return None
    in_recovery, read_only = row
    return STANDBY if bool(in_recovery) or _on(read_only) else PRIMARY


def mysql_read_only_error(code: int | None, message: str) -> str | None:
    """``"server"`` if a MySQL error with ``code`` says the server is read-only,
    ``"maybe"`` if it may (to be confirmed with a role query), else None."""
    verdict = MYSQL_READ_ONLY_CODES.get(code or 0)
    if code == 1290 and "read" not in message.lower():
        return None  # another option prevents the statement (--skip-grant-tables, ...)
    return verdict
