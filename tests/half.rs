//! Half-precision data (`bf16`, `f16` logits, targets, gradients and losses): every entry
//! point gives the `f32` computation on the exactly widened input, each output rounded once
//! (`bf16::from_f32` / `f16::from_f32` of the `f32` result), bit for bit, on every backend,
//! across the conversion blocks, for every output kind.

use focal_loss::half::{bf16, f16};
use focal_loss::{Backend, Float, Focal, Grad, Modulator, Reduction};

mod common;
use common::softmax::Rng;

/// Bits of any float output, for exact comparison.
fn bits<G: Float>(v: &[G]) -> Vec<u32> {
    v.iter().map(|g| g.to_f32().to_bits()).collect()
}

/// `v` rounded to `G` and back: the values a half-precision caller holds.
fn round<G: Float>(v: &[f32]) -> Vec<G> {
    v.iter().map(|&x| G::from_f32(x)).collect()
}

fn widen<G: Float>(v: &[G]) -> Vec<f32> {
    v.iter().map(|g| g.to_f32()).collect()
}

/// Logits across the scales that matter (and the f16 range: at most 65504).
fn logits(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| match i % 7 {
            0 => (rng.range(-1.0, 1.0) as f32) * 0.3,
            1 => (rng.range(-1.0, 1.0) as f32) * 4.0,
            2 => (rng.range(-1.0, 1.0) as f32) * 30.0,
            3 => ((rng.unit() as f32) - 0.5) * 2e-3,
            4 => (rng.range(-1.0, 1.0) as f32) * 200.0,
            _ => (rng.range(-1.0, 1.0) as f32) * 2.0,
        })
        .collect()
}

/// The same call on `X` logits, `T` targets and `G` outputs, and on `f32` ones; the results
/// compared bit for bit.
fn check<X: Float, T: focal_loss::Target, G: Float>(
    f: &Focal<'_>,
    x32: &[f32],
    t: &[T],
    what: &str,
) {
    let x: Vec<X> = round(x32);
    let xw = widen(&x);
    let n = x.len();
    for r in [
        Reduction::Sum,
        Reduction::Mean,
        Reduction::PerPositive,
        Reduction::Scale(0.37),
    ] {
        // Loss alone.
        assert_eq!(
            f.loss(&x, t, r).map(f32::to_bits),
            f.loss(&xw, t, r).map(f32::to_bits),
            "{what} loss {r:?}"
        );
        // Loss and gradient.
        let mut g = vec![G::from_f32(0.0); n];
        let mut g32 = vec![0f32; n];
        let a = f.loss_and_grad(&x, t, &mut g, r).map(f32::to_bits);
        let b = f.loss_and_grad(&xw, t, &mut g32, r).map(f32::to_bits);
        assert_eq!(a, b, "{what} loss_and_grad {r:?}");
        assert_eq!(bits(&g), bits(&round::<G>(&g32)), "{what} grad {r:?}");
        // Accumulated: the f32 sum of the widened old value and the new term, rounded once.
        let old: Vec<G> = round(&logits(&mut Rng(n as u64), n));
        let mut acc = old.clone();
        let mut acc32 = widen(&old);
        let a = f
            .loss_and_grad_accumulate(&x, t, &mut acc, r)
            .map(f32::to_bits);
        let b = f
            .loss_and_grad_accumulate(&xw, t, &mut acc32, r)
            .map(f32::to_bits);
        assert_eq!(a, b, "{what} accumulate {r:?}");
        assert_eq!(
            bits(&acc),
            bits(&round::<G>(&acc32)),
            "{what} accumulated {r:?}"
        );
    }
    // Per-element losses.
    let mut l = vec![G::from_f32(0.0); n];
    let mut l32 = vec![0f32; n];
    f.loss_elementwise(&x, t, &mut l).unwrap();
    f.loss_elementwise(&xw, t, &mut l32).unwrap();
    assert_eq!(bits(&l), bits(&round::<G>(&l32)), "{what} elementwise");
    // A partial writes the gradient in the logits' type.
    let mut gp = vec![X::from_f32(0.0); n];
    let mut gp32 = vec![0f32; n];
    let p = f.partial(&x, t, Grad::Write(&mut gp, 0.5)).unwrap();
    let q = f.partial(&xw, t, Grad::Write(&mut gp32, 0.5)).unwrap();
    assert_eq!(p, q, "{what} partial");
    assert_eq!(bits(&gp), bits(&round::<X>(&gp32)), "{what} partial grad");
}

