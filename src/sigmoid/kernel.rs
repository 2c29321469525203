//! The numeric core: one element's weighted loss and its derivative, written once over [`Lane`].
//!
//! Notation (see `docs/numerics.md`): `e = exp(-|x|)`, `l = ln(1+e)`,
//! `r = 1/(1+e)`; for `x >= 0`, `p = r`, `q = e r`, and the other way round for `x < 0`.
//! `sp(x) = max(x, 0) + l`, `sp(-x) = max(-x, 0) + l`. Nothing is ever formed as `1 - p`.
//!
//! For gamma 0, 1 and 2, the modulators of hard targets, and the Linear and Separable ones of
//! soft targets, are products of `p`, `q` or `1 - p_t`, and for gamma 0.5 their correctly
//! rounded square roots. Every other modulator is computed in
//! log space as `m = exp(-gamma (A + B))` with `A` an exact f32 (`|x|`, `0`, or `u |x|`) and
//! `B` a value of order one. The product `gamma * A` is split
//! into `hi + lo` exactly, so `m` carries the error of `exp` and of `gamma * B` only (a few
//! ULP) even where `gamma * |x|` is 80 and a naive `exp(gamma * log q)` would lose 6 bits.

use crate::backend::lane::{Lane, Two};
use crate::math;
use crate::sum::two_sum;

/// The three modulator conventions, as const-generic tags of [`element`].
pub(crate) const LINEAR: u8 = 0;
pub(crate) const GEOMETRIC: u8 = 1;
pub(crate) const SEPARABLE: u8 = 2;

/// `2^64`: softplus values beyond it are carried scaled (see `element_soft`).
const TWO_64: f32 = 18_446_744_073_709_551_616.0;
/// `2^-46`: below it the square of a modulator base is below `2^-92 ~ e^-64`, where
/// [`modulator_split`] splits too.
const TWO_M46: f32 = 1.0 / 70_368_744_177_664.0;
/// `2^-100` (bits `0x0d80_0000`): a soft target's `m CE` below it may have lost digits in a
/// subnormal intermediate; with a weight of 2 or more, `element_soft` forms it again scaled.
const TWO_M100: f32 = f32::from_bits(0x0d80_0000);

/// Parameters that are the same for every element of a call.
#[derive(Clone, Copy)]
pub(crate) struct Consts<L> {
    pub gamma: L,
    /// Label smoothing `t' = t * keep + half_eps` (`keep = 1 - eps`, `half_eps = eps / 2`).
    pub keep: L,
    pub half_eps: L,
    /// No label smoothing: a vector whose targets are all 0 or 1 may take the hard path.
    pub may_be_hard: bool,
    /// `gamma` when it is 0, 1 or 2, else `u32::MAX`. The modulator of a hard target, and the
    /// Linear and Separable ones of a soft target, are then products of `p`, `q` or
    /// `1 - p_t = (u e + v) r`, whose error grows as `gamma` times that of the base (5.6 ULP
    /// measured for the hard gradient at 2, 4.6 for the soft loss): 3 and above take the
    /// exact-argument `exp`.
    pub int_gamma: u32,
    /// `gamma = 0.5`: the modulator of a hard target, and the Linear and Separable ones of a
    /// soft target, are then `sqrt(b)`, correctly rounded, so their error is half that of `b`
    /// plus half an ULP (no `exp`).
    pub half_gamma: bool,
    /// `gamma` is a power of two, at least 1: `gamma * a` is then exact (or overflows, on the
    /// lanes [`log_modulator`] marks dead), so its rounding error is 0 without being formed
    /// (which, without a fused multiply-add, takes Dekker's 17 operations).
    pub exact_gamma: bool,
    /// Some lane's weight `W` or `pos_weight t` may be 2 or more: the soft path tests for
    /// its rescaling by weight ([`element_soft_run`]). `false` only where the job's weights
    /// are known to be smaller (then the test could not fire: skipping it changes no bit).
    pub rescale_w: bool,
}

impl<L: Lane> Consts<L> {
    /// The constants of exponent `gamma` and label smoothing `eps`; `rescale_w` as the field.
    pub fn new(gamma: f32, eps: f32, rescale_w: bool) -> Self {
        Consts {
            gamma: L::splat(gamma),
            keep: L::splat(1.0 - eps),
            half_eps: L::splat(0.5 * eps),
            may_be_hard: eps == 0.0,
            rescale_w,
            int_gamma: if gamma == 0.0 || gamma == 1.0 || gamma == 2.0 {
                gamma as u32
            } else {
                u32::MAX
            },
            half_gamma: gamma == 0.5,
            exact_gamma: gamma >= 1.0 && gamma.is_finite() && gamma.to_bits() & 0x007f_ffff == 0,
        }
    }

    /// The same parameters for [`Two`] lanes.
    #[cfg_attr(not(opt_level_0), inline(always))]
    pub fn two(&self) -> Consts<Two<L>> {
        let two = |v: L| Two(v, v);
        Consts {
            gamma: two(self.gamma),
            keep: two(self.keep),
            half_eps: two(self.half_eps),
            may_be_hard: self.may_be_hard,
            int_gamma: self.int_gamma,
            half_gamma: self.half_gamma,
            exact_gamma: self.exact_gamma,
            rescale_w: self.rescale_w,
        }
    }

    /// The modulator of a hard target, and the Linear and Separable ones of a soft target,
    /// are powers of their base ([`power_split`]), not an `exp`.
    #[cfg_attr(not(opt_level_0), inline(always))]
    pub fn power(&self) -> bool {
        self.int_gamma <= 2 || self.half_gamma
    }
}

