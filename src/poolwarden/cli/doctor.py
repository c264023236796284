"""``poolwarden doctor``: a pool's settings against what the server says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .checks import SizeAdvice, run_checks
from .errors import CommandError
from .findings import Finding, PoolPlan, Severity, exit_status, summary
from .flask_config import FlaskConfig, load_flask_config
from .options import State, connect_timeout_option, debug_option, fleet_options
from .output import print_table, print_wrapped
from .plan import DEFAULTS, pool_plan
from .server_settings import ServerFacts, read_server_facts
from .stats_sizing import stats_findings, stats_option
from .target import Target, resolve_url

__all__ = ["doctor_command"]


STYLES = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.INFO: "cyan",
    Severity.OK: "green",
}


@click.command(
    "doctor",
    epilog="Examples:\n\n\b\n"
    "  poolwarden doctor mysql+pymysql://app:secret@db:3306/shop \\\n"
    "      --pool-size 10 --max-overflow 20 --pool-recycle 3600 --processes 4 --instances 3\n"
    "  poolwarden doctor --flask-config instance/config.py --processes 8 --json",
)
@click.argument("url", required=False)
@click.option(
    "--pool-size",
    type=click.IntRange(min=1),
    metavar="N",
    help="pool_size of each process's pool.  [default: 5, as SQLAlchemy]",
)
@click.option(
    "--max-overflow",
    type=click.IntRange(min=0),
    metavar="M",
    help="max_overflow of each process's pool.  [default: 10, as SQLAlchemy]",
)
@click.option(
    "--pool-recycle",
    type=click.FloatRange(min=-1),
    callback=lambda _ctx, _param, value: _recycle_value(value),
    metavar="SECONDS",
    help="pool_recycle of the pools (-1: off; 0: a new connection at every checkout).  "
    "[default: off, as SQLAlchemy]",
)
@fleet_options(
    "Processes with a pool on each instance (web workers, job workers).",
    "Instances (hosts, containers) running those processes.",
)
@click.option(
    "--flask-config",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="A Flask config file (as app.config.from_pyfile reads it): report the legacy "
    "SQLALCHEMY_POOL_* keys Flask-SQLAlchemy 3 ignores, and take the URL and pool settings "
    "from SQLALCHEMY_DATABASE_URI and SQLALCHEMY_ENGINE_OPTIONS where no option gives them.",
)
@click.option(
    "--size-report",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="The JSON that 'poolwarden size --report' writes beside its HTML: warn when "
    "pool_size is above the useful size it measured. Without it, doctor shows what the "
    "server has seen (Max_used_connections, statements running now).",
)
@stats_option
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@connect_timeout_option
@debug_option
@click.pass_obj
def doctor_command(
    state: State,
    url: str | None,
    pool_size: int | None,
    max_overflow: int | None,
    pool_recycle: float | None,
    processes: int,
    instances: int,
    flask_config: str | None,
    size_report: str | None,
    as_json: bool,
    connect_timeout: float,
) -> int:
    """Check pool settings against the server's limits and timeouts.

    Connects to URL (default: the Flask config's SQLALCHEMY_DATABASE_URI, then
    $DATABASE_URL) and reads what the server says about connections: for MySQL/MariaDB
    wait_timeout (session and global), interactive_timeout, max_connections,
    max_user_connections, connect_timeout, net_read_timeout, net_write_timeout,
    max_statement_time/max_execution_time, Threads_connected, Threads_running,
    Max_used_connections, Aborted_clients, Aborted_connects; for PostgreSQL max_connections,
    superuser_reserved_connections, idle_session_timeout,
    idle_in_transaction_session_timeout, statement_timeout, tcp_keepalives_idle, the
    backends open now and the role's and database's connection limits. No admin rights
    are needed.

    \b
    It checks, and prints each finding with its severity, numbers and fix:
      - pool_recycle below the server's idle timeout;
      - processes x instances x (pool_size + max_overflow) within the connections the
        server and this account may open;
      - legacy Flask-SQLAlchemy keys in the Flask config;
      - pool_size against the useful concurrency 'poolwarden size' measured;
      - what the statement and network timeouts mean for long queries and for
        connections a long job holds.

    Exit status: 0 nothing to change, 1 warnings, 2 errors (or the check could not run;
    with --json, stdout then holds {"error": ..., "exit_status": 2}).
    """
    try:
        return _doctor(
            state,
            url,
            pool_size,
            max_overflow,
            pool_recycle,
            processes,
            instances,
            flask_config,
            size_report,
            as_json,
            connect_timeout,
        )
    except Exception as exc:
        if as_json:  # machines read stdout: tell them why there are no findings
            message = str(exc) if isinstance(exc, CommandError) else _unexpected(exc)
            click.echo(state.redact(json.dumps({"error": message, "exit_status": 2})))
        raise


def _unexpected(exc: Exception) -> str:
    if isinstance(exc, click.ClickException):
        return exc.format_message()
    return f"unexpected error: {type(exc).__name__}: {exc}"


def _recycle_value(value: float | None) -> float | None:
    """SQLAlchemy turns recycling off only at -1; any value above it, -0.5 as well,
    recycles connections older than that: such a value is a mistake."""
    if value is not None and -1 < value < 0:
        raise click.BadParameter(
            f"{value:g}: give -1 (off), 0 (a new connection at every checkout) or the "
            "seconds after which a connection is replaced"
        )
    return value


def _doctor(
    state: State,
    url: str | None,
    pool_size: int | None,
    max_overflow: int | None,
    pool_recycle: float | None,
    processes: int,
    instances: int,
    flask_config: str | None,
    size_report: str | None,
    as_json: bool,
    connect_timeout: float,
) -> int:
    """The body of :func:`doctor_command`."""
    config = load_flask_config(flask_config) if flask_config else None
    target = state.target(resolve_url(url, config.uri if config else None), connect_timeout)
    target.require_server()
    plan = _pool_plan(
        target,
        config,
        {"pool_size": pool_size, "max_overflow": max_overflow, "pool_recycle": pool_recycle},
        processes,
        instances,
    )
    advice = _load_size_advice(size_report) if size_report else None
    with target.connection() as raw:
        facts = read_server_facts(raw, target.kind)
    useful = advice.pool_size if advice else None
    legacy = config.checked_findings(plan, facts, useful) if config else []
    findings = legacy + run_checks(plan, facts, advice)
    findings += stats_findings(plan)  # --stats: Little's law on production's numbers
    status = exit_status(findings)
    if as_json:
        click.echo(state.redact(json.dumps(_as_json(target, facts, plan, findings), indent=2)))
    else:
        _print_report(state.console(), target, facts, plan, findings)
    return status


def _pool_plan(
    target: Target,
    config: FlaskConfig | None,
    given: dict[str, float | None],
    processes: int,
    instances: int,
) -> PoolPlan:
    """Each setting from its option, else the Flask config, else SQLAlchemy's default."""
    return pool_plan(target.kind, config, given, processes, instances)


