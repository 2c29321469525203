//! Identities between options, limits at infinity, backends lane for lane, position
//! independence, chunked partial sums, and the accuracy of long sums.

mod common;

use common::{Opts, loss_grad, ulps};
use focal_loss::{Backend, Focal, Grad, Modulator, Partial, Reduction, class_balanced_weights};

/// The widest vector of any backend (AVX-512 and AVX2 take 16 lanes, the portable one 8).
const LANES: usize = 16;

/// A deterministic spread of logits and targets (hard and soft), `n` elements.
fn batch(n: usize, seed: u64, soft: bool) -> (Vec<f32>, Vec<f32>) {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut x = Vec::with_capacity(n);
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let u = next();
        x.push(((u - 0.5) * 40.0) as f32);
        let v = next();
        t.push(if soft {
            v as f32
        } else {
            (v < 0.3) as u8 as f32
        });
    }
    (x, t)
}

fn elementwise(f: &Focal<'_>, x: &[f32], t: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut l = vec![0f32; x.len()];
    let mut g = vec![0f32; x.len()];
    f.loss_elementwise(x, t, &mut l).unwrap();
    f.loss_and_grad(x, t, &mut g, Reduction::Sum).unwrap();
    (l, g)
}

#[test]
fn gamma_zero_is_bce_with_logits() {
    let (x, t) = batch(1000, 1, true);
    let (l, g) = elementwise(&Focal::new(0.0), &x, &t);
    for i in 0..x.len() {
        // BCE with logits: sp(x) - t x, derivative sigmoid(x) - t, in f64.
        let (xi, ti) = (x[i] as f64, t[i] as f64);
        let bce = xi.max(0.0) + (-xi.abs()).exp().ln_1p() - ti * xi;
        let d = 1.0 / (1.0 + (-xi).exp()) - ti;
        let cond = (xi.abs() * (1.0 + ti)) / bce.abs().max(1e-30);
        assert!(ulps(l[i], bce) <= 8.0 * (1.0 + cond), "x={xi} t={ti}");
        assert!(
            ((g[i] as f64) - d).abs() <= 1e-6 * (1.0 + d.abs()),
            "x={xi} t={ti}"
        );
    }
}

#[test]
fn modulators_agree_for_hard_targets() {
    let (x, t) = batch(4 * 1024, 2, false);
    for gamma in [0.0f32, 0.5, 1.0, 2.0, 2.5, 5.0] {
        let lin = Focal::new(gamma).alpha(0.25);
        let (l0, g0) = elementwise(&lin, &x, &t);
        for m in [Modulator::Geometric, Modulator::Separable] {
            let (l1, g1) = elementwise(&lin.modulator(m), &x, &t);
            for i in 0..x.len() {
                let close = |a: f32, b: f32| {
                    (a - b).abs() <= 8.0 * f32::EPSILON * a.abs().max(b.abs()) + 8e-45
                };
                assert!(
                    close(l0[i], l1[i]),
                    "{m:?} gamma={gamma} x={} t={}: {} vs {}",
                    x[i],
                    t[i],
                    l0[i],
                    l1[i]
                );
                assert!(
                    close(g0[i], g1[i]),
                    "{m:?} gamma={gamma} x={} t={}: {} vs {}",
                    x[i],
                    t[i],
                    g0[i],
                    g1[i]
                );
            }
        }
    }
}

#[test]
fn unit_options_change_nothing() {
    let (x, t) = batch(3 * 50, 3, true);
    let ones = [1.0f32; 50];
    let base = Focal::new(2.0).alpha(0.25);
    let (l0, g0) = elementwise(&base, &x, &t);
    for f in [
        base.pos_weight(&ones),
        base.class_weights(&ones),
        base.classes(50).sample_weights(&[1.0; 3]),
        base.label_smoothing(0.0),
        base.alpha_per_class(&[0.25; 50]),
    ] {
        let (l1, g1) = elementwise(&f, &x, &t);
        assert_eq!(l0, l1, "{f:?}");
        assert_eq!(g0, g1, "{f:?}");
    }
}

#[test]
fn beta_zero_gives_unit_weights() {
    let counts: Vec<u64> = (1..=50).map(|c| 1 + 200_000 / (c * c)).collect();
    let mut w = vec![0f32; 50];
    class_balanced_weights(&counts, 0.0, &mut w).unwrap();
    assert!(w.iter().all(|&v| v == 1.0));
}

