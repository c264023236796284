"""How doctor prints what it found: the text report (rich tables) and ``--json``."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .findings import Finding, PoolPlan, Severity, exit_status, summary
from .output import print_table, print_wrapped
from .plan import DEFAULTS
from .proxy_checks import describe_proxy
from .server_settings import ServerFacts
from .target import Target
from .topology import Topology

__all__ = ["as_json", "print_report"]

STYLES = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.INFO: "cyan",
    Severity.OK: "green",
}


def as_json(
    target: Target,
    facts: ServerFacts,
    plan: PoolPlan,
    topology: Topology,
    findings: list[Finding],
) -> dict[str, Any]:
    """Everything doctor found, for machines."""
    needs = topology.needs
    return {
        "url": str(target),
        "server": {
            "product": facts.product,
            "kind": facts.kind,
            "host": topology.chosen,
            "settings": facts.readings,
        },
        "hosts": [host.as_dict() for host in topology.hosts],
        "proxy": topology.proxy.as_dict() if topology.proxy else None,
        "pool": {**plan.as_dict(), **needs.as_dict(), "role_source": needs.role_source},
        "findings": [finding.as_dict() for finding in findings],
        "summary": summary(findings),
        "exit_status": exit_status(findings),
    }


def _shown(value: Any) -> str:
    if value is None:
        return "not set"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _numbers(numbers: dict[str, Any]) -> str:
    return ", ".join(f"{name}={_shown(value)}" for name, value in numbers.items())


def _proxy_line(topology: Topology) -> str:
    proxy = topology.proxy
    if proxy is None:
        return "none detected (PgBouncer: by its cancel key; ProxySQL: by its version comment)"
    line = describe_proxy(proxy)
    if proxy.settings:
        line += ": " + _numbers(proxy.settings)
    if proxy.admin_error:
        line += f"; admin console: {proxy.admin_error}"
    return line


def _hosts_table(console: Console, topology: Topology) -> None:
    console.print(Text("\nhosts", style="bold"))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("host", "role", "server", "read-only settings", "max_connections", "proxy"):
        table.add_column(name, justify="right" if name == "max_connections" else "left")
    failures = []
    for host in topology.hosts:
        label = host.address + (" *" if host.address == topology.chosen else "")
        if not host.reachable:
            table.add_row(label, "unreachable", "", "", "", "")
            failures.append(host)
            continue
        settings = ", ".join(f"{name}={value}" for name, value in host.readings.items())
        limit = "" if host.max_connections is None else str(host.max_connections)
        if host.max_connections is not None and host.reserved_connections:
            # The server's setting, and what ordinary clients (the checks) get of it.
            total = host.max_connections + host.reserved_connections
            limit = f"{total} - {host.reserved_connections} reserved"
        table.add_row(
            label, host.role or "unknown", host.product, settings, limit, host.proxy or "-"
        )
    print_table(console, table, min_width=160)  # a row per host, never wrapped
    if topology.chosen is not None:
        console.print("* the host doctor read the server's settings from")
    for host in failures:
        print_wrapped(console, f"{host.address}: {host.error}", 2)


def print_report(
    console: Console,
    target: Target,
    facts: ServerFacts,
    plan: PoolPlan,
    topology: Topology,
    findings: list[Finding],
) -> None:
    """The text report: settings, hosts, the server's readings, then each finding."""
    needs = topology.needs
    pool = ", ".join(
        f"{name}={_shown(getattr(plan, name))} ({plan.sources[name]})" for name in DEFAULTS
    )
    pool += f", role={needs.role!r} ({needs.role_source})"
    fleet = (
        f"{plan.processes} process(es) x {plan.instances} instance(s): up to {plan.fleet} "
        "connections"
    )
    server = f"{facts.product} at {target}"
    if topology.multi_host:
        server += f" (read from {topology.chosen})"
    for label, line in (
        ("server", server),
        ("pool", pool),
        ("fleet", fleet),
        ("proxy", _proxy_line(topology)),
    ):
        print_wrapped(console, line, 8, Text(f"{label:<8}", style="bold"))
    _hosts_table(console, topology)
    console.print(Text("\nwhat the server says", style="bold"))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("setting")
    table.add_column("value", justify="right")
    for name, value in facts.readings.items():
        table.add_row(name, "" if value is None else str(value))
    print_table(console, table)
    console.print()
    for finding in findings:
        severity = Text(f"{finding.severity.label.upper():<9}", style=STYLES[finding.severity])
        print_wrapped(console, finding.title, 9, severity, style="bold")
        if finding.severity is Severity.OK:
            continue
        print_wrapped(console, _numbers(finding.numbers), 9, " " * 9, style="dim")
        if finding.detail:
            print_wrapped(console, finding.detail, 9, " " * 9)
        if finding.fix:
            print_wrapped(console, finding.fix, 14, Text(" " * 9 + "fix: ", style="bold"))
    counts = summary(findings)
    console.print(
        f"\n{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} "
        f"note(s), {counts['ok']} ok; exit status {exit_status(findings)}"
    )
