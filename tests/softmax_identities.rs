//! Identities of the softmax family that must hold bit for bit (or, for a permutation of the
//! classes, within a few ULP), on every backend.

mod common;

use common::softmax::Rng;
use focal_loss::{Backend, Grad, Partial, Reduction, SoftmaxFocal};

fn logits(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| match i % 11 {
            3 => 30.0 + rng.range(0.0, 1.0) as f32,
            7 => -60.0,
            9 => f32::NEG_INFINITY,
            _ => rng.range(-4.0, 4.0) as f32,
        })
        .collect()
}

/// Class `7 r mod C` for row `r`, and the ignore index -100 on every `period`-th row from row 4.
fn labels_ignoring(rows: usize, c: usize, period: usize) -> Vec<i64> {
    (0..rows)
        .map(|r| {
            if r % period == 4 {
                -100
            } else {
                ((r * 7) % c) as i64
            }
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Class-last rows `[rows, C]` as `[N, C, S]` (`rows = N S`): row `r = n S + p`, class `k`
/// goes to index `(n C + k) S + p`.
fn to_nchw(v: &[f32], c: usize, sp: usize) -> Vec<f32> {
    let mut o = vec![0f32; v.len()];
    for r in 0..v.len() / c {
        let (i, p) = (r / sp, r % sp);
        for k in 0..c {
            o[(i * c + k) * sp + p] = v[r * c + k];
        }
    }
    o
}

/// `f`'s per-row losses, its gradient written, and its gradient added to `old`, all with
/// `Reduction::Sum`.
fn sum_outputs(f: SoftmaxFocal<'_>, x: &[f32], y: &[i64], old: &[f32]) -> [Vec<f32>; 3] {
    let mut per_row = vec![0f32; y.len()];
    f.loss_per_row(x, y, &mut per_row).unwrap();
    let mut g = vec![0f32; x.len()];
    f.loss_and_grad(x, y, &mut g, Reduction::Sum).unwrap();
    let mut acc = old.to_vec();
    f.loss_and_grad_accumulate(x, y, &mut acc, Reduction::Sum)
        .unwrap();
    [per_row, g, acc]
}

/// [`sum_outputs`] of the rows of `y` in calls of `piece` rows (the last may be shorter),
/// concatenated. `c` classes, class-last.
fn sum_outputs_in_pieces(
    f: SoftmaxFocal<'_>,
    (x, y, old): (&[f32], &[i64], &[f32]),
    c: usize,
    piece: usize,
) -> [Vec<f32>; 3] {
    let mut out = [Vec::new(), Vec::new(), Vec::new()];
    for (k, ys) in y.chunks(piece).enumerate() {
        let span = piece * k * c..(piece * k + ys.len()) * c;
        let part = sum_outputs(f, &x[span.clone()], ys, &old[span]);
        for (o, p) in out.iter_mut().zip(part) {
            o.extend_from_slice(&p);
        }
    }
    out
}

const CLASSES: [usize; 9] = [2, 3, 7, 16, 17, 19, 50, 64, 129];

#[test]
fn index_labels_give_the_bits_of_one_hot_rows() {
    let mut rng = Rng(7);
    for backend in Backend::available() {
        for &c in &CLASSES {
            let rows = 37;
            let x = logits(&mut rng, rows * c);
            let y: Vec<u32> = (0..rows).map(|r| ((r * 5 + 1) % c) as u32).collect();
            let mut one_hot = vec![0f32; rows * c];
            for r in 0..rows {
                one_hot[r * c + y[r] as usize] = 1.0;
            }
            let w: Vec<f32> = (0..c).map(|k| 0.5 + k as f32 * 0.25).collect();
            let s: Vec<f32> = (0..rows).map(|r| (r % 4) as f32 * 0.5).collect();
            for gamma in [0.0, 0.5, 2.0, 2.5] {
                for eps in [0.0, 0.1] {
                    let f = SoftmaxFocal::new(gamma)
                        .alpha(0.25)
                        .label_smoothing(eps)
                        .class_weights(&w)
                        .sample_weights(&s)
                        .backend(backend);
                    let (mut ga, mut gb) = (vec![0f32; rows * c], vec![0f32; rows * c]);
                    let la = f
                        .loss_and_grad(&x, &y, &mut ga, Reduction::WeightedMean)
                        .unwrap();
                    let lb = f
                        .loss_and_grad(&x, &one_hot, &mut gb, Reduction::WeightedMean)
                        .unwrap();
                    let what = format!("{backend:?} C {c} gamma {gamma} eps {eps}");
                    assert_eq!(la.to_bits(), lb.to_bits(), "{what}");
                    assert_eq!(bits(&ga), bits(&gb), "{what}");
                    let (mut ra, mut rb) = (vec![0f32; rows], vec![0f32; rows]);
                    f.loss_per_row(&x, &y, &mut ra).unwrap();
                    f.loss_per_row(&x, &one_hot, &mut rb).unwrap();
                    assert_eq!(bits(&ra), bits(&rb), "{what}");
                }
            }
        }
    }
}

/// `[N, C, S]` against the same positions as class-last rows, with ignored positions, sample
/// weights and distributions; `S` not a multiple of any lane count. The larger shape has
/// whole blocks of class-last rows (AVX-512 transposes them in registers from 9 classes).
#[test]
fn nchw_gives_the_bits_of_transposed_rows() {
    let mut rng = Rng(11);
    for backend in Backend::available() {
        for (&c, (n, sp)) in CLASSES
            .iter()
            .chain(&[9, 12, 24])
            .flat_map(|c| [(c, (3, 21)), (c, (2, 75))])
        {
            let rows = n * sp;
            let x = logits(&mut rng, rows * c);
            let y = labels_ignoring(rows, c, 6);
            let s: Vec<f32> = (0..rows).map(|r| 0.25 + (r % 3) as f32).collect();
            let mut dist = vec![0f32; rows * c];
            for r in 0..rows {
                dist[r * c + r % c] = 0.75;
                dist[r * c + (r * 3 + 1) % c] += 0.25;
            }
            let to_nchw = |v: &[f32]| to_nchw(v, c, sp);
            let (xt, dt) = (to_nchw(&x), to_nchw(&dist));
            for gamma in [0.0, 2.0, 2.5] {
                let f = SoftmaxFocal::new(gamma)
                    .ignore_index(-100)
                    .sample_weights(&s)
                    .classes(c)
                    .backend(backend);
                let what = format!("{backend:?} C {c} gamma {gamma}");
                for dense in [false, true] {
                    let (mut g, mut gt) = (vec![0f32; rows * c], vec![0f32; rows * c]);
                    let (l, lt) = if dense {
                        (
                            f.loss_and_grad(&x, &dist, &mut g, Reduction::Mean).unwrap(),
                            f.spatial(sp)
                                .loss_and_grad(&xt, &dt, &mut gt, Reduction::Mean)
                                .unwrap(),
                        )
                    } else {
                        (
                            f.loss_and_grad(&x, &y, &mut g, Reduction::Mean).unwrap(),
                            f.spatial(sp)
                                .loss_and_grad(&xt, &y, &mut gt, Reduction::Mean)
                                .unwrap(),
                        )
                    };
                    assert_eq!(l.to_bits(), lt.to_bits(), "{what} dense {dense}");
                    assert_eq!(bits(&to_nchw(&g)), bits(&gt), "{what} dense {dense}");
                }
            }
        }
    }
}

/// `[N, C, S]` images of at least 2^20 logits keep the fast path's `e` on the stack for their
/// gradient pass (an `f32` gradient too), and batches of at least 2^21 logits take other
/// blocks (`pass` in src/softmax/pass.rs): the bits of the same positions as class-last rows.
/// Per class count, one image with masked classes and far logits (blocks off `exp_normal`'s
/// domain), one with logits in [-4, 4].
#[test]
fn large_nchw_images_give_the_bits_of_transposed_rows() {
    for (c, sp) in [(19, 55_189), (50, 21_000)] {
        let n = 2;
        assert!(c * sp >= 1 << 20 && n * c * sp >= 1 << 21);
        let rows = n * sp;
        let mut rng = Rng(23);
        let mut x = logits(&mut rng, sp * c);
        x.extend((0..sp * c).map(|_| rng.range(-4.0, 4.0) as f32));
        let y = labels_ignoring(rows, c, 6);
        let to_nchw = |v: &[f32]| to_nchw(v, c, sp);
        let xt = to_nchw(&x);
        for backend in Backend::available() {
            for gamma in [0.0, 2.0] {
                let f = SoftmaxFocal::new(gamma)
                    .ignore_index(-100)
                    .classes(c)
                    .backend(backend);
                let (mut g, mut gt) = (vec![0f32; rows * c], vec![0f32; rows * c]);
                let l = f.loss_and_grad(&x, &y, &mut g, Reduction::Mean).unwrap();
                let lt = f
                    .spatial(sp)
                    .loss_and_grad(&xt, &y, &mut gt, Reduction::Mean)
                    .unwrap();
                let what = format!("{backend:?} C {c} gamma {gamma}");
                assert_eq!(l.to_bits(), lt.to_bits(), "{what}");
                assert!(bits(&to_nchw(&g)) == bits(&gt), "{what}: gradients differ");
                // (Images of more than 2^18 logits run in windows of positions: their
                // per-position losses and added gradients too.)
                let (mut p, mut pt) = (vec![0f32; rows], vec![0f32; rows]);
                f.loss_per_row(&x, &y, &mut p).unwrap();
                f.spatial(sp).loss_per_row(&xt, &y, &mut pt).unwrap();
                assert!(bits(&p) == bits(&pt), "{what}: per-position losses differ");
                g.iter_mut()
                    .enumerate()
                    .for_each(|(i, v)| *v = (i % 7) as f32 - 3.0);
                let mut gt = to_nchw(&g);
                let r = Reduction::Sum;
                let l = f.loss_and_grad_accumulate(&x, &y, &mut g, r).unwrap();
                let lt = f
                    .spatial(sp)
                    .loss_and_grad_accumulate(&xt, &y, &mut gt, r)
                    .unwrap();
                assert_eq!(l.to_bits(), lt.to_bits(), "{what}: accumulated");
                assert!(
                    bits(&to_nchw(&g)) == bits(&gt),
                    "{what}: added gradients differ"
                );
            }
        }
    }
}

#[test]
fn chunked_partials_give_the_whole_call() {
    let mut rng = Rng(13);
    for backend in Backend::available() {
        for &c in &CLASSES {
            let rows = 45;
            let x = logits(&mut rng, rows * c);
            let y: Vec<i32> = (0..rows)
                .map(|r| if r % 5 == 2 { -1 } else { ((r * 3) % c) as i32 })
                .collect();
            let w: Vec<f32> = (0..c).map(|k| 1.0 + (k % 4) as f32).collect();
            let f = SoftmaxFocal::new(2.0)
                .ignore_index(-1)
                .class_weights(&w)
                .backend(backend);
            for reduction in [
                Reduction::Sum,
                Reduction::Mean,
                Reduction::PerPositive,
                Reduction::WeightedMean,
            ] {
                let mut whole = vec![0f32; rows * c];
                let l = f.loss_and_grad(&x, &y, &mut whole, reduction).unwrap();
                let counts = f.partial(&x, &y, Grad::Skip).unwrap();
                let factor = match reduction {
                    Reduction::Sum => 1.0,
                    Reduction::Mean | Reduction::PerPositive => 1.0 / counts.elements() as f64,
                    _ => 1.0 / counts.weight(),
                } as f32;
                let mut g = vec![0f32; rows * c];
                let mut total = Partial::EMPTY;
                for (k, ((xs, ys), gs)) in x
                    .chunks(7 * c)
                    .zip(y.chunks(7))
                    .zip(g.chunks_mut(7 * c))
                    .enumerate()
                {
                    let p = f.partial(xs, ys, Grad::Write(gs, factor)).unwrap();
                    total = if k % 2 == 0 {
                        total.merge(p)
                    } else {
                        p.merge(total)
                    };
                }
                let what = format!("{backend:?} C {c} {reduction:?}");
                assert_eq!(
                    total.reduce(reduction).unwrap().to_bits(),
                    l.to_bits(),
                    "{what}"
                );
                assert_eq!(bits(&g), bits(&whole), "{what}");
            }
        }
    }
}

#[test]
fn accumulate_is_write_plus_add_and_ignored_rows_are_zero() {
    let mut rng = Rng(17);
    for backend in Backend::available() {
        for &c in &CLASSES {
            for sp in [1, 5] {
                let rows = 4 * sp * 3;
                let mut x = logits(&mut rng, rows * c);
                let y: Vec<u16> = (0..rows)
                    .map(|r| {
                        if r % 4 == 1 {
                            999
                        } else {
                            ((r * 5) % c) as u16
                        }
                    })
                    .collect();
                // Ignored rows' logits are not read: NaN there changes nothing.
                for (r, &yr) in y.iter().enumerate() {
                    if yr == 999 {
                        let (i, p) = (r / sp, r % sp);
                        for k in 0..c {
                            x[(i * c + k) * sp + p] = f32::NAN;
                        }
                    }
                }
                for (gamma, eps) in [(0.0, 0.0), (2.0, 0.0), (2.5, 0.1)] {
                    let f = SoftmaxFocal::new(gamma)
                        .label_smoothing(eps)
                        .ignore_index(999)
                        .spatial(sp)
                        .backend(backend);
                    let mut w = vec![f32::NAN; rows * c];
                    let l = f.loss_and_grad(&x, &y, &mut w, Reduction::Mean).unwrap();
                    let g0: Vec<f32> = (0..rows * c).map(|i| (i % 7) as f32 - 3.0).collect();
                    let mut a = g0.clone();
                    let la = f
                        .loss_and_grad_accumulate(&x, &y, &mut a, Reduction::Mean)
                        .unwrap();
                    let what = format!("{backend:?} C {c} S {sp} gamma {gamma}");
                    assert_eq!(l.to_bits(), la.to_bits(), "{what}");
                    for i in 0..rows * c {
                        assert_eq!(a[i].to_bits(), (g0[i] + w[i]).to_bits(), "{what} [{i}]");
                        let r = (i / (c * sp)) * sp + i % sp;
                        if y[r] == 999 {
                            assert_eq!(w[i].to_bits(), 0u32, "{what} ignored [{i}]");
                        }
                    }
                    let mut per_row = vec![f32::NAN; rows];
                    f.loss_per_row(&x, &y, &mut per_row).unwrap();
                    for (l, &yr) in per_row.iter().zip(&y) {
                        assert!(!l.is_nan(), "{what}");
                        if yr == 999 {
                            assert_eq!(l.to_bits(), 0u32, "{what}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_permutation_of_the_classes_permutes_the_gradient() {
    let mut rng = Rng(19);
    for backend in Backend::available() {
        for &c in &CLASSES {
            let rows = 23;
            let x = logits(&mut rng, rows * c);
            let y: Vec<u32> = (0..rows).map(|r| ((r * 5) % c) as u32).collect();
            let perm: Vec<usize> = (0..c).map(|k| (k * 7 + 3) % c).collect();
            if (0..c).any(|k| !perm.contains(&k)) {
                continue; // 7 shares a factor with c
            }
            let xp: Vec<f32> = (0..rows * c)
                .map(|i| x[(i / c) * c + perm[i % c]])
                .collect();
            let inv = |k: usize| perm.iter().position(|&p| p == k).unwrap();
            let yp: Vec<u32> = y.iter().map(|&v| inv(v as usize) as u32).collect();
            let f = SoftmaxFocal::new(2.0).backend(backend);
            let (mut g, mut gp) = (vec![0f32; rows * c], vec![0f32; rows * c]);
            let l = f.loss_and_grad(&x, &y, &mut g, Reduction::Sum).unwrap();
            let lp = f.loss_and_grad(&xp, &yp, &mut gp, Reduction::Sum).unwrap();
            let close = |a: f32, b: f32| {
                a == b || (a - b).abs() <= 4.0 * f32::EPSILON * a.abs().max(b.abs()) + 1e-37
            };
            assert!(close(l, lp), "{backend:?} C {c}: {l} {lp}");
            for i in 0..rows * c {
                let j = (i / c) * c + perm[i % c];
                assert!(
                    close(gp[i], g[j]),
                    "{backend:?} C {c} [{i}]: {} {}",
                    gp[i],
                    g[j]
                );
            }
        }
    }
}

/// A whole column block (the kernels run a copy compiled for the block's length) gives the
/// bits of the same rows in partial blocks: 200 rows (whole blocks of 64 on AVX-512, 32 on
/// AVX2, and a partial last one) against the same rows in calls of 7 (partial blocks only);
/// per-row losses, gradients written and accumulated, class-last and `[1, C, 200]`.
#[test]
fn whole_blocks_give_the_bits_of_partial_ones() {
    let mut rng = Rng(29);
    let rows = 200;
    for backend in Backend::available() {
        for c in [2, 3, 5, 8, 16, 19, 30] {
            let x = logits(&mut rng, rows * c);
            let y = labels_ignoring(rows, c, 11);
            let w: Vec<f32> = (0..c).map(|k| 0.5 + (k % 3) as f32).collect();
            let f = SoftmaxFocal::new(2.0)
                .ignore_index(-100)
                .class_weights(&w)
                .backend(backend);
            let old: Vec<f32> = (0..rows * c).map(|i| (i % 5) as f32 - 2.0).collect();
            // The whole batch, class-last and as one [1, C, S] map.
            let [per_row, g, acc] = sum_outputs(f, &x, &y, &old);
            let mut nchw = vec![0f32; rows * c];
            for r in 0..rows {
                for k in 0..c {
                    nchw[k * rows + r] = x[r * c + k];
                }
            }
            let fs = f.spatial(rows);
            let mut per_pos = vec![0f32; rows];
            fs.loss_per_row(&nchw, &y, &mut per_pos).unwrap();
            let mut gs = vec![0f32; rows * c];
            fs.loss_and_grad(&nchw, &y, &mut gs, Reduction::Sum)
                .unwrap();
            let gs: Vec<f32> = (0..rows * c).map(|i| gs[(i % c) * rows + i / c]).collect();
            // The same rows, 7 at a time.
            let [per_row7, g7, acc7] = sum_outputs_in_pieces(f, (&x, &y, &old), c, 7);
            let what = format!("{backend:?} C {c}");
            assert_eq!(bits(&per_row), bits(&per_row7), "{what}: per row");
            assert_eq!(bits(&g), bits(&g7), "{what}: gradient");
            assert_eq!(bits(&acc), bits(&acc7), "{what}: accumulated");
            assert_eq!(
                bits(&per_pos),
                bits(&per_row7),
                "{what}: [1, C, S] per position"
            );
            assert_eq!(bits(&gs), bits(&g7), "{what}: [1, C, S] gradient");
        }
    }
}

/// A logit so far below its row's largest that its `e` is 0 gives the bits that `-inf` gives
/// there, in both layouts and on every backend, beside a logit whose `e` is subnormal: a
/// kernel that took such a row without its spread test (`exp` unclamped, retrying rows whose
/// `T` is not finite; tried on AVX-512, BENCHMARKS.md) must keep this.
#[test]
fn far_logits_give_the_bits_of_masked_classes() {
    const FAR: [f32; 11] = [
        -104.5,
        -200.0,
        -1e4,
        -3e6,
        -1e7,
        -1e8,
        -1e13,
        -1e15,
        -1e30,
        -3e38,
        -f32::MAX,
    ];
    let mut rng = Rng(29);
    for backend in Backend::available() {
        for c in [17usize, 33, 50, 100] {
            for sp in [1, 3] {
                let rows = 6 * sp;
                let base: Vec<f32> = (0..rows * c).map(|_| rng.range(-4.0, 4.0) as f32).collect();
                for k in [0, c / 2, c - 1] {
                    let k2 = (k + 1) % c;
                    // No label on the far class (its loss would be finite against `inf`).
                    let y: Vec<i64> = (0..rows)
                        .map(|r| match (r * 7) % c {
                            j if j == k => ((k + 2) % c) as i64,
                            j => j as i64,
                        })
                        .collect();
                    for gamma in [0.0, 2.0] {
                        let f = SoftmaxFocal::new(gamma).spatial(sp).backend(backend);
                        let run = |x: &[f32]| {
                            let mut g = vec![0f32; x.len()];
                            let l = f.loss_and_grad(x, &y, &mut g, Reduction::Sum).unwrap();
                            let mut per_row = vec![0f32; rows];
                            f.loss_per_row(x, &y, &mut per_row).unwrap();
                            (l.to_bits(), bits(&g), bits(&per_row))
                        };
                        for &far in &FAR {
                            let (mut a, mut b) = (base.clone(), base.clone());
                            for r in 0..rows {
                                let (i, p) = (r / sp, r % sp);
                                let at = |j: usize| (i * c + j) * sp + p;
                                a[at(k)] = far;
                                b[at(k)] = f32::NEG_INFINITY;
                                // 86 to 104 below the largest logit: a subnormal `e`, or 0.
                                let sub = -90.0 - (r % 3) as f32 * 5.0;
                                a[at(k2)] = sub;
                                b[at(k2)] = sub;
                            }
                            let what = format!("{backend:?} C {c} S {sp} gamma {gamma} far {far}");
                            assert_eq!(run(&a), run(&b), "{what} class {k}");
                        }
                    }
                }
            }
        }
    }
}

/// The index of the first element whose bits differ, if any (an `assert_eq!` of two vectors
/// of millions of elements would print them all).
fn first_difference(a: &[f32], b: &[f32]) -> Option<usize> {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
}

/// Class-last batches of at least 2^21 logits and 5 to 16 classes take the column kernel in
/// smaller blocks than other batches do (`pass` in src/softmax/pass.rs): every row's loss and
/// gradient must keep its bits. A large batch against the same rows in calls of 1000 rows,
/// per-row losses and gradients written and accumulated (`f32` and `bf16` logits and
/// gradient), on every backend; the rows have masked classes and far logits.
#[test]
fn large_class_last_batches_give_the_bits_of_small_calls() {
    use focal_loss::half::bf16;
    for c in [5, 8, 13, 16] {
        // (Some rows beyond whole blocks of 32 and 64.)
        let rows = (1 << 21) / c + 37;
        assert!(rows * c >= 1 << 21);
        let mut rng = Rng(31 + c as u64);
        let x = logits(&mut rng, rows * c);
        let y = labels_ignoring(rows, c, 6);
        let old: Vec<f32> = (0..rows * c).map(|i| (i % 5) as f32 - 2.0).collect();
        let xh: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        let piece = 1000;
        for backend in Backend::available() {
            let f = SoftmaxFocal::new(2.0)
                .ignore_index(-100)
                .classes(c)
                .backend(backend);
            let [per_row, g, acc] = sum_outputs(f, &x, &y, &old);
            let mut gh = vec![bf16::ZERO; rows * c];
            f.loss_and_grad(&xh, &y, &mut gh, Reduction::Sum).unwrap();
            let [per_row_p, g_p, acc_p] = sum_outputs_in_pieces(f, (&x, &y, &old), c, piece);
            let mut gh_p = vec![bf16::ZERO; rows * c];
            for (k, ys) in y.chunks(piece).enumerate() {
                let span = piece * k * c..(piece * k + ys.len()) * c;
                f.loss_and_grad(&xh[span.clone()], ys, &mut gh_p[span], Reduction::Sum)
                    .unwrap();
            }
            let widen = |v: &[bf16]| v.iter().map(|h| h.to_f32()).collect::<Vec<f32>>();
            let what = format!("{backend:?} C {c}");
            let diff = first_difference(&per_row, &per_row_p);
            assert_eq!(diff, None, "{what}: per row");
            assert_eq!(first_difference(&g, &g_p), None, "{what}: gradient");
            assert_eq!(first_difference(&acc, &acc_p), None, "{what}: accumulated");
            let diff = first_difference(&widen(&gh), &widen(&gh_p));
            assert_eq!(diff, None, "{what}: bf16");
        }
    }
}
