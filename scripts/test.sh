#!/usr/bin/env bash
# Runs every test: the unit tests of the workspace's packages (hoist, hoist-sim, hoist-cli) and the
# integration suites of cli/ (`it`, `lambda`, `secrets`) on SQLite, then `it` and `lambda` again on
# a real PostgreSQL server (installed and started here if need be). The browser tests need Debian's
# chromium and chromium-driver, installed here when missing. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${HOIST_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
scripts/postgres.sh
# The dashboard's tests drive a real headless Chromium through its chromedriver (Debian's).
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver for the browser tests"
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -qq chromium chromium-driver >/dev/null \
    || { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq chromium chromium-driver >/dev/null; }
fi
# Installed or not, the browser tests must run here, not skip (cli/tests/it/browser.rs).
export HOIST_TEST_BROWSER=required

echo "== unit and integration tests (SQLite)"
cargo test

echo "== integration tests (PostgreSQL at ${PG_URL})"
# Every test makes a database of its own; this run's share one prefix and are dropped at the end.
export HOIST_TEST_DB_PREFIX="hoist_test_run$$"
drop_run_databases() {
  psql "$PG_URL/postgres" -Atc "SELECT datname FROM pg_database WHERE datname LIKE '${HOIST_TEST_DB_PREFIX}\_%'" 2>/dev/null |
    while read -r db; do
      psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
trap drop_run_databases EXIT
HOIST_TEST_PG="$PG_URL" cargo test -p hoist-cli --test it --test lambda
