#!/usr/bin/env bash
# Runs every test: the unit tests of the workspace's packages (hoist, hoist-sim, hoist-cli) and the
# integration suites of cli/ (`it`, `lambda`, `secrets`) on SQLite, then `it` and `lambda` again on
# a real PostgreSQL server (started here if it is down). Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${HOIST_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
scripts/postgres.sh

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
