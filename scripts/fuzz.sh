#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets: the Jira, CircleCI and Bitbucket parsers, signature
# headers, X-Forwarded-For) for a bounded time each, and prints each one's duration and executions.
# A crash, panic, timeout or memory blow-up fails the script and leaves the input in fuzz/artifacts.
#
# Usage: scripts/fuzz.sh [--quick] [SECONDS_PER_TARGET (default 20)] [TARGET...]
#   --quick  build without optimisation: on 2 cores the build takes ~3 min instead of ~9 (one
#            codegen unit over Hoist's whole dependency tree), for ~8x fewer executions per
#            second. For a short smoke run (what CI does); a real hunt wants the optimised build.
#
# Needs cargo-fuzz (installed here if missing, from crates.io) and a compiler that accepts nightly
# flags: the stable toolchain with RUSTC_BOOTSTRAP=1, as no other toolchain can be fetched.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=(--release)
if [ "${1:-}" = --quick ]; then
    profile=(--dev)
    shift
fi
secs="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(jira circleci bitbucket signature forwarded_for)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# Hoist forbids unsafe code, so the fuzzers hunt panics, hangs and unbounded memory rather than
# memory errors: no sanitizer, which doubles the executions per second.
fuzz_flags=(--sanitizer none "${profile[@]}" --debug-assertions)

seed() {
    local dir="fuzz/corpus/$1"
    mkdir -p "$dir"
    shift
    for f in "$@"; do cp "$f" "$dir/"; done
}
seed jira fixtures/jira-webhook-issue-updated-assignee-trimmed.json
printf '{"repo": "payments-api", "commit": "abcdef1234567", "issue": "PAY-1", "env": "stg"}' >fuzz/corpus/jira/automation.json
seed circleci fixtures/circleci-job-completed.json fixtures/circleci-workflow-completed.json fixtures/circleci-workflow-completed-gitlab.json
seed bitbucket fixtures/bitbucket-webhook-repo-push-tag-created.json fixtures/bitbucket-webhook-repo-push-signed.json
mkdir -p fuzz/corpus/signature fuzz/corpus/forwarded_for
printf 'v1=734cc62f32841568f45715aeb9f4d7891324e6d948e4c6c60c0621cdac48623a\nhello world' >fuzz/corpus/signature/circleci
printf 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\nHello, World!' >fuzz/corpus/signature/github
printf '\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x01\x01\x01198.51.100.7, 10.2.2.2\n[2001:db8::1]:443' >fuzz/corpus/forwarded_for/hops

echo "== building fuzz targets"
build_start=$(date +%s)
cargo fuzz build "${fuzz_flags[@]}"
echo "built in $(($(date +%s) - build_start)) s"

total_runs=0
total_secs=0
summary=()
for t in "${targets[@]}"; do
    log="fuzz/target/${t}.log"
    mkdir -p fuzz/target
    start=$(date +%s)
    status=0
    cargo fuzz run "${fuzz_flags[@]}" "$t" -- \
        -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    elapsed=$(($(date +%s) - start))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    runs="${runs:-0}"
    total_runs=$((total_runs + runs))
    total_secs=$((total_secs + elapsed))
    summary+=("$(printf '%-14s %6s s %12s executions  %8s exec/s' "$t" "$elapsed" "$runs" "$((runs / (secs > 0 ? secs : 1)))")")
    if [ "$status" -ne 0 ]; then
        echo "fuzz target $t FAILED (exit $status); its log:"
        tail -40 "$log"
        exit 1
    fi
done
echo "== fuzz summary (${secs} s of fuzzing per target)"
printf '%s\n' "${summary[@]}"
echo "total: ${#targets[@]} targets, ${total_runs} executions in ${total_secs} s, no crash"
