//! Property tests: every option against the f64 oracle, on every available backend, with the one
//! tolerance table of `common`.

mod common;

use common::{Opts, kappas, loss_grad, within_opts};
use focal_loss::{Backend, Focal, Modulator, Reduction};
use proptest::prelude::*;

/// Logits from every range that matters: near 0, moderate, the peers' failure bands around
/// 17, 88 and 104, up to 1e4 and the f32 extremes, plus subnormal and signed zeros.
fn logit() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => -6.0f32..6.0,
        // Near 0 with a soft target and gamma near 5: where the modulator's error is largest.
        1 => -0.05f32..0.05,
        2 => -30.0f32..30.0,
        1 => 15.0f32..19.0,
        1 => -19.0f32..-15.0,
        1 => 86.0f32..90.0,
        1 => -90.0f32..-86.0,
        1 => 100.0f32..108.0,
        1 => -108.0f32..-100.0,
        1 => -1e4f32..1e4,
        1 => prop::sample::select(vec![
            0.0f32, -0.0, 1e-45, -1e-45, 1e-38, -1e-38, 1e-7, f32::MAX, f32::MIN, 3e38, -3e38,
        ]),
    ]
}

fn target() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => prop::sample::select(vec![0.0f32, 1.0]),
        2 => 0.0f32..=1.0,
        1 => prop::sample::select(vec![1e-30f32, 1e-40, 1e-45, 1e-7, 0.5, 1.0 - 6e-8, 0.999]),
    ]
}

/// Class weights: mostly of order one, and across the documented range `[2^-30, 2^30]`
/// (where a weight above 1 once scaled a subnormal intermediate of a confident element).
fn class_weight() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => 0.0f32..4.0,
        1 => (-30.0f32..30.0).prop_map(f32::exp2),
    ]
}

fn modulator() -> impl Strategy<Value = Modulator> {
    prop::sample::select(vec![
        Modulator::Linear,
        Modulator::Geometric,
        Modulator::Separable,
    ])
}

fn gamma() -> impl Strategy<Value = f32> {
    prop_oneof![
        prop::sample::select(vec![0.0f32, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0]),
        0.0f32..5.0,
        4.5f32..5.0,
    ]
}

#[derive(Clone, Debug)]
struct Case {
    classes: usize,
    x: Vec<f32>,
    t: Vec<f32>,
    gamma: f32,
    modulator: Modulator,
    /// 0: none, 1: scalar, 2: per class.
    alpha_kind: u8,
    alpha: Vec<f32>,
    class_w: Option<Vec<f32>>,
    pos_w: Option<Vec<f32>>,
    sample_w: Option<Vec<f32>>,
    eps: f32,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..20, 0usize..5).prop_flat_map(|(classes, rows)| {
        let n = classes * rows;
        (
            prop::collection::vec(logit(), n),
            prop::collection::vec(target(), n),
            gamma(),
            modulator(),
            0u8..3,
            prop::collection::vec(0.0f32..=1.0, classes),
            prop::option::of(prop::collection::vec(class_weight(), classes)),
            prop::option::of(prop::collection::vec(0.0f32..4.0, classes)),
            prop::option::of(prop::collection::vec(0.0f32..3.0, rows)),
            prop_oneof![3 => Just(0.0f32), 1 => 0.0f32..0.3],
        )
            .prop_map(
                move |(
                    x,
                    t,
                    gamma,
                    modulator,
                    alpha_kind,
                    alpha,
                    class_w,
                    pos_w,
                    sample_w,
                    eps,
                )| Case {
                    classes,
                    x,
                    t,
                    gamma,
                    modulator,
                    alpha_kind,
                    alpha,
                    class_w,
                    pos_w,
                    sample_w,
                    eps,
                },
            )
    })
}

fn build(c: &Case) -> Focal<'_> {
    let mut f = Focal::new(c.gamma)
        .modulator(c.modulator)
        .classes(c.classes)
        .label_smoothing(c.eps);
    f = match c.alpha_kind {
        1 => f.alpha(c.alpha[0]),
        2 => f.alpha_per_class(&c.alpha),
        _ => f,
    };
    if let Some(w) = &c.class_w {
        f = f.class_weights(w);
    }
    if let Some(w) = &c.pos_w {
        f = f.pos_weight(w);
    }
    if let Some(w) = &c.sample_w {
        f = f.sample_weights(w);
    }
    f
}

