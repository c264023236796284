#!/usr/bin/env bash
# Prepare this machine for poolwarden: system packages, the MariaDB and PostgreSQL servers
# (installed from Debian packages if absent, started if stopped, configured for the tests:
# MariaDB root with an empty password and PostgreSQL trust auth on 127.0.0.1, database
# `test` on both), and a virtualenv in .venv with poolwarden and its development tools.
# Safe to run again: every step checks before it acts. With --browser it also installs
# Debian's headless-capable Chromium, which the tests use to render the size report.
set -euo pipefail
cd "$(dirname "$0")/.."
browser=false
for arg in "$@"; do
    case "$arg" in
        --browser) browser=true ;;
        *) echo "usage: $0 [--browser]" >&2; exit 2 ;;
    esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
# run from / so psql does not warn that it cannot enter a private working directory
as_postgres() { (cd / && if [ -z "$SUDO" ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi); }

# -- system packages -------------------------------------------------------------------
need=()
packages=(python3 python3-venv python3-dev gcc pkg-config libmariadb-dev mariadb-server mariadb-client postgresql nftables)
if $browser; then packages+=(chromium); fi
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    log "installing Debian packages: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# -- MariaDB -----------------------------------------------------------------------------
if ! mariadb-admin --protocol=socket -uroot ping >/dev/null 2>&1 && ! mariadb-admin -h127.0.0.1 -uroot ping >/dev/null 2>&1; then
    log "starting MariaDB"
    $SUDO install -d -o mysql -g mysql /run/mysqld
    $SUDO service mariadb start >/dev/null 2>&1 \
        || $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    for _ in $(seq 60); do mariadb-admin --protocol=socket -uroot ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
# Unless skip-name-resolve is set, MariaDB resolves 127.0.0.1 to "localhost", so TCP logins
# as root match root@localhost, not root@'127.0.0.1'. Try unix_socket first and the password
# last, so a wrong password over TCP fails with 1045 (ER_ACCESS_DENIED_ERROR), not with
# unix_socket's 1698. The check below also repairs set-ups made with the old plugin order.
if ! mariadb -h127.0.0.1 -uroot -e "USE test" >/dev/null 2>&1 \
    || [[ "$(mariadb -h127.0.0.1 -uroot -p'not-the-password' -e '' 2>&1)" == *"ERROR 1698"* ]]; then
    log "configuring MariaDB: root without password on 127.0.0.1, database test"
    $SUDO mariadb --protocol=socket -uroot <<'SQL'
ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS test;
SQL
fi

# -- PostgreSQL --------------------------------------------------------------------------
pg_version="$(ls /etc/postgresql | sort -V | tail -1)"
if ! pg_isready -q -h 127.0.0.1; then
    log "starting PostgreSQL $pg_version"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start \
        || $SUDO pg_ctlcluster "$pg_version" main start
    for _ in $(seq 60); do pg_isready -q -h 127.0.0.1 && break; sleep 0.5; done
fi
if ! psql -h 127.0.0.1 -U postgres -d test -Atc "SELECT 1" >/dev/null 2>&1; then
    log "configuring PostgreSQL: trust auth on 127.0.0.1, database test"
    hba="$(as_postgres "psql -Atc 'SHOW hba_file'")"
    if ! $SUDO grep -q "^host all all 127.0.0.1/32 trust" "$hba"; then
        $SUDO sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    as_postgres "psql -qc 'SELECT pg_reload_conf()'" >/dev/null
    as_postgres "psql -Atc \"SELECT 1 FROM pg_database WHERE datname = 'test'\"" | grep -q 1 \
        || as_postgres "createdb test"
fi

# -- virtualenv --------------------------------------------------------------------------
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "poolwarden needs Python >= 3.10; found $(python3 --version)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
stamp=".venv/.poolwarden-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing poolwarden and its development tools into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    echo "$want" > "$stamp"
fi