/// Per-element weights (per class, per row, or defaults).
#[derive(Clone, Copy)]
pub(crate) struct Weights<L> {
    /// Alpha of the positive and of the negative term (`alpha`, `1 - alpha`; 1 and 1 when
    /// alpha is not set).
    pub a_pos: L,
    pub a_neg: L,
    /// PyTorch `pos_weight`: multiplies the positive cross-entropy term.
    pub w_pos: L,
    /// Whole-element weight: class weight times sample weight (0 in padding lanes).
    pub w: L,
    /// The whole weight of a hard target, `min(w a_pos w_pos, MAX)` where `t = 1` and
    /// `min(w a_neg, MAX)` where `t = 0` (formed once per class, 0 in padding lanes).
    pub h_pos: L,
    pub h_neg: L,
}

impl<L: Lane> Weights<L> {
    /// The weights of two vectors as those of one [`Two`].
    #[cfg_attr(not(opt_level_0), inline(always))]
    pub fn two(a: &Self, b: &Self) -> Weights<Two<L>> {
        Weights {
            a_pos: Two(a.a_pos, b.a_pos),
            a_neg: Two(a.a_neg, b.a_neg),
            w_pos: Two(a.w_pos, b.w_pos),
            w: Two(a.w, b.w),
            h_pos: Two(a.h_pos, b.h_pos),
            h_neg: Two(a.h_neg, b.h_neg),
        }
    }
}

/// `1 / (1 + e)` for `e` in `[0, 1]`, within 0.5 ULP plus `2^-27` relative, although
/// `1 + e` itself is rounded.
///
/// With a fused multiply-add: from `y ~ 1/(1+e)` (relative error `d <= 2^-14`, clamped to at
/// least `1/2` so that `1 - y` is exact by Sterbenz's lemma), the residual of the exact
/// denominator `eps = 1 - y (1 + e) = (1 - y) - y e` is formed with one rounding (`|eps| <=
/// 2^-14`, so its error is below `2^-38`), and `1/(1+e) = y / (1 - eps) = y (1 + eps) +
/// O(eps^2)`.
///
/// Without one: `u = fl(1 + e)`, its exact error `u_lo = e - (u - 1)`, and
/// `1/(1+e) = r (1 - r u_lo)` to first order with `r ~ 1/u`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn inv_1p<L: Lane>(e: L) -> L {
    let one = L::splat(1.0);
    let u = one + e;
    if L::FMA {
        let y = u.recip_approx().max(L::splat(0.5));
        let eps = (-y).mul_add(e, one - y);
        y.mul_add(eps, y)
    } else {
        let u_lo = e - (u - one);
        let r = u.recip_1_2();
        (-(r * u_lo)).mul_add(r, r)
    }
}

/// `exp(-gamma (a + b))` as `(s, d, dead)` with the result `exp(s) (1 + d)`, or exactly 0 on
/// the lanes `dead` (where `gamma (a + b) > 256`, so that `e^-256` already rounds to 0; this
/// also covers every overflow of `gamma a` or `gamma b` for huge `gamma` or `|x|`, whose
/// `s` and `d` are then meaningless and must not be used).
///
/// `gamma * a` is split exactly into `hi + lo` and `gamma * b` into `c + c_lo`, and `hi + c`
/// into `s + err` (TwoSum), so that the modulator carries only the errors of `exp` and of `b`
/// even where `gamma |x|` is 80 and a plain `exp(gamma ln q)` would lose 6 bits.
///
/// With `CHECK = false` the caller guarantees `gamma <= FAST_GAMMA_MAX`, `0 <= a < FAST_X_MAX`
/// and `0 <= b <= 1`, so that nothing overflows: no lane is marked dead, and a lane that would
/// be gets `s <= -256`, whose `exp` is exactly 0 all the same (`d` is then finite), so the
/// results have the same bits as with the check.
#[cfg_attr(not(opt_level_0), inline(always))]
fn log_modulator<L: Lane, const CHECK: bool>(a: L, b: L, k: &Consts<L>) -> (L, L, L::Mask) {
    let hi = -k.gamma * a;
    let c = -k.gamma * b;
    let (lo, c_lo) = if !L::FMA && k.exact_gamma {
        (L::splat(0.0), L::splat(0.0))
    } else {
        (L::mul_err(-k.gamma, a, hi), L::mul_err(-k.gamma, b, c))
    };
    let (s, err) = two_sum(hi, c);
    let d = (lo + c_lo) + err;
    let zero = L::splat(0.0);
    if !CHECK {
        return (s, d, zero.lt(zero));
    }
    let dead = L::splat(256.0).lt(k.gamma * (a + b));
    // Dead lanes get s = d = 0 (finite), and their result is replaced by 0.
    (L::select(dead, zero, s), L::select(dead, zero, d), dead)
}

/// `m = exp(-gamma (a + b + b_lo))`, see [`log_modulator`], `b_lo` a correction of `b` below
/// its rounding (0 if none): `exp(s + d) = exp(s) (1 + d)` for the tiny correction `d`, into
/// which `-gamma b_lo` joins (exactly as nothing, for `b_lo = 0`).
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn modulator<L: Lane, const CHECK: bool>(a: L, b: L, b_lo: L, k: &Consts<L>) -> L {
    let (s, d, dead) = log_modulator::<L, CHECK>(a, b, k);
    let d = (-k.gamma).mul_add(b_lo, d);
    let m = s.exp();
    let m = m.mul_add(d, m);
    if CHECK {
        L::select(dead, L::splat(0.0), m)
    } else {
        m
    }
}

/// [`modulator`] as `(m', k)` with `m = m' k`. When `m < e^-64`, it is returned as the square
/// of `m' = exp(ln m / 2)` (`k = m'`): the caller multiplies `k` in last, so that a tiny
/// modulator times a large cross-entropy (soft targets at large `|x|`) never passes through a
/// subnormal `m` with few significant bits, and no partial product exceeds the result by
/// more than `e^32`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn modulator_split<L: Lane>(a: L, b: L, k: &Consts<L>) -> (L, L) {
    let (s, d, dead) = log_modulator::<L, true>(a, b, k);
    split_exp(s, d, dead)
}

