//! Every way a softmax call can be wrong gives its typed error, and an accumulate call that
//! errs leaves the gradient untouched.

use focal_loss::{Error, Grad, Reduction, SoftmaxFocal};

const X: [f32; 6] = [1.0, 0.0, -1.0, 0.5, 0.5, 2.0];

#[test]
fn lengths() {
    let f = SoftmaxFocal::new(2.0);
    let mut g = [0f32; 5];
    assert_eq!(
        f.loss_and_grad(&X, &[0u8, 1], &mut g, Reduction::Sum),
        Err(Error::LengthMismatch {
            what: "grad",
            expected: 6,
            found: 5
        })
    );
    assert_eq!(
        f.loss(&X, &[0u8; 4], Reduction::Sum),
        Err(Error::LengthMismatch {
            what: "labels",
            expected: 1,
            found: 4
        })
    );
    assert_eq!(
        f.classes(3).loss(&X, &[0u8; 3], Reduction::Sum),
        Err(Error::LengthMismatch {
            what: "labels",
            expected: 2,
            found: 3
        })
    );
    assert_eq!(
        f.classes(4).loss(&X, &[0u8; 1], Reduction::Sum),
        Err(Error::NotMultipleOfClasses { len: 6, classes: 4 })
    );
    assert_eq!(
        f.classes(3).spatial(4).loss(&X, &[0u8; 2], Reduction::Sum),
        Err(Error::NotMultipleOfClasses {
            len: 6,
            classes: 12
        })
    );
    assert_eq!(
        f.classes(3).loss(&X, &[0.0f32; 5], Reduction::Sum),
        Err(Error::LengthMismatch {
            what: "labels",
            expected: 6,
            found: 5
        })
    );
    let mut out = [0f32; 3];
    assert_eq!(
        f.loss_per_row(&X, &[0u8, 1], &mut out),
        Err(Error::LengthMismatch {
            what: "out",
            expected: 2,
            found: 3
        })
    );
    assert_eq!(
        f.sample_weights(&[1.0]).loss(&X, &[0u8, 1], Reduction::Sum),
        Err(Error::LengthMismatch {
            what: "sample_weights",
            expected: 2,
            found: 1
        })
    );
}

#[test]
fn classes() {
    assert_eq!(
        SoftmaxFocal::new(2.0).loss(&X, &[0.0f32; 6], Reduction::Sum),
        Err(Error::UnknownClasses)
    );
    assert_eq!(
        SoftmaxFocal::new(2.0)
            .classes(0)
            .loss(&X, &[0u8; 2], Reduction::Sum),
        Err(Error::ZeroClasses)
    );
    assert_eq!(
        SoftmaxFocal::new(2.0)
            .class_weights(&[])
            .loss(&X, &[0u8; 2], Reduction::Sum),
        Err(Error::ZeroClasses)
    );
    assert_eq!(
        SoftmaxFocal::new(2.0)
            .classes(3)
            .class_weights(&[1.0; 2])
            .loss(&X, &[0u8; 2], Reduction::Sum),
        Err(Error::ClassCountMismatch {
            what: "class_weights",
            expected: 3,
            found: 2
        })
    );
    // Weights that imply C = 2 against labels that imply C = 3.
    assert_eq!(
        SoftmaxFocal::new(2.0)
            .class_weights(&[1.0; 2])
            .loss(&X, &[0u8; 2], Reduction::Sum),
        Err(Error::LengthMismatch {
            what: "labels",
            expected: 3,
            found: 2
        })
    );
}

/// A class count or map size out of range is reported as given: `2^24 + 1` classes (set, or
/// implied by the lengths) is not `2^24`, which is allowed.
#[test]
fn too_many_classes_named_exactly() {
    let over = (1usize << 24) + 1;
    let expect = |r: Result<f32, Error>, name: &str, value: f64| match r {
        Err(Error::InvalidParameter {
            name: n, value: v, ..
        }) => assert_eq!((n, v), (name, value)),
        other => panic!("{name}: {other:?}"),
    };
    let none: [f32; 0] = [];
    let f = SoftmaxFocal::new(2.0);
    expect(
        f.classes(over).loss(&none, &[0u8; 0], Reduction::Sum),
        "classes",
        16_777_217.0,
    );
    let z = vec![0f32; over];
    expect(f.loss(&z, &[0u8], Reduction::Sum), "classes", 16_777_217.0);
    let huge = usize::MAX / 2;
    expect(
        f.classes(3)
            .spatial(huge)
            .loss(&none, &[0u8; 0], Reduction::Sum),
        "spatial",
        huge as f64,
    );
    let message = f.classes(over).loss(&none, &[0u8; 0], Reduction::Sum);
    assert!(format!("{}", message.unwrap_err()).contains("16777217"));
}

