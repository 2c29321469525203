#!/usr/bin/env bash
# The candle adapter (focal-loss-candle, a workspace member): its lints, its tests against
# candle's own autograd, its doc tests, and its example. .ci/run starts this script beside
# the fuzzers.
#
# Idempotent. Usage: bash .ci/candle.sh
set -Eeuo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
SECONDS=0
cargo clippy -p focal-loss-candle --all-targets -- -D warnings
# The tests and the example in a target directory of their own, with focal-loss built for
# testing (.ci/lib.sh): candle-core turns on features of `half` and `bytemuck`, so the test
# step's release build of focal-loss cannot be reused here, and at opt-level 3 it was the
# longest build of the step. This script took 237 s alone on a 2-core Zen 3 VM
# (2026-12-02); 763 s beside other steps in the CI run of eaf8603, at opt-level 3.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/candle"
export RUSTFLAGS="$TEST_BUILD_CFG"
cargo test --release -p focal-loss-candle --features focal-loss/rayon "${TEST_BUILD_OPT[@]}"
cargo run --release -p focal-loss-candle --features focal-loss/rayon --example train \
    "${TEST_BUILD_OPT[@]}"
echo "candle adapter: ${SECONDS}s"
