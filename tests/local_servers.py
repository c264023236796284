"""Find the MariaDB and PostgreSQL that the demo and the tests use, or start poolwarden's own.

    python -m tests.local_servers ensure [mariadb] [postgresql]  # find or start them
    python -m tests.local_servers status      # the servers in use, and whether they answer
    python -m tests.local_servers stop        # stop the servers started here
    python -m tests.local_servers missing [--unreachable-only] [mariadb] [postgresql]
                                              # Debian packages our own servers would need

A server is used as configured when it answers there: ``POOLWARDEN_TEST_MYSQL`` (default
``root@127.0.0.1:3306/test``) and ``POOLWARDEN_TEST_POSTGRES`` (default
``postgres@127.0.0.1:5432/test``). When it does not, a server of poolwarden's own is started
from the Debian packages' binaries, with its data under ``.poolwarden/servers/`` (or
``POOLWARDEN_SERVERS_DIR``) on a free port of 127.0.0.1, kept between runs and reused. No
other server is touched: nothing here logs in to a server it did not start except to check
that the configured account works, and nothing changes any server's users or authentication.

``ensure`` writes ``.poolwarden/servers.env`` (``export POOLWARDEN_TEST_...=...`` lines) for
the scripts to source.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from tests.servers import DisposableMariaDB, DisposablePostgres, free_port, port_is_free

ROOT = Path(__file__).resolve().parent.parent


class Kind(NamedTuple):
    """One kind of server: where it is configured, how to reach it, what runs it."""

    name: str
    variable: str
    default: str
    server: type[Any]
    max_connections: int  # the packages' own default, which tests of the CLI read
    binaries: tuple[str, ...]
    packages: tuple[str, ...]


KINDS = {
    "mariadb": Kind(
        "mariadb", "POOLWARDEN_TEST_MYSQL", "root@127.0.0.1:3306/test", DisposableMariaDB, 151,
        ("/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db"),
        ("mariadb-server-core", "mariadb-client-core"),
    ),
    "postgresql": Kind(
        "postgresql", "POOLWARDEN_TEST_POSTGRES", "postgres@127.0.0.1:5432/test",
        DisposablePostgres, 100, ("initdb", "pg_ctl"), ("postgresql",),
    ),
}  # fmt: skip


def state_dir() -> Path:
    """Where poolwarden's own servers keep their data."""
    configured = os.environ.get("POOLWARDEN_SERVERS_DIR")
    return Path(configured) if configured else ROOT / ".poolwarden" / "servers"


def env_file() -> Path:
    """The file ``ensure`` writes, for scripts to source."""
    return state_dir().parent / "servers.env"


def answers(kind: Kind, address: str) -> str | None:
    """None if ``user[:password]@host:port/db`` accepts a login and ``SELECT 1``, else why not."""
    parts = urlsplit("//" + address)
    user = unquote(parts.username or "")
    password = unquote(parts.password or "")
    database = parts.path.lstrip("/") or None
    try:
        if kind.name == "mariadb":
            import pymysql

            conn: Any = pymysql.connect(
                host=parts.hostname, port=parts.port or 3306, user=user, password=password,
                database=database, connect_timeout=3,
            )  # fmt: skip
        else:
            import psycopg

            conn = psycopg.connect(
                host=parts.hostname, port=parts.port or 5432, user=user, password=password,
                dbname=database, connect_timeout=3,
            )  # fmt: skip
        with conn:
            conn.cursor().execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means "not usable as configured"
        # The driver's first line, without the address's password (it is never in it).
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _display(address: str) -> str:
    parts = urlsplit("//" + address)
    if parts.password is None:
        return address
    return address.replace(f":{parts.password}@", ":***@", 1)


def _binary(name: str) -> str | None:
    if name.startswith("/"):
        return name if os.access(name, os.X_OK) else None
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


def missing_packages(names: Sequence[str], unreachable_only: bool = False) -> list[str]:
    """Debian packages needed to start our own servers of ``names`` (none if all present).

    With ``unreachable_only``, only for the kinds whose configured server does not answer
    and for which no server of our own runs yet.
    """
    need: list[str] = []
    for name in names:
        kind = KINDS[name]
        if unreachable_only and _in_use(kind) is not None:
            continue
        if any(_binary(b) is None for b in kind.binaries):
            need.extend(kind.packages)
    return need


