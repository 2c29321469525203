//! Profiling helper for the softmax family (not documented in the README): one configuration
//! in a loop, for A/B runs.
//!
//! `prof_softmax <gamma> <C> <logits> <reps> <mode> [rows|nchw|dense|smooth] [backend] [f32|bf16|f16]`;
//! `mode`: `grad` (`loss_and_grad`, `Mean`), `acc`, `loss`, `row`. Prints the minimum and
//! median ns per logit of 15 rounds. `bf16`: bf16 logits and gradient (`bf16in`, `bf16out`:
//! only the logits, only the gradient); `f16`: f16 logits and gradient.
use focal_loss::half::{bf16, f16};
use focal_loss::{Backend, Reduction, SoftmaxFocal};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let gamma: f32 = arg(1, "2").parse().unwrap();
    let c: usize = arg(2, "50").parse().unwrap();
    let n: usize = arg(3, "65536").parse().unwrap();
    let reps: usize = arg(4, "2000").parse().unwrap();
    let mode = arg(5, "grad");
    let layout = arg(6, "rows");
    let rows = n / c;
    let n = rows * c;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 100.0)
        .collect();
    let y: Vec<i64> = (0..rows).map(|r| ((r * 31) % c) as i64).collect();
    let dist: Vec<f32> = (0..n)
        .map(|i| ((i % c) == (i / c) % c) as u8 as f32)
        .collect();
    let mut g = vec![0f32; n];
    let mut out = vec![0f32; rows];
    let mut f = SoftmaxFocal::new(gamma).classes(c);
    match layout.as_str() {
        "nchw" => f = f.spatial(rows),
        "smooth" => f = f.label_smoothing(0.1),
        _ => {}
    }
    f = match arg(7, "auto").as_str() {
        "scalar" => f.backend(Backend::Scalar),
        "portable" => f.backend(Backend::Portable),
        "avx2" => f.backend(Backend::Avx2),
        _ => f,
    };
    let dense = layout == "dense";
    // `bf16`: bf16 logits and gradient; `bf16in`: bf16 logits, f32 gradient; `bf16out`: f32
    // logits, bf16 gradient.
    let ty = arg(8, "f32");
    let half = ty == "bf16";
    let half_in = ty == "bf16in";
    let half_out = ty == "bf16out";
    let xh: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    let mut gh = vec![bf16::ZERO; n];
    let is_f16 = ty == "f16";
    let xf: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let mut gf = vec![f16::ZERO; n];
    let mut s = 0.0;
    let mut times = Vec::new();
    for _ in 0..15 {
        let start = std::time::Instant::now();
        for _ in 0..reps / 15 + 1 {
            s += match (mode.as_str(), dense) {
                ("grad", false) if half => {
                    f.loss_and_grad(&xh, &y, &mut gh, Reduction::Mean).unwrap()
                }
                ("grad", false) if is_f16 => {
                    f.loss_and_grad(&xf, &y, &mut gf, Reduction::Mean).unwrap()
                }
                ("grad", false) if half_in => {
                    f.loss_and_grad(&xh, &y, &mut g, Reduction::Mean).unwrap()
                }
                ("grad", false) if half_out => {
                    f.loss_and_grad(&x, &y, &mut gh, Reduction::Mean).unwrap()
                }
                ("loss", _) if half => f.loss(&xh, &y, Reduction::Mean).unwrap(),
                ("loss", _) => f.loss(&x, &y, Reduction::Mean).unwrap(),
                ("acc", _) => f
                    .loss_and_grad_accumulate(&x, &y, &mut g, Reduction::Mean)
                    .unwrap(),
                ("row", _) => {
                    f.loss_per_row(&x, &y, &mut out).unwrap();
                    out[0]
                }
                (_, true) => f.loss_and_grad(&x, &dist, &mut g, Reduction::Mean).unwrap(),
                _ => f.loss_and_grad(&x, &y, &mut g, Reduction::Mean).unwrap(),
            };
        }
        times.push(start.elapsed().as_nanos() as f64 / ((reps / 15 + 1) * n) as f64);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "gamma {gamma} C {c} n {n} {mode} {layout}: min {:.3} median {:.3} ns/logit ({s})",
        times[0], times[7]
    );
}
