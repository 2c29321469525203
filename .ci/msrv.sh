#!/usr/bin/env bash
# The minimum supported Rust version, read from Cargo.toml's `rust-version`: installs that
# toolchain (minimal profile) when it is missing, builds the library with it, and runs the
# library's unit tests in release mode (which also compiles the dev-dependencies with it).
#
# Idempotent. Usage: bash .ci/msrv.sh   (MSRV_TEST=0 skips the unit tests, ~2.5 min of
# compiling the dev-dependencies on 2 cores; `--install`: only the toolchain)
set -Eeuo pipefail
cd "$(dirname "$0")/.."

source .ci/lib.sh

SECONDS=0
msrv=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n 1)
[[ -n "$msrv" ]] || { echo "error: no rust-version in Cargo.toml" >&2; exit 1; }
# rustup names releases with three components: "1.89" is the toolchain 1.89.0.
[[ "$msrv" =~ ^[0-9]+\.[0-9]+$ ]] && toolchain="$msrv.0" || toolchain="$msrv"
echo "== MSRV $msrv: toolchain $toolchain"

if rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    echo "toolchain $toolchain already installed"
else
    run rustup toolchain install "$toolchain" --profile minimal
fi
run rustup run "$toolchain" rustc --version
[[ ${1:-} == --install ]] && { echo "== .ci/msrv.sh: installed"; exit 0; }

echo "== build the library with $toolchain"
run cargo "+$toolchain" build --lib
if [[ "${MSRV_TEST:-1}" != 0 ]]; then
    echo "== unit tests with $toolchain"
    run cargo "+$toolchain" test --release --lib
fi

echo "== .ci/msrv.sh passed on $toolchain in ${SECONDS}s"