/// `exp(s) (1 + d)` as `(m', k)`, see [`modulator_split`]; 0 on the lanes `dead`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn split_exp<L: Lane>(s: L, d: L, dead: L::Mask) -> (L, L) {
    let tiny = s.lt(L::splat(-64.0));
    let half = L::select(tiny, L::splat(0.5), L::splat(1.0));
    // Halving is exact.
    let (s, d) = (s * half, d * half);
    let m = s.exp();
    let m = L::select(dead, L::splat(0.0), m.mul_add(d, m));
    (m, L::select(tiny, m, L::splat(1.0)))
}

/// [`modulator_split`] of `exp(-gamma (a + b + b_lo))`, `b_lo` a correction of `b` below
/// its rounding (`-gamma b_lo` joins the correction `d`).
#[cfg_attr(not(opt_level_0), inline(always))]
fn modulator_split_lo<L: Lane>(a: L, b: L, b_lo: L, k: &Consts<L>) -> (L, L) {
    let (s, d, dead) = log_modulator::<L, true>(a, b, k);
    let d = (-k.gamma).mul_add(b_lo, d);
    split_exp(s, d, dead)
}

/// `b^gamma` for `gamma` in {0, 0.5, 1, 2} (see [`Consts::power`]) and `b` in `[0, 1]`, as
/// `(m', k, h)` with `b^gamma = m' k` split as in [`modulator_split`] (`k = b` when
/// `gamma = 2` and `b^2 < 2^-92`, else 1), and `h = b^(gamma-1) / k` (the factor of the
/// derivative `d b^gamma = gamma h k db`; 0 for `gamma = 0`). Each product of `b`'s adds its
/// error once: `gamma` times that of `b`, plus half an ULP; the square root (correctly
/// rounded) half that of `b` plus half an ULP, and its `h = 1 / sqrt(b)` one ULP more. At
/// `b = 0`, `h` is 0, not infinite: the callers' `b` is 0 only where `db` is 0 too.
#[cfg_attr(not(opt_level_0), inline(always))]
fn power_split<L: Lane>(b: L, k: &Consts<L>) -> (L, L, L) {
    let (zero, one) = (L::splat(0.0), L::splat(1.0));
    if k.half_gamma {
        let m = b.sqrt();
        return (m, one, L::select(b.eq(zero), zero, one / m));
    }
    match k.int_gamma {
        0 => (one, one, zero),
        1 => (b, one, one),
        _ => {
            let tiny = b.lt(L::splat(TWO_M46));
            (
                L::select(tiny, b, b * b),
                L::select(tiny, b, one),
                L::select(tiny, one, b),
            )
        }
    }
}

/// Weighted loss `w * L` and its derivative `w * dL/dx` at one element (one per lane), and
/// the lanes whose input is valid (logit not NaN, target in `[0, 1]`).
/// `t` is the raw target; padding lanes carry `w = 0` and give exactly 0 and 0.
///
/// Infinite logits are computed at `+-f32::MAX`, where `e^-|x|` is exactly 0 and every factor
/// already has its limit (`p`, `q` are 0 or 1, the modulators and their derivatives vanish or
/// not exactly as at infinity); only the loss, which grows linearly, is then set to `+inf`
/// where it is not 0. No `0 * inf` is ever formed.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn element<L: Lane, const MOD: u8>(
    x: L,
    t: L,
    wt: &Weights<L>,
    k: &Consts<L>,
) -> (L, L, L::Mask) {
    // (Runs of finite logits with hard targets mostly take `hard` from the pass's own loop.)
    let finite = x.abs().lt(L::splat(f32::INFINITY));
    if L::all(finite) {
        // Every logit finite, hence none NaN.
        return element_finite::<L, MOD>(x, t, wt, k, finite, None);
    }
    let inf = x.abs().eq(L::splat(f32::INFINITY));
    let xc = x.max(L::splat(f32::MIN)).min(L::splat(f32::MAX));
    element_finite::<L, MOD>(xc, t, wt, k, x.eq(x), Some(inf))
}

/// The limit at `x = +-inf` of a loss computed at `x = +-f32::MAX` (lanes `inf`): `+inf` where
/// `grows` (the coefficient of `|x|` is positive: decided factor by factor, so that an
/// underflow at `f32::MAX` does not turn `+inf` into 0), else 0.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn limit<L: Lane>(inf: Option<L::Mask>, grows: L::Mask, loss: L) -> L {
    match inf {
        None => loss,
        Some(inf) => {
            let lim = L::select(grows, L::splat(f32::INFINITY), L::splat(0.0));
            L::select(inf, lim, loss)
        }
    }
}

/// `m`, forced to its limit 0 on the lanes `inf & vanish` (a modulator whose exponent has a
/// positive multiple of `|x|`, at `x = +-inf`: at `f32::MAX` it may not have underflowed yet
/// when `gamma` is tiny).
#[cfg_attr(not(opt_level_0), inline(always))]
fn vanish<L: Lane>(inf: Option<L::Mask>, vanish: L::Mask, m: L) -> L {
    match inf {
        None => m,
        Some(inf) => L::select(inf & vanish, L::splat(0.0), m),
    }
}

/// [`element`] for finite logits: the hard path when every target is 0 or 1, else the
/// general one. `valid_x` marks the lanes whose logit is valid.
#[cfg_attr(not(opt_level_0), inline(always))]
fn element_finite<L: Lane, const MOD: u8>(
    x: L,
    t: L,
    wt: &Weights<L>,
    k: &Consts<L>,
    valid_x: L::Mask,
    inf: Option<L::Mask>,
) -> (L, L, L::Mask) {
    if k.may_be_hard {
        let y = t.eq(L::splat(1.0));
        let hard = y | t.eq(L::splat(0.0));
        // Targets all 0 or 1 are also all in range: only the logits remain to be checked.
        if L::all(hard) {
            let (l, g) = element_hard(x, y, wt, k, inf);
            return (l, g, valid_x);
        }
        if L::any(hard) {
            // Mixed: the hard lanes take the hard formula too, so that an element's bits never
            // depend on its neighbours' targets.
            let (lh, gh) = element_hard(x, y, wt, k, inf);
            let (ls, gs, valid) = element_soft::<L, MOD, true>(x, t, wt, k, valid_x, inf);
            return (L::select(hard, lh, ls), L::select(hard, gh, gs), valid);
        }
    }
    element_soft::<L, MOD, true>(x, t, wt, k, valid_x, inf)
}

