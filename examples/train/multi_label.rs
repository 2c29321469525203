//! Task 1: multi-label, the sigmoid family (`Focal`). Long-tailed training counts, a balanced
//! test set, and per-class average precision (AP).

use focal_loss::{Focal, Reduction, class_balanced_weights};

use crate::args::Args;
use crate::data::{self, Rng};
use crate::model::{self, BATCH, Linear};
use crate::report::{self, Group, Run, Task};

/// The class-balanced rows: Cui et al.'s search space less 0.9 (whose weights are nearly
/// uniform at these counts).
const BETAS: [f64; 3] = [0.99, 0.999, 0.9999];

/// Test examples; every class is present in 5% of them.
const TEST: usize = 20_000;

/// Initial learning rate (see `model::fit`).
const LR: f32 = 0.02;

pub fn run(args: &Args) -> Task {
    let c = args.classes;
    let mut rng = Rng::new(args.seed);
    let prototypes = data::prototypes(&mut rng, c);
    // Long-tailed training prior: the expected count falls log-linearly in sqrt(rank), from
    // 0.9 N (class 0; about 1e5 with the default N) to 5 (class C-1).
    let n = args.examples as f64;
    let prior: Vec<f64> = (0..c)
        .map(|k| {
            let f = (k as f64 / (c - 1) as f64).sqrt();
            (0.9 * n).powf(1.0 - f) * 5f64.powf(f) / n
        })
        .collect();
    let train = data::multi_label(&mut rng, &prototypes, &prior, args.examples);
    let test = data::multi_label(&mut rng, &prototypes, &vec![0.05; c], TEST);
    let counts: Vec<u64> = (0..c)
        .map(|k| {
            train
                .y
                .iter()
                .skip(k)
                .step_by(c)
                .filter(|&&t| t == 1)
                .count() as u64
        })
        .collect();
    let labels = counts.iter().sum::<u64>() as f64 / train.n as f64;
    println!(
        "1. Multi-label, sigmoid family (Focal): {c} classes, {} training examples, {labels:.2} labels each",
        train.n
    );
    println!("   on average; test set: {TEST} examples, each class present in 5% of them");
    let groups = [
        Group {
            name: "head",
            classes: 0..c / 5,
        },
        Group {
            name: "middle",
            classes: c / 5..c * 3 / 5,
        },
        Group {
            name: "tail",
            classes: c * 3 / 5..c,
        },
    ];
    report::print_groups(&groups, &counts);

    // Class-balanced weights need a count of at least 1 per class.
    let at_least_one: Vec<u64> = counts.iter().map(|&n| n.max(1)).collect();
    let weights: Vec<Vec<f32>> = BETAS
        .iter()
        .map(|&beta| {
            let mut w = vec![0f32; c];
            class_balanced_weights(&at_least_one, beta, &mut w).expect("counts >= 1, beta < 1");
            w
        })
        .collect();
    // Every focal row has the same gamma and no alpha: the class-balanced rows differ from
    // "focal" by their class weights alone (in Cui et al. the class-balanced term takes the
    // place of alpha). A class weight multiplies its class's whole column, positives and
    // negatives, as in the VidHOI preset.
    let gamma = args.gamma;
    let mut losses = vec![
        ("BCE".to_string(), Focal::new(0.0)),
        (format!("focal (gamma {gamma})"), Focal::new(gamma)),
    ];
    for (beta, w) in BETAS.iter().zip(&weights) {
        losses.push((
            format!("class-balanced focal (gamma {gamma}, beta {beta})"),
            Focal::new(gamma).class_weights(w),
        ));
    }

    let runs = losses
        .into_iter()
        .map(|(name, focal)| {
            // The same initial weights and batch order for every loss.
            let mut rng = Rng::new(args.seed ^ 0x5EED);
            let mut model = Linear::new(c, &mut rng);
            let mut clock = model::KernelClock::default();
            let mut targets = vec![0u8; BATCH * c];
            model::fit(
                &mut model,
                &train.x,
                args.epochs,
                LR,
                &mut rng,
                |rows, z, g| {
                    for (dst, &i) in targets.chunks_exact_mut(c).zip(rows) {
                        dst.copy_from_slice(&train.y[i * c..(i + 1) * c]);
                    }
                    clock
                        .time(z.len(), || {
                            focal.loss_and_grad(z, &targets, g, Reduction::Mean)
                        })
                        .expect("finite logits and 0/1 targets are valid");
                },
            );
            let mut z = vec![0f32; TEST * c];
            model.forward(&test.x, &mut z);
            let per_class = (0..c)
                .map(|k| {
                    let scored: Vec<(f32, u8)> = (0..TEST)
                        .map(|i| (z[i * c + k], test.y[i * c + k]))
                        .collect();
                    average_precision(scored)
                })
                .collect();
            Run {
                loss: name,
                per_class,
                ns_per_logit: clock.ns_per_logit(),
            }
        })
        .collect();
    let task = Task {
        title: "Multi-label (sigmoid family): per-class test AP",
        metric: "AP",
        counts,
        runs,
    };
    println!();
    report::table(&task, &groups);

    // Why the class-balanced rows equal the focal row: in a linear model each class has
    // parameters of its own, which only its own column of the loss reaches, and Adam divides
    // each parameter's gradient by its own running scale, so a constant factor per class
    // cancels (up to Adam's epsilon and rounding), whatever beta.
    let focal = &task.runs[1].per_class;
    let largest = task.runs[2..]
        .iter()
        .flat_map(|r| r.per_class.iter().zip(focal).map(|(a, b)| (a - b).abs()))
        .fold(0f64, f64::max);
    println!(
        "   Adam, {} epochs (a short budget: the tail's AP still rises with --epochs); [{BATCH}, {c}]",
        args.epochs
    );
    println!(
        "   f32 logits, u8 targets, Reduction::Mean. The class weights change no AP by more than"
    );
    println!(
        "   {largest:.0e}: each scales one class's own loss, and Adam undoes a constant scale per parameter."
    );
    task
}

/// Average precision of one class: the mean of the precision at each positive, scores sorted
/// in decreasing order (NaN without positives).
fn average_precision(mut scored: Vec<(f32, u8)>) -> f64 {
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut sum) = (0usize, 0f64);
    for (rank, &(_, y)) in scored.iter().enumerate() {
        if y == 1 {
            tp += 1;
            sum += tp as f64 / (rank + 1) as f64;
        }
    }
    sum / tp as f64
}
