//! Every bad input gives its typed error, and an accumulate call that fails changes nothing.

use focal_loss::{Error, Focal, Grad, Reduction, class_balanced_weights};

const X: [f32; 6] = [0.5, -1.0, 2.0, 0.0, 3.0, -4.0];
const T: [f32; 6] = [1.0, 0.0, 0.0, 1.0, 0.5, 0.0];

/// The NaN logit at `index` of a call that knows no class count (one row).
fn nan(index: usize) -> Error {
    Error::NanLogit {
        index,
        row: 0,
        class: index,
    }
}

/// The out-of-range target at `index` of a call that knows no class count (one row).
fn bad_target(index: usize, value: f32) -> Error {
    Error::TargetOutOfRange {
        index,
        row: 0,
        class: index,
        value,
    }
}

/// Runs every entry point of `f` on (x, t); asserts each returns `want` and that the
/// accumulating ones leave their gradient untouched.
fn all_fail(f: Focal<'_>, x: &[f32], t: &[f32], want: Error) {
    // Compared through Debug, so that a NaN value in the error compares equal.
    let same = |got: Result<f32, Error>, what: &str| {
        assert_eq!(
            format!("{:?}", got.map(|_| ())),
            format!("{:?}", Err::<(), _>(want)),
            "{what}"
        );
    };
    let n = x.len();
    same(f.loss(x, t, Reduction::Sum), "loss");
    let mut g = vec![0.0f32; n];
    same(
        f.loss_and_grad(x, t, &mut g, Reduction::Mean),
        "loss_and_grad",
    );
    // (The positives are counted before the pass: the targets checked then, the logits by
    // the pass.)
    same(
        f.loss_and_grad(x, t, &mut g, Reduction::PerPositive),
        "loss_and_grad per positive",
    );
    let mut out = vec![0.0f32; n];
    same(
        f.loss_elementwise(x, t, &mut out).map(|_| 0.0),
        "loss_elementwise",
    );
    let sentinel: Vec<f32> = (0..n).map(|i| i as f32 + 0.25).collect();
    let mut acc = sentinel.clone();
    same(
        f.loss_and_grad_accumulate(x, t, &mut acc, Reduction::PerPositive),
        "accumulate",
    );
    assert_eq!(acc, sentinel, "accumulate wrote into grad");
    same(f.partial(x, t, Grad::Skip).map(|_| 0.0), "partial");
    same(
        f.partial(x, t, Grad::Accumulate(&mut acc, 0.5))
            .map(|_| 0.0),
        "partial accumulate",
    );
    assert_eq!(acc, sentinel, "partial accumulate wrote into grad");
}

fn param(name: &'static str, index: Option<usize>, value: f64, expected: &'static str) -> Error {
    Error::InvalidParameter {
        name,
        index,
        value,
        expected,
    }
}

#[test]
fn gamma_must_be_finite_and_non_negative() {
    for g in [-0.5f32, f32::NAN, f32::INFINITY] {
        let err = Focal::new(g).loss(&X, &T, Reduction::Sum).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { name: "gamma", .. }),
            "{err}"
        );
        all_fail(Focal::new(g), &X, &T, err);
    }
    all_fail(
        Focal::new(-1.0),
        &X,
        &T,
        param("gamma", None, -1.0, "finite and >= 0"),
    );
}

#[test]
fn alpha_must_be_in_unit_interval() {
    all_fail(
        Focal::new(2.0).alpha(1.5),
        &X,
        &T,
        param("alpha", None, 1.5, "in [0, 1]"),
    );
    all_fail(
        Focal::new(2.0).alpha(-0.1),
        &X,
        &T,
        param("alpha", None, -0.1f32 as f64, "in [0, 1]"),
    );
    let e = Focal::new(2.0)
        .alpha(f32::NAN)
        .loss(&X, &T, Reduction::Sum)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { name: "alpha", .. }));
    let a = [0.25f32, 0.5, 1.25];
    all_fail(
        Focal::new(2.0).alpha_per_class(&a),
        &X,
        &T,
        param("alpha_per_class", Some(2), 1.25, "in [0, 1]"),
    );
}