def _load_size_advice(path: str) -> SizeAdvice:
    """The recommendation in a ``poolwarden size`` JSON report."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        recommended = data["recommendation"]
        if recommended is None and "no_recommendation" in data:
            raise CommandError(
                f"the size report {path} holds no recommendation: {data['no_recommendation']}"
            )
        return SizeAdvice(
            pool_size=int(recommended["pool_size"]),
            max_overflow=int(recommended["max_overflow"]),
            workload=str(data.get("workload", "?")),
            source=path,
        )
    except OSError as exc:
        raise CommandError(f"cannot read the size report {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CommandError(
            f"{path} is not a report of 'poolwarden size' (the JSON it writes beside its HTML "
            f"report): {type(exc).__name__}: {exc}"
        ) from None


def _as_json(
    target: Target, facts: ServerFacts, plan: PoolPlan, findings: list[Finding]
) -> dict[str, Any]:
    return {
        "url": str(target),
        "server": {"product": facts.product, "kind": facts.kind, "settings": facts.readings},
        "pool": plan.as_dict(),
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


def _print_report(
    console: Console,
    target: Target,
    facts: ServerFacts,
    plan: PoolPlan,
    findings: list[Finding],
) -> None:
    pool = ", ".join(
        f"{name}={_shown(getattr(plan, name))} ({plan.sources[name]})" for name in DEFAULTS
    )
    fleet = (
        f"{plan.processes} process(es) x {plan.instances} instance(s): up to {plan.fleet} "
        "connections"
    )
    for label, line in (
        ("server", f"{facts.product} at {target}"),
        ("pool", pool),
        ("fleet", fleet),
    ):
        print_wrapped(console, line, 8, Text(f"{label:<8}", style="bold"))
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
