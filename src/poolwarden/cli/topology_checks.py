"""doctor's checks of the hosts a pool may connect to: which answer, which has the role
the pool needs, and whether the fleet fits on each of them after a failover. Plain
functions of a :class:`~poolwarden.cli.topology.Topology`, no I/O; every WARNING or ERROR
carries its fix as data (applied by
:func:`~poolwarden.cli.topology.apply_topology_changes`)."""

from __future__ import annotations

from ..adapters._roles import PRIMARY, STANDBY
from .checks import SizeAdvice, run_checks
from .findings import Finding, PoolPlan, Severity
from .fixes import fleet_changes
from .fleet import FLEET_SHARE, fleet_fix
from .proxy_checks import check_proxy
from .server_settings import ServerFacts
from .topology import HostFacts, Topology

__all__ = [
    "check_failover_budget",
    "check_hosts",
    "check_role",
    "doctor_findings",
    "role_words",
]

#: The server's connection-budget checks (:mod:`poolwarden.cli.fleet`).
_BUDGET_CHECKS = ("fleet", "user-limit", "database-limit")

#: What each role means, in the server's own terms.
_MEANING = {
    "mysql": {
        PRIMARY: "accepts writes (read_only and innodb_read_only off)",
        STANDBY: "is read-only (read_only, super_read_only or innodb_read_only on)",
    },
    "postgresql": {
        PRIMARY: "accepts writes (not in recovery, default_transaction_read_only off: "
        "libpq's target_session_attrs=read-write)",
        STANDBY: "is read-only (in recovery / in_hot_standby, or "
        "default_transaction_read_only on)",
    },
}


def role_words(kind: str, role: str) -> str:
    """What a server of ``role`` does, as the ``kind`` server shows it."""
    return _MEANING.get(kind, _MEANING["mysql"])[role]


def _listing(hosts: list[HostFacts]) -> str:
    """``a:1 (primary), b:2 (standby: read_only=ON)``."""
    parts = []
    for host in hosts:
        if not host.reachable:
            parts.append(f"{host.address} (unreachable)")
            continue
        on = [f"{name}={value}" for name, value in host.readings.items() if _is_on(value)]
        why = f": {', '.join(on)}" if on and host.role == STANDBY else ""
        parts.append(f"{host.address} ({host.role or 'role unknown'}{why})")
    return ", ".join(parts)


def _is_on(value: object) -> bool:
    return str(value).strip().lower() in ("on", "1", "true")


def check_hosts(topology: Topology) -> list[Finding]:
    """A host of a multi-host URL that does not answer: a failover to it would fail."""
    if not topology.multi_host:
        return []
    return [
        Finding(
            Severity.WARNING,
            "host",
            f"{host.address} cannot be reached",
            {"host": host.address},
            f"{host.error}. The pool skips it when it connects, so a failover to it, or a "
            "role only it has, cannot work until it answers.",
            f"bring {host.address} back; if it is gone for good, drop it from the URL",
            {"hosts.drop": host.address},
            subject=host.address,
        )
        for host in topology.hosts
        if not host.reachable
    ]


def check_role(topology: Topology, kind: str) -> Finding:
    """The pool's ``role`` against the roles the hosts have now."""
    needs = topology.needs
    role, reachable = needs.role, topology.reachable
    numbers: dict[str, object] = {"role": role, "role_from": needs.role_source}
    for host in topology.hosts:
        numbers[host.address] = (host.role or "unknown") if host.reachable else "unreachable"
    if role == "any":
        return _any_role(topology, kind, numbers)
    if role == "prefer-standby":
        standbys = [host for host in reachable if host.role == STANDBY]
        if standbys:
            return Finding(
                Severity.OK,
                "role",
                f"role='prefer-standby': {standbys[0].address} is a standby",
                numbers,
            )
        return Finding(
            Severity.INFO,
            "role",
            "role='prefer-standby': no host is a standby now, the pool uses the primary",
            numbers,
            f"Hosts: {_listing(list(topology.hosts))}. A prefer-standby pool takes a primary "
            "when no standby answers, so its reads load the primary meanwhile.",
        )
    fitting = [host for host in reachable if host.role == role]
    if not fitting:
        return _role_unmet(topology, kind, numbers)
    if len(fitting) < len(topology.hosts):
        names = ", ".join(host.address for host in fitting)
        return Finding(
            Severity.INFO,
            "role",
            f"role={role!r}: only {names} of the {len(topology.hosts)} hosts "
            f"{role_words(kind, role).split(' (')[0]}",
            numbers,
            f"Hosts: {_listing(list(topology.hosts))}. A new connection that lands on one "
            "of the others fails the role check and is retried on the next host; after a "
            "failover the pool finds the new one by itself.",
        )
    return Finding(
        Severity.OK,
        "role",
        f"role={role!r}: every host {role_words(kind, role).split(' (')[0]}",
        numbers,
    )


