//! The parallel entry points (feature `rayon`) give the sequential call's bits on pools of
//! 1, 2, 3 and 8 threads: the reduced loss, every gradient element, every per-element or
//! per-row value and every partial sum, for every reduction, both families, f32 and half
//! types; and the same errors, with an accumulated gradient left untouched.
//!
//! Not on wasm: its test runners have no threads (`.ci/wasm.sh`).
#![cfg(not(target_family = "wasm"))]

use focal_loss::half::bf16;
use focal_loss::{Error, Focal, Grad, Partial, Reduction, SoftmaxFocal};
use rayon::ThreadPoolBuilder;

const THREADS: [usize; 4] = [1, 2, 3, 8];

fn reductions() -> [Reduction; 5] {
    [
        Reduction::Sum,
        Reduction::Mean,
        Reduction::PerPositive,
        Reduction::WeightedMean,
        Reduction::Scale(0.37),
    ]
}

/// Runs `f` on a pool of each size.
fn on_pools(mut f: impl FnMut(usize) + Send) {
    for n in THREADS {
        let pool = ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        pool.install(|| f(n));
    }
}

/// A deterministic pseudo-random stream (splitmix64), as f32 in [-1, 1).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Sigmoid batches: (rows, classes), from one chunk to several, with ragged last chunks.
const SIGMOID_SHAPES: [(usize, usize); 4] = [(1000, 50), (3001, 50), (40_000, 7), (3, 70_000)];

struct SigmoidData {
    x: Vec<f32>,
    t: Vec<f32>,
    t8: Vec<u8>,
    w: Vec<f32>,
    s: Vec<f32>,
    classes: usize,
}

fn sigmoid_data(rows: usize, classes: usize) -> SigmoidData {
    let n = rows * classes;
    let x: Vec<f32> = noise(1, n).iter().map(|v| v * 12.0).collect();
    let u = noise(2, n);
    // Hard targets (one in 9 positive), and a soft one in 17.
    let t: Vec<f32> = u
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if i % 17 == 3 {
                0.3
            } else {
                (v > 0.78) as u8 as f32
            }
        })
        .collect();
    let t8 = u.iter().map(|&v| (v > 0.78) as u8).collect();
    let w = (0..classes).map(|c| 0.5 + (c % 5) as f32 * 0.25).collect();
    let s = noise(3, rows).iter().map(|v| 1.0 + 0.5 * v).collect();
    SigmoidData {
        x,
        t,
        t8,
        w,
        s,
        classes,
    }
}

#[test]
fn sigmoid_loss_and_grad_bits_on_every_pool() {
    for (rows, classes) in SIGMOID_SHAPES {
        let d = sigmoid_data(rows, classes);
        let f = Focal::new(2.0)
            .alpha(0.25)
            .class_weights(&d.w)
            .sample_weights(&d.s)
            .classes(d.classes);
        for r in reductions() {
            let mut g = vec![0f32; d.x.len()];
            let want = f.loss_and_grad(&d.x, &d.t, &mut g, r).unwrap();
            let mut acc = vec![0.5f32; d.x.len()];
            let want_acc = f.loss_and_grad_accumulate(&d.x, &d.t, &mut acc, r).unwrap();
            let want_loss = f.loss(&d.x, &d.t, r).unwrap();
            assert_eq!(want_loss.to_bits(), want.to_bits(), "{r:?}");
            on_pools(|n| {
                let mut pg = vec![f32::NAN; d.x.len()];
                let got = f.par_loss_and_grad(&d.x, &d.t, &mut pg, r).unwrap();
                assert_eq!(got.to_bits(), want.to_bits(), "{rows}x{classes} {r:?} {n}");
                assert!(
                    bits(&pg) == bits(&g),
                    "{rows}x{classes} {r:?} {n}: gradient"
                );
                let mut pacc = vec![0.5f32; d.x.len()];
                let got = f
                    .par_loss_and_grad_accumulate(&d.x, &d.t, &mut pacc, r)
                    .unwrap();
                assert_eq!(got.to_bits(), want_acc.to_bits());
                assert!(bits(&pacc) == bits(&acc), "{r:?} {n}: accumulated");
                let got = f.par_loss(&d.x, &d.t, r).unwrap();
                assert_eq!(got.to_bits(), want_loss.to_bits());
            });
        }
    }
}

