"""Where a connection was checked out: cheap to record, formatted only when reported.

A leak report shows the application's frames: the event loop, the web framework's
middleware and poolwarden's own calls (often 40 frames of an asyncio request's 48) are
left out and counted, unless ``POOLWARDEN_FULL_STACKS=1`` is set in the environment.
"""

from __future__ import annotations

import importlib.util
import linecache
import os
import sysconfig
from collections import Counter
from types import CodeType, FrameType

__all__ = ["FULL_STACKS_ENV", "capture_stack", "format_stack", "line_of"]

#: Set to 1 (or true/yes) to show every frame of a checkout's stack in leak reports.
FULL_STACKS_ENV = "POOLWARDEN_FULL_STACKS"

#: Modules whose frames a leak report leaves out: the standard library's event loop and
#: thread machinery, the usual web and test frameworks, the database layers, poolwarden.
FRAMEWORKS = (
    "asyncio",
    "concurrent",
    "threading",
    "contextlib",
    "runpy",
    "selectors",
    "socketserver",
    "anyio",
    "sniffio",
    "trio",
    "uvloop",
    "starlette",
    "fastapi",
    "uvicorn",
    "gunicorn",
    "asgiref",
    "flask",
    "werkzeug",
    "django",
    "sqlalchemy",
    "sqlmodel",
    "flask_sqlalchemy",
    "greenlet",
    "_pytest",
    "pytest",
    "pluggy",
    "poolwarden",
)

#: Innermost frames shown when every frame is a framework's (a checkout made by the
#: framework itself).
KEEP_WHEN_NONE_LEFT = 5

#: Frames kept for a leak report; enough to reach the request handler in a web app.
STACK_LIMIT = 48


def capture_stack(frame: FrameType | None, limit: int = STACK_LIMIT) -> list[tuple[CodeType, int]]:
    """The (code, line) pairs from ``frame`` outwards. Storing code objects rather than
    frames keeps no local variables alive and costs a few microseconds."""
    stack: list[tuple[CodeType, int]] = []
    while frame is not None and len(stack) < limit:
        stack.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back
    return stack


def _framework_paths() -> dict[str, str]:
    """Where each of :data:`FRAMEWORKS` lives (a package's directory with a trailing
    separator, or a module's file) -> its name; those not installed are left out."""
    paths: dict[str, str] = {}
    for name in FRAMEWORKS:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        for location in spec.submodule_search_locations or []:
            paths[os.path.join(location, "")] = name
        if not spec.submodule_search_locations and spec.origin:
            paths[spec.origin] = name
    # The environment's console scripts (bin/pytest, bin/uvicorn): a framework's launcher.
    paths[os.path.join(sysconfig.get_path("scripts"), "")] = "console script"
    return paths


_PATHS: dict[str, str] | None = None
#: File name -> the framework it belongs to ("" for the application's).
_OWNER: dict[str, str] = {}


def _owner(filename: str) -> str:
    """The framework a source file belongs to, or "" for the application's own code."""
    global _PATHS
    owner = _OWNER.get(filename)
    if owner is None:
        if _PATHS is None:
            _PATHS = _framework_paths()
        if filename.startswith("<"):  # generated at run time, frozen, or a REPL
            owner = "generated code"
        else:
            owner = next((name for path, name in _PATHS.items() if filename.startswith(path)), "")
        _OWNER[filename] = owner
    return owner


def _full_wanted() -> bool:
    return os.environ.get(FULL_STACKS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def format_stack(stack: list[tuple[CodeType, int]] | None, full: bool | None = None) -> str:
    """Render a captured stack like a traceback, outermost call first.

    Only the application's frames are shown (at least the innermost one; when none is
    the application's, the innermost few), followed by a count of the frames left out by
    framework; ``full=True``, or ``POOLWARDEN_FULL_STACKS=1`` in the environment when
    ``full`` is None, shows every frame.
    """
    if not stack:
        return "  (stack not recorded)"
    if full is None:
        full = _full_wanted()
    shown, hidden = stack, Counter[str]()
    if not full:
        shown = [(code, line) for code, line in stack if not _owner(code.co_filename)]
        if not shown:
            shown = stack[:KEEP_WHEN_NONE_LEFT]
        kept = {id(code) for code, _ in shown}
        hidden.update(_owner(code.co_filename) for code, _ in stack if id(code) not in kept)
    lines = []
    for code, lineno in reversed(shown):
        lines.append(f'  File "{code.co_filename}", line {lineno}, in {code.co_name}')
        source = linecache.getline(code.co_filename, lineno).strip()
        if source:
            lines.append(f"    {source}")
    if hidden:
        counts = ", ".join(f"{count} {name}" for name, count in hidden.most_common())
        lines.append(
            f"  ({sum(hidden.values())} frame(s) of {counts} not shown; "
            f"{FULL_STACKS_ENV}=1 shows them)"
        )
    return "\n".join(lines)


def line_of(code: CodeType, lasti: int) -> int:
    """The source line of bytecode offset ``lasti`` (a frame's ``f_lasti``) in ``code``."""
    for start, end, line in code.co_lines():
        if start <= lasti < end:
            return line or code.co_firstlineno
    return code.co_firstlineno
