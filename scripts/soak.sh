#!/usr/bin/env bash
# The chaos soak (issue 23): releases go stg -> qa -> prod through real `hoist serve` processes
# while the soak kills and restarts them (on PostgreSQL, one of two replicas), turns Bitbucket,
# Gate, Slack, Jira and CircleCI's API off and on, loses CircleCI webhooks and redelivers others.
# It prints what it did and what it found, and fails if a release did not reach prod or anything
# (a tag, a trigger, a promotion, a Jira transition) happened twice.
#
# Usage: scripts/soak.sh [--quick] [--sqlite-only]
#   --quick        8 releases, 15 s of chaos per backend (what CI runs); default 40 releases, 90 s
set -euo pipefail
cd "$(dirname "$0")/.."
RELEASES=40
SECONDS_OF_CHAOS=90
BACKENDS="sqlite postgres"
for arg in "$@"; do
  case "$arg" in
    --quick) RELEASES=8; SECONDS_OF_CHAOS=15 ;;
    --sqlite-only) BACKENDS="sqlite" ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
PG_URL="${HOIST_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
cargo build --release -p hoist-cli -p hoist-bench
for backend in $BACKENDS; do
  echo "== soak on $backend"
  args=(--hoist target/release/hoist --releases "$RELEASES" --seconds "$SECONDS_OF_CHAOS")
  if [ "$backend" = postgres ]; then
    scripts/postgres.sh
    args+=(--pg "$PG_URL")
  fi
  target/release/hoist-bench soak "${args[@]}"
done