def _any_role(topology: Topology, kind: str, numbers: dict[str, object]) -> Finding:
    reachable = topology.reachable
    primaries = [host for host in reachable if host.role == PRIMARY]
    standbys = [host for host in reachable if host.role == STANDBY]
    if not topology.multi_host:
        if standbys:
            return Finding(
                Severity.INFO,
                "role",
                f"the server {role_words(kind, STANDBY).split(' (')[0]} (a standby)",
                numbers,
                f"{_listing(standbys)}: writes fail there. A pool that only reads may say so "
                "with role='standby'; a role='primary' pool refuses a server that stops "
                "accepting writes (a failover) and retires its connections.",
            )
        return Finding(Severity.OK, "role", "role='any': one host, no role check needed", numbers)
    listing = _listing(list(topology.hosts))
    detail = (
        f"Hosts: {listing}. With role='any' the pool takes the first host that answers, "
        "whatever its role: writes may go to a standby and fail there ('1290 ... "
        "--read-only' on MySQL/MariaDB, 25006 'cannot execute ... in a read-only "
        "transaction' on PostgreSQL), and after a failover connections stay on the old "
        "primary."
    )
    if primaries:
        return Finding(
            Severity.WARNING,
            "role",
            "role='any' on a URL with several hosts: writes may go to a standby",
            numbers,
            detail,
            "role='primary' for a pool that writes (it connects only where writes are "
            "accepted); role='prefer-standby' for one that only reads",
            {"role": PRIMARY},
        )
    if standbys:
        return Finding(
            Severity.WARNING,
            "role",
            "role='any' on a URL with several hosts, none of which accepts writes now",
            numbers,
            detail,
            "role='prefer-standby' for a pool that only reads; a pool that writes needs a "
            "primary in the URL",
            {"role": "prefer-standby"},
        )
    return Finding(
        Severity.INFO,
        "role",
        "role='any' on a URL with several hosts whose roles are unknown",
        numbers,
        detail,
    )


def _role_unmet(topology: Topology, kind: str, numbers: dict[str, object]) -> Finding:
    role = topology.needs.role
    reachable = topology.reachable
    detail = (
        f"A role={role!r} pool needs a server that {role_words(kind, role)}. Hosts: "
        f"{_listing(list(topology.hosts))}. Every connect fails the role check "
        "(poolwarden.errors.WrongRole, retried with backoff) until one does; a checkout "
        "ends in PoolTimeout."
    )
    title = f"role={role!r} cannot be met: no host {role_words(kind, role).split(' (')[0]}"
    if role == STANDBY:
        return Finding(
            Severity.ERROR,
            "role",
            title,
            numbers,
            detail,
            "role='prefer-standby' (reads go to the primary while no standby answers), or "
            "add a standby to the URL",
            {"role": "prefer-standby"},
        )
    candidates = [host for host in reachable if host.role == STANDBY] or reachable
    if not candidates:
        return Finding(Severity.ERROR, "role", title, numbers, detail)
    target = candidates[0].address
    how = (
        "SET GLOBAL read_only=0 (and innodb_read_only off)"
        if kind == "mysql"
        else "pg_promote(), or ALTER SYSTEM RESET default_transaction_read_only and "
        "pg_reload_conf()"
    )
    return Finding(
        Severity.ERROR,
        "role",
        title,
        numbers,
        detail,
        f"add the primary to the URL, or promote {target} once the old primary is gone ({how})",
        {"hosts.promote": target},
    )


def check_failover_budget(plan: PoolPlan, topology: Topology) -> list[Finding]:
    """After a failover the whole fleet connects to another host: it must fit there too."""
    if not topology.multi_host:
        return []
    findings = []
    for host in topology.reachable:
        limit = host.max_connections
        if host.address == topology.chosen or host.proxy is not None or limit is None:
            continue
        numbers = {"host": host.address, "max_connections": limit, "fleet_connections": plan.fleet}
        if plan.fleet <= limit * FLEET_SHARE:
            findings.append(
                Finding(
                    Severity.OK,
                    "failover-budget",
                    f"the fleet's {plan.fleet} connections fit on {host.address} "
                    f"({limit} connections) after a failover",
                    numbers,
                    subject=host.address,
                )
            )
            continue
        findings.append(
            Finding(
                Severity.WARNING,
                "failover-budget",
                f"after a failover to {host.address} the fleet may open {plan.fleet} "
                f"connections; it accepts {limit}",
                numbers,
                f"{plan.fleet_formula()}, more than {FLEET_SHARE:.0%} of the {limit} "
                f"connections {host.address} accepts: when the fleet moves there (a failover, "
                "or the other hosts down), connects fail with 'too many connections'.",
                fleet_fix(
                    plan, limit, f"max_connections on {host.address}", host.reserved_connections
                ),
                fleet_changes(plan, limit, f"host.{host.address}.max_connections"),
                subject=host.address,
            )
        )
    return findings


def doctor_findings(
    plan: PoolPlan,
    facts: ServerFacts,
    topology: Topology,
    advice: SizeAdvice | None = None,
) -> list[Finding]:
    """Every check, in the order doctor prints them: the hosts and their roles, the
    proxy, then the server's settings (behind PgBouncer the connection budget is
    PgBouncer's, see :mod:`poolwarden.cli.proxy_checks`)."""
    findings = check_hosts(topology)
    findings.append(check_role(topology, facts.kind))
    findings += check_proxy(plan, facts, topology)
    server = run_checks(plan, facts, advice, pooled=topology.pooled)
    # The other hosts' budgets right after the server's own.
    budgets = [i for i, f in enumerate(server) if f.check in _BUDGET_CHECKS]
    at = budgets[-1] + 1 if budgets else len(server)
    return findings + server[:at] + check_failover_budget(plan, topology) + server[at:]
