#!/usr/bin/env bash
# Prepare this checkout for poolwarden's demo (default) or its tests (--tests). Safe to run
# again: every step checks before it acts. What it installs and changes (README, "What the
# set-up installs and changes"):
#
#   - Debian packages, only those missing (apt-get, through sudo when not root): the
#     drivers' build tools (python3-venv python3-dev gcc pkg-config libmariadb-dev); the
#     MariaDB and PostgreSQL server binaries (mariadb-server-core mariadb-client-core
#     postgresql) when a server is needed that no configured one provides, and always with
#     --tests (the fault tests start servers of their own); with --tests also nftables (to
#     drop a test connection's packets), chromium (to render the HTML report) and
#     pgbouncer (the proxy tests start PgBouncers of their own, as the postgres account).
#   - .venv, with poolwarden installed from this checkout and its development tools.
#   - The servers: those configured by POOLWARDEN_TEST_MYSQL / POOLWARDEN_TEST_POSTGRES
#     (default root@127.0.0.1:3306/test and postgres@127.0.0.1:5432/test) when they answer;
#     otherwise poolwarden's own, started under .poolwarden/servers/ on free 127.0.0.1
#     ports and reused on later runs (`.venv/bin/python -m tests.local_servers stop` stops
#     them). The addresses go to .poolwarden/servers.env, which the demo and tests read.
#
# It never changes the users or authentication of a server it did not create, and never
# starts, stops or reconfigures a system service, except one: when installing pgbouncer
# here made its package start the system's pgbouncer service (on 6432), that service is
# stopped and disabled again, since nothing asked for it.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=false
for arg in "$@"; do
    case "$arg" in
        --tests | --browser) tests=true ;;  # --browser: the old name of --tests
        *) echo "usage: $0 [--tests]" >&2; exit 2 ;;
    esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

install_missing() {
    local need=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
    done
    if [ "${#need[@]}" -gt 0 ]; then
        log "installing Debian packages: ${need[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
    fi
}

# -- the drivers' build tools, and the tests' own tools ------------------------------------
install_missing python3 python3-venv python3-dev gcc pkg-config libmariadb-dev
if $tests; then
    had_pgbouncer=false
    if dpkg-query -W -f='${Status}' pgbouncer 2>/dev/null | grep -q "ok installed"; then
        had_pgbouncer=true
    fi
    install_missing nftables chromium pgbouncer
    # Debian's package enables and starts its service where the init system lets it; the
    # tests start their own PgBouncers, so a service this run brought up is put back down.
    if ! $had_pgbouncer; then
        if command -v systemctl >/dev/null && systemctl is-active --quiet pgbouncer 2>/dev/null; then
            log "stopping and disabling the pgbouncer service its package started"
            $SUDO systemctl disable --now pgbouncer
        elif [ -x /etc/init.d/pgbouncer ] && /etc/init.d/pgbouncer status >/dev/null 2>&1; then
            log "stopping the pgbouncer service its package started"
            $SUDO /etc/init.d/pgbouncer stop
        fi
    fi
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

# -- the servers -------------------------------------------------------------------------
servers=(mariadb)
missing_mode=(--unreachable-only)
if $tests; then servers=(mariadb postgresql); missing_mode=(); fi
read -r -a server_packages <<< "$(.venv/bin/python -m tests.local_servers missing "${missing_mode[@]}" "${servers[@]}")"
if [ "${#server_packages[@]}" -gt 0 ]; then install_missing "${server_packages[@]}"; fi
.venv/bin/python -m tests.local_servers ensure "${servers[@]}" | sed 's/^/[setup] /'
