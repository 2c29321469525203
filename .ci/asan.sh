#!/usr/bin/env bash
# The test suite under AddressSanitizer: an out-of-bounds load or store in any backend
# (the AVX-512 one included, which Miri cannot execute) fails here. Nightly only
# (`-Zsanitizer`); the target must be explicit so that build scripts and proc macros are not
# instrumented. Unit and integration tests only (doctests would need the flag in RUSTDOCFLAGS
# too, and add nothing the tests do not reach).
#
# Idempotent; installs a nightly toolchain if none is there. Usage: bash .ci/asan.sh
set -Eeuo pipefail
cd "$(dirname "$0")/.."

source .ci/lib.sh

SECONDS=0
TOOLCHAIN=${ASAN_TOOLCHAIN:-nightly}
if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    run rustup toolchain install "$TOOLCHAIN" --profile minimal
fi
host=$(rustc -vV | sed -n 's/^host: //p')
if [[ "$host" != x86_64-unknown-linux-gnu ]]; then
    echo "== skipped: AddressSanitizer runs on an x86_64-unknown-linux-gnu host (this is $host)"
    exit 0
fi
# A target directory of its own: instrumented objects must not mix with the others.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/asan"
# Unoptimised (opt-level 0, which also turns off the forced inlining: build.rs), where ASan
# sees every load and store as written: instrumented at opt-level 3 the library took more than
# 30 minutes to build on a Zen 3 core (the kernels are large functions with large frames),
# against 30 s unoptimised. Unoptimised code runs ~30x slower, so the tests run here are those
# that drive every backend over every length, layout and element type (the unit tests, the
# identities of both families, half precision, the target-feature paths, the adversarial
# inputs); the accuracy and determinism suites run optimised in the main test step.
RUSTFLAGS="-Zsanitizer=address" ASAN_OPTIONS="detect_leaks=0" CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
    run cargo "+$TOOLCHAIN" test --release --target x86_64-unknown-linux-gnu --lib \
    --test identities --test softmax_identities --test half --test target_features \
    --test adversarial
echo "== .ci/asan.sh passed in ${SECONDS}s"
