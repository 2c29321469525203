# Shared by the .ci scripts (sourced after `cd` to the repository root): `run` echoes a
# command, runs it, and exits with its code and a message naming it if it fails; the ERR
# trap names the script and line of any other failing command.

run() {
    echo "+ $*" >&2
    "$@" || {
        local rc=$?
        echo "error: exit code $rc from: $*" >&2
        exit "$rc"
    }
}
trap 'echo "error: .ci/$(basename "$0") failed (line $LINENO): $BASH_COMMAND" >&2' ERR

# Builds that test but do not measure speed (candle, WebAssembly, aarch64 under qemu, the
# no_std consumer) compile focal-loss at opt-level 1 with its forced inlining off: the cfg
# that build.rs sets at opt-level 0 (`TEST_BUILD_CFG`, for the target's RUSTFLAGS) and a
# profile override for this crate alone (`TEST_BUILD_OPT`, cargo arguments). The same bits
# as at opt-level 3 (no fast-math, no contraction of a * b + c: a hash of every loss and
# gradient bit of both families on three backends matched); the library builds in 22 s
# against 4m09 at opt-level 3 on a 2-core Zen 3 VM (2026-12-02).
TEST_BUILD_CFG="--cfg opt_level_0"
TEST_BUILD_OPT=(--config 'profile.release.package.focal-loss.opt-level=1')
