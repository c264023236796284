"""doctor's checks: pool settings against what the server says. Plain functions of their
inputs, no I/O, so each is tested without a server."""

from __future__ import annotations

from dataclasses import dataclass

from .findings import Finding, PoolPlan, Severity
from .fixes import with_fleet_changes
from .fleet import FLEET_SHARE, check_account_limits, check_fleet
from .long_work import check_long_work
from .server_settings import ServerFacts

__all__ = ["FLEET_SHARE", "SizeAdvice", "run_checks", "suggest_recycle"]


@dataclass(frozen=True)
class SizeAdvice:
    """What ``poolwarden size`` measured and recommended (from its ``report.json``)."""

    pool_size: int
    max_overflow: int
    workload: str
    source: str


def suggest_recycle(idle_timeout: float) -> float:
    """A ``pool_recycle`` safely below the idle timeout: 80% of it in whole seconds, at
    most an hour (what poolwarden's own automatic lifetime uses); half of it for a
    timeout too short for whole seconds (PostgreSQL's is in milliseconds), since the
    value must stay above 0 (a reconnect at every checkout) and below the timeout."""
    whole = min(3600, int(idle_timeout * 0.8))
    return whole if whole >= 1 else idle_timeout / 2


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _recycle_every_checkout(
    plan: PoolPlan, numbers: dict[str, object], suggestion: float | None, name: str
) -> Finding:
    """SQLAlchemy recycles a connection older than pool_recycle at checkout unless it is
    -1, so 0 replaces every connection at every checkout."""
    fix = (
        f"pool_recycle={suggestion:g} (below {name}), or -1 to turn recycling off"
        if suggestion is not None
        else "pool_recycle=-1 (off): the server closes no idle sessions"
    )
    return Finding(
        Severity.WARNING,
        "recycle",
        "pool_recycle=0 reconnects at every checkout",
        numbers,
        "SQLAlchemy recycles a connection whose age exceeds pool_recycle when it is checked "
        "out (only -1 turns this off); with 0 every checkout closes the connection and "
        "opens a new one: a connect per request, and no pooling at all.",
        fix,
        {"pool_recycle": suggestion},  # None: off (-1)
    )


def check_recycle(plan: PoolPlan, facts: ServerFacts) -> Finding:
    """pool_recycle must be below the idle timeout, or the server closes connections
    a QueuePool still hands out."""
    name, timeout = facts.idle_timeout_name, facts.idle_timeout
    numbers: dict[str, object] = {name: timeout, "pool_recycle": plan.pool_recycle}
    if timeout is None and plan.pool_recycle == 0:
        return _recycle_every_checkout(plan, numbers, None, name)
    if timeout is None:
        return Finding(
            Severity.OK,
            "recycle",
            f"the server closes no idle sessions ({name} is off)",
            numbers,
            "Idle connections are not closed by the server; a firewall or NAT on the way "
            "may still drop them silently.",
        )
    suggestion = suggest_recycle(timeout)
    if plan.pool_recycle == 0:
        return _recycle_every_checkout(plan, numbers, suggestion, name)
    if plan.pool_recycle is None:
        return Finding(
            Severity.INFO,
            "recycle",
            f"pool_recycle is not set; the server closes sessions idle for {name}="
            f"{_seconds(timeout)}",
            numbers,
            "A plain QueuePool then keeps idle connections past the server's timeout and "
            "hands them out dead after a quiet period ('2006 MySQL server has gone away', "
            "'2013 Lost connection', 'server closed the connection unexpectedly'). "
            "poolwarden's WardenPool needs no pool_recycle: it reads the timeout and "
            "retires connections before it.",
            f"with a plain QueuePool: pool_recycle={suggestion:g} (or pool_pre_ping=True); "
            "or use poolwarden.sqlalchemy.create_engine",
            {"pool_recycle": suggestion},
        )
    if plan.pool_recycle >= timeout:
        return Finding(
            Severity.ERROR,
            "recycle",
            f"pool_recycle={plan.pool_recycle:g} is not below {name}={timeout:g}",
            numbers,
            f"The server closes a connection idle for {_seconds(timeout)}; the pool keeps "
            f"it until it is {_seconds(plan.pool_recycle)} old, so connections idle in "
            "between are handed out dead: the first query on each fails.",
            f"pool_recycle={suggestion:g} (below {name}={timeout:g}); or drop pool_recycle "
            "and use poolwarden's WardenPool, which retires connections before the "
            "server's timeout by itself",
            {"pool_recycle": suggestion},
        )
    return Finding(
        Severity.OK,
        "recycle",
        f"pool_recycle={plan.pool_recycle:g} is below {name}={timeout:g}",
        numbers,
    )