fn oracle_opts(c: &Case, i: usize) -> Opts {
    let (row, col) = (i / c.classes, i % c.classes);
    let alpha = match c.alpha_kind {
        1 => Some(c.alpha[0] as f64),
        2 => Some(c.alpha[col] as f64),
        _ => None,
    };
    let cw = c.class_w.as_ref().map_or(1.0, |w| w[col] as f64);
    let sw = c.sample_w.as_ref().map_or(1.0, |w| w[row] as f64);
    Opts {
        gamma: c.gamma as f64,
        alpha,
        pos_weight: c.pos_w.as_ref().map_or(1.0, |w| w[col] as f64),
        weight: cw * sw,
        eps: c.eps as f64,
        modulator: c.modulator,
    }
}

fn check(c: &Case, backend: Backend) -> Result<(), TestCaseError> {
    let f = build(c).backend(backend);
    let n = c.x.len();
    let mut l = vec![0f32; n];
    let mut g = vec![0f32; n];
    f.loss_elementwise(&c.x, &c.t, &mut l).unwrap();
    let sum = f.loss_and_grad(&c.x, &c.t, &mut g, Reduction::Sum).unwrap();
    let (mut exact, mut elem_err) = (0f64, 0f64);
    for i in 0..n {
        let o = oracle_opts(c, i);
        let (x, t) = (c.x[i] as f64, c.t[i] as f64);
        let (wl, wg) = loss_grad(x, t, &o);
        exact += wl;
        elem_err += ((l[i] as f64) - wl).abs();
        let hard = (t == 0.0 || t == 1.0) && c.eps == 0.0;
        let (kl, kg) = if hard { (0.0, 0.0) } else { kappas(x, t, &o) };
        prop_assert!(
            within_opts(l[i], wl, kl, hard, &o, x, t),
            "{backend:?} loss at {i}: x={} t={} got {} want {wl:e} kappa {kl} opts {o:?}",
            c.x[i],
            c.t[i],
            l[i]
        );
        prop_assert!(
            within_opts(g[i], wg, kg, hard, &o, x, t),
            "{backend:?} grad at {i}: x={} t={} got {} want {wg:e} kappa {kg} opts {o:?}",
            c.x[i],
            c.t[i],
            g[i]
        );
        prop_assert!(l[i].is_finite() || l[i] == f32::INFINITY);
        prop_assert!(g[i].is_finite());
    }
    // The reduced sum: exact accumulation of the same element values, rounded once.
    if exact.is_finite() && exact < f32::MAX as f64 {
        prop_assert!(
            ((sum as f64) - exact).abs() <= elem_err + common::ulp(exact),
            "sum {sum} vs {exact}, element errors {elem_err:e}"
        );
    }
    Ok(())
}

/// Where a soft target's modulator error peaks: gamma near 5, logits near 0, soft targets
/// (64 elements a case, plain options: nothing else to blame).
fn near_zero_case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(-0.05f32..0.05, 64),
        prop::collection::vec(0.0f32..=1.0, 64),
        4.0f32..5.0,
        modulator(),
    )
        .prop_map(|(x, t, gamma, modulator)| Case {
            classes: 1,
            x,
            t,
            gamma,
            modulator,
            alpha_kind: 0,
            alpha: vec![0.0],
            class_w: None,
            pos_w: None,
            sample_w: None,
            eps: 0.0,
        })
}

proptest! {
    // Case count: proptest's default (256) or the PROPTEST_CASES environment variable.
    #[test]
    fn every_option_matches_the_oracle(c in case()) {
        for b in Backend::available() {
            check(&c, b)?;
        }
    }

    #[test]
    fn soft_targets_near_zero_at_high_gamma(c in near_zero_case()) {
        for b in Backend::available() {
            check(&c, b)?;
        }
    }
}