#[test]
fn sigmoid_other_entry_points_and_types_on_every_pool() {
    for (rows, classes) in SIGMOID_SHAPES {
        let d = sigmoid_data(rows, classes);
        let f = Focal::new(2.5).classes(d.classes).label_smoothing(0.05);
        let mut el = vec![0f32; d.x.len()];
        f.loss_elementwise(&d.x, &d.t, &mut el).unwrap();
        let mut pg = vec![0f32; d.x.len()];
        let part = f.partial(&d.x, &d.t, Grad::Write(&mut pg, 0.125)).unwrap();
        // Half-precision logits and gradient, byte targets.
        let xb: Vec<bf16> = d.x.iter().map(|&v| bf16::from_f32(v)).collect();
        let h = Focal::new(2.0).classes(d.classes);
        let mut gb = vec![bf16::ZERO; d.x.len()];
        let lb = h
            .loss_and_grad(&xb, &d.t8, &mut gb, Reduction::PerPositive)
            .unwrap();
        on_pools(|n| {
            let mut e = vec![0f32; d.x.len()];
            f.par_loss_elementwise(&d.x, &d.t, &mut e).unwrap();
            assert!(bits(&e) == bits(&el), "elementwise {n}");
            let mut g = vec![0f32; d.x.len()];
            let p = f
                .par_partial(&d.x, &d.t, Grad::Write(&mut g, 0.125))
                .unwrap();
            assert_eq!(p.to_parts(), part.to_parts(), "partial {n}");
            assert!(bits(&g) == bits(&pg), "partial gradient {n}");
            let mut g = vec![bf16::ZERO; d.x.len()];
            let l = h
                .par_loss_and_grad(&xb, &d.t8, &mut g, Reduction::PerPositive)
                .unwrap();
            assert_eq!(l.to_bits(), lb.to_bits());
            assert!(g == gb, "bf16 gradient {n}");
        });
    }
}

#[test]
fn sigmoid_errors_as_the_sequential_call() {
    let d = sigmoid_data(3001, 50);
    let f = Focal::new(2.0).classes(50);
    // Two bad elements in different chunks: the first in index order is reported.
    let mut x = d.x.clone();
    x[140_000] = f32::NAN;
    x[70_000] = f32::NAN;
    let mut t = d.t.clone();
    t[100_000] = 1.5;
    let before = vec![0.25f32; x.len()];
    on_pools(|_| {
        let mut g = before.clone();
        let e = f.par_loss_and_grad_accumulate(&x, &d.t, &mut g, Reduction::Mean);
        assert_eq!(
            e,
            Err(Error::NanLogit {
                index: 70_000,
                row: 1400,
                class: 0
            })
        );
        assert!(g == before, "accumulate wrote on error");
        let e = f.par_loss_and_grad_accumulate(&d.x, &t, &mut g, Reduction::Sum);
        assert!(matches!(
            e,
            Err(Error::TargetOutOfRange {
                index: 100_000,
                row: 2000,
                class: 0,
                ..
            })
        ));
        assert!(g == before, "accumulate wrote on error");
        let mut g = before.clone();
        let e = f.par_loss_and_grad(&x, &d.t, &mut g, Reduction::PerPositive);
        assert_eq!(
            e,
            Err(Error::NanLogit {
                index: 70_000,
                row: 1400,
                class: 0
            })
        );
        assert_eq!(
            f.par_loss(&d.x, &t, Reduction::Sum),
            f.loss(&d.x, &t, Reduction::Sum)
        );
        assert_eq!(
            f.par_loss(&x[..10], &d.t, Reduction::Sum),
            f.loss(&x[..10], &d.t, Reduction::Sum)
        );
    });
}

