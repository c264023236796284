"""The pool's tuning parameters, in one frozen dataclass.

Pool, AsyncPool, WardenPool, AsyncWardenPool and ``WardenPool.recreate()`` all take the
same twenty-one settings. Spelled out in each constructor, every name, default, check and
paragraph of documentation is repeated, and the copies can drift apart unnoticed.
:class:`PoolSettings` is the one place for them: its fields carry the names, defaults and
documentation, ``__post_init__`` applies the checks of :mod:`poolwarden._core.config`
(the messages users already see), and the values the engine reads on every checkout are
worked out once here. :class:`PoolOptions` types the same names for constructors written
as ``**options: Unpack[PoolOptions]``, and :meth:`PoolSettings.of` turns such keywords
into settings, with the error Python gives for an unknown keyword (plus a suggestion).

What is not a tuning parameter stays a constructor argument: the target, ``connect_args``,
``configure``, ``adapter``, ``resolver``, ``name`` and ``clock``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, cast

from ..adapters._roles import check_role
from .config import (
    PROXIES,
    check_choice,
    check_count,
    check_lifetime,
    check_optional_seconds,
    check_reset,
    check_seconds,
    check_sizes,
)
from .dbapi import Lifetime, LoadBalance, ProxyKind, ResetMode

# ``Unpack`` is only needed by type checkers and by ``typing.get_type_hints``; on 3.10 it
# lives in typing_extensions, which poolwarden does not depend on at run time.
if sys.version_info >= (3, 11):
    from typing import Unpack
elif TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SETTING_NAMES", "PoolOptions", "PoolSettings"]

#: What ``load_balance_hosts=`` may be.
BALANCE_MODES = ("disable", "random")


class PoolOptions(TypedDict, total=False):
    """The settings as keyword arguments (``**options: Unpack[PoolOptions]``): the same
    names and types as :class:`PoolSettings`'s fields, each optional."""

    pool_size: int
    max_overflow: int
    timeout: float | None
    connect_wait: float | None
    min_idle: int
    reset: ResetMode | None
    max_lifetime: Lifetime
    idle_timeout: float | None
    keepalive: Lifetime
    pre_ping: bool
    ping_after_idle: float | None
    validation_timeout: float
    probe: bool
    leak_threshold: float | None
    held_check_after: float | None
    max_connecting: int
    role: str
    hosts: Sequence[str] | None
    load_balance_hosts: LoadBalance
    dns_refresh: float | None
    proxy: ProxyKind | None


