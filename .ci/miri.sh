#!/usr/bin/env bash
# Miri (undefined-behaviour checker) on the tests that reach the crate's `unsafe` code,
# src/backend/x86/: run-time dispatch and the AVX2 + FMA backend (every intrinsic, the unaligned
# loads and stores of full and padded vectors, the `#[target_feature]` calls).
#
# What Miri can and cannot do here:
# - It cannot execute inline assembly, so not CPUID or XGETBV: the detection (`cpufeatures`)
#   has a `cfg(miri)` path that reports the features enabled at compile time (as `std`'s
#   `is_x86_feature_detected!` does under Miri). Without it every test would stop at the
#   detection with "unsupported operation: inline assembly is not supported".
# - libm 0.2 (default feature "arch") also detects the CPU by CPUID and inline assembly in
#   `fmaf`, which the Scalar backend calls; `--features libm/force-soft-floats` makes it use
#   its portable code under Miri (the same correctly rounded results).
# - It implements the AVX and AVX2 intrinsics the crate uses, so the AVX2 backend runs when
#   AVX2, FMA, F16C and POPCNT are enabled at compile time
#   (`-C target-feature=+avx2,+fma,+f16c,+popcnt`; detection needs all four).
# - It cannot run the AVX-512 backend: of the `llvm.x86.avx512.*` intrinsics Miri has only a
#   few integer ones (pternlog, psad.bw, pmaddubs.w, permvar.si, pshuf.b, vpdpbusd), not
#   mask.cmp.ps.512, rcp14.ps.512, mask.scalef.ps.512 or mask.cvtps2dq.512, which the
#   backend needs (the first call aborts with "can't call foreign function
#   `llvm.x86.avx512.mask.cmp.ps.512`"). AVX-512F is therefore never enabled here, and the
#   AVX-512 code is not checked by Miri.
# - It is ~1000x slower than native code: the tests below are the ones with small inputs.
#
# Two runs, each a separate build (the target features differ):
#   baseline: no AVX at compile time, so detection reports neither AVX2 nor AVX-512:
#             `Auto` resolves to Portable (`wide` on SSE2), `Avx2`/`Avx512` are unavailable.
#   avx2:     `-C target-feature=+avx2,+fma,+f16c,+popcnt`: `Auto` resolves to the AVX2 backend of
#             src/backend/x86/avx2.rs, and every test below runs it.
#
# Idempotent; installs a nightly toolchain if none is there, and its miri and rust-src
# components. Usage: bash .ci/miri.sh   (MIRI_TOOLCHAIN=nightly-YYYY-MM-DD pins a nightly;
# `--install`: only the toolchain, its components and the sysroot)
set -Eeuo pipefail
cd "$(dirname "$0")/.."

source .ci/lib.sh

SECONDS=0
TOOLCHAIN=${MIRI_TOOLCHAIN:-nightly}
# (Isolation hides the host's environment: FOCAL_EXPECT_AUTO is forwarded, see below.)
export MIRIFLAGS=${MIRIFLAGS:-"-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check -Zmiri-env-forward=FOCAL_EXPECT_AUTO"}
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

echo "== toolchain $TOOLCHAIN with miri and rust-src"
if rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    echo "toolchain $TOOLCHAIN already installed (not updated)"
else
    run rustup toolchain install "$TOOLCHAIN" --profile minimal
fi
run rustup "+$TOOLCHAIN" component add miri rust-src
run cargo "+$TOOLCHAIN" miri --version
run cargo "+$TOOLCHAIN" miri setup
[[ ${1:-} == --install ]] && { echo "== .ci/miri.sh: installed"; exit 0; }
echo "MIRIFLAGS=$MIRIFLAGS"

# Integration tests of tests/identities.rs small enough for Miri (seconds each); the others
# take minutes to hours interpreted (thousands of elements times every backend).
IDENTITIES=(
    accumulate_adds_to_grad
    beta_zero_gives_unit_weights
    class_balanced_weights_are_exact_near_one
    gamma_zero_is_bce_with_logits
    infinite_logits_give_the_limits
    mean_is_sum_over_n_and_per_positive_over_positives
    per_class_rows_match_flat_elements
    unit_options_change_nothing
)

# miri_test NAME EXPECTED CARGO-ARGS... -- TEST-ARGS...: runs, and fails unless exactly
# EXPECTED tests passed (a renamed test must not silently drop out of the run).
miri_test() {
    local name=$1 expected=$2
    shift 2
    echo "== [$CONFIG] $name"
    if ! run cargo "+$TOOLCHAIN" miri test --features libm/force-soft-floats "$@" 2>&1 | tee "$LOG"; then
        if grep -q "inline assembly is not supported" "$LOG"; then
            echo "error: Miri cannot execute CPUID: the detection needs a cfg(miri) path that" \
                "reports the compile-time target features (see the header of .ci/miri.sh)" >&2
        fi
        return 1
    fi
    local passed
    passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$LOG" | tail -n 1)
    if [[ -z "$passed" || "$passed" == 0 || ("$expected" != all && "$passed" != "$expected") ]]; then
        echo "error: [$CONFIG] $name: $passed tests passed, $expected expected" \
            "(a test listed in .ci/miri.sh was renamed or removed?)" >&2
        return 1
    fi
}

for CONFIG in baseline avx2; do
    case $CONFIG in
        baseline) export RUSTFLAGS="" FOCAL_EXPECT_AUTO=portable ;;
        avx2) export RUSTFLAGS="-C target-feature=+avx2,+fma,+f16c,+popcnt" FOCAL_EXPECT_AUTO=avx2 ;;
    esac
    echo "== Miri, $CONFIG: RUSTFLAGS=\"$RUSTFLAGS\""
    # The backend the flags were meant to select is the one the tests below run.
    miri_test target_features 1 --test target_features
    miri_test errors all --test errors
    miri_test reference all --test reference
    miri_test presets all --test presets
    miri_test softmax_errors all --test softmax_errors
    # (Not presets_agree_with_the_peer_expressions: 33 rows of up to 200 classes for each
    # preset, still running after 5 minutes under Miri, and CI's time ran out in it; the
    # other eight reach the same entry points in 5 s.)
    miri_test softmax_presets 8 --test softmax_presets -- --skip presets_agree_with_the_peer_expressions
    miri_test softmax_limits 1 --test softmax -- --exact limits_at_infinite_logits
    if [[ $CONFIG == avx2 ]]; then
        miri_test identities "${#IDENTITIES[@]}" --test identities -- --exact "${IDENTITIES[@]}"
    fi
done

echo "== .ci/miri.sh passed in ${SECONDS}s"