fn all_types<T: focal_loss::Target>(f: &Focal<'_>, x: &[f32], t: &[T], what: &str) {
    check::<bf16, T, bf16>(f, x, t, &format!("{what} bf16->bf16"));
    check::<bf16, T, f32>(f, x, t, &format!("{what} bf16->f32"));
    check::<f16, T, f16>(f, x, t, &format!("{what} f16->f16"));
    check::<f16, T, f32>(f, x, t, &format!("{what} f16->f32"));
    check::<f32, T, bf16>(f, x, t, &format!("{what} f32->bf16"));
    check::<f32, T, f16>(f, x, t, &format!("{what} f32->f16"));
}

#[test]
fn sigmoid_half_precision_is_the_f32_computation_rounded_once() {
    let mut rng = Rng(7);
    // Sizes around the conversion block (512) and the vector widths; a few class counts.
    for &(n, c) in &[
        (1, 1),
        (15, 3),
        (33, 11),
        (512, 8),
        (1030, 10),
        (2048 + 17, 1),
        (7 * 937, 7),
    ] {
        let x = logits(&mut rng, n);
        let hard: Vec<u8> = (0..n).map(|_| (rng.unit() < 0.2) as u8).collect();
        let soft: Vec<f32> = (0..n).map(|_| rng.unit() as f32).collect();
        let cw: Vec<f32> = (0..c).map(|_| 0.5 + (rng.unit() as f32)).collect();
        let sw: Vec<f32> = (0..n / c).map(|_| (rng.unit() as f32) * 2.0).collect();
        for backend in Backend::available() {
            let base = Focal::new(2.0).alpha(0.25).classes(c).backend(backend);
            let what = format!("n={n} C={c} {backend:?}");
            all_types(&base, &x, &hard, &format!("{what} u8"));
            all_types(&base, &x, &soft, &format!("{what} f32 soft"));
            let sb: Vec<bf16> = round(&soft);
            let sf: Vec<f16> = round(&soft);
            all_types(&base, &x, &sb, &format!("{what} bf16 targets"));
            all_types(&base, &x, &sf, &format!("{what} f16 targets"));
            let weighted = base
                .class_weights(&cw)
                .sample_weights(&sw)
                .label_smoothing(0.1)
                .modulator(Modulator::Geometric);
            all_types(&weighted, &x, &hard, &format!("{what} weighted"));
            // Runs of hard targets broken by soft ones and by huge logits: the fast loop on
            // the caller's slices stops and resumes around blocks of the general path.
            let mix: Vec<f32> = (0..n)
                .map(|i| match i % 97 {
                    5 | 6 => 0.3,
                    _ => hard[i] as f32,
                })
                .collect();
            let mut xm = x.clone();
            for v in xm.iter_mut().skip(301).step_by(1013) {
                *v = -3.0e30;
            }
            all_types(&base, &xm, &mix, &format!("{what} mixed"));
            all_types(
                &base,
                &xm,
                &round::<bf16>(&mix),
                &format!("{what} mixed bf16"),
            );
            let g05 = Focal::new(0.5).classes(c).backend(backend);
            check::<bf16, u8, bf16>(&g05, &x, &hard, &format!("{what} gamma 0.5"));
        }
    }
}

#[test]
fn half_precision_targets_are_their_f32_values() {
    let x = [0.5f32, -1.0, 3.0, 0.25];
    let t32 = [1.0f32, 0.0, 0.5, 0.75];
    let f = Focal::new(2.0);
    let want = f.loss(&x, &t32, Reduction::Sum).unwrap();
    assert_eq!(
        f.loss(&x, &round::<bf16>(&t32), Reduction::Sum).unwrap(),
        want
    );
    assert_eq!(
        f.loss(&x, &round::<f16>(&t32), Reduction::Sum).unwrap(),
        want
    );
}

