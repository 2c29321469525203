#!/usr/bin/env bash
# The test suite under AddressSanitizer: an out-of-bounds load or store in any backend
# (the AVX-512 one included, which Miri cannot execute) fails here. Nightly only
# (`-Zsanitizer`); the target must be explicit so that build scripts and proc macros are not
# instrumented. The library and integration tests only (doctests would need the flag in
# RUSTDOCFLAGS too, and add nothing the tests do not reach).
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
RUSTFLAGS="-Zsanitizer=address" ASAN_OPTIONS="detect_leaks=0" \
    run cargo "+$TOOLCHAIN" test --release --target x86_64-unknown-linux-gnu --lib --tests
echo "== .ci/asan.sh passed in ${SECONDS}s"
