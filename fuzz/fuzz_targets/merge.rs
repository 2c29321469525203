#![no_main]
//! Fuzz target: `Partial::merge` on many partials (see `src/lib.rs` for the properties checked).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: focal_loss_fuzz::MergeInput| focal_loss_fuzz::check_merges(&input));