#[test]
fn half_precision_errors_name_the_element() {
    let f = Focal::new(2.0);
    let mut x = vec![bf16::from_f32(0.5); 40];
    x[33] = bf16::NAN;
    let t = vec![0u8; 40];
    let mut g = vec![bf16::from_f32(1.0); 40];
    assert_eq!(
        f.loss(&x, &t, Reduction::Sum),
        Err(focal_loss::Error::NanLogit {
            index: 33,
            row: 0,
            class: 33
        })
    );
    // An accumulate call that fails writes nothing.
    assert!(
        f.loss_and_grad_accumulate(&x, &t, &mut g, Reduction::Sum)
            .is_err()
    );
    assert!(g.iter().all(|&v| v == bf16::from_f32(1.0)));
    let mut t = vec![f16::from_f32(0.0); 40];
    t[5] = f16::from_f32(1.5);
    let x = vec![f16::from_f32(0.5); 40];
    assert_eq!(
        f.loss(&x, &t, Reduction::Sum),
        Err(focal_loss::Error::TargetOutOfRange {
            index: 5,
            row: 0,
            class: 5,
            value: 1.5
        })
    );
    let mut g = vec![f16::ZERO; 39];
    assert!(matches!(
        f.loss_and_grad(&x, &t, &mut g, Reduction::Sum),
        Err(focal_loss::Error::LengthMismatch { what: "grad", .. })
    ));
}

#[test]
fn f16_gradients_overflow_to_inf_and_underflow_to_subnormals() {
    // A gradient beyond 65520 is inf in f16 (documented), and a tiny one keeps its f16
    // subnormal; bf16 has the f32 range.
    let x = [f16::from_f32(3.0), f16::from_f32(-12.0)];
    let t = [0u8, 0];
    let f = Focal::new(0.0);
    let mut g = [f16::ZERO; 2];
    f.loss_and_grad(&x, &t, &mut g, Reduction::Scale(1e5))
        .unwrap();
    assert_eq!(g[0], f16::INFINITY);
    let mut g32 = [0f32; 2];
    f.loss_and_grad(&x, &t, &mut g32, Reduction::Scale(1e-3))
        .unwrap();
    f.loss_and_grad(&x, &t, &mut g, Reduction::Scale(1e-3))
        .unwrap();
    assert!(g32[1] < 6.1e-5 && g32[1] > 0.0);
    assert_eq!(g[1], f16::from_f32(g32[1]));
    assert!(!g[1].is_normal());
}

#[test]
fn bf16_gradients_of_subnormal_f32_values_keep_them() {
    // Gradients below f32::MIN_POSITIVE (logits near -88 with negative targets) are bf16
    // subnormals, rounded as `bf16::from_f32` rounds them: the AVX-512 BF16
    // conversion reads such lanes as 0, so a vector holding one takes the integer rounding.
    // Whole vectors of them, vectors with one, and none, on every backend.
    let n = 4096;
    let x: Vec<f32> = (0..n)
        .map(|i| match i % 64 {
            0..16 => -86.0 - (i % 5) as f32,
            16 => -89.5,
            _ => ((i % 13) as f32 - 6.0) * 0.7,
        })
        .collect();
    let t: Vec<u8> = (0..n).map(|i| (i % 64 >= 17 && i % 5 == 0) as u8).collect();
    let xh = round::<bf16>(&x);
    let xw = widen(&xh);
    for backend in Backend::available() {
        // (gamma 0: the gradient of a negative is (1 - alpha) p, p = e^x.)
        let f = Focal::new(0.0).alpha(0.25).backend(backend);
        let mut g32 = vec![0f32; n];
        f.loss_and_grad(&xw, &t, &mut g32, Reduction::Scale(0.5))
            .unwrap();
        // (Those that stay non-zero in bf16: from 2^-133.)
        let subnormal = g32
            .iter()
            .filter(|v| !v.is_normal() && v.abs() >= f32::from_bits(0x0000_8000))
            .count();
        assert!(
            subnormal >= n / 8,
            "{backend:?}: {subnormal} subnormal gradients"
        );
        let mut g = vec![bf16::ZERO; n];
        f.loss_and_grad(&xh, &t, &mut g, Reduction::Scale(0.5))
            .unwrap();
        let want = round::<bf16>(&g32);
        let first = |g: &[bf16]| {
            g.iter()
                .zip(&want)
                .position(|(a, b)| a.to_bits() != b.to_bits())
        };
        assert_eq!(
            first(&g),
            None,
            "{backend:?}: the first gradient that differs"
        );
        let mut g = vec![bf16::ZERO; n];
        f.loss_and_grad(&xw, &t, &mut g, Reduction::Scale(0.5))
            .unwrap();
        assert_eq!(
            first(&g),
            None,
            "{backend:?}, f32 logits: the first that differs"
        );
    }
}

use focal_loss::{Label, SoftmaxFocal};

