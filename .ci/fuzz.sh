#!/usr/bin/env bash
# Fuzzing: builds the targets of fuzz/ and runs each for FUZZ_SECONDS (default 20) seconds,
# FUZZ_JOBS (default 2) at a time; fails if any target finds a crash (a violated property, a
# panic, or a sanitizer report). Works from a fresh clone: no corpus is needed (fuzz/corpus and
# fuzz/artifacts are git-ignored and created on the way). Needs the nightly toolchain.
#
#   FUZZ_SECONDS=60 bash .ci/fuzz.sh            # every target, 60 s each
#   FUZZ_SECONDS=60 bash .ci/fuzz.sh partial    # some targets only
#
# A crash leaves its input in fuzz/artifacts/<target>/; reproduce and minimise it with
#   cd fuzz && cargo +nightly fuzz run <target> artifacts/<target>/crash-...
#   cd fuzz && cargo +nightly fuzz tmin <target> artifacts/<target>/crash-...
#   cd fuzz && cargo +nightly fuzz fmt <target> artifacts/<target>/minimized-from-...
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-20}"
# A fixed seed makes CI's run reproducible (the same inputs in the same order; a slower
# machine runs a prefix of them). Set FUZZ_SEED=0 for a random seed when fuzzing for longer.
seed="${FUZZ_SEED:-1}"
max_len="${FUZZ_MAX_LEN:-4096}"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo +nightly install cargo-fuzz --locked
fi

# FUZZ_PROFILE=dev (the default) builds unoptimised, =release optimised. Optimised and
# instrumented (AddressSanitizer and coverage), the library took more than 30 minutes to build
# on a Zen 3 core (its kernels are large functions with large frames); unoptimised, a minute.
# Unoptimised inputs run slower, so FUZZ_SECONDS covers fewer of them: set FUZZ_PROFILE=release
# for long fuzzing sessions.
profile=()
[[ "${FUZZ_PROFILE:-dev}" == dev ]] && profile=(--dev)

echo "== building the fuzz targets (${FUZZ_PROFILE:-dev})"
cargo +nightly fuzz build "${profile[@]}"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# One target: its libFuzzer log, and its summary line and exit status in files of its own.
fuzz_one() {
    local t="$1" log="$logs/$1.log" start elapsed status=0 runs done_line
    start=$(date +%s)
    cargo +nightly fuzz run "${profile[@]}" "$t" -- \
        -max_total_time="$seconds" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -max_len="$max_len" \
        -seed="$seed" -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    elapsed=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)
    if [ "$status" -eq 0 ]; then
        echo "$t: ok, ${runs:-?} executions; ${done_line:-no Done line} (wall ${elapsed} s)" >"$logs/$t.line"
    else
        echo "$t: CRASH after ${runs:-?} executions (wall ${elapsed} s, exit $status)" >"$logs/$t.line"
    fi
    echo "$status" >"$logs/$t.status"
}

# FUZZ_JOBS targets at a time (default 2: this machine's cores; each libFuzzer process is
# single-threaded, and the seed fixes each target's inputs whatever runs beside it).
jobs="${FUZZ_JOBS:-2}"
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
    done
    echo "== fuzzing $t for at most ${seconds} s"
    fuzz_one "$t" &
done
wait

failed=()
summary=()
for t in "${targets[@]}"; do
    line="$(cat "$logs/$t.line" 2>/dev/null || echo "$t: no result")"
    if [ "$(cat "$logs/$t.status" 2>/dev/null || echo 1)" -ne 0 ]; then
        failed+=("$t")
        echo "-- $t failed; the end of its log:"
        # The panic message, the input (Debug), and the artifact path.
        grep -E -A3 "panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer" "$logs/$t.log" | head -n 20 || true
        sed -n '/^Failing input:/,/^Minimize test case with:/p' "$logs/$t.log" | head -n 80
    fi
    echo "$line"
    summary+=("$line")
done

echo "== summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "all ${#targets[@]} targets ran without a crash"