#[test]
fn class_balanced_weights_are_exact_near_one() {
    // Reference: (1 - beta) / (1 - beta^n) with beta^n by f64 powi: relative error below
    // 1e-11 here (1 - beta^n >= 1e-4), far below an f32 ULP.
    for beta in [0.9f64, 0.99, 0.999, 0.9999, 0.99999] {
        let counts: Vec<u64> = (1..=50u64)
            .map(|c| (300_000 / (c * c * c)).max(1))
            .collect();
        let mut w = vec![0f32; counts.len()];
        class_balanced_weights(&counts, beta, &mut w).unwrap();
        let raw: Vec<f64> = counts
            .iter()
            .map(|&n| (1.0 - beta) / (1.0 - beta.powi(n as i32)))
            .collect();
        let total: f64 = raw.iter().sum();
        for (c, (&got, &r)) in w.iter().zip(&raw).enumerate() {
            let want = r * counts.len() as f64 / total;
            assert!(
                ulps(got, want) <= 1.0,
                "beta {beta} class {c}: {got} vs {want}"
            );
        }
        let sum: f64 = w.iter().map(|&v| v as f64).sum();
        assert!((sum - 50.0).abs() < 50.0 * 1e-6, "beta {beta}: sum {sum}");
    }
}

#[test]
fn mean_is_sum_over_n_and_per_positive_over_positives() {
    // Hard and soft targets: the positives are counted by the fast loops of each (for
    // `partial`) and by the scan of the targets (for the PerPositive gradient).
    for soft in [false, true] {
        let (x, t) = batch(1000, 4, soft);
        let f = Focal::new(2.0).alpha(0.25);
        let (mut gs, mut gm, mut gp) = (vec![0f32; 1000], vec![0f32; 1000], vec![0f32; 1000]);
        let sum = f.loss_and_grad(&x, &t, &mut gs, Reduction::Sum).unwrap() as f64;
        let p = f.partial(&x, &t, Grad::Skip).unwrap();
        let mean = f.loss_and_grad(&x, &t, &mut gm, Reduction::Mean).unwrap();
        let per = f
            .loss_and_grad(&x, &t, &mut gp, Reduction::PerPositive)
            .unwrap();
        // Hard targets sum exactly in any order; soft ones to within f64 roundings.
        let pos: f64 = t.iter().map(|&v| v as f64).sum();
        assert!((p.positives() - pos).abs() <= 1e-13 * pos, "soft {soft}");
        if !soft {
            assert_eq!(p.positives(), pos);
        }
        assert_eq!(mean, (p.loss_sum() / 1000.0) as f32);
        assert_eq!(per, (p.loss_sum() / p.positives()) as f32);
        assert!(((mean as f64) - sum / 1000.0).abs() <= 1e-7 * sum / 1000.0);
        for i in 0..1000 {
            assert_eq!(gm[i], gs[i] * (1.0f32 / 1000.0));
            assert_eq!(gp[i], gs[i] * ((1.0 / p.positives()) as f32), "soft {soft}");
        }
    }
    // No positives: PerPositive divides by 1.
    let (x, _) = batch(1000, 4, false);
    let f = Focal::new(2.0).alpha(0.25);
    let zeros = vec![0f32; 1000];
    let s = f.loss(&x, &zeros, Reduction::Sum).unwrap();
    assert_eq!(f.loss(&x, &zeros, Reduction::PerPositive).unwrap(), s);
}

/// Label smoothing so small that half of it rounds to 0: hard targets then take the soft
/// formula with a modulator base of exactly 0 on the right side beyond |x| = 104, where the
/// square root's derivative factor 1/sqrt(b) must not turn into 0 * inf.
#[test]
fn vanishing_label_smoothing_gives_the_hard_limits() {
    let x = [
        105.0f32,
        1e4,
        f32::INFINITY,
        -105.0,
        -1e4,
        f32::NEG_INFINITY,
    ];
    let t = [1.0f32, 1.0, 1.0, 0.0, 0.0, 0.0];
    for gamma in [0.5f32, 1.0, 2.0] {
        for m in [Modulator::Linear, Modulator::Separable] {
            let f = Focal::new(gamma)
                .alpha(0.25)
                .label_smoothing(1e-45)
                .modulator(m);
            let (l, g) = elementwise(&f, &x, &t);
            for i in 0..x.len() {
                assert_eq!((l[i], g[i]), (0.0, 0.0), "gamma {gamma} {m:?} x {}", x[i]);
            }
        }
    }
}

