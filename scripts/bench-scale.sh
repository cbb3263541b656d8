#!/usr/bin/env bash
# History at scale (SPEC 10, issue 22): fills a store with a year of history (100,000 releases and
# 1,000,000 job rows; --quick: 10,000 and 100,000) on SQLite and on PostgreSQL, then times the
# dashboard's release list, a release page, the DORA page and /api/stats on a real `hoist serve`
# (p50, p99). Prints numbers; never fails on a slow one, only when the harness breaks.
#
# Usage: scripts/bench-scale.sh [--quick] [--sqlite-only]
# PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth), started by scripts/postgres.sh if down.
set -euo pipefail
cd "$(dirname "$0")/.."

RELEASES=100000 JOBS=1000000 REQUESTS=100
PG=(--pg "postgres://postgres@127.0.0.1:5432")
for arg in "$@"; do
  case "$arg" in
    --quick) RELEASES=10000 JOBS=100000 REQUESTS=30 ;;
    --sqlite-only) PG=() ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

cargo build --release --bin hoist
cargo build --release -p hoist-bench
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d /tmp/hoist-scale.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# Copied at once: another build sharing the target directory cannot swap them mid-run.
cp "$TARGET/release/hoist" "$TARGET/release/hoist-bench" "$WORK/"
if [ "${#PG[@]}" -gt 0 ]; then scripts/postgres.sh; fi

echo "== history at scale: $RELEASES releases, $JOBS jobs over 365 days; $REQUESTS requests per page"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
HOIST_LOG=warn "$WORK/hoist-bench" scale --hoist "$WORK/hoist" "${PG[@]}" \
  --releases "$RELEASES" --jobs "$JOBS" --requests "$REQUESTS"

