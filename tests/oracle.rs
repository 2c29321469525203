//! Loss and gradient against the f64 oracle: a deterministic sweep over the whole f32 logit
//! range that measures and bounds the error by range, and property tests over every option.

mod common;

use common::{Opts, kappas, loss_grad, ulps, within};
use focal_loss::{Backend, Focal, Modulator, Reduction};

const MODULATORS: [Modulator; 3] = [
    Modulator::Linear,
    Modulator::Geometric,
    Modulator::Separable,
];
const GAMMAS: [f32; 9] = [0.0, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0];

/// Logit ranges of the report: the boundaries are where peers break (17: `1 - p` rounds to
/// 0; 88: `exp(x)` overflows; 104: `exp(-x)` underflows to 0).
const RANGES: [(f32, f32); 7] = [
    (0.0, 1.0),
    (1.0, 5.0),
    (5.0, 17.0),
    (17.0, 88.0),
    (88.0, 104.0),
    (104.0, 1e4),
    (1e4, f32::MAX),
];

/// `n` logits of both signs spread log-uniformly over `[lo, hi]`, plus the ends.
fn logits_in(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    let (a, b) = ((lo.max(1e-7) as f64).ln(), (hi as f64).ln());
    let mut v = vec![lo, hi, -lo, -hi];
    for i in 0..n {
        let u = (i as f64 + 0.5) / n as f64;
        let x = (a + (b - a) * u).exp() as f32;
        v.push(x);
        v.push(-x);
    }
    v
}

fn focal(gamma: f32, m: Modulator, b: Backend) -> Focal<'static> {
    Focal::new(gamma).modulator(m).backend(b)
}

fn opts(gamma: f32, m: Modulator) -> Opts {
    Opts {
        modulator: m,
        ..Opts::plain(gamma as f64)
    }
}