#[test]
fn weights_must_be_finite_and_non_negative() {
    let bad = [1.0f32, -2.0, 1.0];
    let inf = [1.0f32, 1.0, f32::INFINITY];
    let e = "finite and >= 0";
    all_fail(
        Focal::new(2.0).class_weights(&bad),
        &X,
        &T,
        param("class_weights", Some(1), -2.0, e),
    );
    all_fail(
        Focal::new(2.0).pos_weight(&inf),
        &X,
        &T,
        param("pos_weight", Some(2), f64::INFINITY, e),
    );
    let nan_rows = [1.0f32, f32::NAN];
    let err = Focal::new(2.0)
        .classes(3)
        .sample_weights(&nan_rows)
        .loss(&X, &T, Reduction::Sum);
    assert!(matches!(
        err,
        Err(Error::InvalidParameter {
            name: "sample_weights",
            index: Some(1),
            ..
        })
    ));
    all_fail(
        Focal::new(2.0).classes(3).sample_weights(&[-1.0, 1.0]),
        &X,
        &T,
        param("sample_weights", Some(0), -1.0, e),
    );
}

#[test]
fn label_smoothing_must_be_in_zero_one() {
    for eps in [1.0f32, -0.01, f32::NAN] {
        let err = Focal::new(2.0)
            .label_smoothing(eps)
            .loss(&X, &T, Reduction::Sum)
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidParameter {
                name: "label_smoothing",
                ..
            }
        ));
        all_fail(Focal::new(2.0).label_smoothing(eps), &X, &T, err);
    }
}

#[test]
fn scale_must_be_finite() {
    let f = Focal::new(2.0);
    let want = param("Reduction::Scale", None, f64::INFINITY, "finite");
    assert_eq!(f.loss(&X, &T, Reduction::Scale(f32::INFINITY)), Err(want));
    let mut acc = [7.0f32; 6];
    assert_eq!(
        f.loss_and_grad_accumulate(&X, &T, &mut acc, Reduction::Scale(f32::INFINITY)),
        Err(want)
    );
    assert_eq!(acc, [7.0; 6]);
    // A partial call's factor: the error names the variant that carried it.
    let e = f.partial(&X, &T, Grad::Accumulate(&mut acc, f32::NAN));
    assert!(matches!(
        e,
        Err(Error::InvalidParameter {
            name: "Grad::Accumulate",
            index: None,
            expected: "finite",
            ..
        })
    ));
    assert_eq!(acc, [7.0; 6]);
    let mut g = [7.0f32; 6];
    let want = param("Grad::Write", None, f64::NEG_INFINITY, "finite");
    let got = f.partial(&X, &T, Grad::Write(&mut g, f32::NEG_INFINITY));
    assert_eq!(got, Err(want));
    let sf = focal_loss::SoftmaxFocal::new(2.0);
    let got = sf.partial(&X, &[0u8, 1], Grad::Write(&mut g, f32::NEG_INFINITY));
    assert_eq!(got, Err(want));
    let p = f.partial(&X, &T, Grad::Skip).unwrap();
    assert_eq!(
        p.reduce(Reduction::Scale(f32::NAN)).map_err(|_| ()),
        Err(())
    );
}

#[test]
fn lengths_must_agree() {
    let f = Focal::new(2.0);
    let lm = |what, expected, found| Error::LengthMismatch {
        what,
        expected,
        found,
    };
    all_fail(f, &X, &T[..5], lm("targets", 6, 5));
    let mut short = [0f32; 5];
    assert_eq!(
        f.loss_and_grad(&X, &T, &mut short, Reduction::Sum),
        Err(lm("grad", 6, 5))
    );
    assert_eq!(f.loss_elementwise(&X, &T, &mut short), Err(lm("out", 6, 5)));
    let mut long = [1f32; 7];
    assert_eq!(
        f.loss_and_grad_accumulate(&X, &T, &mut long, Reduction::Sum),
        Err(lm("grad", 6, 7))
    );
    assert_eq!(long, [1.0; 7]);
    assert_eq!(
        f.partial(&X, &T, Grad::Write(&mut long, 1.0)),
        Err(lm("grad", 6, 7))
    );
    // Rows and classes.
    all_fail(
        f.classes(4),
        &X,
        &T,
        Error::NotMultipleOfClasses { len: 6, classes: 4 },
    );
    all_fail(
        f.classes(3).sample_weights(&[1.0; 3]),
        &X,
        &T,
        lm("sample_weights", 2, 3),
    );
    let w3 = [1.0f32; 3];
    let w2 = [1.0f32; 2];
    all_fail(
        f.class_weights(&w3).pos_weight(&w2),
        &X,
        &T,
        Error::ClassCountMismatch {
            what: "pos_weight",
            expected: 3,
            found: 2,
        },
    );
    all_fail(
        f.classes(2).alpha_per_class(&w3),
        &X,
        &T,
        Error::ClassCountMismatch {
            what: "alpha_per_class",
            expected: 2,
            found: 3,
        },
    );
    all_fail(f.classes(0), &X, &T, Error::ZeroClasses);
    all_fail(f.class_weights(&[]), &X, &T, Error::ZeroClasses);
}

