"""The held-connection rule: what to do with a connection the borrower kept unused, no I/O.

A borrower may keep a checked-out connection idle long enough for the server to close it.
Before its next operation the proxy probes the socket (the I/O, done by the caller) and
asks :func:`held_action` what follows. The rule, for a connection found dead:

- a transaction was open and the borrower is not ending it: its work is gone, so the
  borrower hears it (``ConnectionLost``);
- session state was set on it (SET, USE, an unknown driver call, SQLAlchemy
  characteristics) that a new connection would lack, and that state outlives this
  operation: the borrower hears it too, instead of a replacement silently without it;
- otherwise nothing can be lost: the connection is replaced in place.

A connection already reported raises again at every operation until the borrower rolls
back, which replaces it; one an operation already failed on is left to the driver.

Both proxies use this rule, poolwarden's own (``_async/_proxy.py``, with the sync one
generated from it) and SQLAlchemy's (``sqlalchemy/_held.py``). They differ in one input,
``session_outlives_rollback``: whether the session can go on after a rollback through the
proxy, which decides whether changed session state is reported during a rollback too.

- poolwarden's proxy: ``True``. Its ``rollback()`` is only ever the borrower's (the
  pool's reset on return calls the driver directly), and the borrower keeps the connection
  afterwards; its SET/USE state would silently vanish with a replacement. So a rollback
  reports it, and the borrower's next rollback, already told, gets the replacement.
- SQLAlchemy's ``_ConnectionFairy``: ``False``. Its ``rollback()`` is also the rollback at
  ``Connection.close()``: ``Transaction.close()`` rolls back through the same
  ``Connection._rollback_impl`` as a user's ``rollback()`` (a raise would escape from
  ``close()`` as a disconnect error), and without a transaction ``_finalize_fairy`` ->
  ``_ConnectionFairy._reset`` calls ``dialect.do_rollback(fairy)`` (a raise is only logged,
  "Exception during reset or similar", and the record invalidated). There the session ends
  anyway: ``_ConnectionRecord.checkin`` then runs ``finalize_callback``, SQLAlchemy's undoing
  of its characteristics, which does no harm to a new connection. Reporting there tells no
  one anything useful and costs a failed close or an error log, so it replaces.

So the rules should differ, by that flag alone. The price of ``False`` is a known gap: a
user's own ``Connection.rollback()`` after a long pause, with session state changed, gets a
replacement without that state (SQLAlchemy applies a ``Connection.execution_options()``
characteristic once and does not apply it again to a new DB-API connection). The fairy
cannot tell that rollback from the one at ``close()`` with a transaction open, so closing
the gap needs the SQLAlchemy ``Connection`` to say which one it is.
"""

from __future__ import annotations

import enum

__all__ = ["HeldAction", "held_action", "needs_probe"]


class HeldAction(enum.Enum):
    """What the proxy does with a held connection before the borrower's next operation."""

    #: It looks alive, or an operation already failed on it (the driver reports the rest):
    #: go on with the same connection.
    KEEP = "keep"
    #: It is dead and nothing can be lost (or the borrower, already told, is rolling
    #: back): put a new connection in its place and go on.
    REPLACE = "replace"
    #: It is dead with a transaction open: raise ConnectionLost, saying the transaction's
    #: work is gone (``lost_error(..., open_transaction=True, ...)``).
    LOST_TRANSACTION = "lost_transaction"
    #: It is dead with session state a new connection would lack: raise ConnectionLost,
    #: saying that state is gone (``lost_error(..., open_transaction=False, ...)``).
    LOST_SESSION = "lost_session"
    #: ConnectionLost was raised for it already: raise again, without probing or counting
    #: another loss, until the borrower rolls back.
    STILL_LOST = "still_lost"


def needs_probe(*, already_lost: bool, broken: bool) -> bool:
    """Whether :func:`held_action` needs to know if the connection is dead: not once it was
    reported (the borrower must roll back first) or an operation failed on it (the driver
    says the rest). The caller probes only then; otherwise it passes ``dead=False``."""
    return not already_lost and not broken


def held_action(
    *,
    dead: bool,
    open_transaction: bool,
    session_changed: bool,
    ending: bool,
    session_outlives_rollback: bool,
    already_lost: bool = False,
    broken: bool = False,
) -> HeldAction:
    """What to do with a held connection before the borrower's next operation.

    ``dead``: the probe found the server closed it (read only when :func:`needs_probe`).
    ``open_transaction``: a transaction was open on it, as the probe found (read only when
    ``dead``). ``session_changed``: session state was set on it that a new connection would
    lack (read only when ``dead``). ``ending``: the operation is a rollback, which discards
    any transaction anyway. ``already_lost``: ConnectionLost was raised for it and the
    borrower has not rolled back since. ``broken``: an operation already failed on it.

    ``session_outlives_rollback``: whether the session goes on after a rollback through
    this proxy, so that changed session state is reported even when ``ending``. True for
    poolwarden's proxy, whose ``rollback()`` is only ever the borrower's, who keeps the
    connection and would silently lose its SET/USE state with a replacement. False for
    SQLAlchemy's, whose ``rollback()`` is also the reset at ``Connection.close()``, where
    the session ends (SQLAlchemy undoes its own characteristics on return) and a raise would
    only fail the close or be logged. See the module docstring.
    """
    if already_lost:
        # The borrower was told; its rollback acknowledges that, and gets a new connection.
        return HeldAction.REPLACE if ending else HeldAction.STILL_LOST
    if broken or not dead:
        return HeldAction.KEEP
    if open_transaction and not ending:
        return HeldAction.LOST_TRANSACTION
    if session_changed and (session_outlives_rollback or not ending):
        # With a transaction open too (only possible here when ending), the message has
        # always been the transaction's: kept, as that choice is not this rule's to change.
        return HeldAction.LOST_TRANSACTION if open_transaction else HeldAction.LOST_SESSION
    return HeldAction.REPLACE
