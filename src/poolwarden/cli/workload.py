"""What ``poolwarden size`` runs: the workload's statements (a query, a SQL file) or a
function of the user's, and the server-side time limit that keeps each statement within
the time ``--duration`` leaves."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CommandError, describe_query_error, driver_message
from .server_settings import ServerFacts
from .workload_function import load_function

__all__ = [
    "STATEMENT_TIMEOUT_MESSAGES",
    "Workload",
    "is_function_spec",
    "limit_sql",
    "statement_limit",
]

#: ``package.module:function`` (a file of that name, if there is one, is read as SQL).
_FUNCTION_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_function_spec(text: str) -> bool:
    """True when ``--workload`` names a ``module:function`` rather than a SQL file."""
    return bool(_FUNCTION_SPEC.match(text)) and not Path(text).exists()


#: How the servers say a statement hit its time limit (MariaDB 1969, MySQL 3024,
#: PostgreSQL 57014).
STATEMENT_TIMEOUT_MESSAGES = (
    "max_statement_time exceeded",
    "maximum statement execution time exceeded",
    "statement timeout",
)


def limit_sql(facts: ServerFacts, seconds: float) -> str:
    """The statement that limits each later statement of the session to ``seconds``, with
    the setting this server knows (MariaDB takes fractions of a second, the others
    milliseconds)."""
    millis = max(1, math.ceil(seconds * 1000))
    if facts.kind == "postgresql":
        return f"SET statement_timeout = {millis}"
    if facts.is_mariadb:
        return f"SET SESSION max_statement_time = {millis / 1000:.3f}"
    return f"SET SESSION max_execution_time = {millis}"


def statement_limit(facts: ServerFacts, seconds: float) -> Callable[[Any], None]:
    """A connect hook that bounds each statement of the session to ``seconds``."""
    sql = limit_sql(facts, seconds)

    def configure(raw: Any) -> None:
        cursor = raw.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()
        raw.commit()  # PostgreSQL's SET would be undone by the pool's rollback

    return configure


def _execute(cursor: Any, sql: str) -> None:
    cursor.execute(sql)
    if cursor.description is not None:
        cursor.fetchall()


@dataclass(frozen=True)
class Workload:
    """What one request runs: SQL statements in order, or a function given the
    connection; then a commit."""

    statements: tuple[str, ...]
    label: str
    #: A callable taking a DB-API connection, instead of the statements.
    function: Callable[[Any], object] | None = None

    @classmethod
    def from_option(cls, text: str) -> Workload:
        """``--workload``: a SQL file, or ``module:function``."""
        if is_function_spec(text):
            return cls((), text, load_function(text))
        return cls.from_file(text)

    @classmethod
    def from_query(cls, sql: str) -> Workload:
        """One statement per request."""
        if not sql.strip():
            raise CommandError("--query is empty: give the SQL one request runs")
        return cls((sql.strip(),), sql.strip())

    @classmethod
    def from_file(cls, path: str) -> Workload:
        """Statements separated by ``;`` at the end of a line; ``--`` comment lines are
        skipped."""
        if not Path(path).exists():
            raise CommandError(
                f"--workload: no such file {path!r} (give a file of SQL statements, or "
                "module:function, a function taking a connection)"
            )
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read the workload file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(
                f"--workload: {path} is not a text file of SQL statements (UTF-8)"
            ) from None
        lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
        statements: list[str] = []
        current: list[str] = []
        for line in lines:
            current.append(line)
            if line.rstrip().endswith(";"):
                statements.append("\n".join(current).strip().rstrip(";").strip())
                current = []
        statements.append("\n".join(current).strip())
        statements = [sql for sql in statements if sql]
        if not statements:
            raise CommandError(f"the workload file {path} holds no SQL statement")
        return cls(tuple(statements), f"{Path(path).name} ({len(statements)} statement(s))")

    def run(self, conn: Any, end: float) -> bool:
        """Run the statements on ``conn`` and commit; True when done. Past ``end`` (a
        ``time.perf_counter()`` value) no further statement starts: the request could no
        longer count, and the rest would only run past the time allowed (the caller's
        pool rolls back what was started)."""
        if self.function is not None:
            if time.perf_counter() >= end:
                return False
            self.function(conn)
            conn.commit()
            return True
        cursor = conn.cursor()
        try:
            for sql in self.statements:
                if time.perf_counter() >= end:
                    return False
                _execute(cursor, sql)
        finally:
            cursor.close()
        conn.commit()
        return True

    def check(self, raw: Any, facts: ServerFacts, deadline: float, duration: float) -> None:
        """Run the workload once on ``raw`` and roll back; a failure names the statement.

        Each statement may only take the time left until ``deadline`` (the server stops
        it then), so the statements together cannot run past it.
        """
        if self.function is not None:
            self._check_function(raw, facts, deadline, duration)
            return
        cursor = raw.cursor()
        try:
            for number, sql in enumerate(self.statements):
                left = deadline - time.perf_counter()
                if left <= 0:
                    spent = (
                        f"running the workload once took all of --duration ({duration:g} s) "
                        f"before the statement {sql[:60]!r}"
                        if number
                        else f"connecting and preparing the report took all of --duration "
                        f"({duration:g} s) before the workload's first run"
                    )
                    raise CommandError(f"{spent}: give a longer --duration")
                cursor.execute(limit_sql(facts, left))
                try:
                    _execute(cursor, sql)
                except Exception as exc:
                    _raise_if_stopped(exc, f"the statement {sql[:60]!r}", left, duration)
                    raise CommandError(describe_query_error(exc, sql)) from exc
        finally:
            cursor.close()
        raw.rollback()

    def _check_function(
        self, raw: Any, facts: ServerFacts, deadline: float, duration: float
    ) -> None:
        """Run the function once on ``raw``, its statements limited to the time left."""
        left = deadline - time.perf_counter()
        if left <= 0:
            raise CommandError(
                f"connecting and preparing the report took all of --duration ({duration:g} s) "
                "before the workload's first run: give a longer --duration"
            )
        statement_limit(facts, left)(raw)
        assert self.function is not None
        try:
            self.function(raw)
        except Exception as exc:
            _raise_if_stopped(exc, f"the workload {self.label}", left, duration)
            raise CommandError(
                f"the workload {self.label} failed on its first run: "
                f"{type(exc).__name__}: {driver_message(exc)}"
            ) from exc
        finally:
            try:
                raw.rollback()
            except Exception:
                pass


def _raise_if_stopped(exc: Exception, what: str, left: float, duration: float) -> None:
    """Raise the error that says ``what`` ran past the time --duration left it, when ``exc``
    is the server stopping a statement at its time limit."""
    if any(text in str(exc).lower() for text in STATEMENT_TIMEOUT_MESSAGES):
        raise CommandError(
            f"{what} did not finish within the {left:.1f} s left of --duration "
            f"({duration:g} s); the server stopped it: {driver_message(exc)}"
        ) from exc
