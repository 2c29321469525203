//! The f64 oracle, written from the formulas of `docs/numerics.md` (not from `src/`), and the one tolerance table.
#![allow(dead_code)]

use focal_loss::Modulator;

/// Everything one element's loss depends on, in f64.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    pub gamma: f64,
    /// `None`: no alpha (`alpha_t = 1`).
    pub alpha: Option<f64>,
    pub pos_weight: f64,
    /// Class weight times sample weight.
    pub weight: f64,
    pub eps: f64,
    pub modulator: Modulator,
}

impl Opts {
    pub fn plain(gamma: f64) -> Opts {
        Opts {
            gamma,
            alpha: None,
            pos_weight: 1.0,
            weight: 1.0,
            eps: 0.0,
            modulator: Modulator::Linear,
        }
    }
}

/// `softplus(z) = ln(1 + e^z)` without overflow.
pub fn sp(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// `(p, q) = (sigmoid(x), sigmoid(-x))`, each from `e = exp(-|x|)`.
pub fn pq(x: f64) -> (f64, f64) {
    let e = (-x.abs()).exp();
    let (big, small) = (1.0 / (1.0 + e), e / (1.0 + e));
    if x >= 0.0 { (big, small) } else { (small, big) }
}

/// Loss and derivative of one element, straight from the formulas of `docs/numerics.md`:
/// `L = w alpha_t m CE` (Linear, Geometric) or the Separable sum of two terms.
pub fn loss_grad(x: f64, t_raw: f64, o: &Opts) -> (f64, f64) {
    let t = t_raw * (1.0 - o.eps) + o.eps / 2.0;
    loss_grad_split(x, t, 1.0 - t, o)
}

/// [`loss_grad`] of the (smoothed) target `t` with its complement `omt` (`1 - t`) given
/// apart, so that each can be perturbed alone ([`kappas`]); `o.eps` is not applied.
pub fn loss_grad_split(x: f64, t: f64, omt: f64, o: &Opts) -> (f64, f64) {
    let g = o.gamma;
    let (p, q) = pq(x);
    let (spx, spn) = (sp(x), sp(-x));
    let wp = o.pos_weight;
    if o.modulator == Modulator::Separable {
        let (ap, an) = o.alpha.map_or((1.0, 1.0), |a| (a, 1.0 - a));
        let lpos = ap * wp * t * q.powf(g) * spn;
        let lneg = an * omt * p.powf(g) * spx;
        let dpos = -ap * wp * t * q.powf(g) * (q + g * p * spn);
        let dneg = an * omt * p.powf(g) * (p + g * q * spx);
        return (o.weight * (lpos + lneg), o.weight * (dpos + dneg));
    }
    let ce = wp * t * spn + omt * spx;
    let dce = omt * p - wp * t * q;
    let alpha_t = o.alpha.map_or(1.0, |a| a * t + (1.0 - a) * omt);
    let (m, dm) = match o.modulator {
        Modulator::Linear => {
            // 1 - p_t = t q + (1 - t) p; dm/dx = g m (1 - 2t) p q / (1 - p_t), with
            // p q / (1 - p_t) = e / ((1 + e)(t e + 1 - t)) for x >= 0 (mirrored for x < 0).
            let b = t * q + omt * p;
            let m = b.powf(g);
            let e = (-x.abs()).exp();
            let (a_e, a_1) = if x >= 0.0 { (t, omt) } else { (omt, t) };
            let pqb = if a_1 == 0.0 {
                1.0 / (1.0 + e) / a_e
            } else {
                e / ((1.0 + e) * (a_e * e + a_1))
            };
            (m, g * m * (omt - t) * pqb)
        }
        _ => {
            // ln m = -g (t sp(x) + (1 - t) sp(-x)), d ln m / dx = g ((1 - t) - p).
            let m = (-g * (t * spx + omt * spn)).exp();
            (m, m * g * (omt * q - t * p))
        }
    };
    let ce_dm = if dm == 0.0 { 0.0 } else { ce * dm };
    (
        o.weight * alpha_t * m * ce,
        o.weight * alpha_t * (m * dce + ce_dm),
    )
}

/// One unit in the last place of the f32 nearest to `v` (`2^-149` in the subnormal range).
pub fn ulp(v: f64) -> f64 {
    let a = v.abs();
    if a < f32::MIN_POSITIVE as f64 {
        return (2f64).powi(-149);
    }
    let e = a.log2().floor();
    // Guard against log2 rounding at exact powers of two.
    let mut u = (2f64).powf(e - 23.0);
    if a < (2f64).powf(e) {
        u /= 2.0;
    }
    u
}

/// The error of `got` in ULP of the truth `want`; infinities must match exactly.
pub fn ulps(got: f32, want: f64) -> f64 {
    if got.is_nan() {
        return f64::INFINITY;
    }
    // The f32 range ends at f32::MAX: a truth beyond MAX + ulp/2 rounds to inf.
    if want.abs() >= f32::MAX as f64 * (1.0 + (2f64).powi(-25)) {
        let same = got.is_infinite() && (got > 0.0) == (want > 0.0);
        return if same { 0.0 } else { f64::INFINITY };
    }
    if got.is_infinite() {
        return f64::INFINITY;
    }
    ((got as f64) - want).abs() / ulp(want)
}

/// The one tolerance table, in ULP of the f32-rounded truth.
///
/// - Hard targets (0 or 1, no smoothing): `HARD_ULP`.
/// - Soft targets: `SOFT_ULP * (1 + kappa) + GAMMA_ULP * gamma`, with `kappa` the condition
///   number of the value for relative perturbations of `x`, `t'` and `1 - t'` ([`kappas`]).
///   The `gamma` term: a soft target's modulator is `exp(-gamma (A + B))` (or a power of its
///   base), with `A` exact and `B = -ln(1 - p_t) - A` formed from the computed `e = e^-|x|`
///   and `l = ln(1 + e)`. Each carries up to one ULP of a value below 1 (relative error of
///   `e` at most `1.02 2^-23`, `l` with its correction within one ULP), and
///   `|dB / d ln e| <= 1`, so `B` has an absolute error of about `2^-23`, which the modulator
///   turns into a relative error of `gamma 2^-23`: one or two ULP of the result per unit of
///   `gamma`. An error of `e` is not a perturbation of `x` (the exact `A` does not move with
///   it), so `kappa` does not cover it. (Hard targets have `B = l` alone, whose error is
///   damped by `e / (1 + e) <= 1/2`: `HARD_ULP` covers it up to `gamma = 5`.) Measured: the
///   soft loss at gamma 4.5-5 near `x = 0` reaches 8.9 ULP with `kappa` about 0.03.
/// - Results in or near the subnormal range: also allowed `SUB_ABS` units of `2^-149`, times
///   `1 + weight` where a weight above 1 may scale an intermediate subnormal (whose rounding
///   is absolute, not relative): `e^-|x|` beyond `|x| = 87`, a hard target's modulator beyond
///   `gamma |x| = 87`, and a soft target whose `pos_weight t` is subnormal (it is multiplied
///   by `sp(-x)` too, so also times `1 + |x|`). Below those bounds no weighted allowance: a
///   hard target's weight multiplies its modulator first, and a soft target's moves its power of two into the modulator
///   where `m CE` is tiny (`tests/adversarial.rs` 6 and 7). (Before that order, a weight of 500 on a confident element
///   gave 67 / 249 ULP of the loss / gradient, which this allowance, then granted everywhere,
///   hid; `tests/adversarial.rs`.)
/// - Options that multiply in f32 (alpha, class, sample and positive weights, each product
///   rounded once, at most 0.5 ULP): `WEIGHT_ULP` more.
pub const HARD_ULP: f64 = 8.0;
pub const SOFT_ULP: f64 = 8.0;
pub const SUB_ABS: f64 = 4.0;
pub const WEIGHT_ULP: f64 = 2.0;
pub const GAMMA_ULP: f64 = 2.0;
/// `e^-|x|` is a normal f32 below this `|x|` (`-ln 2^-126 = 87.34`), a hard target's
/// modulator `e^-gamma (|x| + l)` (or more) below this `gamma |x|`.
pub const E_NORMAL_MAX: f64 = 87.0;

/// The tolerance in ULP (before the subnormal allowance) of a result with condition number
/// `kappa`, for hard or soft targets, at exponent `gamma`.
pub fn tolerance(kappa: f64, gamma: f64, hard: bool) -> f64 {
    if hard {
        HARD_ULP
    } else {
        SOFT_ULP * (1.0 + kappa) + GAMMA_ULP * gamma
    }
}

/// Whether a result passes the table.
pub fn within(got: f32, want: f64, kappa: f64, gamma: f64, hard: bool, weight: f64) -> bool {
    let u = ulps(got, want);
    let tol = tolerance(kappa, gamma, hard);
    u <= tol || ((got as f64) - want).abs() <= SUB_ABS * (1.0 + weight) * (2f64).powi(-149)
}

/// [`within`] for an element at logit `x` computed with options `o` (adds `WEIGHT_ULP` when
/// weights or alpha multiply).
pub fn within_opts(got: f32, want: f64, kappa: f64, hard: bool, o: &Opts, x: f64, t: f64) -> bool {
    let weighted = o.alpha.is_some() || o.weight != 1.0 || o.pos_weight != 1.0;
    let extra = if weighted { WEIGHT_ULP } else { 0.0 };
    let u = ulps(got, want);
    let tol = extra + tolerance(kappa, o.gamma, hard);
    // Every weight above 1 (pos_weight included) scales a possibly subnormal intermediate,
    // for hard targets only a subnormal `e^-|x|` or modulator.
    let normal_intermediates =
        x.is_finite() && x.abs() < E_NORMAL_MAX && o.gamma * x.abs() < E_NORMAL_MAX;
    let ts = t * (1.0 - o.eps) + o.eps / 2.0;
    let tiny_target = !hard && o.pos_weight * ts < f32::MIN_POSITIVE as f64;
    let scaled = if normal_intermediates && !tiny_target {
        0.0
    } else if tiny_target {
        // `pos_weight t` rounded into the subnormal range is multiplied by `sp(-x)` as well.
        o.weight * o.pos_weight.max(1.0) * (1.0 + x.abs())
    } else {
        o.weight * o.pos_weight.max(1.0)
    };
    u <= tol || within(got, want, kappa, o.gamma, hard, scaled)
}

/// Condition numbers of the loss and of the gradient for independent relative perturbations
/// of `x`, of the (smoothed) target `t'` and of its complement `1 - t'`, each
/// `|a dv/da / v|` by a relative central difference of the oracle, summed.
///
/// This is the conditioning the kernel's inputs force: `t'` is exact, or (with smoothing)
/// rounded relative to itself (once, or twice without FMA), and `1 - t'` is rounded relative
/// to itself, plus, with
/// smoothing, `t'`'s rounding carried into it (`t' / (1 - t')` times as large). (This
/// helper took an absolute step of `1e-7` in `t'` before, `|dv/dt| max(t', 1 - t') / v`: for
/// a target like `1e-24` that perturbs it by 17 orders of magnitude and allowed almost any
/// error, which hid three defects of tiny soft targets, `tests/adversarial.rs` 7.)
pub fn kappas(x: f64, t: f64, o: &Opts) -> (f64, f64) {
    let ts = t * (1.0 - o.eps) + o.eps / 2.0;
    let omt = 1.0 - ts;
    let carried = if o.eps == 0.0 || omt == 0.0 {
        0.0
    } else {
        ts / omt
    };
    let o = Opts { eps: 0.0, ..*o };
    let (l, g) = loss_grad_split(x, ts, omt, &o);
    let h = 1e-6;
    let d = |f: &dyn Fn(f64) -> (f64, f64)| {
        let (lp, gp) = f(1.0 + h);
        let (lm, gm) = f(1.0 - h);
        (((lp - lm) / (2.0 * h)).abs(), ((gp - gm) / (2.0 * h)).abs())
    };
    let (lx, gx) = d(&|s| loss_grad_split(x * s, ts, omt, &o));
    let (lt, gt) = d(&|s| loss_grad_split(x, ts * s, omt, &o));
    let (lo, go) = d(&|s| loss_grad_split(x, ts, omt * s, &o));
    let k = |v: f64, dx: f64, dt: f64, dom: f64| {
        if v == 0.0 {
            0.0
        } else {
            (dx + dt + dom * (1.0 + carried)) / v.abs()
        }
    };
    (k(l, lx, lt, lo), k(g, gx, gt, go))
}
pub mod softmax;
