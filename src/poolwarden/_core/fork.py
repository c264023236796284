"""Fork safety: a child process must never use, or close at the server, a parent's connection."""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["register"]


class _ForkAware(Protocol):
    def after_fork(self) -> None: ...


_pools: weakref.WeakSet[_ForkAware] = weakref.WeakSet()


def register(pool: _ForkAware) -> None:
    """Have ``pool`` start afresh in every child forked from now on."""
    _pools.add(pool)


def _after_fork_in_child() -> None:
    for pool in list(_pools):
        pool.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