#[test]
fn labels() {
    let f = SoftmaxFocal::new(2.0).ignore_index(-100);
    assert_eq!(
        f.loss(&X, &[0i64, 3], Reduction::Sum),
        Err(Error::LabelOutOfRange {
            row: 1,
            label: 3,
            classes: 3
        })
    );
    assert_eq!(
        f.loss(&X, &[-1i32, 0], Reduction::Sum),
        Err(Error::LabelOutOfRange {
            row: 0,
            label: -1,
            classes: 3
        })
    );
    assert!(f.loss(&X, &[-100i64, 2], Reduction::Sum).is_ok());
    assert_eq!(
        SoftmaxFocal::new(2.0)
            .loss(&X, &[0u8, 255], Reduction::Sum)
            .unwrap_err()
            .to_string(),
        "labels[1] = 255 is not a class in [0, 3) nor the ignore_index"
    );
    let bad = [0.5f32, 0.5, 0.0, 0.0, 1.5, 0.0];
    assert_eq!(
        SoftmaxFocal::new(2.0)
            .classes(3)
            .loss(&X, &bad, Reduction::Sum),
        Err(Error::TargetOutOfRange {
            index: 4,
            row: 1,
            class: 1,
            value: 1.5
        })
    );
    let nan = [0.5f32, 0.5, 0.0, 0.0, f32::NAN, 0.0];
    assert!(matches!(
        SoftmaxFocal::new(2.0)
            .classes(3)
            .loss(&X, &nan, Reduction::Sum),
        Err(Error::TargetOutOfRange { index: 4, .. })
    ));
}

#[test]
fn nan_logits() {
    let mut x = X;
    x[4] = f32::NAN;
    let f = SoftmaxFocal::new(2.0).ignore_index(7);
    for layout in [1, 2] {
        // Row 1, class 1 (class-last) / position 0, class 2 (NCHW, C = 3, S = 2: one image
        // of 2 positions).
        let f = f.spatial(layout);
        let y = [0u8, 1];
        let (row, class) = if layout == 1 { (1, 1) } else { (0, 2) };
        let want = Error::NanLogit {
            index: 4,
            row,
            class,
        };
        assert_eq!(f.loss(&x, &y, Reduction::Sum), Err(want));
        let mut g = [1.5f32; 6];
        assert_eq!(
            f.loss_and_grad_accumulate(&x, &y, &mut g, Reduction::Mean),
            Err(want)
        );
        assert_eq!(g, [1.5; 6], "an accumulate call that errs writes nothing");
        assert_eq!(f.partial(&x, &y, Grad::Accumulate(&mut g, 1.0)), Err(want));
        assert_eq!(g, [1.5; 6]);
    }
    // The NaN's row ignored: no error (class-last: row 1; NCHW: position 0 of x[4] = class 2).
    assert!(f.loss(&x, &[0u8, 7], Reduction::Sum).is_ok());
    assert!(f.spatial(2).loss(&x, &[7u8, 1], Reduction::Sum).is_ok());
    let mut g = [1.5f32; 6];
    f.loss_and_grad_accumulate(&x, &[0u8, 7], &mut g, Reduction::Mean)
        .unwrap();
    assert_eq!(&g[3..], &[1.5; 3]);
}

