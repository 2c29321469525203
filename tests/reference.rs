//! Fixed reference values from peer implementations. Every value below was printed by the peer
//! expression written next to it, run on this machine (Python 3.11, jax 0.10.2, optax 0.2.8,
//! numpy 2.4.6); the numbers are the `repr` of the printed float64 (or of the float32 result
//! converted to float64), pasted in full. torch is not installed: torchvision's formula and the
//! original class-balanced TensorFlow code are evaluated as numpy float64 expressions.
//!
//! Common Python preamble of the snippets below:
//!
//! ```python
//! import numpy as np, jax, jax.numpy as jnp, optax
//! jax.config.update("jax_enable_x64", True)          # float64 unless stated
//! X8 = [-4.5, -2.0, -0.75, 0.0, 0.5, 1.25, 3.0, 4.75]  # exact in f32
//! x16 = np.array(X8 + X8); t16 = np.array([1.0] * 8 + [0.0] * 8)
//! x8 = np.array(X8)
//! ts = np.float32([0.1, 0.9, 0.3, 0.75, 0.25, 0.6, 0.95, 0.05]).astype(np.float64)
//! P = lambda a: print([repr(float(v)) for v in np.asarray(a)])
//! ```
//!
//! Inputs are the exact f32 values the crate sees (`np.float32(...).astype(np.float64)` where a
//! value is not exact in f32). Every float64 peer value was also checked against mpmath at 60
//! digits (values, and `mpmath.diff` for gradients): relative error below 6e-16, except the
//! class-balanced weights (naive `1 - beta**n`: 4.9e-15). So the whole tolerance is the crate's.
//!
//! Each check runs on every backend the host has (`Backend::available()`).

use focal_loss::{Backend, Focal, Modulator, Reduction, class_balanced_weights};

/// Relative tolerance against a float64 peer: 4e-7, about 4 ULP of f32 (one ULP is 2^-23 =
/// 1.19e-7 relative at the bottom of a binade, 2^-24 at the top, so 4e-7 is 3.4 to 6.7 ULP).
/// Results in the f32 subnormal range are compared with the same tolerance relative to
/// `f32::MIN_POSITIVE` (about 3 subnormal steps); a peer value below half the smallest
/// subnormal must come out as 0.
const TOL_F64_PEER: f64 = 4e-7;

/// Relative tolerance against optax run in float32: the peer's own error on these inputs is at
/// most 2.7e-7 relative (measured against mpmath at 60 digits), plus the crate's 4e-7.
const TOL_F32_PEER: f64 = 7e-7;

const X8: [f32; 8] = [-4.5, -2.0, -0.75, 0.0, 0.5, 1.25, 3.0, 4.75];

/// `ts` of the preamble: `np.float32([...])`, the same f32 values.
const TS8: [f32; 8] = [0.1, 0.9, 0.3, 0.75, 0.25, 0.6, 0.95, 0.05];

/// `x16`, `t16` of the preamble: `X8` twice, targets 1 then 0.
fn hard16() -> ([f32; 16], [f32; 16]) {
    let x = core::array::from_fn(|i| X8[i % 8]);
    let t = core::array::from_fn(|i| if i < 8 { 1.0 } else { 0.0 });
    (x, t)
}