/// The softmax family's [`check`]: loss, gradient (written and accumulated), per-row losses
/// and a partial, on `X` logits and `G` outputs against the `f32` call on widened logits.
fn check_softmax<X: Float, T: Label, G: Float>(
    f: &SoftmaxFocal<'_>,
    x32: &[f32],
    y: &[T],
    rows: usize,
    what: &str,
) {
    let x: Vec<X> = round(x32);
    let xw = widen(&x);
    let n = x.len();
    for r in [Reduction::Sum, Reduction::Mean, Reduction::WeightedMean] {
        assert_eq!(
            f.loss(&x, y, r).map(f32::to_bits),
            f.loss(&xw, y, r).map(f32::to_bits),
            "{what} loss {r:?}"
        );
        let mut g = vec![G::from_f32(0.0); n];
        let mut g32 = vec![0f32; n];
        let a = f.loss_and_grad(&x, y, &mut g, r).map(f32::to_bits);
        let b = f.loss_and_grad(&xw, y, &mut g32, r).map(f32::to_bits);
        assert_eq!(a, b, "{what} loss_and_grad {r:?}");
        assert_eq!(bits(&g), bits(&round::<G>(&g32)), "{what} grad {r:?}");
        let old: Vec<G> = round(&logits(&mut Rng(n as u64 + 3), n));
        let mut acc = old.clone();
        let mut acc32 = widen(&old);
        let a = f
            .loss_and_grad_accumulate(&x, y, &mut acc, r)
            .map(f32::to_bits);
        let b = f
            .loss_and_grad_accumulate(&xw, y, &mut acc32, r)
            .map(f32::to_bits);
        assert_eq!(a, b, "{what} accumulate {r:?}");
        assert_eq!(
            bits(&acc),
            bits(&round::<G>(&acc32)),
            "{what} accumulated {r:?}"
        );
    }
    let mut l = vec![G::from_f32(0.0); rows];
    let mut l32 = vec![0f32; rows];
    f.loss_per_row(&x, y, &mut l).unwrap();
    f.loss_per_row(&xw, y, &mut l32).unwrap();
    assert_eq!(bits(&l), bits(&round::<G>(&l32)), "{what} per row");
    let mut gp = vec![X::from_f32(0.0); n];
    let mut gp32 = vec![0f32; n];
    let p = f.partial(&x, y, Grad::Write(&mut gp, 0.25)).unwrap();
    let q = f.partial(&xw, y, Grad::Write(&mut gp32, 0.25)).unwrap();
    assert_eq!(p, q, "{what} partial");
    assert_eq!(bits(&gp), bits(&round::<X>(&gp32)), "{what} partial grad");
}

fn softmax_types<T: Label>(f: &SoftmaxFocal<'_>, x: &[f32], y: &[T], rows: usize, what: &str) {
    check_softmax::<bf16, T, bf16>(f, x, y, rows, &format!("{what} bf16->bf16"));
    check_softmax::<bf16, T, f32>(f, x, y, rows, &format!("{what} bf16->f32"));
    check_softmax::<f16, T, f16>(f, x, y, rows, &format!("{what} f16->f16"));
    check_softmax::<f32, T, bf16>(f, x, y, rows, &format!("{what} f32->bf16"));
}

#[test]
fn softmax_half_precision_is_the_f32_computation_rounded_once() {
    let mut rng = Rng(11);
    // Class-last (transposed small C, row kernel above 16 classes) and [N, C, S].
    for &(c, sp, n_img) in &[(2, 1, 37), (5, 1, 40), (16, 1, 33), (17, 1, 20), (50, 1, 9)]
        .iter()
        .chain(&[(300, 1, 3), (3, 7, 5), (19, 40, 2), (40, 3, 2)])
        .copied()
        .collect::<Vec<_>>()
    {
        let rows = n_img * sp;
        let n = rows * c;
        let x = logits(&mut rng, n);
        let y: Vec<i64> = (0..rows)
            .map(|_| match rng.below(6) {
                0 => -100,
                _ => rng.below(c) as i64,
            })
            .collect();
        let w: Vec<f32> = (0..c).map(|_| 0.25 + rng.unit() as f32).collect();
        let s: Vec<f32> = (0..rows).map(|_| rng.unit() as f32 * 2.0).collect();
        // Distributions, laid out like the logits.
        let mut d = vec![0f32; n];
        for r in 0..rows {
            let (img, p) = (r / sp, r % sp);
            for k in 0..c {
                d[(img * c + k) * sp + p] = (rng.unit() as f32) / c as f32;
            }
        }
        for backend in Backend::available() {
            let what = format!("C={c} S={sp} {backend:?}");
            let f = SoftmaxFocal::new(2.0)
                .classes(c)
                .spatial(sp)
                .ignore_index(-100)
                .backend(backend);
            softmax_types(&f, &x, &y, rows, &format!("{what} index"));
            let fw = f.class_weights(&w).sample_weights(&s).alpha(0.5);
            softmax_types(&fw, &x, &y, rows, &format!("{what} weighted"));
            softmax_types(
                &f.label_smoothing(0.1),
                &x,
                &y,
                rows,
                &format!("{what} smooth"),
            );
            let f0 = SoftmaxFocal::new(0.0)
                .classes(c)
                .spatial(sp)
                .backend(backend);
            softmax_types(&f0, &x, &d, rows, &format!("{what} distributions"));
        }
    }
}

