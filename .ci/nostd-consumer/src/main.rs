//! Link check for `focal_loss` on bare-metal targets: a `#![no_std]`, `#![no_main]` binary
//! with its own panic handler and entry point. Built (linked by rust-lld, no linker script)
//! by `.ci/targets.sh`; never run. A dependency that needs `std` cannot build on these
//! targets (they have no `std`), and an undefined symbol (e.g. a libc `fmaf`/`expf` that
//! `core` does not provide) fails the link.
#![no_std]
#![no_main]
#![deny(warnings)]

use core::hint::black_box;
use core::panic::PanicInfo;

use focal_loss::{Focal, Reduction, class_balanced_weights};

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// The ELF entry point (rust-lld's default entry symbol). It only has to keep the calls
/// below reachable, so that `--gc-sections` keeps the crate's code in the image.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    // black_box: the inputs are opaque, so nothing is folded away at compile time.
    let counts = black_box([120_000u64, 800, 9]);
    let mut w = [0f32; 3];
    let weighted = class_balanced_weights(&counts, black_box(0.9999), &mut w).is_ok();

    let logits = black_box([3.0f32, -2.0, -5.0, 0.5, 1.0, -0.2]);
    let targets = black_box([1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0]);
    let focal = Focal::new(black_box(2.0)).class_weights(&w);
    let loss = focal
        .loss(&logits, &targets, Reduction::Mean)
        .unwrap_or(f32::NAN);
    let mut grad = [0f32; 6];
    let with_grad = focal
        .loss_and_grad(&logits, &targets, &mut grad, Reduction::Sum)
        .unwrap_or(f32::NAN);

    black_box((weighted, loss, with_grad, grad));
    loop {
        core::hint::spin_loop();
    }
}
