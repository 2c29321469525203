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
# Optimised at opt-level 1, as the AddressSanitizer documentation advises for speed, with
# the forced inlining turned off (`--cfg opt_level_0`, which build.rs otherwise sets at
# opt-level 0 only): every helper stays a function of its own, which keeps the build short
# (instrumented at opt-level 3 the library took more than 30 minutes to build on a Zen 3 core:
# the kernels are large functions with large frames). Every load and store that remains is
# instrumented. On a 2-core Zen 3 VM (2026-12-02): at opt-level 0, 36 s to build and 330 s
# to run the five test files that drive every backend over every length, layout and element
# type; at opt-level 1, 86 s to build and 55 s to run every test file but tests/par.rs, whose
# pools of 1 to 8 threads take 97 s here and run nothing the others do not under ASan (the
# same kernels on chunks; the chunking is safe code).
TESTS=()
for f in tests/*.rs; do
    name=$(basename "$f" .rs)
    [[ $name == par ]] || TESTS+=(--test "$name")
done
RUSTFLAGS="-Zsanitizer=address $TEST_BUILD_CFG" ASAN_OPTIONS="detect_leaks=0" \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    run cargo "+$TOOLCHAIN" test --release --target x86_64-unknown-linux-gnu --lib "${TESTS[@]}"
echo "== .ci/asan.sh passed in ${SECONDS}s"
