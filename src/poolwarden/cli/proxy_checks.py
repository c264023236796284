"""doctor's checks of the proxy in front of the server: PgBouncer's pool mode against the
pool's ``reset`` and psycopg's prepared statements, ProxySQL's pings, and the fleet's
connection budget against the proxy's limits (behind PgBouncer the server sees
PgBouncer's server connections, bounded by its pool size, not the fleet's). Plain
functions, no I/O; what PgBouncer's modes allow is :mod:`poolwarden.adapters._proxies`'s
knowledge, which poolwarden's pools apply too."""

from __future__ import annotations

from ..adapters._proxies import (
    ProxyInfo,
    allowed_reset,
    effective_idle_timeout,
    psycopg_connect_overrides,
)
from .findings import Finding, PoolPlan, Severity
from .fixes import fleet_changes
from .fleet import FLEET_SHARE, fleet_fix, needed_limit
from .server_settings import ServerFacts
from .topology import ProxyFacts, Topology

__all__ = ["check_proxy", "describe_proxy", "poolwarden_rules"]

_MODES = {
    "session": "a client keeps one server connection until it disconnects, as without PgBouncer",
    "transaction": "a client gets a server connection for one transaction, then another "
    "client does: nothing set outside a transaction (SET, prepared statements, temporary "
    "tables, advisory locks, LISTEN) stays with the client",
    "statement": "a client gets a server connection for one statement: transactions are "
    "refused, and nothing set stays with the client",
}


def _version(info: ProxyInfo) -> str:
    return ".".join(map(str, info.version)) if info.version else ""


def describe_proxy(proxy: ProxyFacts) -> str:
    """``PgBouncer 1.18.0 in transaction mode (admin console)``, or the mode unknown."""
    info = proxy.info
    if not proxy.is_pgbouncer:
        return f"ProxySQL ({info.source})"
    name = " ".join(part for part in ("PgBouncer", _version(info)) if part)
    if info.pool_mode is None:
        return f"{name} ({info.source}), pool mode unknown"
    return f"{name} in {info.pool_mode} mode ({info.source})"


def poolwarden_rules(info: ProxyInfo) -> list[str]:
    """What poolwarden's pools (``proxy="auto"`` or ``"pgbouncer"``) do behind this
    PgBouncer, in words."""
    rules = []
    if allowed_reset(info, "session")[0] != "session":
        rules.append("reset='session' becomes 'rollback' (DISCARD ALL would clear another "
                     "client's server connection)")  # fmt: skip
    overrides = psycopg_connect_overrides(info)
    if "prepare_threshold" in overrides:
        rules.append("psycopg gets prepare_threshold=None (no prepared statements)")
    if "autocommit" in overrides:
        rules.append("psycopg gets autocommit=True (PgBouncer refuses BEGIN)")
    if not info.keeps_session_state:
        rules.append("a configure() callback that sets session state gets a warning")
    rules.append("max_lifetime='auto' retires connections before client_idle_timeout")
    return rules


def check_proxy(plan: PoolPlan, facts: ServerFacts, topology: Topology) -> list[Finding]:
    """The proxy's findings (none without a proxy)."""
    proxy = topology.proxy
    if proxy is None:
        return []
    if not proxy.is_pgbouncer:
        return _proxysql(plan, proxy)
    findings = [_pgbouncer(proxy)]
    reset = _reset(proxy, topology.needs.reset)
    if reset is not None:
        findings.append(reset)
    prepared = _prepared(proxy, topology)
    if prepared is not None:
        findings.append(prepared)
    findings.append(_clients(plan, proxy))
    findings.append(_server_pool(plan, facts, proxy))
    return findings


def _pgbouncer(proxy: ProxyFacts) -> Finding:
    info = proxy.info
    numbers = {"pool_mode": info.pool_mode, **proxy.settings}
    rules = "; ".join(poolwarden_rules(info))
    idle = effective_idle_timeout(info, None)
    if info.pool_mode is None:
        why = f" ({proxy.admin_error})" if proxy.admin_error else ""
        return Finding(
            Severity.INFO,
            "proxy",
            "PgBouncer in front of the server; its pool mode is unknown",
            numbers,
            "PgBouncer answers the connection itself (the backend pid of the handshake is "
            "not the session's pg_backend_pid()). Its mode is known only from its admin "
            f"console (database pgbouncer), which this login could not read{why}: give "
            "--proxy-admin URL with a login listed in admin_users or stats_users. "
            "poolwarden's pools assume transaction mode, the usual one, whose rules are "
            f"safe in session mode too: {rules}.",
        )
    detail = f"In {info.pool_mode} mode {_MODES[info.pool_mode]}."
    if not info.keeps_session_state:
        detail += f" poolwarden's pools apply its rules: {rules}."
    if idle is not None:
        detail += f" PgBouncer closes clients idle for client_idle_timeout={idle:g} s."
    return Finding(Severity.INFO, "proxy", describe_proxy(proxy), numbers, detail)


