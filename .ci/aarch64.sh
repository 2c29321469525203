#!/usr/bin/env bash
# The test suite on aarch64 under qemu user-mode emulation: unit tests, every integration
# test (but for two thread-pool bit tests, below) and the doctests, built with `cargo test
# --release`. On aarch64 the `Portable` backend (and so `Auto`) is `wide`'s NEON code; the
# tests check it against the f64 oracle and against the `Scalar` backend.
#
# focal-loss is built for testing (.ci/lib.sh), and runs no slower under qemu so: alone on
# a 2-core Zen 3 VM (2026-12-02), build 67 s and run 220 s; at opt-level 3 beside other
# steps in the CI run of eaf8603, build 311 s and run 314 s. (The Cortex-M4F firmware of
# .ci/m4f.sh is the bare-metal Arm build at opt-level 3, run under qemu-system-arm.)
#
# Idempotent; installs Debian's qemu-user and the aarch64 cross gcc (as linker, with the
# aarch64 glibc that qemu loads through -L), and the rustup target. The linker and runner
# are set here in the environment, not in a committed .cargo/config.toml, so that no other
# build is affected. Usage: bash .ci/aarch64.sh [--install: only what it installs]
set -Eeuo pipefail
cd "$(dirname "$0")/.."

source .ci/lib.sh

SECONDS=0
TARGET=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu

# qemu-aarch64; the cross gcc, used as linker; the aarch64 glibc (crt files and libc.so for
# the link, ld-linux-aarch64.so.1 and libc.so.6 for qemu), not a recommendation of gcc.
PKGS=(qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
need=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
    echo "== apt: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    run apt-get update -q
    run apt-get install -y -q --no-install-recommends "${need[@]}"
else
    echo "== apt: ${PKGS[*]} already installed"
fi
run qemu-aarch64 --version | sed -n 1p

echo "== rustup target $TARGET"
run rustup target add "$TARGET"
# (.ci/run installs first, then runs this script beside others that would install too.)
[[ ${1:-} == --install ]] && { echo "== .ci/aarch64.sh: installed"; exit 0; }

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $SYSROOT"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$TEST_BUILD_CFG"
echo "linker: $CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER"
echo "runner: $CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER"

echo "== build the tests for $TARGET"
run cargo test --release --target "$TARGET" --no-run "${TEST_BUILD_OPT[@]}"
build=$SECONDS

echo "== run the whole suite under qemu, but for two thread-pool tests"
# tests/par.rs's two bit-determinism tests (every reduction on pools of 1, 2, 3 and 8 threads,
# batches above the parallel threshold) took 265 s of the suite's 467 s under qemu, which
# emulates the threads on one core. They run natively in the test step; the rest of
# tests/par.rs (errors, other entry points, chunk order) runs here.
run cargo test --release --target "$TARGET" "${TEST_BUILD_OPT[@]}" -- \
    --skip sigmoid_loss_and_grad_bits_on_every_pool --skip softmax_bits_on_every_pool

echo "== .ci/aarch64.sh passed: build ${build}s, tests $((SECONDS - build))s, total ${SECONDS}s"
