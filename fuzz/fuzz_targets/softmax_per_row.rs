#![no_main]
//! Fuzz target: `SoftmaxFocal::loss_per_row` (see `src/softmax.rs` for the properties checked).
use focal_loss_fuzz::softmax::{SmEntry, SmInput, check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: SmInput| check(&input, SmEntry::PerRow));
