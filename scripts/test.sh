#!/usr/bin/env bash
# Runs every test: unit tests, then the integration suites (`it`, `lambda`) once on SQLite and once
# on a real PostgreSQL server (started here if it is down). Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${HOIST_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
scripts/postgres.sh

echo "== unit and integration tests (SQLite)"
cargo test

echo "== integration tests (PostgreSQL at ${PG_URL})"
HOIST_TEST_PG="$PG_URL" cargo test --test it --test lambda
