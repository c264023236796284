"""The exceptions poolwarden raises itself.

Driver errors are never wrapped: a failed query raises the driver's own exception with its
type and error code intact. These classes cover what only the pool can know.
"""

from __future__ import annotations

import copy

__all__ = [
    "ConnectionLost",
    "ConnectionReturned",
    "PoolClosed",
    "PoolError",
    "PoolTimeout",
    "WrongRole",
]


class PoolError(Exception):
    """Base class of the errors raised by poolwarden itself."""

    __module__ = "poolwarden"


class PoolTimeout(PoolError, TimeoutError):
    """No connection became available within the checkout timeout.

    The message names the limits, how many connections are held and waiting, and where the
    longest-held connection was checked out. When connecting failed meanwhile, the last
    connect error is chained as ``__cause__``.
    """

    __module__ = "poolwarden"


class PoolClosed(PoolError):
    """The pool was closed before or while a connection was requested."""

    __module__ = "poolwarden"


class ConnectionReturned(PoolError):
    """A connection proxy was used, or returned, after it had been given back to the pool."""

    __module__ = "poolwarden"


class WrongRole(PoolError):
    """A new connection reached a server of another role than the pool needs (a standby
    for ``role="primary"``, say: the name still points at the old primary after a
    failover). The pool closes it and keeps trying, with backoff, as for a server that is
    down; a checkout that times out meanwhile names this error."""

    __module__ = "poolwarden"

    #: The role the pool needs, and what each server tried was found to be
    #: (``"standby"``, ``"primary"``, ``None`` when it could not tell, or the connect error).
    needed: str = ""
    found: dict[str, str] = {}  # noqa: RUF012  # replaced per instance
    #: The addresses (ip, port) of the servers found in the wrong role.
    peers: list[tuple[str, int]] = []  # noqa: RUF012  # replaced per instance


class ConnectionLost(PoolError):
    """A connection held by its borrower died while a transaction was open on it.

    Raised before the next operation is sent, when the connection sat unused in the
    borrower's hands, the socket shows the server closed it, and statements had run since
    the last commit or rollback: that uncommitted work is gone. What is raised is a subclass
    of both this class and the driver's ``OperationalError`` (with MySQL's error code 2013),
    so existing ``except`` clauses still catch it. Its ``__cause__`` is the driver's own
    error for the dead connection. Call ``rollback()``, then run the transaction again.
    """

    __module__ = "poolwarden"

    #: What happened, in words (the message without the driver's error code).
    reason: str = ""
    #: Seconds the connection sat unused before the operation that found it dead.
    idle_seconds: float = 0.0
    #: The server's idle timeout for the session, if the pool read it (seconds).
    server_idle_timeout: float | None = None


def fresh_error(error: BaseException | None) -> BaseException:
    """A copy of an error shared by several waiters (a connect error that retrying will
    not fix), so that each raise gets its own traceback."""
    if error is None:
        return PoolError("internal error: woken without a connection or an error")
    try:
        clone = copy.copy(error)
    except Exception:
        return error
    if type(clone) is not type(error):
        return error
    # Notes (poolwarden's hints) live in __dict__, which some drivers' errors do not copy.
    notes = getattr(error, "__notes__", None)
    if notes and not getattr(clone, "__notes__", None):
        try:
            clone.__notes__ = list(notes)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            return error
    return clone