/// The weighted end of [`element_soft`] (Linear and Geometric), in a form that can run twice:
/// `loss = W m CE scale up`, `grad = W (m dCE + dm) scale`, with the positive term's
/// `m wpt` as `mp wq` and its `d` as `d.1` (see `element_soft` for the rescaled second run).
struct Tail<L> {
    w: L,
    m: L,
    mp: L,
    wq: L,
    /// `dprod` for the negative and the positive term (Linear with a power gamma).
    d: (L, L),
    /// `d ln m / dx` clamped to +-MAX (the other modulators).
    dlogm: L,
    spn: L,
    spx: L,
    omt: L,
    wpt: L,
    l_lo: L,
    dce: L,
    scale: L,
    up: L,
}

impl<L: Lane> Tail<L> {
    /// `(loss, grad, m wpt sp(-x), m CE)`; `prod`: the derivative from `d`, else `dlogm`.
    ///
    /// `rescaled`: the run of [`element_soft_run`] with the weights' powers of two moved into
    /// the modulator and the softplus unscaled, where a product of a factor and a softplus may
    /// overflow ahead of a tiny or zero third factor (`x = -2^104`, `t = 2^-149`, a weight of
    /// 2^60: `(2^60 2^104) 2^-149` was inf for a loss of 2^15, and with a zero `pos_weight`
    /// NaN for 0): there [`prod3`] multiplies the other pair first.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn run<const CHECK: bool>(&self, log_space: bool, prod: bool, rescaled: bool) -> (L, L, L, L) {
        let zero = L::splat(0.0);
        let fmax = L::splat(f32::MAX);
        // `m CE`, `CE = wpt sp(-x) + (1 - t) sp(x)`. With a log-space modulator (whose error
        // budget grows with gamma) the rounding error of `l` in both softplus values is added
        // back, `m l_lo (w+ t + 1 - t)`; products and square roots have room to spare without
        // it. (No closures in this kernel: a closure does not inherit the caller's target
        // features, and its vector operations were calls, 3x slower.)
        let (m, omt) = (self.m, self.omt);
        let pos_term = prod3(rescaled, self.mp, self.spn, self.wq);
        let mce = if log_space {
            let lo = (m * self.l_lo) * (self.wpt + omt);
            let mspx = m * self.spx;
            let neg = mspx.mul_add(omt, lo);
            if rescaled {
                pos_term + L::select(finite(mspx), neg, m.mul_add(self.spx * omt, lo))
            } else {
                pos_term + neg
            }
        } else {
            pos_term + prod3(rescaled, m, self.spx, omt)
        };
        // A zero weight gives 0 even where `mce` overflowed (`pos_weight` near MAX): 0, as for
        // the other weights, not `0 * inf`.
        let w_zero = self.w.eq(zero);
        // (`scale up` is exact, `up` a power of two >= 1 and the product <= 2^64, unless
        // `scale` is itself subnormal; and at `|x| >= 2^64` `(W m CE) scale` alone may be
        // subnormal where the loss is not.)
        let loss = L::select(w_zero, zero, self.w * mce * (self.scale * self.up));
        let dm = if prod {
            // (Finite factors: a zero dprod gives 0.)
            let (d, dp) = self.d;
            (prod3(rescaled, dp, self.spn, self.wq) + prod3(rescaled, d, self.spx, self.omt))
                * self.up
        } else {
            // (dlogm is clamped to +-MAX: with a huge gamma it may overflow where m is 0.)
            // A zero dlogm times an overflowed mce (pos_weight near MAX at |x| near MAX) is 0.
            // At `|x| >= 2^64` `dlogm (mce up)` where that is finite: `dlogm mce` may be
            // subnormal (`Geometric`, `t = 1e-30`, `x = 1.1e32`: 7746 ULP).
            let dlogm = self.dlogm;
            let dmce = if CHECK {
                let mu = mce * self.up;
                L::select(mu.le(fmax), dlogm * mu, dlogm * mce * self.up)
            } else {
                dlogm * mce * self.up
            };
            L::select(dlogm.eq(zero), zero, dmce)
        };
        let grad = L::select(
            w_zero,
            zero,
            self.w * self.m.mul_add(self.dce, dm) * self.scale,
        );
        (loss, grad, pos_term, mce)
    }
}

/// Whether each lane of `v` is finite (not `+-inf`, not NaN).
#[cfg_attr(not(opt_level_0), inline(always))]
fn finite<L: Lane>(v: L) -> L::Mask {
    v.abs().le(L::splat(f32::MAX))
}

/// `(a b) c`; with `guard`, `a (b c)` where `a b` overflows: the same bits wherever the
/// first order is finite, and a finite (or exactly 0) product where `a b` overflows ahead of
/// a tiny (or zero) `c`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn prod3<L: Lane>(guard: bool, a: L, b: L, c: L) -> L {
    let ab = a * b;
    if guard {
        L::select(finite(ab), ab * c, a * (b * c))
    } else {
        ab * c
    }
}

