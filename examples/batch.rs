//! The kernel alone on a realistic batch: `[4096, 50]` long-tailed multi-label logits, the loss
//! of each preset, the gradient norms of head and tail classes, and the throughput.
//!
//! `cargo run --release --example batch [-- --rows N --seed S]`

use std::time::Instant;

use focal_loss::{Backend, Focal, Modulator, Reduction, class_balanced_weights};

const CLASSES: usize = 50;

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn main() -> Result<(), focal_loss::Error> {
    let rows = arg("--rows", 4096);
    let mut rng = Rng(arg("--seed", 7) as u64 | 1);

    // Zipf-like class frequencies: class 0 has 1e5 examples in the training set, class 49 a few.
    let counts: Vec<u64> = (0..CLASSES)
        .map(|c| ((1e5 / ((c + 1) as f64).powf(2.6)).round() as u64).max(3))
        .collect();
    let total: u64 = counts.iter().sum();
    let prior: Vec<f64> = counts
        .iter()
        .map(|&n| n as f64 / total as f64 * 2.5)
        .collect();

    // A batch as a half-trained model would see it: positives drawn from the class prior,
    // logits that separate them from negatives by about 2 units, tail classes less confidently.
    let n = rows * CLASSES;
    let (mut logits, mut targets) = (vec![0f32; n], vec![0f32; n]);
    for r in 0..rows {
        for (c, &pc) in prior.iter().enumerate() {
            let i = r * CLASSES + c;
            let pos = rng.next() < pc.min(0.9);
            let margin = if c < 5 {
                3.0
            } else if c < 20 {
                1.5
            } else {
                0.5
            };
            let bias = -(1.0 / pc.min(0.9) - 1.0).ln();
            targets[i] = pos as u8 as f32;
            logits[i] = (bias + if pos { margin } else { -margin } * 0.5 + rng.normal()) as f32;
        }
    }

    let mut w = [0f32; CLASSES];
    class_balanced_weights(&counts, 0.9999, &mut w)?;
    println!(
        "batch [{rows}, {CLASSES}], {} positives; class counts {}..{}, class-balanced weights (beta 0.9999) {:.3}..{:.3}",
        targets.iter().filter(|&&t| t == 1.0).count(),
        counts[0],
        counts[CLASSES - 1],
        w[0],
        w[CLASSES - 1]
    );

    let presets: [(&str, Focal<'_>, Reduction); 5] = [
        ("BCE with logits (mean)", Focal::new(0.0), Reduction::Mean),
        (
            "torchvision focal a=0.25 g=2 (mean)",
            Focal::new(2.0).alpha(0.25),
            Reduction::Mean,
        ),
        (
            "TF original focal g=2 (per positive)",
            Focal::new(2.0).modulator(Modulator::Geometric),
            Reduction::PerPositive,
        ),
        (
            "VidHOI CB focal b=0.9999 g=0.5 (per pos.)",
            Focal::new(0.5)
                .class_weights(&w)
                .modulator(Modulator::Geometric),
            Reduction::PerPositive,
        ),
        (
            "Separable (kornia) a=0.25 g=2 (mean)",
            Focal::new(2.0).alpha(0.25).modulator(Modulator::Separable),
            Reduction::Mean,
        ),
    ];
    println!();
    println!(
        "{:<44} {:>12} {:>14} {:>14} {:>10} {:>10}",
        "loss", "value", "|grad| head", "|grad| tail", "Melem/s", "ns/elem"
    );
    let mut grad = vec![0f32; n];
    for (name, focal, red) in presets {
        for (tag, backend) in [("", Backend::Auto), (" [scalar]", Backend::Scalar)] {
            let f = focal.backend(backend);
            let value = f.loss_and_grad(&logits, &targets, &mut grad, red)?;
            // Gradient norm per class group: head = 5 most frequent, tail = 30 rarest.
            let norm = |cs: std::ops::Range<usize>| {
                let mut s = 0f64;
                for r in 0..rows {
                    for c in cs.clone() {
                        s += (grad[r * CLASSES + c] as f64).powi(2);
                    }
                }
                (s / cs.len() as f64).sqrt()
            };
            let (head, tail) = (norm(0..5), norm(20..CLASSES));
            let reps = 20;
            let start = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(f.loss_and_grad(&logits, &targets, &mut grad, red)?);
            }
            let secs = start.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{:<44} {:>12.6} {:>14.3e} {:>14.3e} {:>10.0} {:>10.2}",
                format!("{name}{tag}"),
                value,
                head,
                tail,
                n as f64 / secs / 1e6,
                secs * 1e9 / n as f64
            );
        }
    }
    println!();
    println!("|grad| is the root-mean-square per class of d(loss)/d(logit) over the batch.");
    Ok(())
}
