#!/usr/bin/env bash
# `npm test`: type-check, then every test against real Redis and PostgreSQL, which the test harness
# starts on free loopback ports (test/helpers/global-setup.ts), and a real Dovecot and SMTP server
# for the email channel (test/helpers/email.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-services.sh
bash scripts/ensure-mail.sh
bash scripts/ensure-browser.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc --noEmit
exec npx vitest run "$@"