def configured(kind: Kind) -> str:
    """The address the environment configures for ``kind``."""
    return os.environ.get(kind.variable, kind.default)


def own_address(kind: Kind, port: int) -> str:
    """The address of poolwarden's own server of ``kind`` on ``port``."""
    user = "root" if kind.name == "mariadb" else "postgres"
    return f"{user}@127.0.0.1:{port}/test"


def _stored_port(base: Path) -> int | None:
    try:
        return int((base / "port").read_text())
    except (OSError, ValueError):
        return None


def _in_use(kind: Kind) -> str | None:
    """The configured address if it answers, else our running server's, else None."""
    address = configured(kind)
    if answers(kind, address) is None:
        return address
    port = _stored_port(state_dir() / kind.name)
    if port is not None and answers(kind, own_address(kind, port)) is None:
        return own_address(kind, port)
    return None


def ensure_one(kind: Kind, log: Any) -> str:
    """The address to use for ``kind``: as configured if it answers, else our own server."""
    address = configured(kind)
    base = state_dir() / kind.name
    in_use = _in_use(kind)
    if in_use == address:
        log(
            f"{kind.name}: using {_display(address)} (as configured by {kind.variable} or default)"
        )
        return address
    if in_use is not None:
        log(f"{kind.name}: using poolwarden's own server at {in_use} ({base})")
        return in_use
    problem = answers(kind, address)
    port = _stored_port(base)
    missing = missing_packages([kind.name])
    if missing:
        raise SystemExit(
            f"{kind.name}: {_display(address)} does not answer ({problem}), and starting "
            f"poolwarden's own server needs the Debian packages {', '.join(missing)}"
        )
    if port is None or not port_is_free(port):
        port = free_port()
    fresh = not base.exists()
    log(
        f"{kind.name}: {_display(address)} does not answer ({problem}); "
        f"{'creating' if fresh else 'starting'} poolwarden's own server in {base} "
        f"on 127.0.0.1:{port}"
    )
    kind.server(base, port=port, detached=True, max_connections=kind.max_connections)
    (base / "port").write_text(f"{port}\n")
    return own_address(kind, port)


def ensure(names: Sequence[str], log: Any = print) -> dict[str, str]:
    """Find or start each server of ``names``; write the env file; return the addresses."""
    addresses = {KINDS[name].variable: ensure_one(KINDS[name], log) for name in names}
    path = env_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = _read_env(path)
    kept.update(addresses)
    lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted(kept.items())]
    path.write_text(
        "# written by python -m tests.local_servers ensure\n" + "\n".join(lines) + "\n"
    )
    return addresses


def _read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                key, _, value = line[len("export ") :].partition("=")
                values[key] = "".join(shlex.split(value))
    return values


def stop(log: Any = print) -> None:
    """Stop poolwarden's own servers (their data stays, for the next ``ensure``)."""
    for kind in KINDS.values():
        base = state_dir() / kind.name
        port = _stored_port(base)
        if port is None:
            continue
        server = kind.server(base, port=port, start=False)
        if server.running():
            server.stop()
            log(f"{kind.name}: stopped poolwarden's own server on port {port}")
        else:
            log(f"{kind.name}: poolwarden's own server on port {port} is not running")


def status(log: Any = print) -> int:
    """Print, per kind, the address in use and whether it answers; 1 if one does not."""
    values = _read_env(env_file())
    worst = 0
    for kind in KINDS.values():
        address = values.get(kind.variable, configured(kind))
        problem = answers(kind, address)
        worst = worst or (problem is not None)
        log(f"{kind.name}: {_display(address)}: {'answers' if problem is None else problem}")
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ensure | status | stop | missing."""
    parser = argparse.ArgumentParser(prog="python -m tests.local_servers", description=__doc__)
    parser.add_argument("command", choices=("ensure", "status", "stop", "missing"))
    parser.add_argument("--unreachable-only", action="store_true", help="for missing")
    parser.add_argument("servers", nargs="*", choices=(*KINDS, []), default=[])
    args = parser.parse_intermixed_args(argv)
    names = args.servers or list(KINDS)
    if args.command == "ensure":
        ensure(names)
    elif args.command == "missing":
        print(" ".join(missing_packages(names, args.unreachable_only)))
    elif args.command == "stop":
        stop()
    else:
        return status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
