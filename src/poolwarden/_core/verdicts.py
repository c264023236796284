"""The verdicts the pool's books hand its I/O shell."""

from __future__ import annotations

import enum

__all__ = ["Verdict"]


class Verdict(enum.Enum):
    """What an idle connection taken for a checkout needs before it is handed out (see
    :meth:`poolwarden._core.PoolCore.verdict`)."""

    #: Fit: hand it out.
    OK = "ok"
    #: Past its lifetime: close it (not a failure) and take another.
    RETIRE = "retire"
    #: Idle too long, or suspect after a disconnect elsewhere: it must answer a ping.
    PING = "ping"
    #: Its socket shows the server closed it: close it and take another.
    DEAD_BY_PROBE = "dead by probe"
    #: It did not answer its ping: close it and take another.
    DEAD = "dead"
