"""``retry_on_disconnect``: run a unit of work again when its connection was lost.

Only the caller knows whether a unit of work may safely run twice. A connection can die
after the server committed a statement but before the answer arrived, so a retried unit
that writes must be idempotent (an upsert, a write keyed by a request id, a transaction
whose commit is the last thing it does and whose effects are checked first). Reads are
always safe. Errors other than a lost connection are never retried.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar, cast

from ._core.config import check_count
from .adapters import for_exception
from .errors import ConnectionLost

__all__ = ["Attempt", "is_disconnect_error", "retry_on_disconnect"]

log = logging.getLogger("poolwarden")

F = TypeVar("F", bound=Callable[..., Any])


def is_disconnect_error(exc: BaseException) -> bool:
    """True when ``exc`` means the connection under the work was lost: poolwarden's
    :class:`~poolwarden.ConnectionLost`, an SQLAlchemy error for which the engine
    invalidated its connection, or a driver error poolwarden classifies as a disconnect
    (MySQL 2006/2013/..., PostgreSQL class 08, a closed connection)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionLost):
            return True
        if getattr(current, "connection_invalidated", False) is True:
            return True  # SQLAlchemy's DBAPIError after the dialect saw a disconnect
        adapter = for_exception(current)
        if adapter is not None and adapter.is_disconnect(current):
            return True
        # SQLAlchemy keeps the driver's error as ``orig``.
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else None
    return False


class Attempt:
    """One try of a unit of work, used as ``with attempt:`` inside the loop of
    :class:`retry_on_disconnect`. A lost connection that may be retried is swallowed
    here; any other error, or one on the last try, propagates."""

    __slots__ = ("_retry", "error", "number", "succeeded")

    def __init__(self, retry: retry_on_disconnect, number: int) -> None:
        self._retry = retry
        #: 1 for the first try.
        self.number = number
        self.succeeded = False
        #: The lost-connection error this try ended with, if any.
        self.error: BaseException | None = None

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            self.succeeded = True
            return False
        if self.number >= self._retry.attempts or not is_disconnect_error(exc):
            return False
        self.error = exc
        return True


class retry_on_disconnect:  # lower case: used like a function, @retry_on_disconnect()
    """Run a unit of work again, on a fresh connection, when its connection was lost.

    ``attempts`` is the total number of tries (2: the first and one more). The unit must
    check out its connection (or open its SQLAlchemy session) itself, so that a retry gets
    a new one; the pool has already discarded the dead one. Only lost-connection errors
    (:func:`is_disconnect_error`) are retried, never others, and only because the caller
    declared the unit safe to run twice. ``on_retry(error, attempt_number)`` runs before
    each retry, say to roll back a session the unit was given. As a decorator::

        @poolwarden.retry_on_disconnect(attempts=3)
        def record_visit(visit_id):
            with pool.connection() as conn:
                cur = conn.cursor()
                cur.execute("INSERT IGNORE INTO visits (id) VALUES (%s)", (visit_id,))
                conn.commit()

    or around a block (a ``with`` statement cannot run its body twice, so it is a loop)::

        for attempt in poolwarden.retry_on_disconnect(attempts=2):
            with attempt, Session(engine) as session:
                session.execute(select(Visit)).all()

    Coroutine functions are decorated as coroutine functions.
    """

    def __init__(
        self,
        attempts: int = 2,
        *,
        on_retry: Callable[[BaseException, int], Any] | None = None,
    ) -> None:
        self.attempts = check_count("attempts", attempts, minimum=1)
        if on_retry is not None and not callable(on_retry):
            raise ValueError(
                f"on_retry must be a callable taking (error, attempt number), got {on_retry!r}"
            )
        self._on_retry = on_retry

    def __iter__(self) -> Iterator[Attempt]:
        for number in range(1, self.attempts + 1):
            attempt = Attempt(self, number)
            yield attempt
            if attempt.error is None:
                return  # succeeded (or the body never ran ``with attempt``)
            self._retrying(attempt.error, number)

    def _retrying(self, error: BaseException, number: int) -> None:
        log.warning(
            "connection lost (attempt %d of %d), running the unit of work again: %s",
            number,
            self.attempts,
            error,
        )
        if self._on_retry is not None:
            self._on_retry(error, number)

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                for attempt in self:
                    with attempt:
                        return await func(*args, **kwargs)
                raise AssertionError("unreachable: the last attempt returns or raises")

            return cast(F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            for attempt in self:
                with attempt:
                    return func(*args, **kwargs)
            raise AssertionError("unreachable: the last attempt returns or raises")

        return cast(F, run)
