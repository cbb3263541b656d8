#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432, starting the local cluster if it is down.
set -euo pipefail
ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if ! ready; then
  echo "PostgreSQL is down: starting it"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
  for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
if ! ready; then
  echo "error: PostgreSQL does not answer on 127.0.0.1:5432 and could not be started" >&2
  exit 1
fi
