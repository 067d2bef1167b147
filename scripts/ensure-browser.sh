#!/usr/bin/env bash
# Makes sure the browser the page tests drive is installed: Debian's chromium at /usr/bin/chromium,
# which playwright-core starts itself (test/helpers/browser.ts; `npx playwright install` downloads a
# browser of its own and is not used). Installs it with apt-get when run as root; otherwise says
# exactly what to run.
set -euo pipefail

[ -x /usr/bin/chromium ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium from Debian's packages…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # policy-rc.d keeps the packages from starting system-wide services (chromium pulls in dbus and
  # friends): the tests start only the browser, headless.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  rm -f /usr/sbin/policy-rc.d
else
  echo "lapor-gateway's page tests need: chromium (Debian's package, /usr/bin/chromium)" >&2
  echo "install it with: sudo apt-get install -y --no-install-recommends chromium" >&2
  exit 1
fi