/// [`element`] for finite logits and any targets.
///
/// The weights multiply last, `W (m CE)`: a tiny modulator comes split as `m scale`
/// ([`modulator_split`]), and `W m CE` is formed before `scale`, so that a large
/// cross-entropy times a tiny modulator never passes through a subnormal when the result is
/// normal. (Hard targets take the weight first instead, see [`hard_core`].)
#[cfg_attr(not(opt_level_0), inline(always))]
fn element_soft<L: Lane, const MOD: u8, const CHECK: bool>(
    x: L,
    t: L,
    wt: &Weights<L>,
    k: &Consts<L>,
    valid_x: L::Mask,
    inf: Option<L::Mask>,
) -> (L, L, L::Mask) {
    let (l, g, v, again) = element_soft_run::<L, MOD, CHECK, false>(x, t, wt, k, valid_x, inf);
    if again {
        // Rare on real data: a lane whose weights multiply a tiny `m CE` (see
        // `element_soft_run`; confident hard lanes of a mixed vector may ask too), computed
        // again from the inputs, so that nothing else stays live across this branch (keeping
        // the first pass's values for a second half cost 17% on soft targets).
        let (l, g, v, _) = element_soft_run::<L, MOD, CHECK, true>(x, t, wt, k, valid_x, inf);
        return (l, g, v);
    }
    (l, g, v)
}

