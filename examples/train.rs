//! The main job: train a linear multi-label classifier on a synthetic long-tailed data set
//! with three losses (BCE, focal, class-balanced focal), all through the crate's fused loss
//! and gradient, and report what each does for head, middle and tail classes.
//!
//! ```sh
//! cargo run --release --example train
//! cargo run --release --example train -- --classes 50 --examples 110000 --epochs 6 --seed 7
//! ```
//!
//! The data: `C` classes whose training counts fall from about 1e5 (class 0) to single digits
//! (class C-1), log-linearly in the square root of the rank, two labels per example on average, and features that are the sum of the
//! examples' class prototypes plus Gaussian noise in `D = 64` dimensions. The model: logits
//! `z = W x + b`, trained with Adam on mini-batches of 512. The test set is balanced (every
//! class positive in 5% of its examples), so that tail classes are measured on more than the
//! handful of examples they have in training. Reported per group of classes: mean average
//! precision (mAP) on the test set, and the loss kernel's throughput.

use std::time::{Duration, Instant};

use focal_loss::{Backend, Focal, Reduction, class_balanced_weights};

const DIM: usize = 64;
const BATCH: usize = 512;

struct Args {
    classes: usize,
    examples: usize,
    epochs: usize,
    seed: u64,
}

fn args() -> Args {
    let mut a = Args {
        classes: 50,
        examples: 110_000,
        epochs: 6,
        seed: 7,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = || -> u64 {
            argv.get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{} needs a number", argv[i])))
        };
        match argv[i].as_str() {
            "--classes" => a.classes = value() as usize,
            "--examples" => a.examples = value() as usize,
            "--epochs" => a.epochs = value() as usize,
            "--seed" => a.seed = value(),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
        i += 2;
    }
    if a.classes < 3 || a.examples < 1000 || a.epochs == 0 {
        usage("need --classes >= 3, --examples >= 1000, --epochs >= 1");
    }
    a
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("error: {msg}");
    }
    eprintln!("usage: train [--classes C] [--examples N] [--epochs E] [--seed S]");
    std::process::exit(2)
}

/// xorshift64* with a Box-Muller normal: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Examples as rows: features `[n, DIM]`, labels `[n, C]` (0 or 1).
struct Data {
    x: Vec<f32>,
    y: Vec<u8>,
    n: usize,
}

/// Length of a class prototype, against N(0, 1) noise in each of the `DIM` dimensions.
const SIGNAL: f32 = 4.0;

/// `prior[c]`: probability that class `c` is present in an example. Features: the sum of the
/// present classes' prototypes (unit vectors scaled by `SIGNAL`) plus N(0, 1) noise per
/// dimension.
fn generate(rng: &mut Rng, prototypes: &[f32], prior: &[f64], n: usize) -> Data {
    let c = prior.len();
    let mut x = vec![0f32; n * DIM];
    let mut y = vec![0u8; n * c];
    for i in 0..n {
        let row = &mut x[i * DIM..(i + 1) * DIM];
        for v in row.iter_mut() {
            *v = rng.normal() as f32;
        }
        for k in 0..c {
            if rng.uniform() < prior[k] {
                y[i * c + k] = 1;
                for (v, p) in row.iter_mut().zip(&prototypes[k * DIM..(k + 1) * DIM]) {
                    *v += SIGNAL * p;
                }
            }
        }
    }
    Data { x, y, n }
}

/// `W x + b` for every row of `x`: logits `[rows, C]`.
fn forward(w: &[f32], b: &[f32], x: &[f32], logits: &mut [f32]) {
    let c = b.len();
    for (xr, zr) in x.chunks_exact(DIM).zip(logits.chunks_exact_mut(c)) {
        for ((z, wr), bias) in zr.iter_mut().zip(w.chunks_exact(DIM)).zip(b) {
            // Eight partial sums so that the compiler can vectorise the dot product.
            let mut acc = [0f32; 8];
            for (xs, ws) in xr.chunks_exact(8).zip(wr.chunks_exact(8)) {
                for k in 0..8 {
                    acc[k] += xs[k] * ws[k];
                }
            }
            *z = acc.iter().sum::<f32>() + bias;
        }
    }
}

