#![no_main]
//! Fuzz target: `Focal::loss_and_grad` (see `src/lib.rs` for the properties checked).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: focal_loss_fuzz::Input| focal_loss_fuzz::check(
    &input,
    focal_loss_fuzz::Entry::LossAndGrad
));