/// [`element_soft`]'s computation; with `RESCALE`, the lanes that need it take the weight's
/// power of two into the modulator first. Also returns whether any lane needs that.
#[cfg_attr(not(opt_level_0), inline(always))]
fn element_soft_run<L: Lane, const MOD: u8, const CHECK: bool, const RESCALE: bool>(
    x: L,
    t: L,
    wt: &Weights<L>,
    k: &Consts<L>,
    valid_x: L::Mask,
    inf: Option<L::Mask>,
) -> (L, L, L::Mask, bool) {
    let zero = L::splat(0.0);
    let one = L::splat(1.0);
    let fmax = L::splat(f32::MAX);
    let valid = valid_x & t.ge(zero) & t.le(one);
    let t = t.mul_add(k.keep, k.half_eps);
    let omt = one - t;

    let ax = x.abs();
    let e = (-ax).exp();
    let (l, l_lo) = e.ln_1p_lo();
    let r = inv_1p(e);
    let er = e * r;
    let pos = x.ge(zero);
    let p = L::select(pos, r, er);
    let q = L::select(pos, er, r);
    // Beyond |x| = 2^64 the softplus values are carried scaled by 2^-64 (exactly), and the
    // loss is scaled back last: a positive weight above 1 times sp(x) near f32::MAX would
    // otherwise overflow before the smaller weights could bring it back.
    // (Without CHECK the caller guarantees |x| < 2^64: the factors are 1, exactly.)
    let (down, up) = if CHECK {
        let big = ax.ge(L::splat(TWO_64));
        (
            L::select(big, L::splat(1.0 / TWO_64), one),
            L::select(big, L::splat(TWO_64), one),
        )
    } else {
        (one, one)
    };
    let mut spx = (x.max(zero) + l) * down; // sp(x)  = -ln q
    let mut spn = ((-x).max(zero) + l) * down; // sp(-x) = -ln p
    let mut up = up;
    // Weight of `e` and constant term in `(1 + e)(1 - p_t) = u e + v`.
    let u = L::select(pos, t, omt);
    let v = L::select(pos, omt, t);
    let wpt = wt.w_pos * t;

    if MOD == SEPARABLE {
        // L = a+ w+ t q^g sp(-x) + a- (1-t) p^g sp(x)
        let g_pos = zero.lt(k.gamma);
        // q^gamma = mq kq, p^gamma = mp kp: products (or square roots) for gamma in
        // {0, 0.5, 1, 2}.
        let ((mq, kq), (mp, kp)) = if k.power() {
            let (mq, kq, _) = power_split(q, k);
            let (mp, kp, _) = power_split(p, k);
            ((mq, kq), (mp, kp))
        } else {
            (
                modulator_split(x.max(zero), l, k),
                modulator_split((-x).max(zero), l, k),
            )
        };
        let mq = vanish::<L>(inf, g_pos & pos, mq);
        let mp = vanish::<L>(inf, g_pos & !pos, mp);
        // Weight products clamped to MAX as below: an overflow times a zero term stays 0.
        let (wp, wn) = ((wt.w * wt.a_pos).min(fmax), (wt.w * wt.a_neg).min(fmax));
        // A zero weight gives 0 even where the product before it overflowed (`pos_weight`
        // near MAX): 0, as for the other weights, not `0 * inf`.
        let wp_zero = wp.eq(zero);
        if CHECK {
            // At `|x| >= 2^64` (one softplus is 0 there, the other carried scaled by 2^-64) a
            // term below 2^-100 is formed unscaled: `(mq sp / 2^64) t` was subnormal at
            // `t = 1e-40`, `x = -2.8e19` (50 ULP of the loss 2.8e-21).
            let small = one.lt(up) & (mq * spn * wpt + mp * spx * omt).lt(L::splat(TWO_M100));
            spn = L::select(small, spn * up, spn);
            spx = L::select(small, spx * up, spx);
            up = L::select(small, one, up);
        }
        let lpos = L::select(wp_zero, zero, (mq * spn * wpt) * wp * kq * up);
        let lneg = (mp * spx * omt) * wn * kp * up;
        // d/dx q^g sp(-x) = -q^g (q + g p sp(-x)); d/dx p^g sp(x) = p^g (p + g q sp(x)).
        // (The brackets are clamped to MAX: a huge gamma times a vanishing modulator is 0.)
        let gpos = (mq * k.gamma.mul_add(p * spn * up, q).min(fmax) * wpt) * wp * kq;
        let gpos = L::select(wp_zero, zero, gpos);
        let gneg = (mp * k.gamma.mul_add(q * spx * up, p).min(fmax) * omt) * wn * kp;
        // At +inf the negative term grows (p^gamma -> 1), at -inf the positive one.
        let w_pos = zero.lt(wt.w);
        let grows = (pos & w_pos & zero.lt(wt.a_neg) & zero.lt(omt))
            | (!pos & w_pos & zero.lt(wt.a_pos) & zero.lt(wt.w_pos) & zero.lt(t));
        // (Both terms clamped: with weights beyond the documented range both may overflow,
        // and `inf - inf` is NaN.)
        let grad = gneg.min(fmax) - gpos.min(fmax);
        return (limit::<L>(inf, grows, lpos + lneg), grad, valid, false);
    }

    // dCE/dx = (1 - t) p - w+ t q: the small one of p and q carries the small absolute error.
    let dce = omt * p - wpt * q;
    let alpha_t = wt.a_pos * t + wt.a_neg * omt;

    // The modulator is `m scale`; its derivative is given either in log space (`dlogm = d ln m
    // / dx`, as `m dlogm`) or, for Linear with gamma in {0, 0.5, 1, 2}, as `dprod scale`.
    let (m, scale, dlogm, dprod) = if MOD == LINEAR && k.power() {
        // 1 - p_t = t q + (1 - t) p = (u e + v) r: nonnegative terms, no cancellation.
        // m = (1 - p_t)^gamma, dm/dx = gamma (1 - p_t)^(gamma - 1) (1 - 2t) p q.
        // (b = 0 only where v = 0, so u = 1, and e = 0: there p q = 0 too.)
        let b = u.mul_add(e, v) * r;
        let (m, scale, h) = power_split(b, k);
        let pq = er * r;
        let omtt = L::splat(-2.0).mul_add(t, one);
        (m, scale, zero, Some(k.gamma * omtt * pq * h))
    } else if MOD == LINEAR {
        // 1 - p_t = (u e + v) / (1 + e). Two exact forms, chosen so that the part of
        // ln(1 - p_t) proportional to |x| stays out of the logarithm:
        //   v >= u e:  ln(1 - p_t) = ln(v + u e) - l           (A = 0)
        //   v <  u e:  ln(1 - p_t) = -|x| + ln(u + v / e) - l  (A = |x|)
        // `c` is carried with its rounding error `c_lo` (`c + c_lo` exact but for the
        // rounding of `l` and `e`), `ln(c + c_lo) = ln c + c_lo / c`, and `B = l - ln c` with
        // its own rounding error: each would otherwise add half an ULP of `c` or `B`, times
        // `gamma`, to the modulator (3.5 ULP of the loss at gamma 5 near x = 0).
        let zv = v.eq(zero);
        let ue = u * e;
        let far = v.lt(ue) | zv;
        let v_over_e = L::select(zv, zero, v / e);
        // The exact remainders: `u e = ue + ue_lo`, `v = (v / e) e + rem`.
        let ue_lo = L::mul_err(u, e, ue);
        let rem = (-v_over_e).mul_add(e, v);
        let (c1, c2) = (L::select(far, u, v), L::select(far, v_over_e, ue));
        let (c, c_err) = two_sum(c1, c2);
        let c2_lo = L::select(far, L::select(zv, zero, rem / e), ue_lo);
        let c_lo = c_err + c2_lo;
        // `ln c = hi + lo + lo_err` (`hi = k ln 2`'s leading bits): `c` is about the target
        // where that is tiny, and a rounded `ln c` (half an ULP of `|ln c|`, up to 69 at
        // `t = 1e-30`) times gamma would be a relative error of the modulator of
        // `gamma |ln c| 2^-25`, 54 ULP at `t = 3e-9`, `x = -30`, gamma 3.7.
        let (lnc_hi, lnc_lo, lnc_err) = math::ln_parts(c);
        let (b0, b0_err) = two_sum(l, -lnc_hi);
        let (b, b_err) = two_sum(b0, -lnc_lo);
        let b_lo = ((b0_err + b_err) - lnc_err + l_lo) - c_lo / c;
        let a = L::select(far, ax, zero);
        let m = modulator_split_lo(a, b, b_lo, k);
        // dm/dx = gamma m (1 - 2t) p q / (1 - p_t), with p q / (1 - p_t) = e r / (u e + v).
        let pqb = L::select(far, r, er) / c;
        (m.0, m.1, k.gamma * (omt - t) * pqb, None)
    } else {
        // m = q^(gamma t) p^(gamma (1-t)) = exp(-gamma (u |x| + l)),
        // d ln m / dx = gamma ((1 - t) - p) = gamma ((1 - t) q - t p).
        let (m, scale) = modulator_split_lo(u * ax, l, l_lo, k);
        let m = vanish::<L>(inf, zero.lt(k.gamma) & zero.lt(u), m);
        (m, scale, k.gamma * (omt * q - t * p), None)
    };

    // loss = W m CE with CE = w+ t sp(-x) + (1 - t) sp(x), W = w alpha_t multiplied last;
    // dL/dx = W m (dCE + CE dlogm).
    // Weights beyond the documented range may overflow in their product: MAX, not inf, so
    // that a zero cross-entropy still gives 0.
    let w = (wt.w * alpha_t).min(L::splat(f32::MAX));
    let mut tail = Tail {
        w,
        m,
        mp: m,
        wq: wpt,
        d: match dprod {
            Some(d) => (d, d),
            None => (zero, zero),
        },
        dlogm: dlogm.max(-fmax).min(fmax),
        spn,
        spx,
        omt,
        wpt,
        l_lo,
        dce,
        scale,
        up,
    };
    let log_space = MOD == GEOMETRIC || !k.power();
    let prod = dprod.is_some();
    let (mut loss, mut grad, pos_term, mce) = tail.run::<CHECK>(log_space, prod, false);
    // The weights multiply last, and a product inside `m CE` may be subnormal where the
    // weighted result is not: with a tiny target, `m t sp` is about `t^(gamma + 1)`
    // (`t = 3.2e-24`, `x = -70`, gamma 1 and a weight of 2^30 gave 0 for 7.5e-37), and with a
    // large `pos_weight`, `m sp(-x)` is tiny where `wpt` brings it back (`t = 1 - 2^-23`,
    // `x = 45`, gamma 3.7, `pos_weight` 2^30: the positive term was lost, 46 ULP). Where a
    // lane has `W >= 2` and `m CE < 2^-100`, the power of two of `W`,
    // `s = 2^min(floor(log2 W), 60)`, moves into the modulator first, `(W / s) (s m) CE`;
    // where it has `wpt >= 2` and a positive term below 2^-100, that of `wpt`, `P`, moves
    // into the positive term's modulator, `((P m) sp(-x)) (wpt / P)`. Each term so scaled is
    // below `2^60 2^-100` (`2^124 2^-100` with the softplus unscaled, below), and every
    // scaling is exact: the bits change only where an intermediate was subnormal. (A term is
    // small, not each product in it: `(s m) sp` may overflow ahead of a tiny or zero third
    // factor, where this run multiplies the other pair first, see [`prod3`].) Likewise a
    // softplus carried scaled by 2^-64 (`|x| >= 2^64`) is taken unscaled where
    // `m CE < 2^-100` (`t = 1e-30`, `x = -2.8e19`, gamma 0.5: `m (sp / 2^64) t` was
    // 1.5e-45, one significant bit, for a loss of 2.8e-26). The vector is computed again so
    // where a lane needs it ([`element_soft`]): four compares per vector where none does
    // (five on the checked path), and one on the unchecked path where the job's weights are
    // all below 2 ([`Consts::rescale_w`]: the weights cannot ask for it there). (A confident
    // hard lane of a mixed vector, or a vanished modulator, with `W >= 2` also asks for it:
    // more work, the same bits. The correction `m l_lo (wpt + omt)` keeps the unscaled `m`:
    // it is below an ULP of the term.)
    let two = L::splat(2.0);
    let tiny = L::splat(TWO_M100);
    let small = mce.lt(tiny);
    let none = zero.lt(zero);
    let (need_w, need_p) = if k.rescale_w {
        (two.le(w) & small, two.le(wpt) & pos_term.lt(tiny))
    } else {
        (none, none)
    };
    let need_u = if CHECK { one.lt(up) & small } else { none };
    let again = !RESCALE && L::any(need_w | need_p | need_u);
    if RESCALE {
        if CHECK {
            tail.spx = L::select(need_u, spx * up, spx);
            tail.spn = L::select(need_u, spn * up, spn);
            tail.up = L::select(need_u, one, up);
        }
        let cap = L::splat(60.0);
        let (kw, _) = w.frexp();
        let kw = L::select(need_w, kw.min(cap), zero);
        let (kp, _) = wpt.frexp();
        let kp = L::select(need_p, kp.min(cap), zero);
        let (s, big_p) = (L::pow2i(kw), L::pow2i(kp));
        tail.w = w * L::pow2i(-kw);
        tail.m = m * s;
        tail.mp = tail.m * big_p;
        tail.wq = wpt * L::pow2i(-kp);
        let d = tail.d.0 * s;
        tail.d = (d, d * big_p);
        (loss, grad, _, _) = tail.run::<CHECK>(log_space, prod, true);
    }
    // The limit grows where the weights, the cross-entropy's |x| coefficient (1 - t at +inf,
    // w+ t at -inf) and the modulator's limit are all positive: Linear's is (1 - t)^gamma or
    // t^gamma (positive with the coefficient); Geometric's vanishes unless gamma u = 0.
    // (Factor by factor: `w+ t` may underflow where neither factor is 0.)
    let coef_pos = (pos & zero.lt(omt)) | (!pos & zero.lt(wt.w_pos) & zero.lt(t));
    let alpha_pos = (zero.lt(wt.a_pos) & zero.lt(t)) | (zero.lt(wt.a_neg) & zero.lt(omt));
    let mut grows = zero.lt(wt.w) & alpha_pos & coef_pos;
    if MOD == GEOMETRIC {
        grows = grows & !(zero.lt(k.gamma) & zero.lt(u));
    }
    (limit::<L>(inf, grows, loss), grad, valid, again)
}