/// Adam on one parameter slice.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    fn new(n: usize) -> Adam {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }
    fn step(&mut self, p: &mut [f32], g: &[f32], lr: f32) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        self.t += 1;
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for i in 0..p.len() {
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g[i];
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g[i] * g[i];
            p[i] -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + eps);
        }
    }
}

/// Average precision of one class: the mean of the precision at each positive, scores sorted
/// in decreasing order.
fn average_precision(scores: &[(f32, u8)]) -> f64 {
    let mut s = scores.to_vec();
    s.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut sum) = (0usize, 0f64);
    for (rank, &(_, y)) in s.iter().enumerate() {
        if y == 1 {
            tp += 1;
            sum += tp as f64 / (rank + 1) as f64;
        }
    }
    if tp == 0 { f64::NAN } else { sum / tp as f64 }
}

struct Outcome {
    ap: Vec<f64>,
    kernel: Duration,
    elements: u64,
    final_loss: f32,
}

fn train(
    (focal, reduction): (&Focal<'_>, Reduction),
    train: &Data,
    test: &Data,
    classes: usize,
    epochs: usize,
    seed: u64,
) -> Outcome {
    let mut rng = Rng::new(seed ^ 0x5EED);
    let mut w: Vec<f32> = (0..classes * DIM)
        .map(|_| (rng.normal() * 0.01) as f32)
        .collect();
    let mut b = vec![0f32; classes];
    let (mut opt_w, mut opt_b) = (Adam::new(w.len()), Adam::new(b.len()));
    let mut order: Vec<usize> = (0..train.n).collect();
    let mut xb = vec![0f32; BATCH * DIM];
    let mut yb = vec![0u8; BATCH * classes];
    let mut z = vec![0f32; BATCH * classes];
    let mut g = vec![0f32; BATCH * classes];
    let (mut gw, mut gb) = (vec![0f32; w.len()], vec![0f32; classes]);
    let (mut kernel, mut elements, mut final_loss) = (Duration::ZERO, 0u64, 0f32);
    for epoch in 0..epochs {
        // Fisher-Yates shuffle.
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.uniform() * (i + 1) as f64) as usize);
        }
        let lr = 0.02 / (1.0 + epoch as f32);
        let mut epoch_loss = 0f64;
        let batches = train.n / BATCH;
        for batch in order.chunks_exact(BATCH) {
            for (k, &i) in batch.iter().enumerate() {
                xb[k * DIM..(k + 1) * DIM].copy_from_slice(&train.x[i * DIM..(i + 1) * DIM]);
                yb[k * classes..(k + 1) * classes]
                    .copy_from_slice(&train.y[i * classes..(i + 1) * classes]);
            }
            forward(&w, &b, &xb, &mut z);
            let start = Instant::now();
            let loss = focal
                .loss_and_grad(&z, &yb, &mut g, reduction)
                .expect("finite logits and 0/1 labels are valid");
            kernel += start.elapsed();
            elements += z.len() as u64;
            epoch_loss += loss as f64;
            // Backward through z = W x + b.
            gw.fill(0.0);
            gb.fill(0.0);
            for (xr, gr) in xb.chunks_exact(DIM).zip(g.chunks_exact(classes)) {
                for ((gwr, gbc), &gc) in gw.chunks_exact_mut(DIM).zip(gb.iter_mut()).zip(gr) {
                    *gbc += gc;
                    for (a, &xv) in gwr.iter_mut().zip(xr) {
                        *a += gc * xv;
                    }
                }
            }
            opt_w.step(&mut w, &gw, lr);
            opt_b.step(&mut b, &gb, lr);
        }
        final_loss = (epoch_loss / batches as f64) as f32;
    }
    let mut zt = vec![0f32; test.n * classes];
    forward(&w, &b, &test.x, &mut zt);
    let ap = (0..classes)
        .map(|c| {
            let s: Vec<(f32, u8)> = (0..test.n)
                .map(|i| (zt[i * classes + c], test.y[i * classes + c]))
                .collect();
            average_precision(&s)
        })
        .collect();
    Outcome {
        ap,
        kernel,
        elements,
        final_loss,
    }
}

