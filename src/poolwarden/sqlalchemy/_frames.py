"""Where the application asked for a connection: the first frame outside the libraries."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from types import CodeType, FrameType

__all__ = ["CallerFinder", "user_frame"]


def _library_prefixes() -> tuple[str, ...]:
    """Where SQLAlchemy, poolwarden and the glue around them live: frames there are
    skipped when naming who checked a connection out."""
    prefixes = [contextlib.__file__]
    for name in ("sqlalchemy", "poolwarden", "flask_sqlalchemy", "sqlmodel"):
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            prefixes.append(os.path.join(location, ""))
    return tuple(prefixes)


_LIBRARY_PREFIXES = _library_prefixes()

#: Whether a source file belongs to the libraries, by file name: checkouts walk the same
#: few frames over and over, and a dictionary lookup (a string's hash is cached) is cheaper
#: than comparing prefixes. Keyed by file name rather than code object: a code object
#: hashes its name, constants and bytecode on every lookup, which was about a quarter of
#: WardenPool's cost over QueuePool per engine request.
_IN_LIBRARY: dict[str, bool] = {}


def user_frame(frame: FrameType | None) -> FrameType:
    """The innermost frame outside SQLAlchemy, poolwarden and the framework glue around
    them: where the application asked for a connection."""
    first = frame
    known = _IN_LIBRARY
    while frame is not None:
        filename = frame.f_code.co_filename
        in_library = known.get(filename)
        if in_library is None:
            # "<...>": code SQLAlchemy generates at run time (its ``_go()`` wrappers).
            in_library = known[filename] = filename.startswith(_LIBRARY_PREFIXES) or (
                filename.startswith("<")
            )
        if not in_library:
            return frame
        frame = frame.f_back
    assert first is not None
    return first


class CallerFinder:
    """The application's frame for a checkout that SQLAlchemy runs through a fixed chain
    of its own frames (``Pool.connect`` -> ``_ConnectionFairy._checkout`` ->
    ``_ConnectionRecord.checkout`` -> ``_do_get``): the chain's length is found at the
    first checkout, and later ones start looking right above ``entry`` (``connect``).

    Each frame looked at costs Python 3.11+ an allocation (frames become objects only
    when asked for, and ``f_back`` asks), where ``sys._getframe(n)`` makes only the one it
    returns: jumping over the chain halves the frames made per checkout. The chain is
    SQLAlchemy's code, the same at every checkout of a process.
    """

    __slots__ = ("_depth", "_entry")

    def __init__(self, entry: CodeType) -> None:
        self._entry = entry
        #: How far above :meth:`frame` the caller of ``entry`` is (0: not known yet).
        self._depth = 0

    def frame(self) -> FrameType:
        """The innermost application frame above the ``entry`` frame (or, when there is
        no ``entry`` frame on the stack, the innermost one outside the libraries)."""
        depth = self._depth
        if depth:
            return user_frame(sys._getframe(depth))
        frame: FrameType | None = sys._getframe(1)
        depth = 2
        while frame is not None and frame.f_code is not self._entry:
            frame, depth = frame.f_back, depth + 1
        if frame is None:
            return user_frame(sys._getframe(1))
        self._depth = depth
        return user_frame(frame.f_back)
