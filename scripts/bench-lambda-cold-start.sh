#!/usr/bin/env bash
# Cold start and memory of `hoist lambda` (process start -> first answered invocation, peak RSS)
# against a local Lambda Runtime API, beside the seed's approach (Python + requests) measured the
# same way on this machine. Prints a table. Usage: scripts/bench-lambda-cold-start.sh
# HOIST_BENCH_RUNS=N (default 10); HOIST_BENCH_PG=off to leave PostgreSQL out.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import requests' 2>/dev/null; then
  echo "== installing requests for the Python baseline"
  python3 -m pip install --quiet requests
fi
if [ "${HOIST_BENCH_PG:-}" != "off" ]; then
  scripts/postgres.sh || echo "PostgreSQL could not be started: measured without it"
fi
cargo bench -p hoist-cli --bench lambda_cold_start
