#!/usr/bin/env bash
# The main job: set up what is missing, then show poolwarden working on MariaDB: the URL
# given, else $DATABASE_URL, else the server scripts/setup.sh found or started.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
set -a; source .poolwarden/servers.env; set +a
if [ "$#" -eq 0 ] || [[ "$1" == -* ]]; then
    set -- "${DATABASE_URL:-mysql+pymysql://$POOLWARDEN_TEST_MYSQL}" "$@"
fi
exec .venv/bin/poolwarden demo "$@"
