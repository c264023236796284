"""Every fix doctor suggests for hosts, roles, proxies and fleets passes the checks that
suggested it (the property tests/cli/test_fixes.py holds for the server's settings).

For generated hosts (reachable or not, of either role, with their limits), proxies
(PgBouncer in any mode and version, with or without its limits known; ProxySQL), pool
needs and fleets, each WARNING or ERROR must carry its fix as data; applied with
:func:`apply_topology_changes`, the same checks must leave no WARNING or ERROR from that
check and make no other check worse. No server needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poolwarden.adapters._proxies import PGBOUNCER, PROXYSQL, ProxyInfo
from poolwarden.adapters._roles import ROLES
from poolwarden.cli.findings import Finding, Severity
from poolwarden.cli.plan import pool_plan
from poolwarden.cli.server_settings import ServerFacts
from poolwarden.cli.topology import (
    HostFacts,
    PoolNeeds,
    ProxyFacts,
    Topology,
    apply_topology_changes,
    choose_host,
)
from poolwarden.cli.topology_checks import doctor_findings
from tests.cli.test_fixes import RECYCLES, server_facts, severities


@dataclass
class Case:
    """What doctor is given and found: options, the server's answers, the hosts."""

    settings: dict[str, Any]
    topology: Topology
    facts: ServerFacts


def findings_of(case: Case) -> list[Finding]:
    """doctor's findings for ``case``, as doctor computes them."""
    given = {name: case.settings.get(name) for name in ("pool_size", "max_overflow")}
    given["pool_recycle"] = case.settings.get("pool_recycle")
    plan = pool_plan(
        case.facts.kind, None, given, case.settings["processes"], case.settings["instances"]
    )
    return doctor_findings(plan, case.facts, case.topology)


@st.composite
def hosts(draw: st.DrawFn) -> tuple[HostFacts, ...]:
    count = draw(st.integers(1, 4))
    made = []
    for index in range(count):
        reachable = index == 0 or draw(st.booleans())  # doctor needs one that answers
        if not reachable:
            made.append(HostFacts("10.0.0.1", 3000 + index, error="connection refused"))
            continue
        made.append(
            HostFacts(
                "10.0.0.1",
                3000 + index,
                product="MariaDB 10.11.19",
                role=draw(st.sampled_from(["primary", "standby", None])),
                max_connections=draw(st.none() | st.integers(1, 3000)),
                reserved_connections=draw(st.integers(0, 5)),
            )
        )
    order = draw(st.permutations(made))
    return tuple(order)


@st.composite
def proxies(draw: st.DrawFn, kind: str) -> ProxyFacts | None:
    if kind == "mysql":
        return draw(st.sampled_from([None, ProxyFacts(ProxyInfo(PROXYSQL, source="detected"))]))
    if not draw(st.booleans()):
        return None
    known = draw(st.booleans())
    info = ProxyInfo(
        PGBOUNCER,
        pool_mode=draw(st.sampled_from(["session", "transaction", "statement"]))
        if known
        else None,
        version=draw(st.sampled_from([(1, 18, 0), (1, 21, 0), (1, 24, 1)])) if known else None,
        max_prepared_statements=draw(st.sampled_from([None, 0, 200])) if known else None,
        source="admin console" if known else "detected",
    )
    if not known:
        return ProxyFacts(info, admin_error="not allowed")
    return ProxyFacts(
        info,
        max_client_conn=draw(st.none() | st.integers(1, 5000)),
        pool_size=draw(st.none() | st.integers(1, 300)),
        reserve_pool=draw(st.integers(0, 10)),
        max_db_connections=draw(st.none() | st.integers(1, 500)),
        max_user_connections=draw(st.none() | st.integers(1, 500)),
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    facts = draw(server_facts())
    found = draw(hosts())
    drivers = ["pymysql"] if facts.kind == "mysql" else ["psycopg", "psycopg2"]
    needs = PoolNeeds(
        role=draw(st.sampled_from(ROLES)),
        reset=draw(st.sampled_from(["rollback", "session", None])),
        prepare_threshold=draw(st.sampled_from([None, 0, 5])),
        driver=draw(st.sampled_from(drivers)),
    )
    chosen = choose_host(found, needs.role)
    assert chosen is not None
    topology = Topology(found, chosen.address, draw(proxies(facts.kind)), needs)
    settings = {
        "pool_size": draw(st.none() | st.integers(1, 80)),
        "max_overflow": draw(st.none() | st.integers(0, 80)),
        "pool_recycle": draw(RECYCLES),
        "processes": draw(st.integers(1, 30)),
        "instances": draw(st.integers(1, 5)),
    }
    return Case(settings, topology, facts)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_fleet_fix_passes_its_own_check(case: Case) -> None:
    before = findings_of(case)
    worst_before = severities(before)
    for finding in before:
        if finding.severity < Severity.WARNING:
            continue
        assert finding.changes, f"{finding.check}: a fix as text only: {finding.fix!r}"
        fixed = Case(
            *apply_topology_changes(finding.changes, case.settings, case.topology, case.facts)
        )
        after = severities(findings_of(fixed))
        key = (finding.check, finding.subject)
        assert after.get(key, Severity.OK) < Severity.WARNING, (finding, after)
        for other, severity in after.items():
            was = worst_before.get(other, Severity.OK)
            assert severity <= max(was, Severity.INFO), (finding.changes, other, was, severity)


def test_a_read_only_host_fixed_by_role() -> None:
    """The case of the issue: a primary and a read-only host, role 'any'."""
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
    found = (
        HostFacts("10.0.0.1", 3306, product="MariaDB 10.11.19", role="primary"),
        HostFacts("10.0.0.2", 3306, product="MariaDB 10.11.19", role="standby"),
    )
    settings: dict[str, Any] = {"pool_recycle": 60, "processes": 1, "instances": 1}
    case = Case(settings, Topology(found, "10.0.0.1:3306"), facts)
    (role,) = [f for f in findings_of(case) if f.check == "role"]
    assert role.severity is Severity.WARNING and role.changes == {"role": "primary"}
    fixed = Case(*apply_topology_changes(role.changes, settings, case.topology, facts))
    (role,) = [f for f in findings_of(fixed) if f.check == "role"]
    assert role.severity is Severity.INFO
    assert role.title == "role='primary': only 10.0.0.1:3306 of the 2 hosts accepts writes"