#[test]
fn softmax_half_precision_ignored_rows_are_not_read() {
    // An ignored row's logits may be NaN padding, in any type.
    let mut x = vec![bf16::from_f32(0.5); 8];
    x[4..].fill(bf16::NAN);
    let mut g = vec![bf16::from_f32(7.0); 8];
    let f = SoftmaxFocal::new(2.0).classes(4).ignore_index(-1);
    let l = f
        .loss_and_grad(&x, &[2i64, -1], &mut g, Reduction::Mean)
        .unwrap();
    assert!(l.is_finite());
    assert!(g[4..].iter().all(|&v| v == bf16::ZERO));
    assert_eq!(
        f.loss(&x, &[2i64, 1], Reduction::Mean),
        Err(focal_loss::Error::NanLogit {
            index: 4,
            row: 1,
            class: 0
        })
    );
}

#[test]
fn softmax_half_precision_large_batches_stage_the_exponentials() {
    // From 16384 logits on, a half-precision gradient's pass keeps `e` on the stack (row
    // kernel and [N, C, S]); the bits must not change.
    let mut rng = Rng(5);
    for &(c, sp, n_img) in &[(50, 1, 400), (1000, 1, 20), (19, 1000, 1), (40, 300, 2)] {
        let rows = n_img * sp;
        let x = logits(&mut rng, rows * c);
        let y: Vec<u32> = (0..rows).map(|_| rng.below(c) as u32).collect();
        for backend in Backend::available() {
            let f = SoftmaxFocal::new(2.0)
                .classes(c)
                .spatial(sp)
                .backend(backend);
            let what = format!("C={c} S={sp} {backend:?}");
            softmax_types(&f, &x, &y, rows, &what);
        }
    }
}

/// Every entry point on `T` distributions against the same call on their `f32` values, bit
/// for bit (logits `f32` and `bf16`, gradient in the logits' type).
fn same_as_widened_labels<T: Label + Float>(
    f: &SoftmaxFocal<'_>,
    x32: &[f32],
    d: &[T],
    rows: usize,
    what: &str,
) {
    let dw = widen(d);
    fn on<X: Float, T: Label>(
        f: &SoftmaxFocal<'_>,
        x: &[X],
        d: &[T],
        dw: &[f32],
        rows: usize,
        what: &str,
    ) {
        let n = x.len();
        for r in [
            Reduction::Sum,
            Reduction::Mean,
            Reduction::PerPositive,
            Reduction::WeightedMean,
        ] {
            let bits32 = |v: Result<f32, focal_loss::Error>| v.map(f32::to_bits);
            assert_eq!(
                bits32(f.loss(x, d, r)),
                bits32(f.loss(x, dw, r)),
                "{what} {r:?}"
            );
            let (mut g, mut gw) = (vec![X::from_f32(0.0); n], vec![X::from_f32(0.0); n]);
            assert_eq!(
                bits32(f.loss_and_grad(x, d, &mut g, r)),
                bits32(f.loss_and_grad(x, dw, &mut gw, r)),
                "{what} loss_and_grad {r:?}"
            );
            assert_eq!(bits(&g), bits(&gw), "{what} grad {r:?}");
            assert_eq!(
                bits32(f.loss_and_grad_accumulate(x, d, &mut g, r)),
                bits32(f.loss_and_grad_accumulate(x, dw, &mut gw, r)),
                "{what} accumulate {r:?}"
            );
            assert_eq!(bits(&g), bits(&gw), "{what} accumulated {r:?}");
        }
        let (mut l, mut lw) = (vec![0f32; rows], vec![0f32; rows]);
        f.loss_per_row(x, d, &mut l).unwrap();
        f.loss_per_row(x, dw, &mut lw).unwrap();
        assert_eq!(bits(&l), bits(&lw), "{what} per row");
        let (mut g, mut gw) = (vec![X::from_f32(0.0); n], vec![X::from_f32(0.0); n]);
        let p = f.partial(x, d, Grad::Write(&mut g, 0.25)).unwrap();
        let q = f.partial(x, dw, Grad::Write(&mut gw, 0.25)).unwrap();
        assert_eq!(p, q, "{what} partial");
        assert_eq!(bits(&g), bits(&gw), "{what} partial grad");
        assert_eq!(f.positives(d), f.positives(dw), "{what} positives");
    }
    on::<f32, T>(f, x32, d, &dw, rows, &format!("{what} f32 logits"));
    let xb: Vec<bf16> = round(x32);
    on::<bf16, T>(f, &xb, d, &dw, rows, &format!("{what} bf16 logits"));
}

