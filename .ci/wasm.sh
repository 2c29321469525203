#!/usr/bin/env bash
# WebAssembly, without and with `simd128` (WebAssembly has no run-time detection: the flag
# is chosen at compile time, and with it the portable backend's `wide` lanes are `v128`):
# the library for wasm32-unknown-unknown (the browser target; a debug build: that it builds
# is the check, its code is the wasip1 one), and the unit and integration tests on
# wasm32-wasip1 under Node's built-in WASI (.ci/wasi-run.mjs as cargo's runner), in release
# with focal-loss built for testing (.ci/lib.sh): the simd128 variant took 83 s alone from
# scratch on a 2-core Zen 3 VM (2026-12-02), 62 s of it the build, where its build at
# opt-level 3 took 4m54 beside other steps in the CI run of eaf8603; the tests ran as fast.
# tests/par.rs is compiled out there (no threads); the doctests run natively and
# on aarch64 (the README's rayon example starts a thread pool). CI runs this in the
# background, after the candle adapter.
# tests/target_features.rs fails if the simd128 flag did not reach the build.
#
# Each variant has its own target directory (the flag changes every artifact). Node's
# `--single-threaded`: Node 20 crashed (SIGSEGV) at the exit of some test modules about one
# run in three without it, after every test had passed (V8's background threads).
# `--no-turbo-fast-api-calls`: in Node 20 (and 22) the WASI functions called through V8's
# fast API path keep the module's memory as it was before a `memory.grow`, so a write to
# stdout after the heap grew goes to freed memory (nodejs/node issues 46777 and 53087). The
# large-batch identity tests grow the heap to about 150 MB; softmax_identities crashed
# Node with SIGSEGV after all 9 tests had passed, every run (Node 20.20.2, 2026-12-05),
# and passes every run with the flag, which sends every WASI call through the slow path
# that reads the memory anew.
#
# Idempotent; installs the rustup targets it needs. Usage: bash .ci/wasm.sh
set -Eeuo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
SECONDS=0

node_major=$(node --version | sed 's/^v\([0-9]*\).*/\1/')
[[ $node_major -ge 20 ]] || { echo "error: node >= 20 is needed (node:wasi), found $(node --version)" >&2; exit 1; }
run rustup target add wasm32-unknown-unknown wasm32-wasip1

# (A Node whose V8 no longer has the flag refuses to start with it: then it is left out.)
fast_api=--no-turbo-fast-api-calls
node --no-warnings $fast_api -e 0 2>/dev/null || { echo "note: this node has no $fast_api"; fast_api=""; }
export CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings --single-threaded $fast_api $PWD/.ci/wasi-run.mjs"
base="${CARGO_TARGET_DIR:-$PWD/target}"
for simd in 0 1; do
    flags=""
    [[ $simd == 1 ]] && flags="-C target-feature=+simd128"
    dir="$base/wasm-simd128-$simd"
    echo "== wasm32-unknown-unknown: the library (simd128: $simd)"
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$flags" \
        run cargo build --lib --target wasm32-unknown-unknown --target-dir "$dir"
    echo "== wasm32-wasip1: the unit and integration tests under node $(node --version) (simd128: $simd)"
    CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="$flags $TEST_BUILD_CFG" FOCAL_EXPECT_SIMD128=$simd \
        run cargo test --release --target wasm32-wasip1 --target-dir "$dir" --lib --tests \
        "${TEST_BUILD_OPT[@]}"
done
echo "== .ci/wasm.sh: passed in ${SECONDS}s"
