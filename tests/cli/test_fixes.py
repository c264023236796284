"""Every fix doctor suggests passes the checks that suggested it.

For generated server settings, pool settings, Flask configs and size reports, each
WARNING or ERROR finding must carry its fix as data (``Finding.changes``); applying it and
running the same checks again must leave no WARNING or ERROR from that check, and make no
other check worse. (No server needed: the checks are functions of what the server said.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poolwarden.cli.checks import SizeAdvice, run_checks
from poolwarden.cli.findings import Finding, Severity
from poolwarden.cli.fixes import apply_changes
from poolwarden.cli.flask_config import FlaskConfig
from poolwarden.cli.plan import pool_plan
from poolwarden.cli.server_settings import ServerFacts
from poolwarden.flask import LEGACY_KEYS


@dataclass
class Case:
    """What doctor is given: options, a Flask config, the server's answers, a report."""

    settings: dict[str, Any]
    config: dict[str, Any] | None
    facts: ServerFacts
    advice: SizeAdvice | None


def findings_of(case: Case) -> list[Finding]:
    """doctor's findings for ``case``, as doctor computes them."""
    config = FlaskConfig("config.py", case.config) if case.config is not None else None
    given = {name: case.settings.get(name) for name in ("pool_size", "max_overflow")}
    given["pool_recycle"] = case.settings.get("pool_recycle")
    plan = pool_plan(
        case.facts.kind, config, given, case.settings["processes"], case.settings["instances"]
    )
    useful = case.advice.pool_size if case.advice else None
    legacy = config.checked_findings(plan, case.facts, useful) if config else []
    return legacy + run_checks(plan, case.facts, case.advice)


def severities(findings: list[Finding]) -> dict[tuple[str, str], Severity]:
    """The worst severity of each (check, subject)."""
    worst: dict[tuple[str, str], Severity] = {}
    for finding in findings:
        key = (finding.check, finding.subject)
        worst[key] = max(worst.get(key, Severity.OK), finding.severity)
    return worst


def timeouts(kind: str) -> st.SearchStrategy[float | None]:
    # MySQL's wait_timeout is whole seconds; PostgreSQL's idle_session_timeout milliseconds.
    if kind == "mysql":
        return st.none() | st.integers(1, 100_000).map(float)
    return st.none() | st.integers(1, 100_000_000).map(lambda ms: ms / 1000)


@st.composite
def server_facts(draw: st.DrawFn) -> ServerFacts:
    kind = draw(st.sampled_from(["mysql", "postgresql"]))
    max_connections = draw(st.integers(1, 3000))
    timeout = draw(timeouts(kind))
    return ServerFacts(
        kind=kind,
        product="MariaDB 10.11.19" if kind == "mysql" else "PostgreSQL 16.4",
        idle_timeout=timeout,
        idle_timeout_name="wait_timeout" if kind == "mysql" else "idle_session_timeout",
        global_idle_timeout=draw(st.sampled_from([timeout, 28800.0])),
        max_connections=max_connections,
        reserved_connections=0 if kind == "mysql" else draw(st.integers(0, 5)),
        user_limit=draw(st.none() | st.integers(1, 500)),
        user_limit_name="max_user_connections"
        if kind == "mysql"
        else "the role's CONNECTION LIMIT",
        database_limit=None if kind == "mysql" else draw(st.none() | st.integers(1, 500)),
        statement_timeout_name="max_statement_time" if kind == "mysql" else "statement_timeout",
        net_read_timeout=30.0 if kind == "mysql" else None,
        net_write_timeout=60.0 if kind == "mysql" else None,
    )


RECYCLES = st.none() | st.sampled_from([-1, 0]) | st.integers(1, 200_000)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    facts = draw(server_facts())
    settings = {
        "pool_size": draw(st.none() | st.integers(1, 80)),
        "max_overflow": draw(st.none() | st.integers(0, 80)),
        "pool_recycle": draw(RECYCLES),
        "processes": draw(st.integers(1, 30)),
        "instances": draw(st.integers(1, 5)),
    }
    config: dict[str, Any] | None = None
    if draw(st.booleans()):
        legacy = {
            "SQLALCHEMY_POOL_SIZE": st.integers(1, 400),
            "SQLALCHEMY_MAX_OVERFLOW": st.integers(0, 400),
            "SQLALCHEMY_POOL_RECYCLE": RECYCLES.filter(lambda v: v is not None),
            "SQLALCHEMY_POOL_TIMEOUT": st.integers(1, 60),
        }
        config = {key: draw(value) for key, value in legacy.items() if draw(st.booleans())}
        options = {
            "pool_size": st.integers(1, 80),
            "max_overflow": st.integers(0, 80),
            "pool_recycle": RECYCLES.filter(lambda v: v is not None),
        }
        engine = {name: draw(value) for name, value in options.items() if draw(st.booleans())}
        if engine:
            config["SQLALCHEMY_ENGINE_OPTIONS"] = engine
    advice = None
    if draw(st.booleans()):
        advice = SizeAdvice(draw(st.integers(1, 40)), draw(st.integers(0, 40)), "q", "size.json")
    return Case(settings, config, facts, advice)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_fix_passes_its_own_check(case: Case) -> None:
    before = findings_of(case)
    worst_before = severities(before)
    for finding in before:
        if finding.severity < Severity.WARNING:
            continue
        assert finding.changes, f"{finding.check}: a fix as text only: {finding.fix!r}"
        fixed = Case(
            *apply_changes(finding.changes, case.settings, case.config, case.facts), case.advice
        )
        after = severities(findings_of(fixed))
        key = (finding.check, finding.subject)
        assert after.get(key, Severity.OK) < Severity.WARNING, (finding, after)
        for other, severity in after.items():
            was = worst_before.get(other, Severity.OK)
            assert severity <= max(was, Severity.INFO), (finding.changes, other, was, severity)


def test_the_reported_case_moves_a_recycle_the_check_passes() -> None:
    """SQLALCHEMY_POOL_RECYCLE = 30000 against wait_timeout=28800: the fix used to move
    30000 into SQLALCHEMY_ENGINE_OPTIONS, which the recycle check then flagged."""
    facts = ServerFacts(
        kind="mysql",
        product="MariaDB 10.11.19",
        idle_timeout=28800.0,
        idle_timeout_name="wait_timeout",
        global_idle_timeout=28800.0,
        max_connections=151,
        reserved_connections=0,
        user_limit=None,
        user_limit_name="max_user_connections",
    )
    settings = {"processes": 1, "instances": 1}
    case = Case(settings, {"SQLALCHEMY_POOL_RECYCLE": 30000}, facts, None)
    (legacy,) = [f for f in findings_of(case) if f.check == "flask-legacy-key"]
    assert legacy.changes == {
        "SQLALCHEMY_POOL_RECYCLE": None,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_recycle": 3600},
    }
    assert "{'pool_recycle': 3600, ...}" in legacy.fix
    assert "30000 is not below wait_timeout=28800" in legacy.detail
    fixed = Case(*apply_changes(legacy.changes, settings, case.config, facts), None)
    recycle = [f for f in findings_of(fixed) if f.check == "recycle"]
    assert [f.severity for f in recycle] == [Severity.OK]
    assert set(LEGACY_KEYS) & set(fixed.config or {}) == set()
