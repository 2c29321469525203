//! The main job: train a linear classifier on two synthetic long-tailed data sets with the
//! crate's fused losses and gradients, and report what each loss does for frequent and rare
//! classes.
//!
//! ```sh
//! cargo run --release --example train
//! cargo run --release --example train -- --seed 3 --gamma 0.5 --only multi
//! ```
//!
//! 1. Multi-label, [`focal_loss::Focal`]: 50 classes whose training counts fall from about 1e5
//!    (class 0) to single digits (class 49), log-linearly in the square root of the rank, 1.5
//!    labels per example on average; features are the sum of the present classes' prototypes
//!    plus noise. Losses: BCE, focal, and class-balanced focal at the same gamma with beta
//!    0.99, 0.999 and 0.9999. Printed: the mean average precision (AP) of the head (the first
//!    20% of the classes), middle (the next 40%) and tail (the last 40%).
//! 2. Single-label, [`focal_loss::SoftmaxFocal`]: 100 classes of `500 * 0.01^(c / 99)` training
//!    examples (500 down to 5, 10847 in all: the profile of Cui et al.'s long-tailed CIFAR-100
//!    with imbalance 100); features are the class's prototype plus noise. Losses: softmax
//!    cross-entropy (CE), softmax focal, class-balanced CE and class-balanced focal (beta
//!    0.999). Printed: the top-1 accuracy of the many- (more than 100 training examples),
//!    medium- (20 to 100) and few-shot (fewer than 20) classes.
//!
//! Both tasks: logits `z = W x + b` over 64 features, Adam on mini-batches of 512, the same
//! initial weights and batch order for every loss, `Reduction::Mean`, gamma 2 (Lin et al.'s
//! choice; `--gamma`). The test sets are balanced, so that rare classes are measured on as
//! many examples as frequent ones. Each row also gives the loss kernel's time per logit,
//! measured around the `loss_and_grad` call alone. An SVG plots each class's score against
//! its training count (the path is printed).
//!
//! What to expect. Multi-label: the class-balanced rows equal the focal row, whatever beta
//! (each class weight scales the loss of one class, whose parameters no other class
//! reaches in a linear model, and Adam normalises each parameter's step); focal is far ahead
//! of BCE on the middle and tail after the default 6 epochs, but that is speed: with
//! `--epochs 48` the two end level. Single-label: class weights move accuracy from the many-
//! to the medium- and few-shot classes and raise the balanced mean; the focal modulator does
//! not help (level with CE alone, slightly below CE with class weights).
//!
//! Flags (`--help` lists them with their defaults): `--seed S`, `--gamma G`,
//! `--only multi|single`, `--plot PATH`; multi-label `--classes C`, `--examples N`,
//! `--epochs E`; single-label `--single-classes C`, `--single-max N` (examples of class 0),
//! `--imbalance F`, `--single-epochs E`.

mod args;
mod data;
mod model;
mod multi_label;
mod plot;
mod report;
mod single_label;

use std::time::Instant;

use focal_loss::Backend;

fn main() {
    let start = Instant::now();
    let args = args::parse();
    println!(
        "Training a linear classifier with focal-loss's fused kernels (seed {}, backend {})",
        args.seed,
        Backend::Auto.resolve().map_or("?", |b| b.name())
    );
    let mut tasks = Vec::new();
    if args.multi {
        println!();
        tasks.push(multi_label::run(&args));
    }
    if args.single {
        println!();
        tasks.push(single_label::run(&args));
    }
    println!();
    println!(
        "ns/logit: the loss kernel alone (loss and gradient in one call), timed around that call."
    );
    let tasks: Vec<&report::Task> = tasks.iter().collect();
    match plot::write(&args.plot, &tasks) {
        Ok(()) => println!(
            "per-class scores against training counts: {}",
            args.plot.display()
        ),
        Err(e) => eprintln!("could not write {}: {e}", args.plot.display()),
    }
    println!("total {:.1} s", start.elapsed().as_secs_f64());
}
