//! Each preset against the peer it names, with the generating expression next to each value
//! (Python 3.11, numpy, jax/optax in float64, on the crate's exact f32 inputs):
//!
//! ```python
//! f32 = lambda v: np.float32(v).astype(np.float64)
//! x  = f32([-6.0, -2.5, -0.75, 0.125, 0.4, 1.75, 3.5, 7.25])
//! t  = f32([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
//! ts = f32([0.9, 0.1, 0.7, 0.3, 0.55, 0.05, 0.8, 0.2])
//! ```
//!
//! No logit is exactly 0: there jax differentiates the peers' `max(x, 0) + log1p(exp(-|x|))`
//! with `d|x|/dx = 1` and returns 0 instead of `sigmoid(0) = 0.5` for the cross-entropy term.

use focal_loss::{Focal, Reduction, class_balanced_weights};

/// 4e-7 relative: about 4 ULP of f32 against a float64 peer.
const TOL: f64 = 4e-7;

const X: [f32; 8] = [-6.0, -2.5, -0.75, 0.125, 0.4, 1.75, 3.5, 7.25];
const T: [f32; 8] = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
const TS: [f32; 8] = [0.9, 0.1, 0.7, 0.3, 0.55, 0.05, 0.8, 0.2];

fn close(what: &str, got: f32, want: f64) {
    let err = ((got as f64) - want).abs() / want.abs().max(f32::MIN_POSITIVE as f64);
    assert!(err <= TOL, "{what}: {got} vs {want:e} (relative {err:e})");
}

/// The torchvision expression, numpy float64:
/// ```python
/// def tv(x, t, alpha, gamma):
///     p = 1/(1+np.exp(-x)); ce = np.maximum(x,0) - x*t + np.log1p(np.exp(-np.abs(x)))
///     pt = p*t + (1-p)*(1-t); loss = ce*(1-pt)**gamma
///     if alpha >= 0: loss = (alpha*t + (1-alpha)*(1-t))*loss
///     return loss
/// ```
#[test]
fn torchvision_preset() {
    // tv(x, t, 0.25, 2.0).mean()
    close(
        "mean",
        Focal::torchvision(0.25, 2.0)
            .loss(&X, &T, Reduction::Mean)
            .unwrap(),
        1.0344789983202702,
    );
    // tv(x, t, -1, 1.5).sum(): alpha = -1 disables alpha balancing, as in torchvision
    close(
        "no alpha",
        Focal::torchvision(-1.0, 1.5)
            .loss(&X, &T, Reduction::Sum)
            .unwrap(),
        15.78722511263451,
    );
    // tv(x, ts, 0.25, 2.0).sum(): soft targets, Linear modulator
    close(
        "soft",
        Focal::torchvision(0.25, 2.0)
            .loss(&X, &TS, Reduction::Sum)
            .unwrap(),
        4.928905265740026,
    );
    // jax.grad(lambda xx: optax.sigmoid_focal_loss(xx, t, alpha=0.25, gamma=2.0).mean())(x)
    let want = [
        -0.0319417989353971,
        0.00011958608706214642,
        -0.020305760163868862,
        0.03284403189122429,
        -0.005111295107423955,
        0.0964591953248056,
        -2.3378204085103672e-06,
        0.09451398057870483,
    ];
    let mut g = [0f32; 8];
    Focal::torchvision(0.25, 2.0)
        .loss_and_grad(&X, &T, &mut g, Reduction::Mean)
        .unwrap();
    for i in 0..8 {
        close("grad", g[i], want[i]);
    }
}

/// kornia's `binary_focal_loss_with_logits` expression, numpy float64:
/// ```python
/// def kornia(x, t, alpha, gamma):
///     pp = 1/(1+np.exp(-x)); pn = 1/(1+np.exp(x))
///     ls = lambda z: -(np.maximum(-z,0) + np.log1p(np.exp(-np.abs(z))))  # logsigmoid
///     return -alpha*pn**gamma*t*ls(x) - (1-alpha)*pp**gamma*(1-t)*ls(-x)
/// kornia(x, ts, 0.25, 2.0)
/// ```
#[test]
fn kornia_preset() {
    let want = [
        1.3438864146447853,
        0.055368181724843805,
        0.10073283198479975,
        0.1226621984480686,
        0.12180713112249603,
        0.9879149758776662,
        0.4988831056039264,
        4.344253391203714,
    ];
    let mut l = [0f32; 8];
    Focal::kornia(0.25, 2.0)
        .loss_elementwise(&X, &TS, &mut l)
        .unwrap();
    for i in 0..8 {
        close("kornia", l[i], want[i]);
    }
}

/// The `focal_loss` of Cui et al.'s TensorFlow code, numpy float64 (jax.numpy for the
/// gradient), on `X` as 2 rows x 4 classes:
/// ```python
/// def cui(labels, logits, alpha, gamma, xp=np):
///     bce = xp.maximum(logits,0) - logits*labels + xp.log1p(xp.exp(-xp.abs(logits)))
///     mod = xp.exp(-gamma*labels*logits - gamma*xp.log1p(xp.exp(-logits)))
///     return xp.sum(alpha*(mod*bce))/xp.sum(labels)
/// w = f32([0.25, 0.5, 1.25, 2.0])
/// ```
#[test]
fn tf_original_preset() {
    let w = [0.25f32, 0.5, 1.25, 2.0];
    let f = Focal::tf_original(2.0).class_weights(&w);
    let mut g = [0f32; 8];
    let l = f
        .loss_and_grad(&X, &T, &mut g, Reduction::PerPositive)
        .unwrap();
    // cui(T, X, w, 2.0)
    close("loss", l, 4.442824491310929);
    // jax.grad(lambda xx: cui(T, xx, w, 2.0, jnp))(X).ravel()
    let want = [
        -0.06388359787079428,
        0.00015944811608286193,
        -0.2030576016386887,
        0.17516817008652955,
        -0.010222590214847909,
        0.12861226043307414,
        -2.337820408510364e-05,
        0.5040745630864257,
    ];
    for i in 0..8 {
        close("grad", g[i], want[i]);
    }
}

/// VidHOI: class-balanced weights (beta 0.9999) from the reference code of Cui et al.,
/// ```python
/// counts = np.array([150000, 9000, 300, 7]); beta = 0.9999
/// eff = 1.0 - np.power(beta, counts); cw = (1.0-beta)/eff; cw = cw/np.sum(cw)*len(counts)
/// cw32 = f32(cw.astype(np.float32))
/// ```
/// then `cui(T, X, cw32, 0.5)` and its jax gradient.
#[test]
fn vidhoi_preset() {
    let mut w = [0f32; 4];
    class_balanced_weights(&[150_000, 9_000, 300, 7], 0.9999, &mut w).unwrap();
    let cw = [
        0.00272940878366779,
        0.004599231981606527,
        0.09234724362303777,
        3.9003241156116877,
    ];
    for i in 0..4 {
        close("weight", w[i], cw[i]);
    }
    let mut g = [0f32; 8];
    let l = Focal::vidhoi(&w)
        .loss_and_grad(&X, &T, &mut g, Reduction::PerPositive)
        .unwrap();
    close("loss", l, 7.634043264744626);
    let want = [
        -0.0006848803580030486,
        3.5567075338638614e-05,
        -0.016392073422897068,
        0.5037201646454063,
        -0.00023985519538611096,
        0.0010542347342772439,
        -0.00017293403312034373,
        0.9765510365786648,
    ];
    for i in 0..8 {
        close("grad", g[i], want[i]);
    }
}