#[test]
fn chunked_partials_combine_exactly() {
    let classes = 50;
    let rows = 37;
    let (x, t) = batch(rows * classes, 5, false);
    let w: Vec<f32> = (0..classes).map(|c| 0.2 + (c % 7) as f32 * 0.3).collect();
    let sw: Vec<f32> = (0..rows).map(|r| 0.5 + (r % 3) as f32).collect();
    for backend in Backend::available() {
        let f = Focal::new(0.5)
            .class_weights(&w)
            .sample_weights(&sw)
            .modulator(Modulator::Geometric)
            .backend(backend);
        for red in [Reduction::Sum, Reduction::Mean, Reduction::PerPositive] {
            let mut whole_g = vec![0f32; x.len()];
            let whole = f.loss_and_grad(&x, &t, &mut whole_g, red).unwrap();
            let scale = match red {
                Reduction::Sum => 1.0,
                Reduction::Mean => 1.0 / x.len() as f32,
                _ => (1.0 / t.iter().map(|&v| v as f64).sum::<f64>()) as f32,
            };
            for split in [1usize, 2, 5, 13, 36] {
                let mut g = vec![0f32; x.len()];
                let mut total = Partial::EMPTY;
                let mut r0 = 0;
                while r0 < rows {
                    let r1 = (r0 + split).min(rows);
                    let (a, b) = (r0 * classes, r1 * classes);
                    let part = f
                        .sample_weights(&sw[r0..r1])
                        .partial(&x[a..b], &t[a..b], Grad::Write(&mut g[a..b], scale))
                        .unwrap();
                    total = part.merge(total);
                    r0 = r1;
                }
                assert_eq!(
                    total.reduce(red).unwrap(),
                    whole,
                    "{backend:?} {red:?} split {split}"
                );
                assert_eq!(g, whole_g, "{backend:?} {red:?} split {split}");
                assert_eq!(total.elements(), x.len() as u64);
            }
        }
    }
}

#[test]
fn u8_targets_equal_f32_targets_bit_for_bit() {
    // Byte targets are widened block by block: batches over several blocks, with logits
    // beyond 2^64 (the general path; on the right side, so that their loss is 0 and the sums
    // keep all their bits) that make runs of the hard-target loop start at odd vectors, so
    // that its pairs would straddle a block boundary if they were counted from the run's start.
    for n in [0usize, 1, 15, 16, 17, 50 * 7 + 3, 2000, 5003] {
        let (mut x, mut t) = batch(n, 40 + n as u64, false);
        for i in [37, 1100, 1530, 1555, 4000] {
            if i < n {
                (x[i], t[i]) = (1e20, 1.0);
            }
        }
        let t8: Vec<u8> = t.iter().map(|&v| v as u8).collect();
        // Weights per class and per row, so that the class offset and the row must be carried
        // from block to block (50 classes where they divide n, else one).
        let c = if n % 50 == 0 { 50 } else { 1 };
        let cw: Vec<f32> = (0..c).map(|j| 0.5 + (j % 7) as f32 * 0.25).collect();
        let sw: Vec<f32> = (0..n / c).map(|r| 0.25 + (r % 5) as f32 * 0.5).collect();
        for b in Backend::available() {
            for f in [
                Focal::new(2.0).alpha(0.25),
                Focal::new(0.5).modulator(Modulator::Geometric),
                Focal::new(2.5)
                    .modulator(Modulator::Separable)
                    .label_smoothing(0.1),
                Focal::new(2.0)
                    .classes(c)
                    .class_weights(&cw)
                    .sample_weights(&sw),
            ] {
                let f = f.backend(b);
                let (mut g1, mut g2) = (vec![0f32; n], vec![0f32; n]);
                let a = f
                    .loss_and_grad(&x, &t, &mut g1, Reduction::PerPositive)
                    .unwrap();
                let c = f
                    .loss_and_grad(&x, &t8, &mut g2, Reduction::PerPositive)
                    .unwrap();
                assert_eq!(a.to_bits(), c.to_bits(), "{b:?} n={n}");
                assert_eq!(g1, g2, "{b:?} n={n}");
                let (p1, p2) = (
                    f.partial(&x, &t, Grad::Skip).unwrap(),
                    f.partial(&x, &t8, Grad::Skip).unwrap(),
                );
                assert_eq!(p1, p2);
                // Every kind of output, block by block: added to, and the elementwise loss.
                let a = f
                    .loss_and_grad_accumulate(&x, &t, &mut g1, Reduction::Sum)
                    .unwrap();
                let c = f
                    .loss_and_grad_accumulate(&x, &t8, &mut g2, Reduction::Sum)
                    .unwrap();
                assert_eq!(a.to_bits(), c.to_bits(), "{b:?} n={n}");
                assert_eq!(g1, g2, "{b:?} n={n}");
                f.loss_elementwise(&x, &t, &mut g1).unwrap();
                f.loss_elementwise(&x, &t8, &mut g2).unwrap();
                assert_eq!(g1, g2, "{b:?} n={n}");
            }
        }
    }
}