def _reset(proxy: ProxyFacts, reset: str | None) -> Finding | None:
    allowed, warning = allowed_reset(proxy.info, reset)
    if allowed == reset or warning is None:
        return None
    known = proxy.info.pool_mode is not None
    mode = proxy.info.mode
    return Finding(
        Severity.ERROR if known else Severity.WARNING,
        "proxy-reset",
        f"reset='session' is not possible behind PgBouncer in {mode} mode"
        + ("" if known else " (assumed)"),
        {"reset": reset, "pool_mode": proxy.info.pool_mode},
        warning,
        "reset='rollback' (poolwarden's pools switch to it by themselves there, with a "
        "warning); SET LOCAL inside transactions instead of session settings",
        {"reset": "rollback"},
    )


def _prepared(proxy: ProxyFacts, topology: Topology) -> Finding | None:
    needs = topology.needs
    info = proxy.info
    if needs.driver != "psycopg" or needs.prepare_threshold is None:
        return None
    if info.prepared_statements_ok:
        return None
    known = info.pool_mode is not None
    version = _version(info) or "of unknown version"
    return Finding(
        Severity.ERROR if known else Severity.WARNING,
        "proxy-prepared",
        f"psycopg's prepared statements fail behind PgBouncer {version} in {info.mode} mode"
        + ("" if known else " (assumed)"),
        {
            "prepare_threshold": needs.prepare_threshold,
            "prepare_threshold_from": needs.prepare_source,
            "pgbouncer_version": _version(info) or None,
            "max_prepared_statements": info.max_prepared_statements,
        },
        f"psycopg prepares a query on its {needs.prepare_threshold}th run on one server "
        "connection, then runs it by name on whichever server connection PgBouncer lends "
        "next: 'prepared statement \"_pg3_0\" does not exist' (26000) or '... already "
        "exists' (42P05). PgBouncer tracks prepared statements only from 1.21, with "
        "max_prepared_statements > 0.",
        "prepare_threshold=None (poolwarden's pools set it by themselves behind PgBouncer; "
        "a plain SQLAlchemy engine needs connect_args={'prepare_threshold': None}), or "
        "PgBouncer 1.21+ with max_prepared_statements > 0",
        {"prepare_threshold": None},
    )


def _clients(plan: PoolPlan, proxy: ProxyFacts) -> Finding:
    """The fleet's connections are PgBouncer's clients: max_client_conn bounds them."""
    limit = proxy.max_client_conn
    formula = plan.fleet_formula()
    sidecar = (
        f" With a PgBouncer on each instance (a sidecar) each gets {plan.processes} "
        f"process(es) x {plan.per_process} = {plan.processes * plan.per_process}."
    )
    if limit is None:
        return Finding(
            Severity.INFO,
            "proxy-clients",
            f"the fleet may open {plan.fleet} connections to PgBouncer; its max_client_conn "
            "is unknown",
            {"fleet_connections": plan.fleet},
            f"{formula}. PgBouncer refuses clients beyond max_client_conn (100 by default) "
            "with 'no more connections allowed (max_client_conn)'; its admin console "
            "would tell." + sidecar,
        )
    numbers = {"fleet_connections": plan.fleet, "max_client_conn": limit}
    refusal = (
        " Connects beyond it fail with 'no more connections allowed (max_client_conn)'; "
        "max_client_conn counts every client of this PgBouncer, other applications too."
    )
    if plan.fleet <= limit * FLEET_SHARE:
        return Finding(
            Severity.OK,
            "proxy-clients",
            f"the fleet may open {plan.fleet} of PgBouncer's {limit} client connections",
            numbers,
            f"{formula}.{sidecar}",
        )
    over = plan.fleet > limit
    return Finding(
        Severity.ERROR if over else Severity.WARNING,
        "proxy-clients",
        f"the fleet may open {plan.fleet} connections; PgBouncer's max_client_conn allows {limit}"
        if over
        else f"the fleet may take {plan.fleet} of PgBouncer's {limit} client connections",
        numbers,
        f"{formula} {'>' if over else 'is more than'} "
        f"{limit if over else f'{FLEET_SHARE:.0%} of {limit}'}.{refusal}{sidecar}",
        fleet_fix(plan, limit, "PgBouncer's max_client_conn"),
        fleet_changes(plan, limit, "proxy.max_client_conn"),
    )


def _server_limits(facts: ServerFacts) -> list[tuple[int, str, str, int]]:
    """The limits on the server connections of this login, smallest first: (limit, its
    name, the fix key that raises it, the reserved slots on top)."""
    limits = [
        (
            facts.available_connections,
            f"max_connections={facts.max_connections}"
            + (f" - {facts.reserved_connections} reserved" if facts.reserved_connections else ""),
            "server.max_connections",
            facts.reserved_connections,
        )
    ]
    if facts.user_limit is not None:
        limits.append((facts.user_limit, facts.user_limit_name, "server.user_limit", 0))
    if facts.database_limit is not None:
        name = "the database's CONNECTION LIMIT"
        limits.append((facts.database_limit, name, "server.database_limit", 0))
    return sorted(limits, key=lambda limit: limit[0])


