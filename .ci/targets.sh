#!/usr/bin/env bash
# no_std builds: .ci/nostd-consumer for aarch64-unknown-none (no `std` exists there, so a
# dependency or a feature that needs it cannot compile), a `#![no_std]` `#![no_main]`
# binary that calls `Focal::loss`, `Focal::loss_and_grad` and `class_balanced_weights`,
# built in release with the library, linked by rust-lld (an undefined symbol, e.g. a libc `fmaf`
# that `core` does not have, fails the link). thumbv7em-none-eabihf has more: a firmware
# that runs both families under qemu-system-arm (.ci/m4f.sh, called last). Then the library
# for the host with `--no-default-features`.
#
# Idempotent; installs the rustup targets it needs. Usage: bash .ci/targets.sh
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

source .ci/lib.sh

TARGETS=(aarch64-unknown-none)
SECONDS=0

echo "== rustup targets: ${TARGETS[*]}"
run rustup target add "${TARGETS[@]}"

# The consumer's release build compiles the library for each target (with panic = "abort",
# as a bare-metal binary would): a separate build of the library alone would compile the same
# code a second time. focal-loss is built for testing (.ci/lib.sh), where every helper stays
# a function and the image references more symbols than at opt-level 3: 26 s alone on a
# 2-core Zen 3 VM (2026-12-02), against 4m00 at opt-level 3 beside other steps in the CI run
# of eaf8603. The Cortex-M4F firmware below is built at opt-level 3 and linked too.
# The consumer is its own workspace (see its Cargo.toml); its build goes under the main
# target directory, which .gitignore already covers.
CONSUMER_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/nostd-consumer"
for t in "${TARGETS[@]}"; do
    echo "== .ci/nostd-consumer for $t (no_std, no_main binary, linked by rust-lld)"
    RUSTFLAGS="$TEST_BUILD_CFG" run cargo build --release \
        --manifest-path .ci/nostd-consumer/Cargo.toml --target "$t" \
        --target-dir "$CONSUMER_TARGET_DIR" "${TEST_BUILD_OPT[@]}"
    bin="$CONSUMER_TARGET_DIR/$t/release/nostd-consumer"
    [[ -s "$bin" ]] || { echo "error: $bin was not produced" >&2; exit 1; }
    # The image is not stripped: the crate's functions must be in its symbol table, i.e.
    # they were linked in and not optimised away.
    if ! LC_ALL=C grep -aq 'focal_loss' "$bin"; then
        echo "error: no focal_loss symbol in $bin: the crate's code was not linked in" >&2
        exit 1
    fi
    echo "ok: $bin ($(stat -c %s "$bin") bytes) links focal_loss"
done

host=$(rustc -vV | sed -n 's/^host: //p')
if [[ "$host" == x86_64-unknown-linux-gnu ]]; then
    # The crate declares no features; the flag asserts that the build needs none.
    echo "== library for $host, --no-default-features"
    run cargo build --lib --no-default-features --target x86_64-unknown-linux-gnu
else
    echo "== skipped: the --no-default-features build is for an x86_64-unknown-linux-gnu host (this is $host)"
fi

echo "== thumbv7em-none-eabihf: the Cortex-M4F firmware under qemu-system-arm (.ci/m4f.sh)"
bash .ci/m4f.sh

echo "== .ci/targets.sh: all builds passed in ${SECONDS}s"
