"""The exceptions poolwarden raises itself.

Driver errors are never wrapped: a failed query raises the driver's own exception with its
type and error code intact. These classes cover what only the pool can know.
"""

from __future__ import annotations

__all__ = ["ConnectionReturned", "PoolClosed", "PoolError", "PoolTimeout"]


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