@dataclass(frozen=True, kw_only=True)
class PoolSettings:
    """How a pool sizes, checks, retires and routes its connections.

    Every field is checked when the settings are made (a bad value raises ``ValueError``
    naming the field and what is allowed) and stored normalized: seconds as ``float``,
    sizes as ``int``, ``role`` as its poolwarden name, ``hosts`` as a tuple. The settings
    are immutable; :meth:`replace` makes a checked copy with some fields changed.

    The fields after ``proxy`` are not settings but values derived from them for the
    engine's hot path (plain attribute reads): ``checkout_timeout``,
    ``connect_wait_floor``, ``held_check_interval``, ``ping_interval`` and
    ``balance_random``. They take no part in ``==``, ``hash`` or ``repr``, and cannot be
    passed in. (``dataclasses.fields()`` lists them, with ``init=False``; use
    :data:`SETTING_NAMES` or :meth:`options` for the settings alone.)
    """

    #: Connections kept open once opened (>= 0).
    pool_size: int = 5
    #: Extra connections allowed under load, closed on return (>= 0).
    max_overflow: int = 10
    #: Default seconds a checkout waits (>= 0; 0: not at all); ``None``: without limit (as
    #: QueuePool's ``timeout=None``).
    timeout: float | None = 30.0
    #: Seconds a checkout that finds room in the pool waits for the connection opened for
    #: it, when longer than ``timeout`` (SQLAlchemy's ``pool_timeout`` bounds only the wait
    #: for a connection someone else holds); ``None``: ``timeout``.
    connect_wait: float | None = None
    #: Idle connections opened and kept ready in the background.
    min_idle: int = 0
    #: What happens when a connection comes back: ``"rollback"`` (default) ends any
    #: transaction that may be open, including a read snapshot; ``"session"`` also clears
    #: session state (variables, temporary tables, ``SET SESSION``) with
    #: COM_RESET_CONNECTION or ``DISCARD ALL``; ``None`` does nothing.
    reset: ResetMode | None = "rollback"
    #: Seconds after which a connection is retired (when idle, or when it comes back).
    #: ``"auto"`` (default): 80% of the server's idle timeout for the session (MySQL
    #: ``wait_timeout``, PostgreSQL ``idle_session_timeout``), at most an hour; ``None``: no
    #: limit. Shortened by up to 10% each, so they do not all expire together.
    max_lifetime: Lifetime = "auto"
    #: Seconds after which idle connections beyond ``min_idle`` are closed.
    idle_timeout: float | None = None
    #: Seconds of idleness after which the ``min_idle`` connections are pinged in the
    #: background, so the server does not close them in quiet periods; ``"auto"``
    #: (default): half the server's idle timeout; ``None``: never.
    keepalive: Lifetime = "auto"
    #: Ping every connection before handing it out (one round trip each).
    pre_ping: bool = False
    #: Ping a connection idle at least this many seconds before handing it out (catches
    #: network paths that died silently); ``None``: never.
    ping_after_idle: float | None = 5.0
    #: Seconds a ping may take before the connection counts as dead.
    validation_timeout: float = 5.0
    #: Check each idle connection's socket before handing it out.
    probe: bool = True
    #: Seconds after which a connection still checked out is logged, once, with the stack
    #: that checked it out (``None``: off). The report shows the application's frames
    #: only, and counts those of the event loop, the frameworks and poolwarden it leaves
    #: out; set the environment variable ``POOLWARDEN_FULL_STACKS=1`` for every frame.
    leak_threshold: float | None = None
    #: Seconds a borrower may leave its connection unused before the next operation first
    #: probes it (no round trip). If the server closed it meanwhile, it is replaced in place
    #: when no transaction was open, or the operation raises
    #: :class:`~poolwarden.ConnectionLost` when one was. ``None``: never check.
    held_check_after: float | None = 1.0
    #: Connect attempts allowed at the same time.
    max_connecting: int = 4
    #: The server role the pool needs: ``"any"`` (default), ``"primary"`` (a server that
    #: accepts writes), ``"standby"`` (one that does not) or ``"prefer-standby"`` (libpq's
    #: ``target_session_attrs`` words). Checked on every connect and with every ping the
    #: pool makes anyway (after idleness); a connect that reaches another role is retried
    #: with backoff (:class:`~poolwarden.WrongRole`). With ``"primary"``, an error saying
    #: the server became read-only (MySQL 1290, 1836; PostgreSQL 25006 from a server
    #: reporting itself read-only) retires every connection to that server: a failover
    #: costs the writes in flight.
    role: str = "any"
    #: Servers to use instead of the URL's host (``["db1:3306", "db2"]``); a URL may list
    #: them too (``mysql+pymysql://u:pw@db1:3306,db2:3306/app``). Tried in order until one
    #: has the ``role`` needed (libpq does this itself for psycopg). Any sequence of
    #: strings is accepted (not a bare string); it is stored as a tuple.
    hosts: Sequence[str] | None = None
    #: ``"disable"`` (in order) or ``"random"`` (shuffled for each connect, spreading the
    #: pool's connections over the hosts).
    load_balance_hosts: LoadBalance = "disable"
    #: Seconds between re-resolutions of host names (not of IP addresses); connections to
    #: an address a name no longer resolves to are retired over the next few seconds.
    #: ``None``: never.
    dns_refresh: float | None = 30.0
    #: What sits between the pool and the server: ``"auto"`` (detected on the first
    #: connection), ``"pgbouncer"``, ``"proxysql"`` or ``None`` (none).
    proxy: ProxyKind | None = "auto"

    # -- derived in __post_init__, for the hot path --------------------------------------
    #: ``timeout`` as a number: infinity for ``None`` (no limit).
    checkout_timeout: float = field(init=False, repr=False, compare=False)
    #: The least a checkout that has a connection opened for it waits (0.0: ``timeout``).
    connect_wait_floor: float = field(init=False, repr=False, compare=False)
    #: ``held_check_after`` as a number: infinity for ``None`` (never check).
    held_check_interval: float = field(init=False, repr=False, compare=False)
    #: A ping is due once idle this long: 0.0 with ``pre_ping`` (every time), infinity
    #: when ``ping_after_idle`` is ``None`` (never).
    ping_interval: float = field(init=False, repr=False, compare=False)
    #: Whether ``load_balance_hosts`` is ``"random"``.
    balance_random: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check every field, store it normalized, and work out the derived values."""
        # The checks run in the order AsyncPool.__init__ ran them, so that with several
        # bad arguments the error named is the same one as before.
        put = self._put
        sizes = check_sizes(self.pool_size, self.max_overflow, self.min_idle)
        put("pool_size", int(sizes[0]))
        put("max_overflow", int(sizes[1]))
        put("min_idle", int(sizes[2]))
        put("timeout", check_optional_seconds("timeout", self.timeout, zero_ok=True))
        put("connect_wait", check_optional_seconds("connect_wait", self.connect_wait))
        put("leak_threshold", check_optional_seconds("leak_threshold", self.leak_threshold))
        held = check_optional_seconds("held_check_after", self.held_check_after, zero_ok=True)
        put("held_check_after", held)
        put("idle_timeout", check_optional_seconds("idle_timeout", self.idle_timeout))
        put("max_lifetime", check_lifetime("max_lifetime", self.max_lifetime))
        put("keepalive", check_lifetime("keepalive", self.keepalive))
        if not isinstance(self.pre_ping, bool) or not isinstance(self.probe, bool):
            raise ValueError("pre_ping and probe must be True or False")
        put("ping_after_idle", check_optional_seconds("ping_after_idle", self.ping_after_idle))
        put("role", check_role(self.role))
        put(
            "load_balance_hosts",
            check_choice("load_balance_hosts", self.load_balance_hosts, BALANCE_MODES),
        )
        put("proxy", check_choice("proxy", self.proxy, PROXIES))
        put("dns_refresh", check_optional_seconds("dns_refresh", self.dns_refresh))
        put("hosts", _check_hosts(self.hosts))
        put("reset", check_reset(self.reset))
        put("validation_timeout", check_seconds("validation_timeout", self.validation_timeout))
        put("max_connecting", int(check_count("max_connecting", self.max_connecting, 1)))
        self._derive()

    def _put(self, name: str, value: Any) -> None:
        # The dataclass is frozen; only __post_init__ writes, through this.
        object.__setattr__(self, name, value)

    def _derive(self) -> None:
        """The hot path's numbers: infinity stands for "never", so that the engine compares
        floats instead of testing for None on every checkout."""
        put = self._put
        put("checkout_timeout", math.inf if self.timeout is None else self.timeout)
        put("connect_wait_floor", self.connect_wait or 0.0)
        held = self.held_check_after
        put("held_check_interval", math.inf if held is None else held)
        after_idle = self.ping_after_idle
        put(
            "ping_interval",
            0.0 if self.pre_ping else math.inf if after_idle is None else after_idle,
        )
        put("balance_random", self.load_balance_hosts == "random")

    @classmethod
    def of(
        cls, owner: str, settings: PoolSettings | None, options: Mapping[str, Any]
    ) -> PoolSettings:
        """``settings`` (default: ``PoolSettings()``) with ``options`` applied on top, as
        :func:`dataclasses.replace` would, and checked: what a constructor taking
        ``settings=`` and ``**options`` builds. ``owner`` names that constructor in the
        ``TypeError`` for an unknown keyword, which suggests the setting probably meant.
        """
        if settings is None:
            base = cls()
        elif isinstance(settings, PoolSettings):
            base = settings
        else:
            raise ValueError(f"settings must be a PoolSettings or None, got {settings!r}")
        if not options:
            return base  # immutable, so sharing it is safe
        for key in options:
            if key not in _NAME_SET:
                raise TypeError(_unexpected(owner, key))
        return dataclasses.replace(base, **options)

    def replace(self, **changes: Unpack[PoolOptions]) -> PoolSettings:
        """A checked copy with ``changes`` applied (an unknown name is a ``TypeError``)."""
        return self.of(f"{type(self).__name__}.replace", self, changes)

    def options(self) -> PoolOptions:
        """The settings as keyword arguments: ``PoolSettings(**s.options()) == s``.
        (:func:`dataclasses.asdict` would add the derived fields, which ``__init__``
        refuses.)"""
        return cast(PoolOptions, {name: getattr(self, name) for name in SETTING_NAMES})


#: The settings' names, in field order (the derived fields left out).
SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(PoolSettings) if f.init)
_NAME_SET = frozenset(SETTING_NAMES)


def _check_hosts(hosts: Any) -> tuple[str, ...] | None:
    """``None``, or a non-empty sequence of non-empty strings, as a tuple (immutable, and
    hashable, like the rest of the settings)."""
    if hosts is None:
        return None
    # A bare string is a sequence of one-letter hosts: refused, as with_hosts() does.
    if not isinstance(hosts, (str, bytes)) and isinstance(hosts, Iterable):
        found = tuple(hosts)
        if found and all(isinstance(h, str) and h for h in found):
            return found
    raise ValueError(
        f"hosts must be a non-empty list of 'host' or 'host:port' strings, got {hosts!r}"
    )


def _unexpected(owner: str, key: str) -> str:
    """Python's message for an unknown keyword argument, with the likeliest setting."""
    message = f"{owner}() got an unexpected keyword argument {key!r}"
    close = difflib.get_close_matches(key, SETTING_NAMES, n=1)
    return f"{message} (did you mean {close[0]!r}?)" if close else message