#[test]
fn softmax_bits_on_every_pool() {
    // (images, classes, positions): class-last batches (S = 1) cut at rows, [N, C, S] ones at
    // images, and images of more than 2^18 logits into windows of positions (two to six per
    // image here, the last one shorter; rows of two classes take a kernel of their own).
    let shapes = [
        (20_000, 19, 1),
        (3, 50, 1),
        (5, 4, 8192),
        (7, 3, 30_000),
        (1, 19, 20_000),
        (2, 2, 140_000),
        (1, 50, 30_000),
    ];
    for (n, c, s) in shapes {
        let rows = n * s;
        let x: Vec<f32> = noise(5, rows * c).iter().map(|v| v * 8.0).collect();
        let y: Vec<i64> = noise(6, rows)
            .iter()
            .map(|v| {
                let k = ((v + 1.0) * 0.5 * (c + 1) as f32) as i64;
                if k >= c as i64 { -100 } else { k }
            })
            .collect();
        let w: Vec<f32> = (0..c).map(|k| 1.0 + k as f32 * 0.1).collect();
        let sw: Vec<f32> = noise(7, rows).iter().map(|v| 1.0 + 0.5 * v).collect();
        // Distributions, for the dense path.
        let mut dist = vec![0f32; rows * c];
        for r in 0..rows {
            let (img, p) = (r / s, r % s);
            for k in 0..c {
                dist[(img * c + k) * s + p] = if k == r % c {
                    0.7
                } else {
                    0.3 / (c - 1) as f32
                };
            }
        }
        let f = SoftmaxFocal::new(2.0)
            .alpha(0.25)
            .class_weights(&w)
            .sample_weights(&sw)
            .ignore_index(-100)
            .classes(c)
            .spatial(s);
        let fd = SoftmaxFocal::new(1.5)
            .classes(c)
            .spatial(s)
            .label_smoothing(0.1);
        for r in reductions() {
            let mut g = vec![0f32; x.len()];
            let want = f.loss_and_grad(&x, &y, &mut g, r).unwrap();
            let mut gd = vec![0f32; x.len()];
            let want_d = fd.loss_and_grad(&x, &dist, &mut gd, r).unwrap();
            let mut acc = vec![-0.5f32; x.len()];
            let want_acc = f.loss_and_grad_accumulate(&x, &y, &mut acc, r).unwrap();
            let want_loss = f.loss(&x, &y, r).unwrap();
            let xh: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
            let mut gh = vec![bf16::ZERO; x.len()];
            let want_h = f.loss_and_grad(&xh, &y, &mut gh, r).unwrap();
            on_pools(|t| {
                let what = format!("{n}x{c}x{s} {r:?} on {t}");
                let mut pg = vec![f32::NAN; x.len()];
                let got = f.par_loss_and_grad(&x, &y, &mut pg, r).unwrap();
                assert_eq!(got.to_bits(), want.to_bits(), "{what}");
                assert!(bits(&pg) == bits(&g), "{what}: gradient");
                let mut pg = vec![f32::NAN; x.len()];
                let got = fd.par_loss_and_grad(&x, &dist, &mut pg, r).unwrap();
                assert_eq!(got.to_bits(), want_d.to_bits(), "{what}: distributions");
                assert!(bits(&pg) == bits(&gd), "{what}: distributions' gradient");
                let mut pacc = vec![-0.5f32; x.len()];
                let got = f
                    .par_loss_and_grad_accumulate(&x, &y, &mut pacc, r)
                    .unwrap();
                assert_eq!(got.to_bits(), want_acc.to_bits(), "{what}");
                assert!(bits(&pacc) == bits(&acc), "{what}: accumulated");
                assert_eq!(
                    f.par_loss(&x, &y, r).unwrap().to_bits(),
                    want_loss.to_bits()
                );
                let mut pgh = vec![bf16::NAN; x.len()];
                let got = f.par_loss_and_grad(&xh, &y, &mut pgh, r).unwrap();
                assert_eq!(got.to_bits(), want_h.to_bits(), "{what}: bf16");
                assert!(pgh.iter().zip(&gh).all(|(a, b)| a.to_bits() == b.to_bits()));
            });
        }
        let mut per_row = vec![0f32; rows];
        f.loss_per_row(&x, &y, &mut per_row).unwrap();
        let part: Partial = f.partial(&x, &y, Grad::Skip).unwrap();
        on_pools(|t| {
            let mut o = vec![f32::NAN; rows];
            f.par_loss_per_row(&x, &y, &mut o).unwrap();
            assert!(bits(&o) == bits(&per_row), "per row {n}x{c}x{s} on {t}");
            let p = f.par_partial(&x, &y, Grad::Skip).unwrap();
            assert_eq!(p.to_parts(), part.to_parts());
        });
    }
}

#[test]
fn softmax_errors_as_the_sequential_call() {
    let (rows, c) = (20_000, 10);
    let x: Vec<f32> = noise(8, rows * c);
    let y: Vec<u32> = (0..rows as u32).map(|r| r % 10).collect();
    let mut bad_x = x.clone();
    bad_x[150_000] = f32::NAN;
    bad_x[90_001] = f32::NAN;
    let mut bad_y = y.clone();
    bad_y[17_000] = 10;
    bad_y[9_000] = 11;
    let f = SoftmaxFocal::new(2.0);
    let before = vec![1.0f32; x.len()];
    on_pools(|_| {
        let mut g = before.clone();
        let e = f.par_loss_and_grad_accumulate(&bad_x, &y, &mut g, Reduction::Mean);
        assert_eq!(
            e,
            Err(Error::NanLogit {
                index: 90_001,
                row: 9000,
                class: 1
            })
        );
        assert!(g == before, "accumulate wrote on error");
        let e = f.par_loss_and_grad_accumulate(&x, &bad_y, &mut g, Reduction::Mean);
        assert_eq!(
            e,
            Err(Error::LabelOutOfRange {
                row: 9_000,
                label: 11,
                classes: 10
            })
        );
        assert!(g == before, "accumulate wrote on error");
        let mut g = before.clone();
        assert_eq!(
            f.par_loss_and_grad(&bad_x, &y, &mut g, Reduction::Sum),
            Err(Error::NanLogit {
                index: 90_001,
                row: 9000,
                class: 1
            })
        );
    });
}

#[test]
fn partial_sums_fold_in_chunk_order() {
    // Targets with spread exponents, so that their f64 sum (and the loss sum's low word)
    // depend on the order of the chunks' additions: a fold in another order than the
    // sequential call's fails here.
    let (rows, classes) = (9_000, 64);
    let n = rows * classes;
    let x: Vec<f32> = noise(9, n).iter().map(|v| v * 30.0).collect();
    let t: Vec<f32> = noise(10, n).iter().map(|v| v.abs().powi(9)).collect();
    let f = Focal::new(2.0).classes(classes);
    let want = f.partial(&x, &t, Grad::Skip).unwrap().to_parts();
    on_pools(|k| {
        let got = f.par_partial(&x, &t, Grad::Skip).unwrap().to_parts();
        assert_eq!(got, want, "{k} threads");
    });
}