#[test]
fn accumulate_adds_to_grad() {
    let (x, t) = batch(77, 6, true);
    let f = Focal::new(2.5).alpha(0.3);
    let mut g = vec![0f32; 77];
    f.loss_and_grad(&x, &t, &mut g, Reduction::Mean).unwrap();
    let mut acc: Vec<f32> = (0..77).map(|i| i as f32 * 0.01).collect();
    let before = acc.clone();
    f.loss_and_grad_accumulate(&x, &t, &mut acc, Reduction::Mean)
        .unwrap();
    for i in 0..77 {
        assert_eq!(acc[i], before[i] + g[i]);
    }
}

#[test]
fn infinite_logits_give_the_limits() {
    for m in [
        Modulator::Linear,
        Modulator::Geometric,
        Modulator::Separable,
    ] {
        for gamma in [0.0f32, 0.5, 2.0] {
            for backend in Backend::available() {
                let f = Focal::new(gamma).alpha(0.25).modulator(m).backend(backend);
                let x = [
                    f32::NEG_INFINITY,
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                    f32::INFINITY,
                ];
                let t = [1.0f32, 0.0, 0.0, 1.0];
                let (l, g) = elementwise(&f, &x, &t);
                let m0 = if gamma == 0.0 { 1.0 } else { 0.0 };
                // The reduced values: +inf (no NaN from the sums' error terms), and a zero
                // external factor gives 0.
                assert_eq!(
                    f.loss(&x, &t, Reduction::Sum),
                    Ok(f32::INFINITY),
                    "{backend:?}"
                );
                assert_eq!(
                    f.loss(&x, &t, Reduction::Scale(0.0)),
                    Ok(0.0),
                    "{backend:?}"
                );
                // Wrong side: loss +inf, gradient -alpha and 1 - alpha; right side: 0 and 0.
                assert_eq!(l, [f32::INFINITY, f32::INFINITY, 0.0, 0.0], "{m:?} {gamma}");
                assert_eq!(g, [-0.25, 0.75, 0.0, 0.0 * m0], "{m:?} {gamma}");
                // Soft targets: finite gradient, no NaN; Linear's loss is +inf, Geometric's 0
                // for gamma > 0 (its modulator vanishes faster than the cross-entropy grows).
                let ts = [0.3f32; 4];
                let (l, g) = elementwise(&f, &x, &ts);
                assert!(g.iter().all(|v| v.is_finite()), "{m:?} {gamma} {g:?}");
                assert!(l.iter().all(|v| !v.is_nan()), "{m:?} {gamma} {l:?}");
                if m == Modulator::Geometric && gamma > 0.0 {
                    assert_eq!(l, [0.0; 4]);
                } else {
                    assert!(l.iter().all(|v| *v == f32::INFINITY), "{m:?} {gamma} {l:?}");
                }
            }
        }
    }
}