#[test]
fn parameters() {
    let y = [0u8, 1];
    let bad = |f: SoftmaxFocal<'_>, name: &str| match f.loss(&X, &y, Reduction::Sum) {
        Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
        other => panic!("{name}: {other:?}"),
    };
    bad(SoftmaxFocal::new(-1.0), "gamma");
    bad(SoftmaxFocal::new(f32::INFINITY), "gamma");
    bad(SoftmaxFocal::new(2.0).alpha(f32::NAN), "alpha");
    bad(SoftmaxFocal::new(2.0).alpha(-0.5), "alpha");
    bad(
        SoftmaxFocal::new(2.0).label_smoothing(1.0),
        "label_smoothing",
    );
    bad(SoftmaxFocal::new(2.0).spatial(0), "spatial");
    bad(
        SoftmaxFocal::new(2.0).class_weights(&[1.0, -1.0, 1.0]),
        "class_weights",
    );
    bad(
        SoftmaxFocal::new(2.0).sample_weights(&[1.0, f32::INFINITY]),
        "sample_weights",
    );
    assert!(matches!(
        SoftmaxFocal::new(2.0).loss(&X, &y, Reduction::Scale(f32::NAN)),
        Err(Error::InvalidParameter {
            name: "Reduction::Scale",
            ..
        })
    ));
    let mut g = [0f32; 6];
    assert!(
        SoftmaxFocal::new(2.0)
            .partial(&X, &y, Grad::Write(&mut g, f32::INFINITY))
            .is_err()
    );
}

#[test]
fn empty_and_zero_factors() {
    let f = SoftmaxFocal::new(2.0).classes(3);
    assert_eq!(f.loss(&[0f32; 0], &[0u8; 0], Reduction::Mean), Ok(0.0));
    assert_eq!(
        f.loss(&[0f32; 0], &[0f32; 0], Reduction::WeightedMean),
        Ok(0.0)
    );
    // All rows ignored: Mean is 0, the gradient 0.
    let mut g = [f32::NAN; 6];
    let l = f
        .ignore_index(9)
        .loss_and_grad(&X, &[9u8, 9], &mut g, Reduction::Mean);
    assert_eq!(l, Ok(0.0));
    assert_eq!(g, [0.0; 6]);
    // Zero weights everywhere: WeightedMean divides by 0 -> 0.
    let f = SoftmaxFocal::new(2.0).class_weights(&[0.0; 3]);
    assert_eq!(f.loss(&X, &[0u8, 1], Reduction::WeightedMean), Ok(0.0));
}

/// A zero class weight times an overflowing product of sample weight and alpha is 0, not the
/// clamped maximum (the fuzzers' reproducer: `s = alpha = f32::MAX`, class weights 0).
#[test]
fn zero_weight_times_overflowing_weights() {
    for backend in focal_loss::Backend::available() {
        let f = SoftmaxFocal::new(4.97)
            .alpha(f32::MAX)
            .class_weights(&[0.0, 0.0])
            .sample_weights(&[f32::MAX])
            .backend(backend);
        let mut g = [f32::NAN; 2];
        assert_eq!(
            f.loss_and_grad(
                &[0.621_270_95, 0.722_837_1],
                &[0u32],
                &mut g,
                Reduction::Sum
            ),
            Ok(0.0)
        );
        assert_eq!(g, [0.0; 2], "{backend:?}");
        let f = f.label_smoothing(0.1);
        assert_eq!(
            f.loss(&[0.6, 0.7], &[0u32], Reduction::Sum),
            Ok(0.0),
            "{backend:?}"
        );
    }
}

/// A negative factor times a weight near `f32::MAX` overflows to `-inf`; times `q = 0` (one
/// class: p = 1) it gave NaN. The factor products are clamped on both sides.
#[test]
fn negative_factor_times_huge_weight() {
    use focal_loss::Grad;
    for backend in focal_loss::Backend::available() {
        let f = SoftmaxFocal::new(0.0)
            .class_weights(&[f32::MAX])
            .backend(backend);
        let mut g = [f32::NAN];
        f.partial(&[0.683_674_9], &[0u32], Grad::Write(&mut g, -3.4e10))
            .unwrap();
        assert_eq!(g, [0.0], "{backend:?}");
        let mut g = [f32::NAN; 3];
        let f = SoftmaxFocal::new(2.0)
            .class_weights(&[f32::MAX; 3])
            .backend(backend);
        f.partial(
            &[0.0, f32::NEG_INFINITY, 1.0],
            &[2u32],
            Grad::Write(&mut g, -3.4e10),
        )
        .unwrap();
        assert!(g.iter().all(|v| !v.is_nan()), "{backend:?} {g:?}");
        assert_eq!(g[1], 0.0, "{backend:?}");
    }
}