#[test]
fn u8_targets_must_be_0_or_1() {
    let f = Focal::new(2.0);
    let t = [1u8, 0, 2, 1, 0, 0];
    let mut acc = [0.5f32; 6];
    let want = bad_target(2, 2.0);
    assert_eq!(f.loss(&X, &t, Reduction::Sum), Err(want));
    assert_eq!(
        f.loss_and_grad_accumulate(&X, &t, &mut acc, Reduction::Sum),
        Err(want)
    );
    assert_eq!(acc, [0.5; 6]);
}

/// A bad element inside long batches: in the first or second vector of a pair of the fast
/// loops (on every vector width), with hard, soft and smoothed targets, f32 and byte ones.
#[test]
fn bad_elements_in_long_batches_are_found() {
    // (Under Miri, about 1000x slower: one pair of 16-lane vectors and one more vector, one
    // position in each vector of the pair, one gamma.)
    let n = if cfg!(miri) { 48 } else { 200 };
    let x: Vec<f32> = (0..n).map(|i| (i % 13) as f32 - 6.0).collect();
    let hard: Vec<f32> = (0..n).map(|i| (i % 5 == 0) as u8 as f32).collect();
    let soft: Vec<f32> = (0..n).map(|i| (i % 10) as f32 / 9.0).collect();
    let (positions, gammas): (&[usize], &[f32]) = if cfg!(miri) {
        (&[5, 17], &[2.0])
    } else {
        (&[0, 5, 8, 17, 33, 40, 63, 70, 129, 199], &[0.5, 2.0, 2.5])
    };
    for &at in positions {
        for &gamma in gammas {
            let plain = Focal::new(gamma).alpha(0.25);
            let smoothed = plain.label_smoothing(0.1);
            for (f, t) in [(plain, &hard), (plain, &soft), (smoothed, &hard)] {
                let mut bad_x = x.clone();
                bad_x[at] = f32::NAN;
                all_fail(f, &bad_x, t, nan(at));
                let mut bad_t = t.clone();
                bad_t[at] = 1.5;
                let want = bad_target(at, 1.5);
                all_fail(f, &x, &bad_t, want);
            }
            let t8: Vec<u8> = hard.iter().map(|&v| v as u8).collect();
            let mut bad_x = x.clone();
            bad_x[at] = f32::NAN;
            let mut g = vec![0.0f32; n];
            for r in [Reduction::Mean, Reduction::PerPositive] {
                assert_eq!(plain.loss_and_grad(&bad_x, &t8, &mut g, r), Err(nan(at)));
            }
        }
    }
}

