"""Disposable MariaDB and PostgreSQL servers that a test may kill and restart.

Each instance has its own data directory, socket and free port on 127.0.0.1, built from the
Debian packages' binaries (``mariadb-install-db`` + ``mariadbd``; ``initdb`` + ``pg_ctl``),
and is removed when the test session ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["DisposableMariaDB", "DisposablePostgres", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout} s (last error: {last!r})")


class DisposableMariaDB:
    """``mariadbd`` on a free port with root (no password) and a database ``test``."""

    kind = "mysql"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.datadir = base / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        base.mkdir(parents=True, exist_ok=True)
        root = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            [
                "mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal", "--skip-test-db", *root,
            ],
            check=True, capture_output=True,
        )  # fmt: skip
        self.start()
        with self.admin() as conn:
            conn.cursor().execute("CREATE DATABASE IF NOT EXISTS test")

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts logins."""
        root = ["--user=root"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [
                "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.datadir}",
                f"--socket={self.base / 'mysqld.sock'}", f"--port={self.port}",
                "--bind-address=127.0.0.1", f"--pid-file={self.base / 'mysqld.pid'}",
                f"--log-error={self.base / 'error.log'}", "--skip-log-bin",
                "--innodb-buffer-pool-size=16M", "--max-connections=60", *root,
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_until(self._accepts_login, timeout, "MariaDB")

    def _accepts_login(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"mariadbd exited: {(self.base / 'error.log').read_text()[-2000:]}")
        with self.admin():
            return True

    def stop(self, kill: bool = False) -> None:
        """Shut the server down (SIGTERM: clients' connections are closed) or kill it."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(30)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port and data."""
        self.stop()
        self.start()

    def admin(self) -> Any:
        """A direct root connection, outside any pool, autocommit on."""
        import pymysql

        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", database=None, autocommit=True,
            connect_timeout=2,
        )  # fmt: skip

    def execute(self, *statements: str) -> list[Any]:
        """Run statements as root; return the last one's rows."""
        with self.admin() as conn:
            cursor = conn.cursor()
            for sql in statements:
                cursor.execute(sql)
            return list(cursor.fetchall())

    def url(
        self, driver: str, port: int | None = None, user: str = "root", query: str = ""
    ) -> str:
        """A pool URL for this server (or for a proxy in front of it, at ``port``)."""
        tail = f"?{query}" if query else ""
        return f"mysql+{driver}://{user}@127.0.0.1:{port or self.port}/test{tail}"

    def destroy(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.base, ignore_errors=True)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found (install the postgresql package)")
    return found[-1]


class DisposablePostgres:
    """A PostgreSQL cluster on a free port with trust auth and a database ``test``."""

    kind = "postgresql"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.datadir = base / "data"
        self.port = free_port()
        base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # initdb and the server refuse to run as root: hand the directory to the
            # postgres account and run them as that account.
            shutil.chown(base, user="postgres")
        self._run(
            _pg_bin("initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.start()
        self.execute("CREATE DATABASE test")

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True)

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts logins."""
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=60 -c superuser_reserved_connections=3"
        )
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.datadir), "-o", options,
            "-l", str(self.base / "server.log"), "-w", "-t", str(int(timeout)), "start",
        )  # fmt: skip

    def stop(self, kill: bool = False) -> None:
        """Fast shutdown (sessions get 57P01 and are closed) or immediate (a crash)."""
        mode = "immediate" if kill else "fast"
        if (self.datadir / "postmaster.pid").exists():
            self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Stop and start again on the same port and data."""
        self.stop()
        self.start()

    def admin(self) -> Any:
        """A direct superuser connection, outside any pool, autocommit on."""
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True,
            connect_timeout=2,
        )  # fmt: skip

    def execute(self, *statements: str) -> list[Any]:
        """Run statements as the superuser; return the last one's rows."""
        with self.admin() as conn:
            rows: list[Any] = []
            for sql in statements:
                cursor = conn.execute(sql)
                rows = list(cursor.fetchall()) if cursor.description else []
            return rows

    def url(
        self, driver: str, port: int | None = None, user: str = "postgres", query: str = ""
    ) -> str:
        """A pool URL for this server (or for a proxy in front of it, at ``port``)."""
        tail = f"?{query}" if query else ""
        return f"postgresql+{driver}://{user}@127.0.0.1:{port or self.port}/test{tail}"

    def destroy(self) -> None:
        try:
            self.stop(kill=True)
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)
