//! Profiling helper (not documented in the README): one configuration in a loop.
use focal_loss::{Focal, Reduction};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let gamma: f32 = args.get(1).map_or(2.0, |s| s.parse().unwrap());
    // "soft": targets 0, 0.1, ..., 0.9; "smooth": hard targets with label smoothing 0.1.
    let soft = args.get(2).is_some_and(|s| s == "soft");
    let smooth = args.get(2).is_some_and(|s| s == "smooth");
    // "u8": hard targets given as bytes.
    let bytes = args.get(2).is_some_and(|s| s == "u8");
    let n = args.get(3).map_or(65536, |s| s.parse().unwrap());
    let reps: usize = args.get(4).map_or(20000, |s| s.parse().unwrap());
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 50.0)
        .collect();
    let t: Vec<f32> = (0..n)
        .map(|i| {
            if soft {
                (i % 10) as f32 / 10.0
            } else {
                (i % 7 == 0) as u8 as f32
            }
        })
        .collect();
    let t8: Vec<u8> = t.iter().map(|&v| v as u8).collect();
    let mut g = vec![0f32; n];
    let f = Focal::new(gamma).alpha(0.25);
    let f = if smooth { f.label_smoothing(0.1) } else { f };
    let mode = args.get(5).map_or("grad", |s| s.as_str());
    let f = match args.get(6).map(|s| s.as_str()) {
        Some("scalar") => f.backend(focal_loss::Backend::Scalar),
        Some("portable") => f.backend(focal_loss::Backend::Portable),
        Some("avx2") => f.backend(focal_loss::Backend::Avx2),
        _ => f,
    };
    let mut s = 0.0;
    let mut times = Vec::new();
    for _ in 0..15 {
        let start = std::time::Instant::now();
        for _ in 0..reps / 15 + 1 {
            s += match mode {
                "loss" => f.loss(&x, &t, Reduction::Mean).unwrap(),
                "acc" => f
                    .loss_and_grad_accumulate(&x, &t, &mut g, Reduction::Mean)
                    .unwrap(),
                "elem" => {
                    f.loss_elementwise(&x, &t, &mut g).unwrap();
                    g[0]
                }
                _ if bytes => f.loss_and_grad(&x, &t8, &mut g, Reduction::Mean).unwrap(),
                _ => f.loss_and_grad(&x, &t, &mut g, Reduction::Mean).unwrap(),
            };
        }
        times.push(start.elapsed().as_nanos() as f64 / ((reps / 15 + 1) * n) as f64);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let ns = times[0];
    let med = times[7];
    println!("gamma {gamma} soft {soft} n {n} {mode}: min {ns:.3} median {med:.3} ns/elem ({s})");
}
