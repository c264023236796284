"""``poolwarden doctor``: a pool's settings against what the server says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..adapters._roles import ROLES, check_role
from .checks import SizeAdvice
from .doctor_output import as_json, print_report
from .errors import CommandError
from .findings import PoolPlan, exit_status
from .flask_config import FlaskConfig, load_flask_config
from .hosts import Probe, probe_hosts
from .options import State, connect_timeout_option, debug_option, fleet_options
from .plan import pool_plan
from .proxy_probe import read_proxy
from .server_settings import read_server_facts
from .stats_sizing import stats_findings, stats_option
from .target import Target, resolve_url
from .topology import PoolNeeds, Topology, choose_host
from .topology_checks import doctor_findings

__all__ = ["doctor_command"]


@click.command(
    "doctor",
    epilog="Examples:\n\n\b\n"
    "  poolwarden doctor mysql+pymysql://app:secret@db:3306/shop \\\n"
    "      --pool-size 10 --max-overflow 20 --pool-recycle 3600 --workers 4 --instances 3\n"
    "  poolwarden doctor 'mysql+pymysql://app:secret@db1:3306,db2:3306/shop' --role primary\n"
    "  poolwarden doctor postgresql+psycopg://app:secret@pgbouncer:6432/shop --workers 8 \\\n"
    "      --instances 4 --proxy-admin postgresql+psycopg://admin:secret@pgbouncer:6432/pgbouncer\n"
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
    "Processes with a pool on each instance (web workers, job workers; --workers is the same).",
    "Instances (hosts, containers) running those processes.",
)
@click.option(
    "--role",
    type=click.Choice(ROLES, case_sensitive=False),
    help="The role the pool needs (poolwarden's role=): primary (accepts writes), standby, "
    "prefer-standby or any.  [default: the URL's target_session_attrs, else any]",
)
@click.option(
    "--reset",
    type=click.Choice(["rollback", "session", "none"], case_sensitive=False),
    default="rollback",
    show_default=True,
    help="What the pool does with a returned connection (poolwarden's reset=), checked "
    "against PgBouncer's pool mode.",
)
@click.option(
    "--prepare-threshold",
    callback=lambda _ctx, _param, value: _prepare_value(value),
    metavar="N|none",
    help="psycopg's prepare_threshold, checked against PgBouncer.  [default: the URL's, "
    "else psycopg's 5]",
)
@click.option(
    "--proxy-admin",
    metavar="URL",
    help="PgBouncer's admin console (database pgbouncer) with a login in its admin_users or "
    "stats_users, for its pool mode and limits.  [default: the URL's login, database "
    "pgbouncer, when PgBouncer is detected]",
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
@click.option("--json", "as_json_output", is_flag=True, help="Print the findings as JSON.")
@connect_timeout_option
@debug_option
@click.pass_obj
def doctor_command(
    state: State,
    /,
    url: str | None,
    as_json_output: bool,
    **options: Any,
) -> int:
    """Check pool settings against the servers' limits, timeouts and roles.

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

    Each host of the URL (several: 'mysql+pymysql://u:p@db1:3306,db2:3306/app') is
    questioned over a connection of its own: whether it answers, its version and role
    (MySQL/MariaDB read_only, super_read_only, innodb_read_only; PostgreSQL
    pg_is_in_recovery(), in_hot_standby, default_transaction_read_only), its
    max_connections, and whether PgBouncer or ProxySQL answers there. Behind PgBouncer,
    its admin console gives its pool mode and limits.

    \b
    It checks, and prints each finding with its severity, numbers and fix:
      - the pool's role against the hosts' roles; role 'any' with several hosts;
      - pool_recycle below the server's idle timeout;
      - workers x instances x (pool_size + max_overflow) within the connections the
        server and this account may open, and those of every other host (a failover);
        behind PgBouncer within its max_client_conn, and PgBouncer's own pool within
        the server's;
      - PgBouncer's pool mode against reset='session' and psycopg's prepared statements;
        ProxySQL's pings;
      - legacy Flask-SQLAlchemy keys in the Flask config;
      - pool_size against the useful concurrency 'poolwarden size' measured;
      - what the statement and network timeouts mean for long queries and for
        connections a long job holds.

    Exit status: 0 nothing to change, 1 warnings, 2 errors (or the check could not run;
    with --json, stdout then holds {"error": ..., "exit_status": 2}).
    """
    try:
        return _doctor(state, url, as_json_output, **options)
    except Exception as exc:
        if as_json_output:  # machines read stdout: tell them why there are no findings
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


def _prepare_value(value: str | None) -> int | str | None:
    """``none`` (never prepare), a whole number, or not given ("")."""
    if value is None:
        return ""
    if value.strip().lower() in ("none", "null", "off"):
        return None
    if not value.strip().isdigit():
        raise click.BadParameter(f"{value!r}: give a whole number, or none (never prepare)")
    return int(value)


def _pool_needs(
    target: Target, role: str | None, reset: str, prepare: int | str | None
) -> PoolNeeds:
    """The role from --role, else the URL's target_session_attrs (PostgreSQL), else
    'any'; psycopg's prepare_threshold from the option, else the URL, else its 5."""
    role_source = "--role"
    if role is None and "target_session_attrs" in target.url.query:
        role_source = "the URL's target_session_attrs"
        try:
            role = check_role(target.url.query["target_session_attrs"], "target_session_attrs")
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    elif role is None:
        role, role_source = "any", "default"
    threshold: int | None = 5
    source = "psycopg's default"
    if not isinstance(prepare, str):
        threshold, source = prepare, "--prepare-threshold"
    elif "prepare_threshold" in target.url.query:
        text = target.url.query["prepare_threshold"].strip()
        threshold = int(text) if text.isdigit() else None
        source = "the URL's prepare_threshold"
    return PoolNeeds(
        role=role.lower(),
        role_source=role_source,
        reset=None if reset.lower() == "none" else reset.lower(),
        prepare_threshold=threshold,
        prepare_source=source,
        driver=target.url.driver,
    )


