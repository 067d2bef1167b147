#!/usr/bin/env bash
# Makes sure the local mail server of the email channel's tests and `npm run sim:mail` can run:
# Debian's Dovecot IMAP server (src/local/dovecot.ts starts it with a configuration of its own).
# As root it installs the package with apt-get and creates the system user that owns the test
# mail (Dovecot will not run mail as root); otherwise it says exactly what to run.
set -euo pipefail

MAIL_USER=lapor-mail # MAIL_SYSTEM_USER in src/local/dovecot.ts

missing=()
# dovecot-core alone has no IMAP server: /usr/lib/dovecot/imap comes with dovecot-imapd.
if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/lib/dovecot/imap ]; then
  missing+=(dovecot-imapd)
fi

if [ "$(id -u)" != 0 ]; then
  # Without root, Dovecot runs every process as the current user: no system user is needed.
  [ ${#missing[@]} -eq 0 ] && exit 0
  echo "lapor-gateway's local mail server needs: ${missing[*]}" >&2
  echo "install it with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "lapor-gateway's local mail server needs Debian's ${missing[*]} (Dovecot 2.3), and apt-get is not here" >&2
    exit 1
  fi
  echo "installing ${missing[*]} from Debian's packages…" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Another test file or ensure script may be running apt at the same moment: wait for its lock.
  apt_options=(-o DPkg::Lock::Timeout=300 -qq)
  apt-get "${apt_options[@]}" update >/dev/null
  # policy-rc.d keeps the package from starting the system-wide Dovecot on port 143: we start our
  # own. An existing policy (a Docker image's) is left as it was.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get "${apt_options[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

# A system user (uid below 1000, no home, no login) that owns the mail; the package creates
# Dovecot's own dovecot and dovenull users.
if ! id -u "$MAIL_USER" >/dev/null 2>&1; then
  # Two of these scripts at once: the loser's useradd fails with "already exists", which is fine.
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER" 2>/dev/null \
    || id -u "$MAIL_USER" >/dev/null
fi
