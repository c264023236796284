"""Where a connection was checked out: cheap to record, formatted only when reported."""

from __future__ import annotations

import linecache
from types import CodeType, FrameType

__all__ = ["capture_stack", "format_stack", "line_of"]

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


def format_stack(stack: list[tuple[CodeType, int]] | None) -> str:
    """Render a captured stack like a traceback, outermost call first."""
    if not stack:
        return "  (stack not recorded)"
    lines = []
    for code, lineno in reversed(stack):
        lines.append(f'  File "{code.co_filename}", line {lineno}, in {code.co_name}')
        source = linecache.getline(code.co_filename, lineno).strip()
        if source:
            lines.append(f"    {source}")
    return "\n".join(lines)


def line_of(code: CodeType, lasti: int) -> int:
    """The source line of bytecode offset ``lasti`` (a frame's ``f_lasti``) in ``code``."""
    for start, end, line in code.co_lines():
        if start <= lasti < end:
            return line or code.co_firstlineno
    return code.co_firstlineno