def _server_pool(plan: PoolPlan, facts: ServerFacts, proxy: ProxyFacts) -> Finding:
    """Behind PgBouncer the server sees PgBouncer's server connections: its pool for
    this database and user, not the fleet."""
    opened = proxy.server_connections
    limits = _server_limits(facts)
    limit, name = limits[0][:2]
    intro = (
        f"The server sees PgBouncer's server connections, not the fleet's {plan.fleet}: "
        "PgBouncer opens at most the pool size of this database and user "
        "(default_pool_size, or the database's pool_size, plus reserve_pool_size), capped "
        "by max_db_connections and max_user_connections"
    )
    if opened is None:
        return Finding(
            Severity.INFO,
            "proxy-server-pool",
            "the server's connections are bounded by PgBouncer's pool size (unknown)",
            {"fleet_connections": plan.fleet, "server_limit": limit},
            f"{intro}; its admin console would tell (default_pool_size is 20 by default). "
            f"The server accepts {limit} ({name}).",
        )
    numbers = {
        "pgbouncer_server_connections": opened,
        "pool_size": proxy.pool_size,
        "reserve_pool": proxy.reserve_pool,
        "max_db_connections": proxy.max_db_connections,
        "max_user_connections": proxy.max_user_connections,
        "server_limit": limit,
    }
    detail = f"{intro}: {opened}. The server accepts {limit} ({name})."
    if opened <= limit * FLEET_SHARE:
        return Finding(
            Severity.OK,
            "proxy-server-pool",
            f"the server gets PgBouncer's connections, not the fleet's {plan.fleet}: at "
            f"most {opened} of its {limit}",
            numbers,
            detail,
        )
    fix, changes = _server_pool_fix(opened, limit, limits)
    return Finding(
        Severity.ERROR if opened > limit else Severity.WARNING,
        "proxy-server-pool",
        f"PgBouncer may open {opened} server connections; the server accepts {limit}"
        if opened > limit
        else f"PgBouncer may take {opened} of the server's {limit} connections",
        numbers,
        detail + " Several PgBouncers (one per instance) each open that many.",
        fix,
        changes,
    )


def _server_pool_fix(
    opened: int, limit: int, limits: list[tuple[int, str, str, int]]
) -> tuple[str, dict[str, int]]:
    """What brings PgBouncer's ``opened`` server connections within the server's limits:
    a smaller PgBouncer pool, or (when not one connection would fit) larger limits."""
    fit = int(limit * FLEET_SHARE)
    if fit >= 1:
        fix = (
            f"max_db_connections={fit} in PgBouncer ({FLEET_SHARE:.0%} of {limit}), or a "
            f"pool_size of at most {fit} for the database"
        )
        return fix, {"proxy.max_db_connections": fit}
    # Not one connection fits: every limit too small must be raised.
    changes = {
        key: needed_limit(opened, reserved)
        for cap, _, key, reserved in limits
        if opened > cap * FLEET_SHARE
    }
    raised = [
        f"{cap_name.split('=')[0]} to at least {needed_limit(opened, reserved)}"
        for cap, cap_name, _, reserved in limits
        if opened > cap * FLEET_SHARE
    ]
    return "raise " + " and ".join(raised), changes


def _proxysql(plan: PoolPlan, proxy: ProxyFacts) -> list[Finding]:
    return [
        Finding(
            Severity.INFO,
            "proxy",
            describe_proxy(proxy),
            {},
            "ProxySQL answers 'select @@version_comment limit 1' itself with '(ProxySQL)'. "
            "It takes a server connection for each query (multiplexing), so a connect "
            "succeeds even when no server is reachable, and the role doctor read is that of "
            "the server its query rules sent the query to.",
        ),
        Finding(
            Severity.INFO,
            "proxy-ping",
            "a ping proves only that ProxySQL is alive",
            {},
            "ProxySQL answers COM_PING itself: pool_pre_ping and poolwarden's ping after "
            "idle pass even with every server down. The first query then fails with 9001 "
            "or 9002 (no server of the hostgroup reachable in time); the statement never "
            "reached a server, so running it again later is safe.",
        ),
        Finding(
            Severity.INFO,
            "proxy-clients",
            f"the fleet may open {plan.fleet} connections to ProxySQL",
            {"fleet_connections": plan.fleet},
            f"{plan.fleet_formula()}. ProxySQL refuses clients beyond mysql-max_connections "
            "(2048 by default) and opens at most mysql_servers.max_connections to each "
            "server; doctor cannot read them (ProxySQL's admin interface, port 6032). The "
            "check against the server's max_connections below counts every client "
            "connection as a server one, which holds while sessions keep a server "
            "connection (transactions, session variables).",
        ),
    ]
