#!/usr/bin/env bash
# The candle adapter (focal-loss-candle, a workspace member): its lints, its tests against
# candle's own autograd, its doc tests, and its example. candle-core takes most of the time
# (about 7 minutes of building on 2 cores, cold); .ci/run starts this script beside the
# fuzzers, which use one core.
#
# Idempotent. Usage: bash .ci/candle.sh
set -Eeuo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
cargo clippy -p focal-loss-candle --all-targets -- -D warnings
# With the features the crate's own test build gave focal-loss (`rayon`, through its
# dev-dependency on itself), so that the release build of focal-loss that `cargo test
# --release` made is reused here rather than compiled again (minutes on a CI core).
cargo test --release -p focal-loss-candle --features focal-loss/rayon
cargo run --release -p focal-loss-candle --features focal-loss/rayon --example train
echo "candle adapter: ${SECONDS}s"
