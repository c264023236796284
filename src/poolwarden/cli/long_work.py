"""doctor's notes on long work: what the server's statement, network and idle timeouts
mean for a long query and for a connection a job keeps while it does something else."""

from __future__ import annotations

from .findings import Finding, Severity
from .server_settings import ServerFacts

__all__ = ["check_long_work"]


def check_long_work(facts: ServerFacts) -> list[Finding]:
    """Every note that applies to this server, in the order doctor prints them."""
    findings = [statement_limit(facts)]
    if facts.kind == "mysql":
        findings += network_timeouts(facts)
    if facts.idle_timeout is not None:
        findings.append(held_idle(facts, facts.idle_timeout))
    if facts.kind == "postgresql":
        findings.append(idle_in_transaction(facts.idle_in_transaction_timeout))
    return findings


def statement_limit(facts: ServerFacts) -> Finding:
    """MariaDB ``max_statement_time``, MySQL ``max_execution_time`` (SELECTs only) or
    PostgreSQL ``statement_timeout``: set or not, and what happens at the limit."""
    name, limit, mysql = (
        facts.statement_timeout_name,
        facts.statement_timeout,
        facts.kind == "mysql",
    )
    if not mysql:
        error, scope = "SQLSTATE 57014 (canceling statement due to statement timeout)", "statement"
    elif facts.is_mariadb:
        error, scope = "error 1969 (ER_STATEMENT_TIMEOUT)", "query"
    else:
        error, scope = "error 3024 (ER_QUERY_TIMEOUT)", "SELECT"
    setting = f"SET SESSION {name} = " if mysql else "SET statement_timeout = "
    if limit is None:
        return Finding(
            Severity.INFO,
            "statement-timeout",
            f"no statement time limit ({name} is 0)",
            {name: 0},
            "A runaway query keeps its connection, and its place in the pool, until it ends; "
            "under load such queries exhaust the pool.",
            f"bound web requests' queries: {setting}<limit> in the pool's connect hook",
        )
    return Finding(
        Severity.INFO,
        "statement-timeout",
        f"a {scope} running longer than {name}={limit:g} s is aborted",
        {name: limit},
        f"It fails with {error}; the connection stays usable. Long reports and batch jobs "
        "need a session that raises the limit.",
        f"for a long job: {setting}<what it may take> in its session",
    )


def network_timeouts(facts: ServerFacts) -> list[Finding]:
    """MySQL's ``net_write_timeout`` and ``net_read_timeout``: a client that reads or
    sends too slowly in the middle of a statement is disconnected."""
    findings = []
    if facts.net_write_timeout is not None:
        findings.append(
            Finding(
                Severity.INFO,
                "net-write-timeout",
                f"a result read slower than net_write_timeout={facts.net_write_timeout:g} s "
                "drops the connection",
                {"net_write_timeout": facts.net_write_timeout},
                "The server waits that long for the client to take the next part of a result; "
                "a streamed (unbuffered, server-side cursor) result processed slowly row by "
                "row loses the connection: '2013 Lost connection to server during query'.",
                "read results in full before slow work, or raise net_write_timeout for that "
                "session",
            )
        )
    if facts.net_read_timeout is not None:
        findings.append(
            Finding(
                Severity.INFO,
                "net-read-timeout",
                f"a statement sent slower than net_read_timeout={facts.net_read_timeout:g} s "
                "drops the connection",
                {"net_read_timeout": facts.net_read_timeout},
                "The server waits that long for the rest of a statement or its data (a large "
                "INSERT, LOAD DATA LOCAL); a client that stalls longer is disconnected (2013).",
            )
        )
    return findings


def held_idle(facts: ServerFacts, timeout: float) -> Finding:
    """The idle timeout also runs while a connection is checked out and unused."""
    error = (
        "'2013 Lost connection to server during query'; MySQL 8 sends '4031 The client was "
        "disconnected by the server because of inactivity'"
        if facts.kind == "mysql"
        else "'terminating connection due to idle-session timeout'"
    )
    return Finding(
        Severity.INFO,
        "held-idle",
        f"a connection held but unused for {facts.idle_timeout_name}={timeout:g} s is closed "
        "by the server",
        {facts.idle_timeout_name: timeout},
        "The server's idle timeout also runs while a connection is checked out: a job that "
        "keeps a session open while it calls other services or computes loses the "
        f"connection, and with other pools its next query fails ({error}). poolwarden "
        "checks a held connection before the next statement after a pause: it replaces it "
        "when no transaction was open, and raises ConnectionLost when one was, since that "
        "work is gone.",
        "commit before long work (or give the connection back and take a new one after); "
        "re-run units of work that are safe to repeat with poolwarden.retry_on_disconnect",
    )


def idle_in_transaction(limit: float | None) -> Finding:
    """PostgreSQL ends sessions idle inside a transaction after
    ``idle_in_transaction_session_timeout``, or never."""
    name = "idle_in_transaction_session_timeout"
    if limit is None:
        return Finding(
            Severity.INFO,
            "idle-in-transaction",
            f"sessions idle inside a transaction are never ended ({name} is 0)",
            {name: 0},
            "A connection left in an open transaction keeps its locks and its snapshot "
            "(holding back VACUUM) until the pool gets it back.",
            f"ALTER ROLE ... SET {name} = '5min'",
        )
    return Finding(
        Severity.INFO,
        "idle-in-transaction",
        f"a session idle inside a transaction for {name}={limit:g} s is terminated",
        {name: limit},
        "A job that opens a transaction and then waits loses its connection (FATAL 25P03), "
        "and its uncommitted work is rolled back.",
    )
