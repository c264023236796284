#!/usr/bin/env bash
# The main job: set up what is missing, then show poolwarden working on the local MariaDB.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/poolwarden demo "$@"
