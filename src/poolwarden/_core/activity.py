"""What a borrower did with a connection, as the proxies record it for the reset on return."""

from __future__ import annotations

from typing import Any

__all__ = ["IN_TRANSACTION", "UNTOUCHED", "USED", "changes_session"]

#: What a borrower did with a connection, from least to most.
UNTOUCHED, USED, IN_TRANSACTION = 0, 1, 2

#: First words of statements that change a session beyond one transaction (settings,
#: current database or role, temporary tables, prepared statements, table locks, stored
#: procedures): a new connection would not have that state.
_SESSION_WORDS = ("SET", "USE", "RESET", "DISCARD", "PREPARE", "LOCK", "CALL", "CREATE TEMP")


def changes_session(statement: Any) -> bool:
    """Whether ``statement`` (SQL text) may change the session's state."""
    if isinstance(statement, str):
        text = statement
    elif isinstance(statement, bytes):
        text = statement.decode("latin-1")
    else:
        return True  # a composed statement object: cannot tell, assume it may
    head = text[:40].lstrip().upper()
    return head.startswith(_SESSION_WORDS) or head.startswith("SELECT SET_CONFIG")