def _no_host(target: Target, probes: list[Probe]) -> CommandError:
    """Why doctor cannot run: the one host's connect error, or every host's."""
    if len(probes) == 1 and probes[0].failure is not None:
        return probes[0].failure
    reasons = "; ".join(f"{probe.facts.address}: {probe.facts.error}" for probe in probes)
    return CommandError(f"cannot connect to any host of {target}: {reasons}")


def _doctor(state: State, url: str | None, as_json_output: bool, **options: Any) -> int:
    """The body of :func:`doctor_command`."""
    flask_config, size_report = options["flask_config"], options["size_report"]
    connect_timeout = options["connect_timeout"]
    config = load_flask_config(flask_config) if flask_config else None
    target = state.target(resolve_url(url, config.uri if config else None), connect_timeout)
    target.require_server()
    needs = _pool_needs(target, options["role"], options["reset"], options["prepare_threshold"])
    admin = None
    if options["proxy_admin"]:
        admin = state.target(options["proxy_admin"], connect_timeout)
        if admin.kind != "postgresql" or target.kind != "postgresql":
            raise CommandError("--proxy-admin is PgBouncer's admin console: a PostgreSQL URL "
                               "(postgresql+psycopg://user@host:6432/pgbouncer), for a "
                               "PostgreSQL URL")  # fmt: skip
    given = {name: options[name] for name in ("pool_size", "max_overflow", "pool_recycle")}
    plan = _pool_plan(target, config, given, options["processes"], options["instances"])
    advice = _load_size_advice(size_report) if size_report else None
    probes = probe_hosts(target)
    hosts = tuple(probe.facts for probe in probes)
    chosen = choose_host(hosts, needs.role)
    if chosen is None:
        raise _no_host(target, probes)
    one = target.for_host(chosen.host, chosen.port)
    with one.connection() as raw:
        facts = read_server_facts(raw, target.kind)
    proxy = read_proxy(one, chosen.proxy, admin)
    topology = Topology(hosts, chosen.address, proxy, needs)
    useful = advice.pool_size if advice else None
    legacy = config.checked_findings(plan, facts, useful) if config else []
    findings = legacy + doctor_findings(plan, facts, topology, advice)
    findings += stats_findings(plan)  # --stats: Little's law on production's numbers
    status = exit_status(findings)
    if as_json_output:
        report = as_json(target, facts, plan, topology, findings)
        click.echo(state.redact(json.dumps(report, indent=2)))
    else:
        print_report(state.console(), target, facts, plan, topology, findings)
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
