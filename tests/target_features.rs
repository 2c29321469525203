//! The build under test is the one CI asked for: `.ci/wasm.sh` runs the suite on
//! wasm32-wasip1 with and without `simd128` and sets `FOCAL_EXPECT_SIMD128` to `1` or `0`;
//! a flag that did not reach the build (a `RUSTFLAGS` that overrides the per-target flags)
//! would otherwise test the same code twice. `.ci/miri.sh` sets `FOCAL_EXPECT_AUTO` to the
//! backend its flags select. Elsewhere (the variable unset) there is nothing
//! to check but that the default backend is available and named.

use focal_loss::Backend;

#[test]
fn the_build_has_the_simd_it_was_asked_for() {
    if let Ok(want) = std::env::var("FOCAL_EXPECT_SIMD128") {
        let have = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));
        assert_eq!(
            have,
            want == "1",
            "simd128 in this build: {have}, asked for: {want}"
        );
        // wasm has no run-time detection: the default backend is the portable one with
        // simd128, the scalar one without (faster than eight lanes computed one by one).
        let auto = if have { "portable" } else { "scalar" };
        assert_eq!(Backend::Auto.resolve().map(|b| b.name()), Ok(auto));
    }
    // `.ci/miri.sh` names the backend its compile-time flags select (Miri cannot run
    // CPUID, so detection reports those flags): a flag missing from the list would
    // otherwise move every test to a lesser backend without a word.
    if let Ok(want) = std::env::var("FOCAL_EXPECT_AUTO") {
        assert_eq!(Backend::Auto.resolve().map(|b| b.name()), Ok(want.as_str()));
    }
    assert!(Backend::Auto.is_available());
}
