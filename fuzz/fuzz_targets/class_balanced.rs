#![no_main]
//! Fuzz target: `class_balanced_weights` (see `src/lib.rs` for the properties checked).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: focal_loss_fuzz::CbInput| focal_loss_fuzz::check_class_balanced(&input));