#[test]
fn softmax_half_precision_distributions_are_their_f32_values() {
    let mut rng = Rng(29);
    // Transposed small C, the row kernel, and [N, C, S].
    for (c, sp, n_img) in [
        (2, 1, 37),
        (5, 1, 40),
        (17, 1, 20),
        (50, 1, 9),
        (3, 7, 5),
        (19, 40, 2),
    ] {
        let rows = n_img * sp;
        let n = rows * c;
        let x = logits(&mut rng, n);
        let mut d = vec![0f32; n];
        for r in 0..rows {
            let (img, p) = (r / sp, r % sp);
            for k in 0..c {
                d[(img * c + k) * sp + p] = match rng.below(4) {
                    0 => 0.0,
                    1 => 1.0,
                    _ => rng.unit() as f32 / c as f32,
                };
            }
        }
        let w: Vec<f32> = (0..c).map(|_| 0.25 + rng.unit() as f32).collect();
        let s: Vec<f32> = (0..rows).map(|_| rng.unit() as f32 * 2.0).collect();
        for backend in Backend::available() {
            let f = SoftmaxFocal::new(2.5)
                .classes(c)
                .spatial(sp)
                .backend(backend);
            let fw = f.class_weights(&w).sample_weights(&s).label_smoothing(0.1);
            for (f, kind) in [(f, "plain"), (fw, "weighted")] {
                let what = format!("C={c} S={sp} {backend:?} {kind}");
                same_as_widened_labels::<bf16>(&f, &x, &round(&d), rows, &format!("{what} bf16"));
                same_as_widened_labels::<f16>(&f, &x, &round(&d), rows, &format!("{what} f16"));
            }
        }
    }
}

#[test]
fn softmax_half_precision_distributions_are_checked() {
    let x = [0.5f32, -1.0, 2.0, 0.0, 1.0, 3.0];
    let f = SoftmaxFocal::new(2.0).classes(3);
    let mut d = [bf16::from_f32(0.5); 6];
    d[4] = bf16::from_f32(1.5);
    let want = focal_loss::Error::TargetOutOfRange {
        index: 4,
        row: 1,
        class: 1,
        value: 1.5,
    };
    assert_eq!(f.loss(&x, &d, Reduction::Sum), Err(want));
    let mut g = [7.0f32; 6];
    assert_eq!(
        f.loss_and_grad_accumulate(&x, &d, &mut g, Reduction::Mean),
        Err(want)
    );
    assert_eq!(g, [7.0; 6], "an accumulate call that errs writes nothing");
    assert_eq!(f.positives(&d), Err(want));
    // `positives` without a class count locates the index in one image of S positions.
    let mut p = [f16::from_f32(0.25); 6];
    p[5] = f16::from_f32(2.0);
    assert_eq!(
        SoftmaxFocal::new(2.0).spatial(2).positives(&p),
        Err(focal_loss::Error::TargetOutOfRange {
            index: 5,
            row: 1,
            class: 2,
            value: 2.0
        })
    );
    let mut h = [f16::from_f32(0.25); 6];
    h[2] = f16::NAN;
    assert!(matches!(
        f.spatial(2).loss(&x, &h, Reduction::Sum),
        Err(focal_loss::Error::TargetOutOfRange {
            index: 2,
            row: 0,
            class: 1,
            ..
        })
    ));
}
