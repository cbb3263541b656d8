#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 to user postgres without a password (what the
# tests and benchmarks use): installs Debian's server when it is missing (as root, or through
# sudo), starts the local cluster if it is down, and lets loopback connect with `trust` when the
# cluster asks for a password (a fresh install does). A machine whose PostgreSQL already answers
# is left as it is.
set -euo pipefail
ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
connects() { psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! ready; then
  echo "PostgreSQL is not installed: installing Debian's server"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -qq postgresql >/dev/null \
    || { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq postgresql >/dev/null; }
fi
if ! command -v psql >/dev/null 2>&1; then
  as_root apt-get install -y -qq postgresql-client >/dev/null \
    || { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq postgresql-client >/dev/null; }
fi
if ! ready; then
  echo "PostgreSQL is down: starting it"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
  for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
if ! ready; then
  echo "error: PostgreSQL does not answer on 127.0.0.1:5432 and could not be started" >&2
  exit 1
fi
if ! connects && [ -d /etc/postgresql ]; then
  echo "PostgreSQL asks loopback for a password: letting 127.0.0.1 in as trust (a test machine)"
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  done
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main reload || true
  sleep 1
fi
if ! connects; then
  echo "error: cannot connect to PostgreSQL at 127.0.0.1:5432 as user postgres without a password" >&2
  exit 1
fi
