"""The ``poolwarden`` command: ``demo``, ``doctor`` and ``size``.

Its third-party modules (Click, rich, SQLAlchemy, matplotlib) come with the ``cli``
extra; this module imports none of them, so that a missing one is reported in one line.
"""

from __future__ import annotations

import sys

__all__ = ["EXTRA_MODULES", "main", "missing_extra"]

#: Top-level modules the ``cli`` extra installs.
EXTRA_MODULES = frozenset({"click", "rich", "sqlalchemy", "matplotlib", "pymysql"})


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The line to print when ``exc`` is a module of the ``cli`` extra, else None."""
    name = (exc.name or "").partition(".")[0]
    if name not in EXTRA_MODULES:
        return None
    return (
        f"poolwarden: the command needs the '{name}' module, which is not installed; "
        "install the command's extra with: pip install 'poolwarden[cli]'"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command with ``argv`` (default: the process's arguments); return its exit
    status."""
    try:
        from .app import run
    except ModuleNotFoundError as exc:
        line = missing_extra(exc)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 2
    return run(argv)
