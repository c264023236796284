"""MariaDB and PostgreSQL servers of poolwarden's own, that a test may kill and restart.

Each instance has its own data directory, socket and port on 127.0.0.1, built from the
Debian packages' binaries (``mariadb-install-db`` + ``mariadbd``; ``initdb`` + ``pg_ctl``).
The fault tests make them in a temporary directory and remove them when the session ends;
:mod:`tests.local_servers` keeps one of each under the checkout, for the demo and the tests
when no server is reachable as configured. They are created with root / postgres and no
password, which is safe only because nobody else's data is in them and they listen on
127.0.0.1 alone.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["DisposableMariaDB", "DisposablePostgres", "free_port", "port_is_free"]

# A Unix socket's path must fit in sockaddr_un (108 bytes, with its NUL): the servers'
# sockets go to a short temporary directory when the data directory's path is too deep.
_SOCKET_PATH_LIMIT = 100


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether ``port`` on 127.0.0.1 can be bound now."""
    with socket.socket() as sock:
        # As the servers bind: a port whose last connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _socket_dir(base: Path, name: str) -> Path:
    if len(str(base / name)) <= _SOCKET_PATH_LIMIT:
        return base
    digest = hashlib.sha256(str(base).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"poolwarden-{digest}"
    short.mkdir(mode=0o755, exist_ok=True)
    return short


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
    """``mariadbd`` on a free port with root (no password) and a database ``test``.

    ``base`` holds its data; when it already does, the server is started on that data
    rather than made anew; with ``start=False`` nothing is made or started (a handle on a
    server an earlier process started, to stop it). ``detached`` servers run in a session
    of their own, so they outlive the process that started them.
    """

    kind = "mysql"

    def __init__(
        self,
        base: Path,
        port: int | None = None,
        detached: bool = False,
        start: bool = True,
        max_connections: int = 60,
    ) -> None:
        self.base = base
        self.datadir = base / "data"
        self.port = port or free_port()
        self.detached = detached
        self.max_connections = max_connections
        self.socket_path = _socket_dir(base, "mysqld.sock") / "mysqld.sock"
        self.process: subprocess.Popen[bytes] | None = None
        if not start:  # a handle on a server that may be running already
            return
        base.mkdir(parents=True, exist_ok=True)
        if (self.datadir / "mysql").is_dir():
            self.start()
            return
        root = ["--user=root"] if os.geteuid() == 0 else []
        # --force: the host's name need not resolve (a minimal system may lack /etc/hosts);
        # the server skips name resolution too, so root gets an account for 127.0.0.1.
        subprocess.run(
            [
                "mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal", "--skip-test-db", "--force",
                *root,
            ],
            check=True, capture_output=True,
        )  # fmt: skip
        self.start()
        with self._over_socket() as conn:
            cursor = conn.cursor()
            cursor.execute("CREATE USER IF NOT EXISTS root@'127.0.0.1'")
            cursor.execute("GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION")
            cursor.execute("CREATE DATABASE IF NOT EXISTS test")

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts logins."""
        root = ["--user=root"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [
                "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.datadir}",
                f"--socket={self.socket_path}", f"--port={self.port}", "--skip-name-resolve",
                "--bind-address=127.0.0.1", f"--pid-file={self.base / 'mysqld.pid'}",
                f"--log-error={self.base / 'error.log'}", "--skip-log-bin",
                "--innodb-buffer-pool-size=16M", f"--max-connections={self.max_connections}",
                *root,
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=self.detached,
        )  # fmt: skip
        _wait_until(self._accepts_login, timeout, "MariaDB")

    def _accepts_login(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"mariadbd exited: {(self.base / 'error.log').read_text()[-2000:]}")
        with self._over_socket():  # root@127.0.0.1 does not exist yet on a new server
            return True

    def _over_socket(self) -> Any:
        import pymysql

        return pymysql.connect(
            unix_socket=str(self.socket_path), user="root", autocommit=True, connect_timeout=2
        )

    def stop(self, kill: bool = False) -> None:
        """Shut the server down (SIGTERM: clients' connections are closed) or kill it.

        A server this object did not start (one left running by an earlier process) is
        found by its pid file.
        """
        sig = signal.SIGKILL if kill else signal.SIGTERM
        if self.process is not None:
            self.process.send_signal(sig)
            self.process.wait(30)
            self.process = None
            return
        pid = _read_pid(self.base / "mysqld.pid")
        if pid is not None:
            os.kill(pid, sig)
            _wait_until(lambda: not _alive(pid), 30, "MariaDB shutdown")

    def running(self) -> bool:
        """Whether the server accepts root's login now."""
        try:
            with self.admin():
                return True
        except Exception:
            return False

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

    def add_user(self, name: str, password: str) -> None:
        """An account ``name``@127.0.0.1 with every privilege on ``test`` and none global.

        Failover tests connect as such a user: root's ALL PRIVILEGES include READ ONLY
        ADMIN, which lets it write on a server with ``read_only=1`` (MariaDB 10.11), so a
        demotion would go unnoticed over root's connections.
        """
        with self.admin() as conn:
            cursor = conn.cursor()
            cursor.execute(
                "CREATE USER IF NOT EXISTS %s@'127.0.0.1' IDENTIFIED BY %s", (name, password)
            )
            cursor.execute("GRANT ALL PRIVILEGES ON test.* TO %s@'127.0.0.1'", (name,))

    def set_read_only(self, on: bool) -> None:
        """``SET GLOBAL read_only``: a demotion (on) or a promotion (off). Sessions stay
        open; a write without READ ONLY ADMIN then fails with 1290, an open transaction's
        at its COMMIT."""
        self.execute(f"SET GLOBAL read_only = {int(on)}")

    def destroy(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.base, ignore_errors=True)


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child that exited but was not reaped is a zombie: gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return True


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found (install the postgresql package)")
    return found[-1]


class DisposablePostgres:
    """A PostgreSQL cluster on a free port with trust auth and a database ``test``.

    ``base`` holds its data; when it already does, the cluster is started on that data
    rather than made anew; with ``start=False`` nothing is made or started. ``pg_ctl``
    detaches the server in any case (``detached`` is accepted for symmetry with
    :class:`DisposableMariaDB`).
    """

    kind = "postgresql"

    def __init__(
        self,
        base: Path,
        port: int | None = None,
        detached: bool = False,
        start: bool = True,
        max_connections: int = 60,
    ) -> None:
        self.base = base
        self.datadir = base / "data"
        self.port = port or free_port()
        self.detached = detached
        self.max_connections = max_connections
        if not start:  # a handle on a server that may be running already
            return
        base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # initdb and the server refuse to run as root: hand the directory to the
            # postgres account and run them as that account.
            shutil.chown(base, user="postgres")
        if (self.datadir / "PG_VERSION").is_file():
            self.start()
            return
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
        sockets = _socket_dir(self.base, f".s.PGSQL.{self.port}")
        if os.geteuid() == 0 and sockets != self.base:
            shutil.chown(sockets, user="postgres")
        options = (
            f"-p {self.port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c max_connections={self.max_connections} -c superuser_reserved_connections=3"
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

    def running(self) -> bool:
        """Whether the server accepts the superuser's login now."""
        try:
            with self.admin():
                return True
        except Exception:
            return False

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

    # -- streaming replication -----------------------------------------------------------
    @classmethod
    def standby_of(
        cls, primary: DisposablePostgres, base: Path, port: int | None = None
    ) -> DisposablePostgres:
        """A streaming-replication standby of the running ``primary``, started on its own
        port with its data in ``base`` (``pg_basebackup -R``: the copy gets
        ``standby.signal`` and ``primary_conninfo``). initdb's trust set-up already lets
        replication connections in from 127.0.0.1, and ``wal_level=replica`` is the
        default. The primary's ``ALTER SYSTEM`` settings are copied with its data.
        """
        base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(base, user="postgres")
        primary._run(
            _pg_bin("pg_basebackup"), "-R", "-D", str(base / "data"), "-h", "127.0.0.1",
            "-p", str(primary.port), "-U", "postgres", "-X", "stream", "-c", "fast",
            "--no-sync",
        )  # fmt: skip
        # A hot standby needs max_connections at least the primary's.
        return cls(base, port=port, max_connections=primary.max_connections)

    def in_recovery(self) -> bool:
        """Whether this server is a standby (``pg_is_in_recovery()``)."""
        return bool(self.execute("SELECT pg_is_in_recovery()")[0][0])

    def catch_up(self, primary: DisposablePostgres, timeout: float = 10.0) -> None:
        """Wait until this standby has replayed all the WAL ``primary`` has written so far
        (what a planned switchover waits for before it promotes)."""
        ((lsn,),) = primary.execute("SELECT pg_current_wal_lsn()::text")
        query = f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"
        _wait_until(lambda: self.execute(query)[0][0], timeout, "standby replay")

    def promote(self) -> None:
        """Promote this standby to a primary, waiting until it accepts writes."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-w", "promote")

    def set_read_only(self, on: bool) -> None:
        """``default_transaction_read_only`` for every session, by ``ALTER SYSTEM`` and a
        reload: a demotion that keeps the sessions open. Each session takes it at its next
        transaction, whose writes then fail with 25006, and reports it to the client
        (a ParameterStatus message: the setting is GUC_REPORT since PostgreSQL 14)."""
        change = (
            "ALTER SYSTEM SET default_transaction_read_only = on"
            if on
            else "ALTER SYSTEM RESET default_transaction_read_only"
        )
        self.execute(change, "SELECT pg_reload_conf()")
