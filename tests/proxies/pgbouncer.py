"""A PgBouncer of the tests' own, in front of a PostgreSQL, that a test may restart, pause,
reconfigure and give admin commands to.

Each instance has its own directory (configuration, auth file, log, pid file) and a free
port on 127.0.0.1; it has no Unix socket, so nothing but TCP to 127.0.0.1 reaches it. It
lets in the listed users without a password (``auth_type = trust``, which still needs each
user name in the auth file), which is safe only because it listens on 127.0.0.1 alone and
fronts a disposable server. ``admin_users`` (by default the first user) may use the admin
console (the database ``pgbouncer``): ``SHOW``, ``RECONNECT``, ``KILL``, ``PAUSE``,
``RESUME``; :meth:`DisposablePgBouncer.admin` logs in as the first of them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.servers import free_port

__all__ = ["POOL_MODES", "DisposablePgBouncer", "pgbouncer_binary"]

POOL_MODES = ("session", "transaction", "statement")

#: Startup parameters psycopg/libpq may send that PgBouncer does not track; PgBouncer
#: refuses a client that sends an unknown one, unless it is listed here.
_IGNORED_STARTUP_PARAMETERS = "extra_float_digits,options,search_path"


def pgbouncer_binary() -> str | None:
    """The pgbouncer executable (Debian's package installs /usr/sbin/pgbouncer)."""
    for candidate in ("/usr/sbin/pgbouncer", shutil.which("pgbouncer")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _ini_value(value: Any) -> str:
    return str(int(value)) if isinstance(value, bool) else str(value)


class DisposablePgBouncer:
    """``pgbouncer`` on a free 127.0.0.1 port in front of ``backend_port`` (database
    ``test``), in ``pool_mode``.

    ``settings`` go to its ``[pgbouncer]`` section as they are (``max_client_conn``,
    ``query_wait_timeout``, ``default_pool_size`` ...); :meth:`configure` changes them
    later and reloads. ``kind`` is ``"postgresql"``, so the fault suites' helpers
    (``sleep_sql``, ``session_idle_timeout``) treat it as the server it fronts.
    """

    kind = "postgresql"

    def __init__(
        self,
        base: Path,
        backend_port: int,
        pool_mode: str = "transaction",
        users: Iterable[str] = ("postgres",),
        admin_users: Iterable[str] | None = None,
        settings: Mapping[str, Any] | None = None,
        port: int | None = None,
        backend_host: str = "127.0.0.1",
        start: bool = True,
    ) -> None:
        if pool_mode not in POOL_MODES:
            raise ValueError(f"pool_mode must be one of {POOL_MODES}, got {pool_mode!r}")
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError("pgbouncer not found (install the Debian package pgbouncer)")
        self.binary = binary
        self.base = base
        self.port = port or free_port()
        self.backend_host = backend_host
        self.backend_port = backend_port
        self.pool_mode = pool_mode
        self.users = tuple(users)
        self.admin_users = tuple(admin_users) if admin_users is not None else self.users[:1]
        self.settings: dict[str, Any] = dict(settings or {})
        self.process: subprocess.Popen[bytes] | None = None
        base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root: it runs as the postgres account (as
            # DisposablePostgres's server does), which must own its files.
            shutil.chown(base, user="postgres", group="postgres")
        self._write_files()
        if start:
            self.start()

    @property
    def ini(self) -> Path:
        """Its configuration file."""
        return self.base / "pgbouncer.ini"

    @property
    def log(self) -> Path:
        """Its log file."""
        return self.base / "pgbouncer.log"

    def _write_files(self) -> None:
        values: dict[str, Any] = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": self.base / "users.txt",
            "admin_users": ",".join(self.admin_users),
            "pool_mode": self.pool_mode,
            "logfile": self.log,
            "pidfile": self.base / "pgbouncer.pid",
            "ignore_startup_parameters": _IGNORED_STARTUP_PARAMETERS,
            # A failed server login blocks new logins for server_login_retry (15 s by
            # default); the fault tests restart the server and must not wait that long.
            "server_login_retry": 1,
            "max_client_conn": 100,
            "default_pool_size": 20,
        }
        values.update(self.settings)
        lines = [
            "[databases]",
            f"test = host={self.backend_host} port={self.backend_port} dbname=test",
            "",
            "[pgbouncer]",
            *(f"{key} = {_ini_value(value)}" for key, value in values.items()),
            "",
        ]
        self.ini.write_text("\n".join(lines))
        (self.base / "users.txt").write_text("".join(f'"{user}" ""\n' for user in self.users))
        if os.geteuid() == 0:
            for path in self.base.iterdir():
                shutil.chown(path, user="postgres", group="postgres")

    def start(self, timeout: float = 15.0) -> None:
        """Start it and wait until its admin console answers."""
        as_postgres: dict[str, Any] = {}
        if os.geteuid() == 0:
            # Popen switches user itself (rather than through runuser), so that the
            # process we hold, and signal, is pgbouncer itself.
            as_postgres = {"user": "postgres", "group": "postgres", "extra_groups": []}
        self.process = subprocess.Popen(
            [self.binary, str(self.ini)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.base,
            **as_postgres,
        )
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"pgbouncer exited at start: {self.log_tail()}")
            try:
                self.admin("SHOW VERSION")
                return
            except Exception as exc:  # not listening yet
                last = exc
            time.sleep(0.05)
        self.stop(kill=True)
        raise RuntimeError(f"pgbouncer not ready after {timeout} s ({last!r}): {self.log_tail()}")

    def stop(self, kill: bool = False) -> None:
        """Immediate shutdown (SIGTERM: every client and server connection is closed at
        once, as when PgBouncer is restarted by its service manager), or SIGKILL."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(15)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port and configuration."""
        self.stop()
        self.start()

    def running(self) -> bool:
        """Whether its process is alive."""
        return self.process is not None and self.process.poll() is None

    def configure(self, **settings: Any) -> None:
        """Change ``[pgbouncer]`` settings and have the running PgBouncer reload them."""
        self.settings.update(settings)
        self._write_files()
        if self.running():
            self.admin("RELOAD")

    def admin(self, command: str, timeout: float = 10.0) -> list[tuple[Any, ...]]:
        """Run one admin console command (``SHOW POOLS``, ``RECONNECT test``, ``KILL test``,
        ``PAUSE test``, ``RESUME test`` ...) and return its rows (none for most commands)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.admin_users[0], dbname="pgbouncer",
            autocommit=True, connect_timeout=max(1, int(timeout)),
        ) as conn:  # fmt: skip
            cursor = conn.execute(command)
            return list(cursor.fetchall()) if cursor.description else []

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW <what>`` as dictionaries keyed by column name."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.admin_users[0], dbname="pgbouncer",
            autocommit=True, connect_timeout=5,
        ) as conn:  # fmt: skip
            cursor = conn.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def servers(self) -> int:
        """Server connections PgBouncer holds for database ``test`` now."""
        return sum(1 for row in self.show("SERVERS") if row["database"] == "test")

    def log_tail(self, size: int = 2000) -> str:
        """The end of its log, for error messages."""
        try:
            return self.log.read_text()[-size:]
        except OSError:
            return "(no log)"

    def url(
        self, driver: str, port: int | None = None, user: str = "postgres", query: str = ""
    ) -> str:
        """A pool URL for database ``test`` through this PgBouncer."""
        tail = f"?{query}" if query else ""
        return f"postgresql+{driver}://{user}@127.0.0.1:{port or self.port}/test{tail}"

    def destroy(self) -> None:
        """Kill it and remove its directory."""
        self.stop(kill=True)
        shutil.rmtree(self.base, ignore_errors=True)
