"""``poolwarden demo [URL]``: a short tour of the pool on a real database."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import Any

from . import Pool, PooledConnection, PoolTimeout

DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/test"


def _sleep_sql(url: str) -> str:
    return (
        "SELECT SLEEP(0.05)" if url.startswith(("mysql", "mariadb")) else "SELECT pg_sleep(0.05)"
    )


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def handler_that_forgets_to_return(pool: Pool, held: list[PooledConnection]) -> None:
    """Stands in for a request handler with a missing ``finally: conn.close()``."""
    held.append(pool.getconn())


def _session_timeout(url: str) -> Any:
    mysql = url.startswith(("mysql", "mariadb"))
    sql = "SET SESSION wait_timeout = 1" if mysql else "SET idle_session_timeout = '1s'"

    def configure(raw: Any) -> None:
        cursor = raw.cursor()
        cursor.execute(sql)
        cursor.close()
        raw.commit()

    return configure


def show_idle_timeout(url: str) -> None:
    """Three connections outlive the server's idle timeout, then serve nine requests."""
    configure = _session_timeout(url)
    with Pool(url, pool_size=3, max_lifetime=None, configure=configure) as pool:
        held = [pool.getconn() for _ in range(3)]
        for conn in held:
            conn.close()
        time.sleep(1.5)
        errors = 0
        for _ in range(9):
            try:
                with pool.connection() as conn:
                    cursor = conn.cursor()
                    cursor.execute("SELECT 1")
                    cursor.fetchall()
                    conn.commit()
            except Exception:
                errors += 1
        stats = pool.stats()
    print(
        f"   9 requests, {errors} errors; {stats.found_dead} dead connections found by the "
        f"socket probe and replaced unseen"
    )


def demo(url: str) -> int:
    """Run the tour; return the process exit status."""
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stdout,
        format="   log %(levelname)s %(name)s: %(message)s",
    )
    with Pool(url, pool_size=2, max_overflow=1, timeout=1.0, leak_threshold=0.5) as pool:
        print(f"pool: {pool!r}")

        _say("12 threads run a 50 ms query each; the pool opens only what it needs (2 + 1)")
        sql = _sleep_sql(url)

        def work() -> None:
            with pool.connection(timeout=10) as conn:
                cur = conn.cursor()
                cur.execute(sql)
                cur.fetchall()
                conn.commit()

        started = time.perf_counter()
        threads = [threading.Thread(target=work) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = pool.stats()
        print(
            f"   done in {time.perf_counter() - started:.2f} s with {stats.connects} connections; "
            f"wait {stats.wait_time}"
        )

        _say("a handler forgets to give its connections back; the pool names it")
        held: list[PooledConnection] = []
        for _ in range(3):
            handler_that_forgets_to_return(pool, held)
        try:
            pool.getconn()
        except PoolTimeout as exc:
            print(f"   PoolTimeout: {exc}")
        time.sleep(0.7)  # past leak_threshold: the housekeeper logs where they came from
        for conn in held:
            conn.close()

        _say("the server closes idle connections (session idle timeout 1 s); nobody notices")
        show_idle_timeout(url)

        _say("pool.stats()")
        for key, value in pool.stats().as_dict().items():
            print(f"   {key:>17}: {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``poolwarden`` command."""
    parser = argparse.ArgumentParser(prog="poolwarden", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="show the pool working on a real database")
    run.add_argument(
        "url",
        nargs="?",
        default=os.environ.get("DATABASE_URL", DEFAULT_URL),
        help=f"database URL (default: $DATABASE_URL or {DEFAULT_URL})",
    )
    args = parser.parse_args(argv)
    try:
        return demo(args.url)
    except ValueError as exc:
        print(f"poolwarden: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"poolwarden: {type(exc).__name__}: {_redacted(args.url, exc)}", file=sys.stderr)
        return 2


def _redacted(url: str, exc: Any) -> str:
    from ._url import parse_url

    password = parse_url(url).password if "://" in url else None
    text = str(exc)
    return text.replace(password, "***") if password else text


if __name__ == "__main__":
    sys.exit(main())