#[test]
fn backends_agree_lane_for_lane_at_every_length() {
    for n in 0..=4 * LANES + 1 {
        for soft in [false, true] {
            let (x, t) = batch(n, 100 + n as u64, soft);
            for m in [
                Modulator::Linear,
                Modulator::Geometric,
                Modulator::Separable,
            ] {
                for gamma in [0.0f32, 0.5, 2.0, 2.5] {
                    let f = Focal::new(gamma).alpha(0.25).modulator(m);
                    let (ls, gs) = elementwise(&f.backend(Backend::Scalar), &x, &t);
                    for b in Backend::available() {
                        let (lv, gv) = elementwise(&f.backend(b), &x, &t);
                        let o = Opts {
                            alpha: Some(0.25),
                            modulator: m,
                            ..Opts::plain(gamma as f64)
                        };
                        for i in 0..n {
                            let (wl, wg) = loss_grad(x[i] as f64, t[i] as f64, &o);
                            let (kl, kg) = if soft {
                                common::kappas(x[i] as f64, t[i] as f64, &o)
                            } else {
                                (0.0, 0.0)
                            };
                            // Each within the table of the truth, hence within twice of each other.
                            for (a, b, w, k) in [(ls[i], lv[i], wl, kl), (gs[i], gv[i], wg, kg)] {
                                assert!(
                                    common::within(a, w, k, gamma as f64, !soft, 1.0),
                                    "n={n} i={i} scalar {a} vs {w}"
                                );
                                assert!(
                                    common::within(b, w, k, gamma as f64, !soft, 1.0),
                                    "n={n} i={i} vector {b} vs {w}"
                                );
                                let tol = 2.0
                                    * common::tolerance(k, gamma as f64, !soft)
                                        .max(common::HARD_ULP * (1.0 + k))
                                    * common::ulp(w)
                                    + 1e-44;
                                assert!(
                                    ((a - b) as f64).abs() <= tol,
                                    "{b:?} n={n} i={i}: {a} vs {b}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_position() {
    let (x, t) = batch(64, 7, true);
    for backend in Backend::available() {
        let f = Focal::new(2.5).alpha(0.25).backend(backend);
        let (l, g) = elementwise(&f, &x, &t);
        for shift in 1..=LANES + 1 {
            // The same values at other offsets, and in tails of every length.
            let xs: Vec<f32> = x[shift..].to_vec();
            let ts: Vec<f32> = t[shift..].to_vec();
            let (l2, g2) = elementwise(&f, &xs, &ts);
            assert_eq!(&l[shift..], &l2[..], "{backend:?} shift {shift}");
            assert_eq!(&g[shift..], &g2[..], "{backend:?} shift {shift}");
            for k in 0..xs.len() {
                let (l1, g1) = elementwise(&f, &xs[k..k + 1], &ts[k..k + 1]);
                assert_eq!((l1[0], g1[0]), (l2[k], g2[k]));
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_neighbouring_targets() {
    // A hard target next to soft ones gives the same bits as among hard ones.
    let (x, t) = batch(64, 11, false);
    for b in Backend::available() {
        for m in [
            Modulator::Linear,
            Modulator::Geometric,
            Modulator::Separable,
        ] {
            let f = Focal::new(0.5).alpha(0.25).modulator(m).backend(b);
            let (l, g) = elementwise(&f, &x, &t);
            let mut mixed = t.clone();
            for v in mixed.iter_mut().step_by(3) {
                *v = 0.37;
            }
            let (lm, gm) = elementwise(&f, &x, &mixed);
            for i in (0..64).filter(|i| i % 3 != 0) {
                assert_eq!(
                    (l[i].to_bits(), g[i].to_bits()),
                    (lm[i].to_bits(), gm[i].to_bits()),
                    "{b:?} {m:?} {i}"
                );
            }
        }
    }
}

#[test]
fn per_class_rows_match_flat_elements() {
    // A per-class setting loops row by row with padded tails; every element must equal the
    // flat single-element computation with that class's parameters.
    let classes = 11;
    let (x, t) = batch(5 * classes, 8, true);
    let alpha: Vec<f32> = (0..classes).map(|c| c as f32 / 10.0).collect();
    for backend in Backend::available() {
        let f = Focal::new(2.0).alpha_per_class(&alpha).backend(backend);
        let (l, g) = elementwise(&f, &x, &t);
        for i in 0..x.len() {
            let one = Focal::new(2.0).alpha(alpha[i % classes]).backend(backend);
            let (l1, g1) = elementwise(&one, &x[i..i + 1], &t[i..i + 1]);
            assert_eq!((l[i], g[i]), (l1[0], g1[0]), "{backend:?} element {i}");
        }
    }
}

/// 2^24 elements: the reduced sum stays within 1e-6 relative of the exact f64 sum of the
/// oracle values, deterministically (the requirement is for 1e8; the double-word sum's error
/// bound, `n * 2^-104`, is far below it at either size).
#[test]
fn long_sums_are_accurate_and_deterministic() {
    let n = 1 << 24;
    let (x, t) = batch(n, 9, false);
    let f = Focal::new(2.0).alpha(0.25);
    let o = Opts {
        alpha: Some(0.25),
        ..Opts::plain(2.0)
    };
    let exact: f64 = x
        .iter()
        .zip(&t)
        .map(|(&xi, &ti)| loss_grad(xi as f64, ti as f64, &o).0)
        .sum();
    let a = f.loss(&x, &t, Reduction::Sum).unwrap();
    let b = f.loss(&x, &t, Reduction::Sum).unwrap();
    assert_eq!(a, b);
    let rel = ((a as f64) - exact).abs() / exact;
    assert!(rel <= 1e-6, "relative error {rel:e}");
    let s = f
        .backend(Backend::Scalar)
        .loss(&x, &t, Reduction::Sum)
        .unwrap();
    assert!(((s as f64) - exact).abs() / exact <= 1e-6);
}

/// Gammas on both sides of the bound of the hard-target loop (2^20).
const LOOP_GAMMAS: [f32; 10] = [
    0.0,
    0.5,
    1.0,
    2.0,
    2.5,
    5.0,
    1e3,
    1_048_576.0,
    2_097_152.0,
    1e30,
];

/// Weights in each layout the loops read: per class for 24 classes (a periodic copy) and for
/// 336 (read in place, alpha too), and per row of 24, of 3 and of 1 element (a vector spans
/// at most two rows, several, or one row per lane).
struct Layouts {
    w24: Vec<f32>,
    w336: Vec<f32>,
    a336: Vec<f32>,
    sw: Vec<f32>,
    sw3: Vec<f32>,
    sw1: Vec<f32>,
}

impl Layouts {
    fn new(n: usize) -> Self {
        let w = |c: usize| -> Vec<f32> { (0..c).map(|j| 0.25 + (j % 5) as f32 * 0.5).collect() };
        Layouts {
            w24: w(24),
            w336: w(336),
            a336: (0..336).map(|j| (j % 5) as f32 * 0.25).collect(),
            sw: (0..n / 24).map(|r| 0.5 + (r % 3) as f32).collect(),
            sw3: (0..n / 3).map(|r| 0.5 + (r % 5) as f32).collect(),
            sw1: (0..n).map(|r| 0.25 + (r % 7) as f32).collect(),
        }
    }

    /// `f` alone and with each layout of weights.
    fn configs<'a>(&'a self, f: Focal<'a>) -> [(&'static str, Focal<'a>); 6] {
        [
            ("plain", f),
            ("periodic", f.class_weights(&self.w24).pos_weight(&self.w24)),
            ("per row", f.classes(24).sample_weights(&self.sw)),
            ("per row of 3", f.classes(3).sample_weights(&self.sw3)),
            ("per element", f.classes(1).sample_weights(&self.sw1)),
            (
                "direct",
                f.alpha_per_class(&self.a336).class_weights(&self.w336),
            ),
        ]
    }
}

#[test]
fn the_hard_target_loop_gives_the_bits_of_the_general_path() {
    // Full vectors of finite logits and hard targets take a loop of their own (for gamma up
    // to 2^20 and |x| below 2^64); a vector with a soft target takes the soft-target loop,
    // whose hard lanes must give the same bits; one element alone, or a vector with a logit
    // beyond 2^64 (`far`: 3e38 at every fourth element, in every vector of every backend),
    // takes the general path. Logits over every scale, gammas beyond both bounds, weights per
    // class (periodic and direct), per row and per element. (On the one-lane scalar backend
    // every vector is one element, which only ever takes one path: nothing to compare there.)
    let mut x = Vec::new();
    for e in -30..40 {
        let v = (2f32).powi(e) * 1.37;
        x.extend([v, -v]);
    }
    x.extend([
        0.0,
        -0.0,
        1e-45,
        -1e-45,
        1.8e19,
        -1.8e19,
        3e38,
        -3e38,
        f32::MAX,
        f32::MIN,
    ]);
    while x.len() % 672 != 0 {
        let k = x.len() as f32;
        x.push((k * 0.618).sin() * 9.0);
    }
    let t: Vec<f32> = (0..x.len()).map(|i| ((i / 2 + i / 7) % 2) as f32).collect();
    let mut mixed = t.clone();
    for v in mixed.iter_mut().step_by(37) {
        *v = 0.5;
    }
    let far: Vec<f32> = (0..x.len())
        .map(|i| if i % 4 == 0 { 3e38 } else { x[i] })
        .collect();
    let layouts = Layouts::new(x.len());
    for backend in Backend::available() {
        for gamma in LOOP_GAMMAS {
            for m in [Modulator::Linear, Modulator::Geometric] {
                let f = Focal::new(gamma).alpha(0.25).modulator(m).backend(backend);
                for (what, f) in layouts.configs(f) {
                    let (l, g) = elementwise(&f, &x, &t);
                    let (lm, gm) = elementwise(&f, &x, &mixed);
                    let (lf, gf) = elementwise(&f, &far, &t);
                    for i in 0..x.len() {
                        let ctx = format!("{backend:?} {m:?} {what} gamma {gamma} x {}", x[i]);
                        let got = (l[i].to_bits(), g[i].to_bits());
                        if i % 37 != 0 {
                            assert_eq!(got, (lm[i].to_bits(), gm[i].to_bits()), "{ctx}");
                        }
                        if i % 4 != 0 {
                            assert_eq!(got, (lf[i].to_bits(), gf[i].to_bits()), "{ctx}");
                        }
                        if what == "plain" {
                            let (l1, g1) = elementwise(&f, &x[i..i + 1], &t[i..i + 1]);
                            assert_eq!(got, (l1[0].to_bits(), g1[0].to_bits()), "{ctx}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn the_soft_target_loop_gives_the_bits_of_the_general_path() {
    // Full vectors of logits below 2^64 in magnitude and targets in [0, 1] take a loop of
    // their own; a vector with a larger logit takes the general path. `far` puts 3e38 at every
    // fourth element, so that every vector of every vector backend (4, 8 or 16 lanes) holds
    // one: the other elements must keep their bits. (Vacuous on the one-lane scalar backend,
    // whose elements each take one path only.) Soft targets with some 0 and 1 among them, with and
    // without label smoothing, the three modulators, gammas beyond the hard loop's bound,
    // weights per class (periodic and direct) and per row.
    let mut x = Vec::new();
    for e in -30..40 {
        let v = (2f32).powi(e) * 1.37;
        x.extend([v, -v, v * 0.71, -v * 0.71]);
    }
    x.extend([0.0, -0.0, 1e-45, -1e-45, 1.8e19, -1.8e19, 88.5, -88.5]);
    while x.len() % 672 != 0 {
        let k = x.len() as f32;
        x.push((k * 0.618).sin() * 9.0);
    }
    let far: Vec<f32> = (0..x.len())
        .map(|i| if i % 4 == 0 { 3e38 } else { x[i] })
        .collect();
    let t: Vec<f32> = (0..x.len())
        .map(|i| match i % 9 {
            0 => 0.0,
            1 => 1.0,
            2 => 1e-30,
            3 => 1.0 - f32::EPSILON / 2.0,
            _ => ((i as f32) * 0.377).fract(),
        })
        .collect();
    let layouts = Layouts::new(x.len());
    for backend in Backend::available() {
        for gamma in LOOP_GAMMAS {
            for m in [
                Modulator::Linear,
                Modulator::Geometric,
                Modulator::Separable,
            ] {
                for eps in [0.0, 0.1] {
                    let f = Focal::new(gamma)
                        .alpha(0.25)
                        .modulator(m)
                        .label_smoothing(eps)
                        .backend(backend);
                    for (what, f) in layouts.configs(f) {
                        let (l, g) = elementwise(&f, &x, &t);
                        let (lf, gf) = elementwise(&f, &far, &t);
                        for i in (0..x.len()).filter(|i| i % 4 != 0) {
                            let ctx = format!(
                                "{backend:?} {m:?} eps {eps} {what} gamma {gamma} x {} t {}",
                                x[i], t[i]
                            );
                            let got = (l[i].to_bits(), g[i].to_bits());
                            assert_eq!(got, (lf[i].to_bits(), gf[i].to_bits()), "{ctx}");
                        }
                    }
                }
            }
        }
    }
}