#[test]
fn data_must_be_valid() {
    let f = Focal::new(2.0);
    let mut x = X;
    x[4] = f32::NAN;
    all_fail(f, &x, &T, nan(4));
    let mut t = T;
    t[2] = 1.5;
    all_fail(f, &X, &t, bad_target(2, 1.5));
    t[2] = -0.0;
    assert!(f.loss(&X, &t, Reduction::Sum).is_ok());
    t[1] = -1e-30;
    all_fail(f, &X, &t, bad_target(1, -1e-30));
    let mut t = T;
    t[5] = f32::NAN;
    let err = f.loss(&X, &t, Reduction::Sum).unwrap_err();
    assert!(matches!(err, Error::TargetOutOfRange { index: 5, .. }));
    // The first bad element in index order is reported.
    let mut x = X;
    x[3] = f32::NAN;
    let mut t = T;
    t[1] = 2.0;
    assert_eq!(f.loss(&x, &t, Reduction::Sum), Err(bad_target(1, 2.0)));
    // With a class count, the error locates the element: 6 = 2 rows of 3 classes.
    assert_eq!(
        f.classes(3).loss(&x, &t, Reduction::Sum),
        Err(Error::TargetOutOfRange {
            index: 1,
            row: 0,
            class: 1,
            value: 2.0
        })
    );
    let mut x = X;
    x[5] = f32::NAN;
    for f in [f.classes(3), f.class_weights(&[1.0; 3])] {
        assert_eq!(
            f.loss(&x, &T, Reduction::Sum),
            Err(Error::NanLogit {
                index: 5,
                row: 1,
                class: 2
            })
        );
    }
    let mut t = T;
    t[4] = 1.5;
    assert_eq!(
        f.classes(2).positives(&t),
        Err(Error::TargetOutOfRange {
            index: 4,
            row: 2,
            class: 0,
            value: 1.5
        })
    );
    assert_eq!(f.positives(&t), Err(bad_target(4, 1.5)));
    // Infinite logits are valid.
    let x = [f32::INFINITY, f32::NEG_INFINITY];
    assert!(f.loss(&x, &[1.0, 1.0], Reduction::Sum).is_ok());
}

#[test]
fn class_balanced_weights_reject_bad_input() {
    let mut w = [0f32; 3];
    assert_eq!(
        class_balanced_weights(&[5, 0, 2], 0.9, &mut w),
        Err(Error::ZeroCount { index: 1 })
    );
    assert_eq!(w, [0.0; 3]);
    for beta in [1.0, -0.1, f64::NAN, 1.5] {
        let e = class_balanced_weights(&[5, 1, 2], beta, &mut w).unwrap_err();
        assert!(
            matches!(e, Error::InvalidParameter { name: "beta", .. }),
            "{beta}"
        );
    }
    assert_eq!(
        class_balanced_weights(&[5, 1], 0.9, &mut w),
        Err(Error::LengthMismatch {
            what: "out",
            expected: 2,
            found: 3
        })
    );
    assert_eq!(
        class_balanced_weights(&[], 0.9, &mut []),
        Err(Error::ZeroClasses)
    );
}

#[test]
fn empty_batches_are_fine() {
    let f = Focal::new(2.0);
    let none: &[f32] = &[];
    assert_eq!(f.loss(none, none, Reduction::Mean), Ok(0.0));
    assert_eq!(f.loss(none, none, Reduction::PerPositive), Ok(0.0));
    assert_eq!(
        f.loss_and_grad(none, none, &mut [0f32; 0], Reduction::Sum),
        Ok(0.0)
    );
    assert_eq!(f.classes(5).loss(none, none, Reduction::Sum), Ok(0.0));
    assert_eq!(f.loss(none, &[0u8; 0], Reduction::Sum), Ok(0.0));
}

#[test]
fn errors_name_what_is_wrong() {
    let s = |e: Error| e.to_string();
    assert_eq!(s(nan(3)), "logits[3] (row 0, class 3) is NaN");
    assert_eq!(
        s(Error::NanLogit {
            index: 7,
            row: 2,
            class: 1
        }),
        "logits[7] (row 2, class 1) is NaN"
    );
    assert_eq!(
        s(bad_target(2, 1.5)),
        "targets[2] (row 0, class 2) = 1.5 is outside [0, 1]"
    );
    assert_eq!(
        s(param("class_weights", Some(1), -2.0, "finite and >= 0")),
        "class_weights[1] = -2 must be finite and >= 0"
    );
    assert_eq!(
        s(param("gamma", None, -1.0, "finite and >= 0")),
        "gamma = -1 must be finite and >= 0"
    );
    assert_eq!(
        s(Error::LengthMismatch {
            what: "grad",
            expected: 6,
            found: 5
        }),
        "grad has length 5, expected 6"
    );
    let e: &dyn core::error::Error = &Error::ZeroClasses;
    assert_eq!(e.to_string(), "the number of classes is zero");
}