/// `WeightedMean` over tiny weights: the factor `1 / W` beyond `f32::MAX` saturates, the
/// gradient stays free of NaN, and index labels still give the bits of one-hot rows.
#[test]
fn weighted_mean_over_tiny_weights() {
    for backend in focal_loss::Backend::available() {
        let f = SoftmaxFocal::new(0.0)
            .sample_weights(&[1.84e-43])
            .backend(backend);
        let x = [0.621_270_95f32, 0.722_837_1];
        let (mut a, mut b) = ([0f32; 2], [0f32; 2]);
        f.loss_and_grad(&x, &[0i64], &mut a, Reduction::WeightedMean)
            .unwrap();
        f.classes(2)
            .loss_and_grad(&x, &[1.0f32, 0.0], &mut b, Reduction::WeightedMean)
            .unwrap();
        assert!(a.iter().all(|v| !v.is_nan()), "{backend:?} {a:?}");
        assert_eq!(
            a.map(f32::to_bits),
            b.map(f32::to_bits),
            "{backend:?} {a:?} {b:?}"
        );
    }
}

/// Long batches (the count and the label check run as one vectorized loop, the exact one
/// only to name a bad label, 64 labels at a time): the first label out of range is named
/// whatever its block and neighbours, every label type and backend; ignored rows are not
/// counted, and a bad label beside ignored ones is found.
#[test]
#[cfg_attr(
    miri,
    ignore = "safe code (no intrinsics) on 1500 logits: 80 s a run under Miri; it runs natively, under ASan and on aarch64"
)]
fn labels_out_of_range_in_long_batches() {
    const C: usize = 5;
    const ROWS: usize = 300;
    let x: Vec<f32> = (0..ROWS * C).map(|i| (i % 7) as f32 * 0.3).collect();
    let good: Vec<i64> = (0..ROWS as i64)
        .map(|r| if r % 3 == 0 { -100 } else { r % 5 })
        .collect();
    fn check<T: focal_loss::Label + Copy>(
        f: SoftmaxFocal<'_>,
        x: &[f32],
        labels: &[T],
        expect: Result<usize, (usize, i64)>,
    ) {
        let mut g = vec![0.25f32; x.len()];
        let got = f.loss_and_grad_accumulate(x, labels, &mut g, Reduction::Mean);
        match expect {
            Ok(n) => {
                // The rows not ignored, which Mean divides by.
                assert!(got.is_ok());
                let part = f.partial(x, labels, Grad::Skip).unwrap();
                assert_eq!(part.elements(), n as u64);
            }
            Err((row, label)) => {
                assert_eq!(
                    got,
                    Err(Error::LabelOutOfRange {
                        row,
                        label,
                        classes: C
                    })
                );
                assert!(g.iter().all(|&v| v == 0.25), "an erring call wrote");
            }
        }
    }
    let counted = good.iter().filter(|&&v| v != -100).count();
    for backend in focal_loss::Backend::available() {
        let f = SoftmaxFocal::new(2.0).classes(C).backend(backend);
        let fi = f.ignore_index(-100);
        check(fi, &x, &good, Ok(counted));
        // Without ignore_index, -100 is a label out of range: the first one, row 0.
        check(f, &x, &good, Err((0, -100)));
        for &(row, label) in &[
            (1usize, 5i64),
            (63, 5),
            (64, -1),
            (200, i64::MIN),
            (299, 1 << 40),
        ] {
            let mut bad = good.clone();
            bad[row] = label;
            // A second bad label after it, in another block: the first is named.
            if row + 1 < ROWS {
                bad[ROWS - 1] = 7;
            }
            let first = (row, label);
            check(fi, &x, &bad, Err(first));
            // The same as i32 where it fits.
            if let Ok(b32) = bad
                .iter()
                .map(|&v| i32::try_from(v))
                .collect::<Result<Vec<_>, _>>()
            {
                check(fi, &x, &b32, Err(first));
            }
        }
        // Unsigned labels: no ignore value, every row counted; 255 out of range at row 130.
        let u: Vec<u8> = (0..ROWS).map(|r| (r % C) as u8).collect();
        check(f, &x, &u, Ok(ROWS));
        let mut u2 = u.clone();
        u2[130] = 255;
        check(f, &x, &u2, Err((130, 255)));
        let u32s: Vec<u32> = u2.iter().map(|&v| v as u32 * 1000).collect();
        check(f, &x, &u32s, Err((1, 1000)));
    }
}