/// Compares crate values to peer values; collects every failure, then panics with all of them.
fn check(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut bad = Vec::new();
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let scale = w.abs().max(f32::MIN_POSITIVE as f64);
        let err = (g as f64 - w).abs() / scale;
        if err.is_nan() || err > tol {
            bad.push(format!(
                "  [{i}] crate {g:e} ({:.17e}) peer {w:.17e} rel err {err:.3e}",
                g as f64
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{what}: {} of {} values outside {tol:e}:\n{}",
        bad.len(),
        got.len(),
        bad.join("\n")
    );
}

fn check1(what: &str, got: f32, want: f64, tol: f64) {
    check(what, &[got], &[want], tol);
}

fn elementwise(f: &Focal<'_>, x: &[f32], t: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    f.loss_elementwise(x, t, &mut out).unwrap();
    out
}

fn loss_grad(f: &Focal<'_>, x: &[f32], t: &[f32], r: Reduction) -> (f32, Vec<f32>) {
    let mut g = vec![f32::NAN; x.len()];
    let l = f.loss_and_grad(x, t, &mut g, r).unwrap();
    (l, g)
}

// ---------------------------------------------------------------------------------------------
// optax.sigmoid_focal_loss (Linear modulator), element by element
// ---------------------------------------------------------------------------------------------

/// `P(optax.sigmoid_focal_loss(x16, t16, alpha=0.25, gamma=2.0))`
const OPTAX_F64_G2_A025: [f64; 16] = [
    1.1031167602471563,
    0.41251954485535225,
    0.13110501756948612,
    0.04332169878499658,
    0.01689337262937591,
    0.00312362785656021,
    2.7320831124249382e-05,
    1.5844890483392756e-07,
    1.000204058685563e-06,
    0.001352672126430281,
    0.029864402976805406,
    0.12996509635498973,
    0.2830587006445573,
    0.6805936145398966,
    2.0747103307689465,
    3.507998023407003,
];

/// `P(optax.sigmoid_focal_loss(x16, t16, gamma=0.5))` (no alpha)
const OPTAX_F64_G05: [f64; 16] = [
    4.486197989233064,
    1.9961387406593925,
    0.9369215304095099,
    0.4901290717342736,
    0.2912934651463975,
    0.11888814391910811,
    0.010581101849395962,
    0.0007978279575377745,
    0.001158009344472559,
    0.043822880991204426,
    0.21912795243032135,
    0.4901290717342736,
    0.7685086723022159,
    1.3241699302723622,
    2.9754183296501915,
    4.7381620585529864,
];

#[test]
fn optax_f64_focal_hard_targets() {
    let (x, t) = hard16();
    for b in Backend::available() {
        let f = Focal::new(2.0).alpha(0.25).backend(b);
        let what = format!("optax f64 gamma 2 alpha 0.25 {b:?}");
        check(
            &what,
            &elementwise(&f, &x, &t),
            &OPTAX_F64_G2_A025,
            TOL_F64_PEER,
        );
        let f = Focal::new(0.5).backend(b);
        let what = format!("optax f64 gamma 0.5 {b:?}");
        check(
            &what,
            &elementwise(&f, &x, &t),
            &OPTAX_F64_G05,
            TOL_F64_PEER,
        );
    }
}

#[test]
fn optax_f32_focal_hard_targets() {
    // jax.config.update("jax_enable_x64", True) is irrelevant here: the inputs are float32.
    // P(optax.sigmoid_focal_loss(jnp.asarray(x16, jnp.float32),
    //                            jnp.asarray(t16, jnp.float32), alpha=0.25, gamma=2.0))
    let g2_a025 = [
        1.103116750717163,
        0.41251957416534424,
        0.13110502064228058,
        0.043321698904037476,
        0.01689337193965912,
        0.0031236279755830765,
        2.732083339651581e-05,
        1.5844889844629506e-07,
        1.0002039516621153e-06,
        0.001352671766653657,
        0.02986440435051918,
        0.12996509671211243,
        0.28305870294570923,
        0.6805936098098755,
        2.0747103691101074,
        3.50799822807312,
    ];
    // P(optax.sigmoid_focal_loss(jnp.asarray(x16, jnp.float32),
    //                            jnp.asarray(t16, jnp.float32), gamma=0.5))
    let g05 = [
        4.4861979484558105,
        1.9961388111114502,
        0.9369214773178101,
        0.4901290535926819,
        0.2912934720516205,
        0.11888813972473145,
        0.010581102222204208,
        0.0007978279609233141,
        0.0011580092832446098,
        0.04382287710905075,
        0.21912795305252075,
        0.4901290535926819,
        0.7685086727142334,
        1.3241698741912842,
        2.9754183292388916,
        4.738162040710449,
    ];
    let (x, t) = hard16();
    for b in Backend::available() {
        let f = Focal::new(2.0).alpha(0.25).backend(b);
        let what = format!("optax f32 gamma 2 alpha 0.25 {b:?}");
        check(&what, &elementwise(&f, &x, &t), &g2_a025, TOL_F32_PEER);
        let f = Focal::new(0.5).backend(b);
        let what = format!("optax f32 gamma 0.5 {b:?}");
        check(&what, &elementwise(&f, &x, &t), &g05, TOL_F32_PEER);
    }
}

#[test]
fn optax_f64_focal_soft_targets() {
    // P(optax.sigmoid_focal_loss(x8, ts, alpha=0.25, gamma=2.0))
    let g2_a025 = [
        0.0038196041190484867,
        0.3742720920425206,
        0.06735426810747822,
        0.06498254817749487,
        0.16715074785016257,
        0.06686688400734049,
        0.00046912363202896324,
        2.9103398021165043,
    ];
    // P(optax.sigmoid_focal_loss(x8, ts, gamma=0.5))
    let g05 = [
        0.15206858668405138,
        1.728485149502216,
        0.4004500750120362,
        0.4901290717342736,
        0.6360882572245651,
        0.5013399279147892,
        0.06045780821153849,
        4.388696529014017,
    ];
    for b in Backend::available() {
        let f = Focal::new(2.0).alpha(0.25).backend(b);
        let what = format!("optax f64 soft gamma 2 alpha 0.25 {b:?}");
        check(&what, &elementwise(&f, &X8, &TS8), &g2_a025, TOL_F64_PEER);
        let f = Focal::new(0.5).backend(b);
        let what = format!("optax f64 soft gamma 0.5 {b:?}");
        check(&what, &elementwise(&f, &X8, &TS8), &g05, TOL_F64_PEER);
    }
}

#[test]
fn optax_f64_binary_cross_entropy() {
    // P(optax.sigmoid_binary_cross_entropy(x16, t16))
    let hard = [
        4.511047744848594,
        2.1269280110429727,
        1.1368710061148999,
        core::f64::consts::LN_2, // printed 0.6931471805599453
        0.4740769841801067,
        0.2519290813453729,
        0.04858735157374206,
        0.008614483762175558,
        0.011047744848593818,
        0.1269280110429725,
        0.3868710061149,
        core::f64::consts::LN_2, // printed 0.6931471805599453
        0.9740769841801067,
        1.501929081345373,
        3.048587351573742,
        4.758614483762176,
    ];
    // P(optax.sigmoid_binary_cross_entropy(x8, ts))
    let soft = [
        0.46104775155411637,
        1.9269279633592569,
        0.6118710150555966,
        core::f64::consts::LN_2, // printed 0.6931471805599453
        0.8490769841801067,
        0.7519290515430506,
        0.19858738733652892,
        4.52111448022315,
    ];
    let (x, t) = hard16();
    for b in Backend::available() {
        let f = Focal::new(0.0).backend(b);
        check(
            &format!("optax f64 BCE hard {b:?}"),
            &elementwise(&f, &x, &t),
            &hard,
            TOL_F64_PEER,
        );
        check(
            &format!("optax f64 BCE soft {b:?}"),
            &elementwise(&f, &X8, &TS8),
            &soft,
            TOL_F64_PEER,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// torchvision.ops.sigmoid_focal_loss, its expression evaluated in numpy float64 (|x| <= 5)
// ---------------------------------------------------------------------------------------------

/// torchvision sigmoid_focal_loss expression, evaluated in numpy float64:
///
/// ```python
/// def tv(x, t, alpha, gamma, red):
///     p = 1 / (1 + np.exp(-x))
///     ce = np.maximum(x, 0) - x*t + np.log1p(np.exp(-np.abs(x)))  # BCE with logits
///     p_t = p*t + (1-p)*(1-t)
///     loss = ce * (1-p_t)**gamma
///     if alpha >= 0: loss = (alpha*t + (1-alpha)*(1-t)) * loss
///     return loss.mean() if red == "mean" else loss.sum()
/// ```
#[test]
fn torchvision_expression_numpy_f64() {
    let (x, t) = hard16();
    // (label, gamma, alpha or None for torchvision's alpha=-1, logits, targets, mean, sum)
    #[allow(clippy::type_complexity)]
    let cases: [(&str, f32, Option<f32>, &[f32], &[f32], f64, f64); 3] = [
        // repr(tv(x16, t16, 0.25, 2.0, "mean")), repr(tv(x16, t16, 0.25, 2.0, "sum"))
        (
            "hard",
            2.0,
            Some(0.25),
            &x,
            &t,
            0.5261032088903528,
            8.417651342245644,
        ),
        // repr(tv(x16, t16, -1, 0.5, "mean")), repr(tv(x16, t16, -1, 0.5, "sum"))
        (
            "hard",
            0.5,
            None,
            &x,
            &t,
            1.1807152985116691,
            18.891444776186706,
        ),
        // repr(tv(x8, ts, 0.25, 2.0, "mean")), repr(tv(x8, ts, 0.25, 2.0, "sum"))
        (
            "soft",
            2.0,
            Some(0.25),
            &X8,
            &TS8,
            0.4569068837565724,
            3.655255070052579,
        ),
    ];
    for b in Backend::available() {
        for (kind, gamma, alpha, x, t, mean, sum) in cases {
            let f = Focal::new(gamma).backend(b);
            let f = alpha.map_or(f, |a| f.alpha(a));
            let what = format!("torchvision {kind} gamma {gamma} alpha {alpha:?} {b:?}");
            check1(
                &format!("{what} mean"),
                f.loss(x, t, Reduction::Mean).unwrap(),
                mean,
                TOL_F64_PEER,
            );
            check1(
                &format!("{what} sum"),
                f.loss(x, t, Reduction::Sum).unwrap(),
                sum,
                TOL_F64_PEER,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Gradients: jax.grad of optax.sigmoid_focal_loss, float64
// ---------------------------------------------------------------------------------------------

#[test]
fn optax_f64_grad_sum_gamma2_alpha025() {
    // fs = lambda x: jnp.sum(optax.sigmoid_focal_loss(x, t16, alpha=0.25, gamma=2.0))
    // repr(float(fs(x16))) -> 8.417651342245644;  P(jax.grad(fs)(x16))
    let loss = 8.417651342245644;
    let grad = [
        -0.26608975726124395,
        -0.26917843261212043,
        -0.1624460813109509,
        -0.07457169878499659,
        -0.034484249337728604,
        -0.007617213933095605,
        -7.871796162207033e-05,
        -4.719480059207398e-07,
        2.973129097405799e-06,
        0.003653205146544573,
        0.0653322465215915,
        0.22371509635498973,
        0.39461386640593726,
        0.6553671453464962,
        0.8450624104761664,
        0.7910453280942588,
    ];
    let (x, t) = hard16();
    for b in Backend::available() {
        let f = Focal::new(2.0).alpha(0.25).backend(b);
        let (l, g) = loss_grad(&f, &x, &t, Reduction::Sum);
        check1(
            &format!("optax sum loss gamma 2 {b:?}"),
            l,
            loss,
            TOL_F64_PEER,
        );
        check(
            &format!("jax.grad optax sum gamma 2 {b:?}"),
            &g,
            &grad,
            TOL_F64_PEER,
        );
    }
}

#[test]
fn optax_f64_grad_sum_gamma05() {
    // fs = lambda x: jnp.sum(optax.sigmoid_focal_loss(x, t16, gamma=0.5))
    // repr(float(fs(x16))) -> 18.891444776186706;  P(jax.grad(fs)(x16))
    let loss = 18.891444776186706;
    let grad = [
        -1.0082097365983638,
        -0.9456078011227923,
        -0.7100189709566895,
        -0.4760856585268422,
        -0.3226365328560928,
        -0.15130054875790683,
        -0.015367803025701347,
        -0.0011898936659781795,
        0.0017242793211441356,
        0.0604552668096537,
        0.25613019865171355,
        0.4760856585268422,
        0.6361677248440303,
        0.8327498116309384,
        1.0002673398454893,
        1.0074821593924714,
    ];
    let (x, t) = hard16();
    for b in Backend::available() {
        let f = Focal::new(0.5).backend(b);
        let (l, g) = loss_grad(&f, &x, &t, Reduction::Sum);
        check1(
            &format!("optax sum loss gamma 0.5 {b:?}"),
            l,
            loss,
            TOL_F64_PEER,
        );
        check(
            &format!("jax.grad optax sum gamma 0.5 {b:?}"),
            &g,
            &grad,
            TOL_F64_PEER,
        );
    }
}

#[test]
fn optax_f64_grad_mean_gamma2_alpha025() {
    // fm = lambda x: jnp.mean(optax.sigmoid_focal_loss(x, t16, alpha=0.25, gamma=2.0))
    // repr(float(fm(x16))) -> 0.5261032088903528;  P(jax.grad(fm)(x16))
    let loss = 0.5261032088903528;
    let grad = [
        -0.016630609828827747,
        -0.016823652038257527,
        -0.010152880081934431,
        -0.004660731174062287,
        -0.0021552655836080377,
        -0.00047607587081847534,
        -4.9198726013793955e-06,
        -2.9496750370046237e-08,
        1.8582056858786244e-07,
        0.0002283253216590358,
        0.004083265407599469,
        0.013982193522186858,
        0.02466336665037108,
        0.04096044658415601,
        0.0528164006547604,
        0.04944033300589117,
    ];
    let (x, t) = hard16();
    for b in Backend::available() {
        let f = Focal::new(2.0).alpha(0.25).backend(b);
        let (l, g) = loss_grad(&f, &x, &t, Reduction::Mean);
        check1(
            &format!("optax mean loss gamma 2 {b:?}"),
            l,
            loss,
            TOL_F64_PEER,
        );
        check(
            &format!("jax.grad optax mean gamma 2 {b:?}"),
            &g,
            &grad,
            TOL_F64_PEER,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Large |x|, where torchvision in float32 returns 0 or NaN: optax float64
// ---------------------------------------------------------------------------------------------

/// ```python
/// xl = np.array([-30.0, 20.0, 60.0] * 2); tl = np.array([1.0] * 3 + [0.0] * 3)
/// ```
/// Values checked against mpmath (60 digits): relative error below 2e-15. Some true values are
/// f32 subnormals (about 1e-39) or round to 0 in f32 (1.7e-79, 5.0e-79): see `TOL_F64_PEER`.
#[test]
fn optax_f64_large_logits() {
    let x = [-30.0f32, 20.0, 60.0, -30.0, 20.0, 60.0];
    let t = [1.0f32, 1.0, 1.0, 0.0, 0.0, 0.0];
    // P(optax.sigmoid_focal_loss(xl, tl, alpha=0.25, gamma=2.0))
    let loss_g2 = [
        7.499999999998619,
        2.1891276793938117e-27,
        1.6785460720528984e-79,
        6.145509467991463e-40,
        14.999999939711255,
        45.0,
    ];
    // P(jax.grad(lambda x: jnp.sum(optax.sigmoid_focal_loss(x, tl, alpha=0.25, gamma=2.0)))(xl))
    let grad_g2 = [
        -0.25000000000133377,
        -6.567383026901118e-27,
        -5.0356382161586955e-79,
        1.8436528403972977e-39,
        0.7500000571970131,
        0.75,
    ];
    // P(optax.sigmoid_focal_loss(xl, tl, gamma=0.5))
    let loss_g05 = [
        29.99999999999869,
        9.35762294955268e-14,
        8.194012623990515e-40,
        2.8625185805491276e-20,
        19.999999981449616,
        60.0,
    ];
    // P(jax.grad(lambda x: jnp.sum(optax.sigmoid_focal_loss(x, tl, gamma=0.5)))(xl))
    let grad_g05 = [
        -1.0000000000012645,
        -1.403643440504153e-13,
        -1.2291018935985772e-39,
        4.293777870823429e-20,
        1.0000000175198063,
        1.0,
    ];
    // P(optax.sigmoid_binary_cross_entropy(xl, tl))
    let bce = [
        30.000000000000092,
        2.061153620314381e-09,
        8.75651076269652e-27,
        9.357622968839737e-14,
        20.000000002061153,
        60.0,
    ];
    for b in Backend::available() {
        let f = Focal::new(2.0).alpha(0.25).backend(b);
        check(
            &format!("large loss gamma 2 {b:?}"),
            &elementwise(&f, &x, &t),
            &loss_g2,
            TOL_F64_PEER,
        );
        let (_, g) = loss_grad(&f, &x, &t, Reduction::Sum);
        check(
            &format!("large grad gamma 2 {b:?}"),
            &g,
            &grad_g2,
            TOL_F64_PEER,
        );
        let f = Focal::new(0.5).backend(b);
        check(
            &format!("large loss gamma 0.5 {b:?}"),
            &elementwise(&f, &x, &t),
            &loss_g05,
            TOL_F64_PEER,
        );
        let (_, g) = loss_grad(&f, &x, &t, Reduction::Sum);
        check(
            &format!("large grad gamma 0.5 {b:?}"),
            &g,
            &grad_g05,
            TOL_F64_PEER,
        );
        let f = Focal::new(0.0).backend(b);
        check(
            &format!("large BCE {b:?}"),
            &elementwise(&f, &x, &t),
            &bce,
            TOL_F64_PEER,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The original class-balanced TensorFlow code of Cui et al.: Geometric modulator, PerPositive
// ---------------------------------------------------------------------------------------------

/// The focal_loss of Cui et al., written in numpy float64 (and jax.numpy float64 for its
/// gradient, `xp=jnp`):
///
/// ```python
/// def cui(labels, logits, alpha, gamma, xp=np):
///     bce = xp.maximum(logits, 0) - logits*labels + xp.log1p(xp.exp(-xp.abs(logits)))
///     modulator = xp.exp(-gamma*labels*logits - gamma*xp.log1p(xp.exp(-logits)))
///     weighted = alpha * (modulator * bce)
///     return xp.sum(weighted) / xp.sum(labels)
/// x = np.array([[1.5, -0.5, 2.25, -3.0], [-1.0, 0.75, -2.5, 4.0], [0.25, -4.25, 3.5, -1.75]])
/// t = np.array([[1., 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1]])
/// w = np.array([0.5, 1.25, 2.0, 0.25])
/// ```
/// (`bce` is `tf.nn.sigmoid_cross_entropy_with_logits`.)
const CUI_X: [f32; 12] = [
    1.5, -0.5, 2.25, -3.0, -1.0, 0.75, -2.5, 4.0, 0.25, -4.25, 3.5, -1.75,
];
const CUI_T: [f32; 12] = [1., 0., 1., 0., 0., 1., 0., 0., 0., 0., 1., 1.];
const CUI_W: [f32; 4] = [0.5, 1.25, 2.0, 0.25];

#[test]
fn cui_tf_expression_class_weights() {
    // for g in [2.0, 0.5]: print(repr(float(cui(t, x, w, g))))
    //                      P(jax.grad(lambda z: cui(t, z, w, g, jnp))(x).ravel())
    let cases: [(f32, f64, [f64; 12]); 2] = [
        (
            2.0,
            0.3195194898132297,
            [
                -0.0017031105223235927,
                0.034484249337728604,
                -0.001006079651577034,
                1.5743592324414067e-05,
                0.005258112997756062,
                -0.021777415507197168,
                0.0005102339714651582,
                0.05431979265424178,
                0.04062434130020272,
                2.0763612858825713e-06,
                -2.99241012289327e-05,
                -0.051444904173229666,
            ],
        ),
        (
            0.5,
            0.5256864328243288,
            [
                -0.011308274027048267,
                0.08065913321402318,
                -0.017375501672377627,
                0.0007683901512850675,
                0.019885432179961856,
                -0.06403254966292837,
                0.01237322307282051,
                0.05044757815239828,
                0.055707799867655616,
                0.0006239550548667924,
                -0.002996239488971153,
                -0.04584394912335265,
            ],
        ),
    ];
    for b in Backend::available() {
        for (gamma, loss, grad) in cases {
            let f = Focal::new(gamma)
                .class_weights(&CUI_W)
                .modulator(Modulator::Geometric)
                .backend(b);
            let (l, g) = loss_grad(&f, &CUI_X, &CUI_T, Reduction::PerPositive);
            let what = format!("Cui class weights gamma {gamma} {b:?}");
            check1(&format!("{what} loss"), l, loss, TOL_F64_PEER);
            check(&format!("{what} grad"), &g, &grad, TOL_F64_PEER);
        }
    }
}

#[test]
fn cui_tf_expression_soft_targets() {
    // Where Geometric differs from Linear: soft labels.
    // ts3 = np.float32([[0.9, 0.1, 0.8, 0.0], [0.2, 0.7, 0.05, 0.3], [0.0, 0.4, 1.0, 0.6]])
    //       .astype(np.float64)
    // repr(float(cui(ts3, x, w, 2.0)));  P(jax.grad(lambda z: cui(ts3, z, w, 2.0, jnp))(x).ravel())
    let t: [f32; 12] = [0.9, 0.1, 0.8, 0.0, 0.2, 0.7, 0.05, 0.3, 0.0, 0.4, 1.0, 0.6];
    let loss = 0.10870155263967866;
    let grad = [
        -0.002609730690337283,
        0.03217458357605584,
        -0.00594025113471963,
        1.558771510139485e-05,
        0.0065605557114163035,
        -0.01937199576762829,
        0.0011187646077257926,
        -0.003930283685776981,
        0.04022211991524977,
        0.002380628533867484,
        -2.9627822863436738e-05,
        0.0013989774782114436,
    ];
    for b in Backend::available() {
        let f = Focal::new(2.0)
            .class_weights(&CUI_W)
            .modulator(Modulator::Geometric)
            .backend(b);
        let (l, g) = loss_grad(&f, &CUI_X, &t, Reduction::PerPositive);
        check1(&format!("Cui soft loss {b:?}"), l, loss, TOL_F64_PEER);
        check(&format!("Cui soft grad {b:?}"), &g, &grad, TOL_F64_PEER);
    }
}

#[test]
fn cui_tf_expression_per_row_weights() {
    // The original single-label use: every column of a row gets the weight of its true class.
    // lab = [2, 1, 3]; oh = np.eye(4)[lab]; wr = w[lab][:, None] * np.ones((1, 4))
    // repr(float(cui(oh, x, wr, 2.0)));  P(jax.grad(lambda z: cui(oh, z, wr, 2.0, jnp))(x).ravel())
    let t: [f32; 12] = [0., 0., 1., 0., 0., 1., 0., 0., 0., 0., 0., 1.];
    let rows = [CUI_W[2], CUI_W[1], CUI_W[3]];
    let loss = 2.859124599826007;
    let grad = [
        0.6409497916469068,
        0.09195799823394293,
        -0.0016767994192950575,
        0.00020991456432552087,
        0.02190880415731692,
        -0.03629569251199528,
        0.0005314937202762064,
        0.4526649387853481,
        0.03385361775016893,
        6.921204286275236e-07,
        0.09246600939818328,
        -0.08574150695538277,
    ];
    for b in Backend::available() {
        let f = Focal::new(2.0)
            .classes(4)
            .sample_weights(&rows)
            .modulator(Modulator::Geometric)
            .backend(b);
        let (l, g) = loss_grad(&f, &CUI_X, &t, Reduction::PerPositive);
        check1(&format!("Cui per-row loss {b:?}"), l, loss, TOL_F64_PEER);
        check(&format!("Cui per-row grad {b:?}"), &g, &grad, TOL_F64_PEER);
    }
}

// ---------------------------------------------------------------------------------------------
// The seed's VidHOI setting: 50 classes, Zipf-like counts, beta 0.9999, gamma 0.5
// ---------------------------------------------------------------------------------------------

const VIDHOI_C: usize = 50;

/// `counts = np.array([max(1, round(200000 / (c + 1) ** 2)) for c in range(50)])`
/// (200000, 50000, 22222, 12500, ..., 83, 80; no ties, so Python's round-half-even and
/// Rust's round-half-away agree).
fn vidhoi_counts() -> [u64; VIDHOI_C] {
    core::array::from_fn(|c| ((200_000.0 / ((c + 1) * (c + 1)) as f64).round() as u64).max(1))
}

/// 3 rows x 50 classes:
/// ```python
/// i = np.arange(150)
/// lg = ((np.float32((i * 37) % 101) - np.float32(50.0)) / np.float32(10.0)).astype(np.float64)
/// tg = ((i * 13) % 7 == 0).astype(np.float64)      # 22 positives (8, 7, 7 per row)
/// lg, tg = lg.reshape(3, 50), tg.reshape(3, 50)
/// ```
fn vidhoi_batch() -> (Vec<f32>, Vec<f32>) {
    (0..3 * VIDHOI_C)
        .map(|i| {
            let x = ((i * 37 % 101) as f32 - 50.0) / 10.0;
            let t = if i * 13 % 7 == 0 { 1.0 } else { 0.0 };
            (x, t)
        })
        .unzip()
}

/// Cui et al. reference code, numpy float64:
/// ```python
/// beta = 0.9999
/// effective_num = 1.0 - np.power(beta, samples_per_cls)       # samples_per_cls = counts
/// weights = (1.0 - beta) / np.array(effective_num)
/// weights = weights / np.sum(weights) * no_of_classes          # no_of_classes = 50
/// P(weights)
/// ```
const VIDHOI_WEIGHTS: [f64; VIDHOI_C] = [
    0.023015394892432192,
    0.02317148404665703,
    0.025812383129598215,
    0.03225644282078713,
    0.04179381544231748,
    0.05399024575234112,
    0.06866830137727042,
    0.0857516942101515,
    0.10519359749214353,
    0.12696227127637877,
    0.15105173280878853,
    0.17746333036241776,
    0.2062759191635731,
    0.2373331478292846,
    0.27055607510262725,
    0.3063341019830154,
    0.3442161967341408,
    0.38462836810270495,
    0.42703351950620333,
    0.47188847682256874,
    0.5185164489404559,
    0.5688325292408098,
    0.6204226331618901,
    0.6748089512883877,
    0.7307642005838957,
    0.7890727158786698,
    0.8514961656678437,
    0.9140759818018562,
    0.9785383908486479,
    1.0482279378679003,
    1.1180016336403573,
    1.1917627429758606,
    1.2623171227449348,
    1.3418440040749733,
    1.423455774684265,
    1.5059686674217188,
    1.5878537868226406,
    1.6672353694004918,
    1.7683453471143968,
    1.8526711974181986,
    1.9455006108594706,
    2.0481881373186646,
    2.1424769359882845,
    2.2459200800638426,
    2.336197802821617,
    2.4340779247346176,
    2.540562959977194,
    2.656839793146649,
    2.7843241058709673,
    2.888303548785094,
];

#[test]
fn vidhoi_class_balanced_weights() {
    let counts = vidhoi_counts();
    // print(list(counts)): the first and last few.
    assert_eq!(counts[..4], [200_000, 50_000, 22_222, 12_500]);
    assert_eq!(counts[46..], [91, 87, 83, 80]);
    let mut w = [0f32; VIDHOI_C];
    class_balanced_weights(&counts, 0.9999, &mut w).unwrap();
    check(
        "VidHOI class-balanced weights",
        &w,
        &VIDHOI_WEIGHTS,
        TOL_F64_PEER,
    );
}

#[test]
fn vidhoi_cb_focal_loss() {
    // The Cui expression `cui` above, with the float64 weights of `VIDHOI_WEIGHTS` (the crate
    // uses its own f32 weights from `class_balanced_weights`):
    // cw = np.broadcast_to(weights, (3, 50))
    // repr(float(cui(tg, lg, cw, 0.5)))                              -> 8.073527291152475
    // gr = np.asarray(jax.grad(lambda z: cui(tg, z, cw, 0.5, jnp))(lg)).ravel()
    // [(k, lg.ravel()[k], tg.ravel()[k], repr(float(gr[k]))) for k in idx]
    let loss = 8.073527291152475;
    // (index, logit as printed, target, gradient)
    let grads: [(usize, f64, f32, f64); 10] = [
        (0, -5.0, 1.0, -0.001053138416283345),
        (1, -1.2999999523162842, 0.0, 0.00015054598244258418),
        (7, 0.699999988079071, 1.0, -0.001047444725896888),
        (49, 4.599999904632568, 1.0, -0.00019518242790557763),
        (50, -1.7999999523162842, 0.0, 8.175398606200974e-05),
        (63, -4.199999809265137, 1.0, -0.010883079466472441),
        (99, -2.299999952316284, 0.0, 0.0053320423184267576),
        (100, 1.399999976158142, 0.0, 0.000901807204864203),
        (140, -2.0999999046325684, 1.0, -0.08445003538918977),
        (149, 0.8999999761581421, 0.0, 0.0985574256929492),
    ];
    let (x, t) = vidhoi_batch();
    // The data is the data Python used.
    for &(k, xk, tk, _) in &grads {
        assert_eq!((x[k] as f64, t[k]), (xk, tk), "VidHOI element {k}");
    }
    assert_eq!(t.iter().sum::<f32>(), 22.0);
    let mut w = [0f32; VIDHOI_C];
    class_balanced_weights(&vidhoi_counts(), 0.9999, &mut w).unwrap();
    for b in Backend::available() {
        let f = Focal::new(0.5)
            .class_weights(&w)
            .modulator(Modulator::Geometric)
            .backend(b);
        let (l, g) = loss_grad(&f, &x, &t, Reduction::PerPositive);
        check1(&format!("VidHOI loss {b:?}"), l, loss, TOL_F64_PEER);
        let got: Vec<f32> = grads.iter().map(|&(k, ..)| g[k]).collect();
        let want: Vec<f64> = grads.iter().map(|&(.., gk)| gk).collect();
        check(&format!("VidHOI grad {b:?}"), &got, &want, TOL_F64_PEER);
    }
}
