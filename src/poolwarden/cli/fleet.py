"""doctor's connection-budget checks: all processes' pools together against the
connections the server, the account and the database accept, with one set of thresholds
and one fix arithmetic for all of them."""

from __future__ import annotations

import math

from .findings import Finding, PoolPlan, Severity
from .server_settings import ServerFacts

__all__ = ["FLEET_SHARE", "check_account_limits", "check_fleet", "fleet_fix", "needed_limit"]

#: Share of the server's connections a fleet may plan for; the rest is left for admin
#: sessions, migrations, cron jobs and the overlap of old and new processes in a deploy.
FLEET_SHARE = 0.8


def needed_limit(fleet: int, reserved: int = 0) -> int:
    """The smallest limit under which ``fleet`` connections are within FLEET_SHARE of what
    ordinary clients may open, once ``reserved`` slots are taken off: the fix that makes
    the check pass, with the check's own arithmetic."""
    needed = math.ceil(fleet / FLEET_SHARE)
    while needed * FLEET_SHARE < fleet:  # float rounding of the division
        needed += 1
    while needed > 1 and (needed - 1) * FLEET_SHARE >= fleet:
        needed -= 1
    return needed + reserved


def fleet_fix(plan: PoolPlan, limit: int, what: str, reserved: int = 0) -> str:
    """Per-process settings within FLEET_SHARE of ``limit`` (the connections available),
    or the value of ``what`` that fits the fleet (``reserved`` slots on top)."""
    budget = int(limit * FLEET_SHARE) // plan.fleet_processes
    needed = needed_limit(plan.fleet, reserved)
    if budget < 1:
        return (
            f"{plan.fleet_processes} processes cannot share {limit} connections: run fewer "
            f"processes, or raise {what} to at least {needed}"
        )
    size = min(plan.pool_size, budget)
    overflow = max(0, min(plan.max_overflow, budget - size))
    return (
        f"at most {budget} connections per process ({FLEET_SHARE:.0%} of {limit} / "
        f"{plan.fleet_processes} processes): e.g. pool_size={size}, max_overflow={overflow}; "
        f"or raise {what} to at least {needed}"
    )


def check_fleet(plan: PoolPlan, facts: ServerFacts) -> Finding:
    """All processes' pools together against the connections the server accepts."""
    limit = facts.available_connections
    reserved = (
        f" - {facts.reserved_connections} reserved for superusers"
        if facts.reserved_connections
        else ""
    )
    numbers: dict[str, object] = {
        "processes": plan.processes,
        "instances": plan.instances,
        "pool_size": plan.pool_size,
        "max_overflow": plan.max_overflow,
        "fleet_connections": plan.fleet,
        "max_connections": facts.max_connections,
        "reserved_connections": facts.reserved_connections,
        "connections_open_now": facts.connected,
    }
    formula = plan.fleet_formula()
    where = f"max_connections={facts.max_connections}{reserved}"
    if plan.fleet > limit:
        refusal = "'1040 Too many connections'" if facts.kind == "mysql" else "'too many clients'"
        return Finding(
            Severity.ERROR,
            "fleet",
            f"the fleet may open {plan.fleet} connections; the server accepts {limit}",
            numbers,
            f"{formula} > {limit} ({where}). Under load, connects fail with {refusal}. "
            f"Connections open now: {facts.connected}.",
            fleet_fix(plan, limit, "max_connections", facts.reserved_connections),
        )
    if plan.fleet > limit * FLEET_SHARE:
        return Finding(
            Severity.WARNING,
            "fleet",
            f"the fleet may take {plan.fleet} of the server's {limit} connections",
            numbers,
            f"{formula}, more than {FLEET_SHARE:.0%} of {limit} ({where}): little is left "
            "for admin sessions, migrations, cron jobs and the overlap of old and new "
            f"processes during a deploy. Connections open now: {facts.connected}.",
            fleet_fix(plan, limit, "max_connections", facts.reserved_connections),
        )
    return Finding(
        Severity.OK,
        "fleet",
        f"the fleet may open {plan.fleet} of the server's {limit} connections",
        numbers,
        f"{formula}. Connections open now: {facts.connected}.",
    )


def _account_refusal(facts: ServerFacts, scope: str) -> str:
    if facts.kind == "mysql":
        return "'1203 User already has more than max_user_connections active connections'"
    return f"'too many connections for {'role' if scope == 'user' else 'database'}'"


def _account_limit(
    plan: PoolPlan, facts: ServerFacts, name: str, limit: int, scope: str
) -> Finding:
    """One account limit, with the fleet check's thresholds: an error above it, a
    warning above FLEET_SHARE of it (the same account's admin sessions, cron jobs and
    the overlap of a deploy need some), and the same fix."""
    check = f"{scope}-limit"
    numbers = {name: limit, "fleet_connections": plan.fleet}
    formula = plan.fleet_formula()
    if plan.fleet > limit:
        return Finding(
            Severity.ERROR,
            check,
            f"the fleet may open {plan.fleet} connections; {name} allows {limit}",
            numbers,
            f"{formula} > {limit}. Connects beyond it fail with {_account_refusal(facts, scope)}.",
            fleet_fix(plan, limit, name),
        )
    if plan.fleet > limit * FLEET_SHARE:
        return Finding(
            Severity.WARNING,
            check,
            f"the fleet may take {plan.fleet} of the {limit} connections {name} allows",
            numbers,
            f"{formula}, more than {FLEET_SHARE:.0%} of {limit}: little is left for this "
            "account's admin sessions, migrations, cron jobs and the overlap of old and new "
            "processes during a deploy.",
            fleet_fix(plan, limit, name),
        )
    return Finding(
        Severity.OK,
        check,
        f"the fleet may open {plan.fleet} connections; {name} allows {limit}",
        numbers,
    )


def check_account_limits(plan: PoolPlan, facts: ServerFacts) -> list[Finding]:
    """The fleet against the connections this account (and, on PostgreSQL, this
    database) may open."""
    limits = [(facts.user_limit_name, facts.user_limit, "user")]
    if facts.kind == "postgresql":
        limits.append(("the database's CONNECTION LIMIT", facts.database_limit, "database"))
    return [
        _account_limit(plan, facts, name, limit, scope)
        for name, limit, scope in limits
        if limit is not None
    ]