/// A NaN logit in a counted row is an error wherever it sits in the row, whatever the rest of
/// the row holds, in both layouts and on every backend: the row kernel tests a row whose
/// `z - m` all lie in `exp_normal`'s domain through its sum `T` and scans the others (a
/// spread above 87, an infinite logit) once more, the column kernels sum each position's
/// logits; the dense path and half-precision logits share those tests.
#[test]
fn nan_logits_in_every_kernel() {
    use focal_loss::Backend;
    // (Miri runs this file, some 1000 times slower: there two images, the row kernel at
    // C = 17 and the column kernel at C = 3 on 3 positions, and the last class only; the
    // full sweep took minutes a backend.)
    let n = if cfg!(miri) { 2 } else { 5 };
    let (classes, sps): (&[usize], &[usize]) = if cfg!(miri) {
        (&[3, 17], &[1, 3])
    } else {
        (&[2, 3, 5, 8, 16, 17, 31, 33, 50, 64, 100], &[1, 7])
    };
    for backend in Backend::available() {
        for &c in classes {
            for &sp in sps {
                let rows = n * sp;
                let ks = if cfg!(miri) {
                    vec![c - 1]
                } else {
                    vec![0, 1, c / 2, c - 2, c - 1]
                };
                // The rest of the row: in the domain, a spread of 200, `-inf`, `+inf`, all
                // equal.
                for rest in 0..5 {
                    for &k in &ks {
                        let mut x: Vec<f32> = (0..rows * c)
                            .map(|i| ((i * 7919) % 101) as f32 / 10.0 - 5.0)
                            .collect();
                        // Row `r` = the last image, position `p`; class `j` of it at `at(j)`.
                        let (img, p) = (n - 1, sp / 2);
                        let at = |j: usize| (img * c + j) * sp + p;
                        match rest {
                            1 => x[at((k + 1) % c)] = -200.0,
                            2 => x[at((k + 1) % c)] = f32::NEG_INFINITY,
                            3 => x[at((k + 1) % c)] = f32::INFINITY,
                            4 => (0..c).for_each(|j| x[at(j)] = 1.5),
                            _ => {}
                        }
                        x[at(k)] = f32::NAN;
                        let err = Error::NanLogit {
                            index: at(k),
                            row: img * sp + p,
                            class: k,
                        };
                        let want = Err(err);
                        let what = format!("{backend:?} C {c} S {sp} rest {rest} class {k}");
                        let y: Vec<u16> = (0..rows).map(|r| (r * 3 % c) as u16).collect();
                        let f = SoftmaxFocal::new(2.0).spatial(sp).backend(backend);
                        assert_eq!(f.loss(&x, &y, Reduction::Sum), want, "{what}");
                        let mut g = vec![0f32; rows * c];
                        let got = f.loss_and_grad(&x, &y, &mut g, Reduction::Mean);
                        assert_eq!(got, want, "{what}");
                        let mut per_row = vec![0f32; rows];
                        let got = f.loss_per_row(&x, &y, &mut per_row);
                        assert_eq!(got, Err(err), "{what}");
                        // The dense path (smoothing) and `bf16` logits.
                        let fs = f.label_smoothing(0.1);
                        assert_eq!(fs.loss(&x, &y, Reduction::Sum), want, "{what} smoothed");
                        let xh: Vec<half::bf16> =
                            x.iter().map(|&v| half::bf16::from_f32(v)).collect();
                        assert_eq!(f.loss(&xh, &y, Reduction::Sum), want, "{what} bf16");
                    }
                }
            }
        }
    }
}