/// [`element`] for a vector whose targets are all 0 or 1 (`y`: the lanes with `t = 1`), where
/// the three modulators coincide. With `z = -x` where `t = 1` and `z = x` where `t = 0`,
/// `b = 1 - p_t = sigmoid(z)`, `CE = sp(z)` (times `w+` where `t = 1`), and
///
/// `L = w alpha_t b^gamma CE`,  `dL/dx = -+ w alpha_t b^gamma (w+) (b + gamma (1 - b) sp(z))`
///
/// (minus where `t = 1`): two terms of the same sign, no cancellation. `b^gamma` is a product
/// for `gamma` in {0, 1, 2} (no second `exp`), `sqrt(b)` for `gamma = 0.5`, and
/// `exp(-gamma (max(-z, 0) + l))` otherwise.
#[cfg_attr(not(opt_level_0), inline(always))]
fn element_hard<L: Lane>(
    x: L,
    y: L::Mask,
    wt: &Weights<L>,
    k: &Consts<L>,
    inf: Option<L::Mask>,
) -> (L, L) {
    let (loss, grad, wrong) = hard_core::<L, true>(x, y, wt.h_pos, wt.h_neg, k, inf);
    match inf {
        None => (loss, grad),
        Some(_) => {
            // Factor by factor: the product of the weights may underflow where none is 0.
            let zero = L::splat(0.0);
            let alpha = L::select(y, wt.a_pos, wt.a_neg);
            let wy = L::select(y, wt.w_pos, L::splat(1.0));
            let grows = wrong & zero.lt(wt.w) & zero.lt(alpha) & zero.lt(wy);
            (limit::<L>(inf, grows, loss), grad)
        }
    }
}

/// Bounds under which [`hard`] applies: `gamma <= FAST_GAMMA_MAX`, `|x| < FAST_X_MAX`.
pub(crate) const FAST_GAMMA_MAX: f32 = 1_048_576.0; // 2^20
pub(crate) const FAST_X_MAX: f32 = TWO_64;