/// Max error (ULP) of loss and gradient per backend and logit range, hard and soft targets.
/// Prints the table quoted in the README; fails on any value outside the tolerance table.
#[test]
fn sweep_error_by_range() {
    let soft = [0.1f32, 0.3, 0.5, 0.75, 0.9, 0.99, 1e-30, 1e-40];
    let mut failures = Vec::new();
    let mut by_gamma = [[0f64; 4]; GAMMAS.len()];
    println!("max error in ULP (hard targets | soft targets divided by (1 + kappa))");
    println!("backend  range            loss hard  grad hard  loss soft  grad soft");
    for b in Backend::available() {
        for (lo, hi) in RANGES {
            let xs = logits_in(lo, hi, 200);
            let mut worst = [0f64; 4];
            for m in MODULATORS {
                for gamma in GAMMAS {
                    let f = focal(gamma, m, b);
                    let o = opts(gamma, m);
                    for (hard, ts) in [(true, &[0.0f32, 1.0][..]), (false, &soft[..])] {
                        for &t in ts {
                            let tv = vec![t; xs.len()];
                            let mut l = vec![0f32; xs.len()];
                            let mut g = vec![0f32; xs.len()];
                            f.loss_elementwise(&xs, &tv, &mut l).unwrap();
                            f.loss_and_grad(&xs, &tv, &mut g, Reduction::Sum).unwrap();
                            for i in 0..xs.len() {
                                let (x, tt) = (xs[i] as f64, t as f64);
                                let (wl, wg) = loss_grad(x, tt, &o);
                                let (kl, kg) = if hard { (0.0, 0.0) } else { kappas(x, tt, &o) };
                                let (el, eg) = (ulps(l[i], wl), ulps(g[i], wg));
                                let slot = if hard { 0 } else { 2 };
                                worst[slot] = worst[slot].max(el / (1.0 + kl));
                                worst[slot + 1] = worst[slot + 1].max(eg / (1.0 + kg));
                                let gi = GAMMAS.iter().position(|&g| g == gamma).unwrap();
                                let s = if hard { 0 } else { 2 };
                                by_gamma[gi][s] = by_gamma[gi][s].max(el / (1.0 + kl));
                                by_gamma[gi][s + 1] = by_gamma[gi][s + 1].max(eg / (1.0 + kg));
                                if !within(l[i], wl, kl, gamma as f64, hard, 1.0)
                                    || !within(g[i], wg, kg, gamma as f64, hard, 1.0)
                                {
                                    failures.push(format!(
                                        "{b:?} {m:?} gamma={gamma} x={} t={t}: loss {} vs {wl:e} ({el:.1} ulp, kappa {kl:.1}), grad {} vs {wg:e} ({eg:.1} ulp, kappa {kg:.1})",
                                        xs[i], l[i], g[i]
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            println!(
                "{:<8} [{lo:e}, {hi:e}) {:>9.2} {:>10.2} {:>10.2} {:>10.2}",
                format!("{b:?}"),
                worst[0],
                worst[1],
                worst[2],
                worst[3]
            );
        }
    }
    println!("by gamma (both backends, all ranges):");
    for (g, w) in GAMMAS.iter().zip(by_gamma) {
        println!(
            "gamma {g:<4} {:>9.2} {:>10.2} {:>10.2} {:>10.2}",
            w[0], w[1], w[2], w[3]
        );
    }
    if !failures.is_empty() {
        for f in failures.iter().take(40) {
            println!("{f}");
        }
        panic!("{} values outside the tolerance table", failures.len());
    }
}

/// The README's accuracy table: [`sweep_error_by_range`] with 100 times the logits (20000
/// log-uniform and 20000 uniform per range and sign, `DENSE_N` to change), 13 gammas (the nine above and 0.25, 1.25, 4, 4.75) and 12 targets (0,
/// 1, and ten soft ones down to 1e-40), every modulator, on every backend. A few minutes;
/// run with `cargo test --release --test oracle -- --ignored --nocapture`. Prints the
/// table in markdown (backends Scalar / Portable / Avx2 / Avx512 in each cell) and asserts
/// the tolerance table.
#[test]
#[ignore]
fn dense_table() {
    let soft = [
        0.1f32,
        0.3,
        0.43318483,
        0.5,
        0.75,
        0.9,
        0.99,
        1e-30,
        1e-40,
        1.0 - 6e-8,
    ];
    let gammas = [
        0.0f32, 0.1, 0.25, 0.5, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 4.75, 5.0,
    ];
    let backends: Vec<Backend> = Backend::available().collect();
    // worst[range][backend][loss hard, grad hard, loss soft, grad soft]
    let mut worst = vec![vec![[0f64; 4]; backends.len()]; RANGES.len()];
    let mut failures = 0usize;
    for (ri, &(lo, hi)) in RANGES.iter().enumerate() {
        // Log-uniform and uniform, both signs, and the worst points found elsewhere (the
        // adversarial probe's, the property tests').
        let n: usize = std::env::var("DENSE_N").map_or(20000, |v| v.parse().unwrap());
        let mut xs = logits_in(lo, hi, n);
        let hi_u = (hi as f64).min(1e6);
        for i in 0..n {
            let x = (lo as f64 + (hi_u - lo as f64) * (i as f64 + 0.37) / n as f64) as f32;
            xs.extend([x, -x]);
        }
        let found = [
            0.9276147f32,
            17.107086,
            -0.012259459,
            -0.014419485,
            -0.008910089,
        ];
        xs.extend(found.iter().filter(|x| (lo..hi).contains(&x.abs())));
        for m in MODULATORS {
            for gamma in gammas {
                let o = opts(gamma, m);
                for (hard, ts) in [(true, &[0.0f32, 1.0][..]), (false, &soft[..])] {
                    for &t in ts {
                        let truth: Vec<_> = xs
                            .iter()
                            .map(|&x| {
                                let (wl, wg) = loss_grad(x as f64, t as f64, &o);
                                let k = if hard {
                                    (0.0, 0.0)
                                } else {
                                    kappas(x as f64, t as f64, &o)
                                };
                                (wl, wg, k)
                            })
                            .collect();
                        let tv = vec![t; xs.len()];
                        for (bi, &b) in backends.iter().enumerate() {
                            let f = focal(gamma, m, b);
                            let mut l = vec![0f32; xs.len()];
                            let mut g = vec![0f32; xs.len()];
                            f.loss_elementwise(&xs, &tv, &mut l).unwrap();
                            f.loss_and_grad(&xs, &tv, &mut g, Reduction::Sum).unwrap();
                            for (i, &(wl, wg, (kl, kg))) in truth.iter().enumerate() {
                                let s = if hard { 0 } else { 2 };
                                let w = &mut worst[ri][bi];
                                w[s] = w[s].max(ulps(l[i], wl) / (1.0 + kl));
                                w[s + 1] = w[s + 1].max(ulps(g[i], wg) / (1.0 + kg));
                                let g64 = gamma as f64;
                                if !within(l[i], wl, kl, g64, hard, 1.0)
                                    || !within(g[i], wg, kg, g64, hard, 1.0)
                                {
                                    failures += 1;
                                    if failures < 20 {
                                        println!(
                                            "{b:?} {m:?} gamma {gamma} x {} t {t}: loss {} vs {wl:e}, grad {} vs {wg:e}",
                                            xs[i], l[i], g[i]
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    println!("| logit range | loss, hard | gradient, hard | loss, soft | gradient, soft |");
    println!("|---|---|---|---|---|");
    for (ri, &(lo, hi)) in RANGES.iter().enumerate() {
        let cell = |k: usize| {
            let v: Vec<String> = worst[ri].iter().map(|w| format!("{:.1}", w[k])).collect();
            v.join(" / ")
        };
        println!(
            "| `[{lo}, {hi})` | {} | {} | {} | {} |",
            cell(0),
            cell(1),
            cell(2),
            cell(3)
        );
    }
    assert_eq!(failures, 0, "values outside the tolerance table");
}
