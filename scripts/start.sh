#!/usr/bin/env bash
# `npm start`: the whole gateway in one process. With no LAPOR_DATABASE_URL / LAPOR_REDIS_URL it
# starts PostgreSQL and redis-server itself, keeping their data under ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-services.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
exec node bin/lapor.js start "$@"
