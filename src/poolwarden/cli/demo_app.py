"""The application code the demo runs: two request handlers, one with the classic bug.

It is compiled under the name ``demo_app.py`` rather than run from inside the poolwarden
package, because poolwarden names the *application's* line that checked a connection out
and skips its own frames: from here the leak report and the timeout message point at the
handler below, as they would in a real application.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable
from typing import Any

__all__ = ["FILENAME", "SOURCE", "load"]

FILENAME = "demo_app.py"

SOURCE = '''\
from sqlalchemy import text


def handler_that_forgets_to_return(engine, held):
    """A request handler without 'finally: conn.close()'."""
    conn = engine.connect()
    conn.execute(text("SELECT 1"))
    held.append(conn)  # never closed: the pool never gets it back


def request(engine):
    """A request handler that gives its connection back."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT 1")).scalar()
'''


def load() -> dict[str, Callable[..., Any]]:
    """Compile the handlers; register their source so that stacks show its lines."""
    lines = SOURCE.splitlines(keepends=True)
    # An mtime of None tells linecache the source has no file to check against.
    linecache.cache[FILENAME] = (len(SOURCE), None, lines, FILENAME)
    namespace: dict[str, Any] = {"__name__": "demo_app"}
    exec(compile(SOURCE, FILENAME, "exec"), namespace)
    return {name: namespace[name] for name in ("handler_that_forgets_to_return", "request")}
