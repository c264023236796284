"""doctor's fixes as data: the settings a finding's fix changes, and how to apply them.

A finding's ``changes`` maps setting names to their new values:

- ``pool_size``, ``max_overflow``, ``pool_recycle`` (None: off, SQLAlchemy's -1),
  ``processes``, ``instances``: the pool settings being checked;
- an upper-case name: a Flask config key (None: delete it), ``SQLALCHEMY_ENGINE_OPTIONS``
  with a dict of options to set in it;
- ``server.<field>``: a server setting (a :class:`ServerFacts` field, such as
  ``server.max_connections``), for fixes no pool setting can make.

Every fix doctor suggests must pass the check that suggested it without making another
check worse; the tests apply each one with :func:`apply_changes` and run the checks again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .findings import Finding, PoolPlan, Severity
from .fleet import FLEET_SHARE, needed_limit
from .server_settings import ServerFacts

__all__ = [
    "apply_changes",
    "fleet_budget",
    "fleet_changes",
    "safe_setting",
    "with_fleet_changes",
]

#: Which server setting raises the limit each connection-budget check compares with.
_LIMIT_FIELDS = {
    "fleet": "max_connections",
    "user-limit": "user_limit",
    "database-limit": "database_limit",
}


def _limit_of(check: str, facts: ServerFacts) -> tuple[int | None, int]:
    """The connections the check ``check`` allows ordinary clients, and the reserved
    slots on top of that limit."""
    if check == "fleet":
        return facts.available_connections, facts.reserved_connections
    if check == "user-limit":
        return facts.user_limit, 0
    return facts.database_limit, 0


def with_fleet_changes(finding: Finding, plan: PoolPlan, facts: ServerFacts) -> Finding:
    """A connection-budget finding (fleet, account or database limit) with its fix as
    data, by the arithmetic of its text (``fleet.fleet_fix``): per-process settings
    within FLEET_SHARE of the limit, or, when not even one connection per process fits,
    the limit raised to what the fleet needs."""
    if finding.severity < Severity.WARNING or finding.check not in _LIMIT_FIELDS:
        return finding
    limit, reserved = _limit_of(finding.check, facts)
    if limit is None:
        return finding
    changes = fleet_changes(plan, limit, f"server.{_LIMIT_FIELDS[finding.check]}", reserved)
    return dataclasses.replace(finding, changes=changes)


def fleet_changes(plan: PoolPlan, limit: int, raise_key: str, reserved: int = 0) -> dict[str, Any]:
    """The fix of ``fleet.fleet_fix`` as data: per-process settings within FLEET_SHARE
    of ``limit``, or, when not even one connection per process fits, ``raise_key`` (the
    setting holding the limit) raised to what the fleet needs (``reserved`` on top)."""
    budget = int(limit * FLEET_SHARE) // plan.fleet_processes
    if budget < 1:
        return {raise_key: needed_limit(plan.fleet, reserved)}
    size = min(plan.pool_size, budget)
    return {"pool_size": size, "max_overflow": max(0, min(plan.max_overflow, budget - size))}


def fleet_budget(plan: PoolPlan, facts: ServerFacts) -> int:
    """Connections one process may open within FLEET_SHARE of every limit that applies
    (the server's, the account's, the database's)."""
    limits = [facts.available_connections, facts.user_limit, facts.database_limit]
    return min(int(limit * FLEET_SHARE) for limit in limits if limit is not None) // (
        plan.fleet_processes
    )


def safe_setting(
    name: str,
    value: Any,
    plan: PoolPlan,
    facts: ServerFacts,
    suggest: Any,
    useful: int | None = None,
) -> tuple[Any, str]:
    """The value to suggest for pool setting ``name`` when moving ``value`` (a legacy
    Flask key's) into place: ``value`` itself when the checks would pass it, else the
    nearest one they pass (or, when none does, one no worse than the current setting);
    and why it differs ("" when it does not). ``suggest`` is ``checks.suggest_recycle``;
    ``useful`` the pool size ``poolwarden size`` measured, if known."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number:
        return value, ""
    if name == "pool_recycle":
        timeout, timeout_name = facts.idle_timeout, facts.idle_timeout_name
        if value < 0 or (value > 0 and (timeout is None or value < timeout)):
            return value, ""
        if timeout is None:
            return -1, "0 reconnects at every checkout"
        why = "0 reconnects at every checkout" if value == 0 else "not below"
        return suggest(timeout), f"{value:g} is {why} {timeout_name}={timeout:g}"
    if name not in ("pool_size", "max_overflow"):
        return value, ""
    other = plan.max_overflow if name == "pool_size" else plan.pool_size
    current = plan.pool_size if name == "pool_size" else plan.max_overflow
    room = fleet_budget(plan, facts) - other
    cap = max(room, current, 1 if name == "pool_size" else 0)
    why = "would take the fleet past its connection budget"
    if name == "pool_size" and useful is not None and max(useful, current) < cap:
        cap, why = max(useful, current), f"is more than the {useful} 'poolwarden size' measured"
    if value <= cap:
        return value, ""
    return cap, f"{value:g} {why}"


def apply_changes(
    changes: dict[str, Any],
    settings: dict[str, Any],
    config: dict[str, Any] | None,
    facts: ServerFacts,
) -> tuple[dict[str, Any], dict[str, Any] | None, ServerFacts]:
    """``changes`` applied to copies of the pool ``settings`` (as given on the command
    line: they override the Flask config), the Flask ``config`` values and the server's
    ``facts``."""
    settings, facts = dict(settings), dataclasses.replace(facts)
    config = None if config is None else dict(config)
    for name, value in changes.items():
        if name.startswith("server."):
            setattr(facts, name.removeprefix("server."), value)
        elif name.isupper():
            if config is None:
                raise ValueError(f"a change of the Flask config key {name} with no config")
            if name == "SQLALCHEMY_ENGINE_OPTIONS":
                config[name] = {**(config.get(name) or {}), **value}
            elif value is None:
                config.pop(name, None)
            else:
                config[name] = value
        else:
            settings[name] = -1 if name == "pool_recycle" and value is None else value
    return settings, config, facts
