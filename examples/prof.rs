//! Profiling helper (not documented in the README): one configuration in a loop, for A/B runs
//! of two builds (alternate the binaries; this machine is noisy).
//!
//! `prof <gamma> <kind> <n> <reps> <mode> [scalar|portable|avx2]`, `MOD=geometric|separable`
//! for another modulator. `kind`: `hard` (1 in 7 positive), `soft` (0, 0.1, ..., 0.9), `mix`
//! (hard, and one target in 37 soft: about 40% of the vectors mixed), `smooth`
//! (hard, label smoothing 0.1), `u8` (hard, as bytes), `vidhoi` (the preset: 50 class weights,
//! `PerPositive`), `cw` (50 class weights), `sw1` / `sw4` / `sw24` (1, 4 or 24 classes and a
//! weight per row; `n` a multiple of the class count). `mode`: `grad` (`loss_and_grad`,
//! `Mean`), `acc`, `elem`, `loss`. Prints the minimum and median ns per element of 15 rounds.
//! `HALF=bf16` (or `f16`): `grad` with logits and gradient of that type, and byte targets;
//! `HALF=bf16in` (`bf16out`): the logits (the gradient) alone as `bf16`.
use focal_loss::half::{bf16, f16};
use focal_loss::{Backend, Focal, Modulator, Reduction};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let gamma: f32 = args.get(1).map_or(2.0, |s| s.parse().unwrap());
    let kind = args.get(2).map_or("hard", |s| s.as_str());
    let n = args.get(3).map_or(65536, |s| s.parse().unwrap());
    let reps: usize = args.get(4).map_or(20000, |s| s.parse().unwrap());
    let mode = args.get(5).map_or("grad", |s| s.as_str());
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 50.0)
        .collect();
    let t: Vec<f32> = (0..n)
        .map(|i| match kind {
            "soft" => (i % 10) as f32 / 10.0,
            "mix" if i % 37 == 5 => 0.3,
            _ => (i % 7 == 0) as u8 as f32,
        })
        .collect();
    let t8: Vec<u8> = t.iter().map(|&v| v as u8).collect();
    let w: Vec<f32> = (0..50).map(|c| 0.2 + c as f32 * 0.05).collect();
    let sw: Vec<f32> = (0..n).map(|i| 0.5 + (i % 3) as f32).collect();
    let mut g = vec![0f32; n];
    let half = std::env::var("HALF").unwrap_or_default();
    let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let (mut gb, mut gh) = (vec![bf16::ZERO; n], vec![f16::ZERO; n]);

    let f = Focal::new(gamma).alpha(0.25);
    let f = match kind {
        "smooth" => f.label_smoothing(0.1),
        "vidhoi" => Focal::vidhoi(&w),
        "cw" => f.class_weights(&w),
        "sw1" => f.classes(1).sample_weights(&sw),
        "sw4" => f.classes(4).sample_weights(&sw[..n / 4]),
        "sw24" => f.classes(24).sample_weights(&sw[..n / 24]),
        _ => f,
    };
    let f = match std::env::var("MOD").as_deref() {
        Ok("geometric") => f.modulator(Modulator::Geometric),
        Ok("separable") => f.modulator(Modulator::Separable),
        _ => f,
    };
    let f = match args.get(6).map(|s| s.as_str()) {
        Some("scalar") => f.backend(Backend::Scalar),
        Some("portable") => f.backend(Backend::Portable),
        Some("avx2") => f.backend(Backend::Avx2),
        _ => f,
    };
    let reduction = if kind == "vidhoi" {
        Reduction::PerPositive
    } else {
        Reduction::Mean
    };

    let mut s = 0.0;
    let mut times = Vec::new();
    for _ in 0..15 {
        let start = std::time::Instant::now();
        for _ in 0..reps / 15 + 1 {
            s += match mode {
                "loss" => f.loss(&x, &t, reduction).unwrap(),
                "acc" => f
                    .loss_and_grad_accumulate(&x, &t, &mut g, reduction)
                    .unwrap(),
                "elem" => {
                    f.loss_elementwise(&x, &t, &mut g).unwrap();
                    g[0]
                }
                _ if half == "bf16" => f.loss_and_grad(&xb, &t8, &mut gb, reduction).unwrap(),
                _ if half == "bf16in" => f.loss_and_grad(&xb, &t8, &mut g, reduction).unwrap(),
                _ if half == "bf16out" => f.loss_and_grad(&x, &t8, &mut gb, reduction).unwrap(),
                _ if half == "f16" => f.loss_and_grad(&xh, &t8, &mut gh, reduction).unwrap(),
                _ if kind == "u8" => f.loss_and_grad(&x, &t8, &mut g, reduction).unwrap(),
                _ => f.loss_and_grad(&x, &t, &mut g, reduction).unwrap(),
            };
        }
        times.push(start.elapsed().as_nanos() as f64 / ((reps / 15 + 1) * n) as f64);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "gamma {gamma} {kind} n {n} {mode}: min {:.3} median {:.3} ns/elem ({s})",
        times[0], times[7]
    );
}
