#!/usr/bin/env bash
# focal_loss run on an emulated Cortex-M4F: .ci/m4f (one src/main.rs for the host and for
# thumbv7em-none-eabihf) built for both, the firmware run under qemu-system-arm's mps2-an386
# (semihosting for its output and exit), its lines compared with the host's by
# .ci/m4f/compare.py: Backend::Scalar bit for bit, Backend::Portable bit for bit where both
# sides have it (not the M4: compiled out without vector registers), Backend::Auto (AVX on
# the host, Scalar on the M4) within the ULP bounds that
# compare.py declares. Fails on a mismatch, a missing line, a panic or a timeout. Then the
# flash the crate adds (the firmware against its `baseline` build, every call to the crate
# stubbed out) and the stack of the heaviest call, as the firmware measured it.
#
# Idempotent; installs qemu-system-arm (Debian) and the rustup target.
# Usage: bash .ci/m4f.sh [--install: only what it installs]
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

source .ci/lib.sh

SECONDS=0
TARGET=thumbv7em-none-eabihf
HOST=$(rustc -vV | sed -n 's/^host: //p')
# Its own workspace (see .ci/m4f/Cargo.toml), built under the main target directory.
DIR="${CARGO_TARGET_DIR:-$ROOT/target}/m4f"
MANIFEST=.ci/m4f/Cargo.toml

if ! command -v qemu-system-arm >/dev/null; then
    echo "== apt: installing qemu-system-arm"
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    run "${sudo[@]}" apt-get update -q
    run "${sudo[@]}" apt-get install -y -q --no-install-recommends qemu-system-arm
fi
run qemu-system-arm --version | sed -n 1p

echo "== rustup target $TARGET"
run rustup target add "$TARGET"
[[ ${1:-} == --install ]] && { echo "== .ci/m4f.sh: installed"; exit 0; }

# The baseline first (its image is copied aside: both builds write the same path), then the
# firmware (release, as users build it), then the host program in the dev profile: Rust
# never contracts or reorders float operations, so the optimisation level changes no bit
# (the release host build printed the same lines), and the unoptimised build takes a
# fraction of the time.
echo "== build: the baseline firmware (calls to focal_loss stubbed out)"
run cargo build --release --manifest-path "$MANIFEST" --target-dir "$DIR" --target "$TARGET" \
    --features baseline
cp "$DIR/$TARGET/release/m4f" "$DIR/m4f-baseline.elf"
echo "== build: the firmware ($TARGET)"
run cargo build --release --manifest-path "$MANIFEST" --target-dir "$DIR" --target "$TARGET"
ELF="$DIR/$TARGET/release/m4f"
echo "== build: the host program ($HOST, dev profile)"
run cargo build --manifest-path "$MANIFEST" --target-dir "$DIR" --target "$HOST"

echo "== host ($HOST)"
run "$DIR/$HOST/debug/m4f" > "$DIR/host.txt"
grep '^#' "$DIR/host.txt"

echo "== firmware under qemu-system-arm -M mps2-an386 (Cortex-M4F)"
echo "+ timeout 120 qemu-system-arm -M mps2-an386 ... -kernel $ELF" >&2
rc=0
timeout 120 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -kernel "$ELF" \
    < /dev/null > "$DIR/firmware.txt" 2> "$DIR/firmware.err" || rc=$?
cat "$DIR/firmware.txt"
cat "$DIR/firmware.err" >&2
if ((rc == 124)); then
    echo "error: the firmware did not exit within 120 s (qemu killed)" >&2
    exit 1
elif ((rc != 0)); then
    echo "error: the firmware failed (qemu exit code $rc: a panic or a semihosting failure)" >&2
    exit 1
fi

echo "== compare: firmware against host"
run python3 .ci/m4f/compare.py lines "$DIR/host.txt" "$DIR/firmware.txt"

echo "== flash and stack on the Cortex-M4F"
run python3 .ci/m4f/compare.py flash "$ELF" "$DIR/m4f-baseline.elf"
grep '^# stack' "$DIR/firmware.txt"

echo "== .ci/m4f.sh: passed in ${SECONDS}s"
