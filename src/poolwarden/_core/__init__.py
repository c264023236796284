"""The pool's decisions, without I/O: who gets which connection, when one retires, what a
checkout or a return must do, and the counters and percentiles that say what happened.

Everything here is plain data and arithmetic under the caller's lock, driven by a clock the
caller passes in, so the Hypothesis state machines can run it without a server. The I/O
shells (``poolwarden._async`` and the generated ``poolwarden._sync``) carry its verdicts out.
"""

from .connecting import Backoff, ConnectResult, Waiter
from .core import PoolCore
from .verdicts import Verdict

__all__ = ["Backoff", "ConnectResult", "PoolCore", "Verdict", "Waiter"]
