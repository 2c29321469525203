#!/usr/bin/env bash
# The candle adapter (focal-loss-candle, a workspace member): its lints, its tests against
# candle's own autograd, its doc tests, and its example. .ci/run starts this script beside
# the fuzzers.
#
# Idempotent. Usage: bash .ci/candle.sh
set -Eeuo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
cargo clippy -p focal-loss-candle --all-targets -- -D warnings
# The tests and the example in a target directory of their own, with focal-loss at
# opt-level 1 and its forced inlining off (`--cfg opt_level_0`, see build.rs): candle-core
# turns on features of `half` and `bytemuck`, so the release build of focal-loss that the
# test step made cannot be reused here, and at opt-level 3 it was the longest build of the
# step. On a 2-core Zen 3 VM (2026-12-02) the library alone took 22 s so, against 4m09 at
# opt-level 3, and this whole script took 237 s alone (763 s beside other steps in the CI
# run of eaf8603, with the library at opt-level 3). The kernels compute the same bits at
# any optimisation level (no fast-math, no contraction of a * b + c): this step tests the
# adapter, not the kernels' speed.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/candle"
export RUSTFLAGS="--cfg opt_level_0"
O1=(--config 'profile.release.package.focal-loss.opt-level=1')
cargo test --release -p focal-loss-candle --features focal-loss/rayon "${O1[@]}"
cargo run --release -p focal-loss-candle --features focal-loss/rayon --example train "${O1[@]}"
echo "candle adapter: ${SECONDS}s"