def check_session_timeout(facts: ServerFacts) -> Finding | None:
    """Say so when the session gets another idle timeout than the global one (an account
    setting or an init command changed it): pools get the session value."""
    session, global_ = facts.idle_timeout, facts.global_idle_timeout
    if facts.kind != "mysql" or session == global_:
        return None
    return Finding(
        Severity.INFO,
        "session-timeout",
        f"this login's sessions get wait_timeout={session or 0:g}, the server's global "
        f"value is {global_ or 0:g}",
        {"wait_timeout (session)": session, "wait_timeout (global)": global_},
        "An init command or the connection's options change it. Pool settings are "
        "checked against the session value, which is what the application's connections "
        "get when they use the same URL.",
    )


def check_useful_concurrency(
    plan: PoolPlan, facts: ServerFacts, advice: SizeAdvice | None
) -> Finding:
    """A pool larger than the concurrency that still adds throughput only adds load."""
    if advice is not None:
        return _against_measurement(plan, advice)
    return _server_seen(plan, facts)


def _against_measurement(plan: PoolPlan, advice: SizeAdvice) -> Finding:
    numbers = {
        "pool_size": plan.pool_size,
        "measured_pool_size": advice.pool_size,
        "measured_max_overflow": advice.max_overflow,
    }
    if plan.pool_size > advice.pool_size:
        changes = {"pool_size": advice.pool_size}
        # The measured max_overflow only where it does not raise what the fleet may open
        # (size measured the fleet it was told of, which may not be this one).
        if advice.pool_size + advice.max_overflow <= plan.per_process:
            changes["max_overflow"] = advice.max_overflow
        fix = ", ".join(f"{name}={value}" for name, value in changes.items())
        return Finding(
            Severity.WARNING,
            "useful-concurrency",
            f"pool_size={plan.pool_size} is larger than the {advice.pool_size} "
            "connections that still added throughput",
            numbers,
            f"'poolwarden size' ({advice.source}, workload {advice.workload}) found "
            f"throughput within 5% of its peak with pool_size={advice.pool_size}; "
            "more connections per process add server load and memory, not speed.",
            fix,
            changes,
        )
    return Finding(
        Severity.OK,
        "useful-concurrency",
        f"pool_size={plan.pool_size} is within the useful size "
        f"{advice.pool_size} measured by 'poolwarden size'",
        numbers,
    )


def _server_seen(plan: PoolPlan, facts: ServerFacts) -> Finding:
    numbers: dict[str, object] = {
        "fleet_connections": plan.fleet,
        "connections_open_now": facts.connected,
        "statements_running_now": facts.running,
    }
    seen = (
        f"Client connections open now: {facts.connected}, running a statement: "
        f"{facts.running} (this check's own included)"
    )
    if facts.max_used is not None:
        numbers["max_used_connections"] = facts.max_used
        hours = (facts.uptime or 0) / 3600
        seen += (
            f"; at most {facts.max_used} were open at once in the {hours:.1f} h since the "
            "server started (Max_used_connections, all clients together)"
        )
    return Finding(
        Severity.INFO,
        "useful-concurrency",
        "useful concurrency not measured",
        numbers,
        f"{seen}. The fleet may open {plan.fleet}: the server has no way to tell how many "
        "of them would add throughput.",
        "measure it: poolwarden size URL --query 'SQL of a typical request' --report "
        "size.html, then pass --size-report size.json to doctor",
    )


def check_aborted(facts: ServerFacts) -> Finding | None:
    """MySQL's counters of sessions ended uncleanly: idle timeouts hitting pools show
    there."""
    clients = facts.readings.get("Aborted_clients")
    connects = facts.readings.get("Aborted_connects")
    if facts.kind != "mysql" or clients is None:
        return None
    total = facts.readings.get("Connections")
    return Finding(
        Severity.INFO,
        "aborted",
        f"Aborted_clients={clients}, Aborted_connects={connects} of {total} connections "
        "since the server started",
        {"Aborted_clients": clients, "Aborted_connects": connects, "Connections": total},
        "Aborted_clients counts sessions the server ended because the client vanished "
        "without closing, or stayed idle past wait_timeout: pooled connections dying of "
        "idleness raise it. Aborted_connects counts failed logins and handshakes slower "
        "than connect_timeout.",
    )


def run_checks(
    plan: PoolPlan, facts: ServerFacts, advice: SizeAdvice | None = None, pooled: bool = False
) -> list[Finding]:
    """Every check of the server's settings, in the order doctor prints them. ``pooled``:
    behind PgBouncer, where the server sees PgBouncer's connections rather than the
    fleet's, so the fleet's budget is checked against PgBouncer's limits instead
    (:mod:`poolwarden.cli.proxy_checks`)."""
    findings = [check_recycle(plan, facts)]
    session = check_session_timeout(facts)
    if session is not None:
        findings.append(session)
    if not pooled:
        findings.append(with_fleet_changes(check_fleet(plan, facts), plan, facts))
        findings.extend(
            with_fleet_changes(finding, plan, facts)
            for finding in check_account_limits(plan, facts)
        )
    findings.append(check_useful_concurrency(plan, facts, advice))
    findings.extend(check_long_work(facts))
    aborted = check_aborted(facts)
    if aborted is not None:
        findings.append(aborted)
    return findings