fn main() {
    let a = args();
    let c = a.classes;
    let start = Instant::now();
    let mut rng = Rng::new(a.seed);

    // Class prototypes: random unit vectors.
    let mut prototypes = vec![0f32; c * DIM];
    for p in prototypes.chunks_exact_mut(DIM) {
        let v: Vec<f64> = (0..DIM).map(|_| rng.normal()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for (d, s) in p.iter_mut().zip(v) {
            *d = (s / norm) as f32;
        }
    }
    // Long-tailed training prior: the expected count falls log-linearly in sqrt(rank), from
    // 0.9 N (class 0; 1e5 with the default N) to 5 (class C-1).
    let head = a.examples as f64 * 0.9;
    let prior: Vec<f64> = (0..c)
        .map(|k| {
            let f = (k as f64 / (c - 1) as f64).sqrt();
            (head.ln() + (5f64.ln() - head.ln()) * f).exp() / a.examples as f64
        })
        .collect();
    let train_set = generate(&mut rng, &prototypes, &prior, a.examples);
    let test_set = generate(&mut rng, &prototypes, &vec![0.05; c], 20_000);
    let counts: Vec<u64> = (0..c)
        .map(|k| {
            (0..train_set.n)
                .filter(|&i| train_set.y[i * c + k] == 1)
                .count() as u64
        })
        .collect();
    let labels = counts.iter().sum::<u64>() as f64 / train_set.n as f64;
    println!(
        "Synthetic long-tailed multi-label data: {} training examples, {c} classes, {:.2} labels per example",
        train_set.n, labels
    );
    println!(
        "class counts: head {} / {} / {} ... tail {} / {} / {}  (balanced test set: {} examples)",
        counts[0],
        counts[1],
        counts[2],
        counts[c - 3],
        counts[c - 2],
        counts[c - 1],
        test_set.n
    );

    // Class-balanced weights need a count of at least 1 per class.
    let cb_counts: Vec<u64> = counts.iter().map(|&n| n.max(1)).collect();
    let mut cb = vec![0f32; c];
    class_balanced_weights(&cb_counts, 0.9999, &mut cb).expect("counts >= 1, beta in [0, 1)");
    let losses: [(&str, Focal<'_>, Reduction); 3] = [
        ("BCE", Focal::new(0.0), Reduction::Mean),
        (
            "focal (alpha 0.25, gamma 2)",
            Focal::torchvision(0.25, 2.0),
            Reduction::Mean,
        ),
        (
            "class-balanced focal (VidHOI)",
            Focal::vidhoi(&cb),
            Reduction::PerPositive,
        ),
    ];

    let (h, m) = (c / 5, c * 3 / 5);
    println!(
        "groups: head = classes 0..{h} (>= {} examples), middle = {h}..{m}, tail = {m}..{c} (<= {} examples)",
        counts[h - 1],
        counts[m]
    );
    println!();
    println!(
        "{:<31} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9} {:>8}",
        "loss", "mAP all", "head", "middle", "tail", "train loss", "Melem/s", "ns/elem"
    );
    let mean = |v: &[f64]| {
        let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        f.iter().sum::<f64>() / f.len().max(1) as f64
    };
    for (name, focal, reduction) in losses {
        let o = train(
            (&focal, reduction),
            &train_set,
            &test_set,
            c,
            a.epochs,
            a.seed,
        );
        let secs = o.kernel.as_secs_f64();
        println!(
            "{:<31} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>10.4} {:>9.0} {:>8.2}",
            name,
            mean(&o.ap),
            mean(&o.ap[..h]),
            mean(&o.ap[h..m]),
            mean(&o.ap[m..]),
            o.final_loss,
            o.elements as f64 / secs / 1e6,
            secs * 1e9 / o.elements as f64
        );
    }
    println!();
    println!(
        "loss kernel: fused loss + gradient, [{BATCH}, {c}] f32 logits, u8 labels, backend {} (runtime-detected); {} epochs; total {:.1} s",
        Backend::Auto.resolve().map_or("?", |b| b.name()),
        a.epochs,
        start.elapsed().as_secs_f64()
    );
    println!("mAP: mean over classes of the average precision on the balanced test set.");
    println!(
        "train loss: last epoch, reduced by Mean (BCE, focal) or PerPositive (class-balanced)."
    );
}
