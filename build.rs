//! Sets `cfg(opt_level_0)` when this crate is compiled without optimisation (cargo's
//! `OPT_LEVEL`, which follows the profile and any per-package override, is `0`).
//!
//! The numeric core marks its helpers `#[inline(always)]` so that each backend's whole
//! kernel is compiled into one function with its instruction set enabled. Without
//! optimisation that is all cost and no gain: the compiler gives every inlined temporary a
//! stack slot of its own and never reuses one, so a kernel's frame grew to megabytes (8 MB
//! for the AVX2 sigmoid body in a dev build, beyond a 2 MB test thread's stack). At opt-level
//! 0 the helpers are ordinary calls (`#[cfg_attr(not(opt_level_0), inline(always))]`).
//!
//! CI sets the same cfg by hand (`--cfg opt_level_0`) for the builds at opt-level 1 whose
//! speed it does not measure (`TEST_BUILD_CFG` in `.ci/lib.sh`, and `.ci/asan.sh`): forced
//! inlining is what makes an optimised build of this crate take minutes (22 s at opt-level 1
//! without it, 4m09 at opt-level 3 with it, on a 2-core Zen 3 VM).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(opt_level_0)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=OPT_LEVEL");
    if std::env::var("OPT_LEVEL").as_deref() == Ok("0") {
        println!("cargo::rustc-cfg=opt_level_0");
    }
}