/// [`element`] for logits `|x| < FAST_X_MAX`, `gamma <= FAST_GAMMA_MAX` and targets all 0 or 1
/// (`y`: the lanes with `t = 1`), weighted by `h_pos` where `t = 1` and `h_neg` where `t = 0`
/// (see [`Weights`]): the loss and its derivative, with the same bits as [`element`] (its
/// overflow checks cannot trigger within these bounds). The caller has checked the inputs.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn hard<L: Lane>(x: L, y: L::Mask, h_pos: L, h_neg: L, k: &Consts<L>) -> (L, L) {
    let (loss, grad, _) = hard_core::<L, false>(x, y, h_pos, h_neg, k, None);
    (loss, grad)
}

/// [`element`] for logits `|x| < FAST_X_MAX` and targets in `[0, 1]`, with the modulator
/// convention `modulator` (one of [`LINEAR`], [`GEOMETRIC`], [`SEPARABLE`]): the loss and its
/// derivative, with the same bits as [`element`] on every lane except, without label
/// smoothing, those with targets 0 or 1 (where [`element`] gives the bits of [`hard`], as the
/// caller must). The caller has checked the inputs.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn soft<L: Lane>(x: L, t: L, wt: &Weights<L>, k: &Consts<L>, modulator: u8) -> (L, L) {
    let v = x.eq(x);
    let (l, g, _) = match modulator {
        LINEAR => element_soft::<L, LINEAR, false>(x, t, wt, k, v, None),
        GEOMETRIC => element_soft::<L, GEOMETRIC, false>(x, t, wt, k, v, None),
        _ => element_soft::<L, SEPARABLE, false>(x, t, wt, k, v, None),
    };
    (l, g)
}

/// The formula of [`element_hard`]: the loss, its derivative and the wrong-side lanes, with
/// the modulator forced to its limit at the infinite logits `inf`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn hard_core<L: Lane, const CHECK: bool>(
    x: L,
    y: L::Mask,
    h_pos: L,
    h_neg: L,
    k: &Consts<L>,
    inf: Option<L::Mask>,
) -> (L, L, L::Mask) {
    let (m, sp, bracket, wrong) = hard_terms::<L, CHECK>(x, y, k, inf);
    // The weight multiplies the modulator first, `(w m) sp`: `m <= 1`, so `w m` cannot
    // overflow, and for `w >= 1` it is subnormal only where `m` is. (`w (m sp)` passed
    // through a subnormal `m sp` on confident elements, `e^(-(gamma + 1) |x|)`, where a weight
    // above 1 made the result normal: up to 249 ULP at w = 500, gamma 2; see
    // `tests/adversarial.rs`.)
    let w = L::select(y, h_pos, h_neg);
    let wm = w * m;
    let loss = wm * sp;
    let grad = wm * bracket;
    (loss, L::select(y, -grad, grad), wrong)
}

/// The factors of [`hard_core`]'s loss `w m sp` and derivative `-+w m bracket`: the
/// modulator `m`, the cross-entropy `sp`, the bracket, and the wrong-side lanes (`x >= 0`
/// where `t = 0`, `x < 0` where `t = 1`). `bracket` is clamped to `f32::MAX` with `CHECK`.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn hard_terms<L: Lane, const CHECK: bool>(
    x: L,
    y: L::Mask,
    k: &Consts<L>,
    inf: Option<L::Mask>,
) -> (L, L, L, L::Mask) {
    let zero = L::splat(0.0);
    let one = L::splat(1.0);
    let ax = x.abs();
    let e = (-ax).exp();
    // For the general modulator `exp(-gamma (max(-z, 0) + l))`, whose relative error is gamma
    // l times that of l, also the rounding error of l (0.94 ULP where l alone is 1.49: up to
    // 1.5 ULP less at gamma 4, |x| near 0); `k` fixes the branch for the whole call.
    //
    // Without a fused multiply-add, the product b * b of gamma 2 carries twice the 1.5 ULP of
    // `b = e r` (whose `r` has 0.85 ULP there): 9.03 ULP of the gradient measured, above the
    // table's 8. There gamma 2 takes the log-space modulator too, whose error is that of
    // `exp` and `l`: 4.75 ULP of the gradient and 3.21 of the loss (was 7.69), on 18 million
    // logits in [-30, 30]. `2 a` and `2 l` are exact (`Consts::exact_gamma`), so it costs an
    // `exp` (2.63 -> 4.0 ns per element, SSE2 only); `l_lo` would cost two Dekker products
    // more (5.3 ns) for 0.25 ULP.
    let general = (k.int_gamma > 2 || (!L::FMA && k.int_gamma == 2)) && !k.half_gamma;
    let (l, l_lo) = if general && k.int_gamma > 2 {
        e.ln_1p_lo()
    } else {
        (e.ln_1p(), zero)
    };
    let r = inv_1p(e);
    let er = e * r;
    // The wrong side, z >= 0 (z = -x where t = 1, x where t = 0): b = 1 / (1 + e) is the
    // larger of the pair, and max(z, 0) = |x|. (At x = 0 both sides give the same bits.)
    let wrong = x.ge(zero) ^ y;
    let b = L::select(wrong, r, er);
    let ob = L::select(wrong, er, r);
    let sp = L::select(wrong, ax, zero) + l;
    // No split of a tiny modulator here: b^gamma is tiny only on the right side, where the
    // cross-entropy is as tiny.
    let m = if k.int_gamma <= 2 && !general {
        let mut m = one;
        for _ in 0..k.int_gamma {
            m = m * b;
        }
        m
    } else if k.half_gamma {
        b.sqrt()
    } else {
        // max(-z, 0): |x| on the right side (z < 0), else 0.
        modulator::<L, CHECK>(L::select(wrong, zero, ax), l, l_lo, k)
    };
    // At +-inf on the right side b^gamma vanishes (gamma > 0), even for a tiny gamma.
    let m = vanish::<L>(inf, zero.lt(k.gamma) & !wrong, m);
    let bracket = k.gamma.mul_add(ob * sp, b);
    // (Clamped where it may overflow: gamma |x| beyond the bounds of `hard`.)
    let bracket = if CHECK {
        bracket.min(L::splat(f32::MAX))
    } else {
        bracket
    };
    (m, sp, bracket, wrong)
}
