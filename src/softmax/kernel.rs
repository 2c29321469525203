//! The numeric core of the softmax family: one class's loss term and derivative factors, and
//! a row's `ln S`, written once over [`Lane`] (lanes are classes of one row, or rows).
//!
//! Notation (see `docs/numerics.md`): `m` the row's largest logit, `d_c = z_c - m` (exactly 0
//! for every class that equals `m`: the *top* classes), `e_c = exp(d_c)`,
//! `T = sum of e_c over all classes but one top class` (the other top classes count 1 each),
//! `S = 1 + T`, `p_c = e_c / S`, `q_c = 1 - p_c`. Nothing is formed as `1 - p` when `p > 1/2`:
//! a top class has `q = T / S` and `-ln p = ln(1 + T)`, every other class has `p <= 1/2`.
//!
//! For one class with weight `K = s_r alpha w_c y'_c`:
//! - loss term `K M L` with `L = -ln p = ln S - d >= 0` and `M = q^gamma`;
//! - derivative `A = -K g` with `g = M (1 + gamma r L)`, `r = p / q` (so `A` is the issue's
//!   `s alpha y' w [gamma q^(gamma-1) p ln p - q^gamma]`, written so that it stays finite
//!   for `gamma < 1` and has no cancellation: every factor is non-negative);
//! - the gradient of the row is `dl/dz_j = p_j G_{-j} - K_j g_j q_j`, `G_{-j}` the sum of
//!   `K_c g_c` over the classes other than `j` (see [`crate::softmax::pass`]).
//!
//! Rows of two classes take [`pair_term`] instead: the sigmoid core at the class's margin over
//! the other class (`docs/softmax.md`, "Rows of two classes").

use crate::backend::lane::Lane;
use crate::math::{LN2_HI, LN2_LO};
use crate::sigmoid::kernel::{
    Consts as LogConsts, FAST_GAMMA_MAX, FAST_X_MAX, hard_terms, limit, modulator,
};
use crate::sum::two_sum;

/// How `M = q^gamma` is formed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Power {
    /// `gamma = 0`: `M = 1`.
    Zero,
    /// `gamma = 1`: `M = q`.
    One,
    /// `gamma = 2`: `M = q q`.
    Two,
    /// `gamma = 1/2`: `M = sqrt(q)`, correctly rounded.
    Half,
    /// Any other `gamma`: `M = exp(-gamma (A + B))`, `-ln q = A + B` split so that `A` is an
    /// exact f32 (see [`term`]).
    Log,
}

/// Parameters that are the same for every class of a call.
#[derive(Clone, Copy)]
pub(crate) struct Consts<L> {
    pub gamma: L,
    pub power: Power,
    /// The sigmoid core's parameters, for its split log-space modulator and [`pair_term`].
    pub log: LogConsts<L>,
    /// `gamma <= FAST_GAMMA_MAX`: [`pair_term`] may take the sigmoid core's unchecked form.
    pub pair_fast: bool,
}

impl<L: Lane> Consts<L> {
    pub fn new(gamma: f32) -> Self {
        let power = match gamma {
            0.0 => Power::Zero,
            1.0 => Power::One,
            2.0 => Power::Two,
            0.5 => Power::Half,
            _ => Power::Log,
        };
        Consts {
            gamma: L::splat(gamma),
            power,
            // (The softmax terms never take the sigmoid's soft path: its rescaling test is
            // left at the safe default.)
            log: LogConsts::new(gamma, 0.0, true),
            pair_fast: gamma <= FAST_GAMMA_MAX,
        }
    }
}

/// A row's sums, as lanes (one row broadcast, or one row per lane).
///
/// `T` and `S` are rounded once from their `f64` sums; what the rounding dropped is kept as
/// relative corrections (`T_exact = T (1 + tc)`, `S_exact = S (1 + sc)`), so that a confident
/// row's `q = T / S`, `ln S` and `q^gamma` carry only the error of the `e^(d_c)` that `T`
/// sums, not that of its rounding (`q^gamma` would multiply it by `gamma`).
#[derive(Clone, Copy)]
pub(crate) struct Row<L> {
    /// `T` and `S`, rounded to f32.
    pub t: L,
    pub s: L,
    /// `ln S` (see [`ln_s`]).
    pub ln_s: L,
    /// What the rounding of `ln S` dropped (with the corrections for `T` and `S`).
    pub ln_s_lo: L,
    /// `T_exact / T - 1`; exactly 0 where `T` is 0 or subnormal (`T` then is an exact sum of
    /// multiples of `2^-149`: nothing was dropped).
    pub tc: L,
    /// `S_exact / S - 1`.
    pub sc: L,
}

impl<L: Lane> Row<L> {
    /// The row of `T`, `S` and the parts their rounding dropped (`T_exact = t + t_lo`,
    /// `S_exact = s + s_lo`, each as the `f32` of an exact `f64` difference).
    #[cfg_attr(not(opt_level_0), inline(always))]
    pub(crate) fn new(t: L, s: L, t_lo: L, s_lo: L) -> Self {
        let normal = t.ge(L::splat(f32::MIN_POSITIVE));
        let tc = L::select(
            normal,
            t_lo / t.max(L::splat(f32::MIN_POSITIVE)),
            L::splat(0.0),
        );
        // (Corrections: 1 / S to an ULP is enough.)
        let inv_s = L::splat(1.0) / s;
        let sc = s_lo * inv_s;
        let (ln_s, ln_s_lo) = ln_s(t, s, t_lo * inv_s, sc);
        Row {
            t,
            s,
            ln_s,
            ln_s_lo,
            tc,
            sc,
        }
    }
}

/// `ln S = ln(1 + T)` as `(hi, lo)`: `ln_1p` of `T` itself (with its correction term, and
/// `t_lo / S` for the rounding of `T`: `ts`) when `T <= 1`, so that a confidently right row
/// (`T = 1e-30`) keeps every digit; `ln S` of the rounded `S` plus `sc` above (the error of
/// `ln`, at most 1 ULP of `ln S >= ln 2`).
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn ln_s<L: Lane>(t: L, s: L, ts: L, sc: L) -> (L, L) {
    let one = L::splat(1.0);
    let small = t.le(one);
    // One logarithm where every lane takes the same side (always in the row kernel, whose
    // lanes share one row; every row of two classes has T <= 1), the same bits as both.
    // (No closures: one not inlined would run outside the backend's instruction set.)
    let (hi, lo) = if L::all(small) {
        let (l, lo) = t.min(one).ln_1p_lo();
        (l, lo + ts)
    } else if !L::any(small) {
        (s.max(one).ln(), sc)
    } else {
        let (l, lo) = t.min(one).ln_1p_lo();
        let big = s.max(one).ln();
        (L::select(small, l, big), L::select(small, lo + ts, sc))
    };
    let sum = hi + lo;
    // |hi| >= |lo|: Fast2Sum.
    (sum, (hi - sum) + lo)
}

/// One class's terms: `(K M L, K g, q)`, with `K g` clamped to `f32::MAX` (a weight beyond
/// the documented range overflows to `MAX`, never to `inf`, so that no later product can
/// form `0 * inf`). `d <= 0` (0 exactly on top classes), `e = exp(d)`, `k >= 0`.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn term<L: Lane>(d: L, e: L, k: L, row: &Row<L>, c: &Consts<L>) -> (L, L, L) {
    term_in::<L, true>(d, e, k, row, c)
}

/// [`term`], with the short form of `gamma = 0` where `SHORT` (always, but in the test that
/// compares the two forms' bits).
#[cfg_attr(not(opt_level_0), inline(always))]
fn term_in<L: Lane, const SHORT: bool>(d: L, e: L, k: L, row: &Row<L>, c: &Consts<L>) -> (L, L, L) {
    let zero = L::splat(0.0);
    let one = L::splat(1.0);
    let top = d.eq(zero);
    let any_top = L::any(top);
    let t_zero = row.t.eq(zero);
    // -ln p: ln S - d, a sum of two non-negative values (ln S alone on a top class).
    let l = row.ln_s - d;
    // p / q and 1 - p. Every lane but a top one has p = e / S <= 1/2, so that 1 - p is exact
    // to an ULP and r = e / (S - e) lies in [0, 1]. (Not corrected for the rounding of S:
    // measured, that changed no maximum of the accuracy table.) A top lane divides other
    // operands in the same two divisions: `T / S` for `p` and `1 / T` for `r` (the divider
    // is what a row of few classes waits for; each lane's quotient is the one it needs).
    let (num_p, num_r, den_r) = if any_top {
        (
            L::select(top, row.t, e),
            L::select(top, one, e),
            L::select(top, row.t, row.s - e),
        )
    } else {
        (e, e, row.s - e)
    };
    let p = num_p / row.s;
    // q = 1 - p; on a top lane q = T / S, corrected for the rounding of T and S.
    let q_other = one - p;
    let q = if any_top {
        L::select(top, p.mul_add(row.tc - row.sc, p), q_other)
    } else {
        q_other
    };
    if SHORT && c.power == Power::Zero {
        // gamma = 0: M = 1 and g = M (1 + 0 r L) = 1 exactly, since r L is finite (r <= 1 off
        // the top; on a top lane 1 where T = 0, about 1 where T is subnormal): the bits of
        // the general form without r and r L (two of its three divisions).
        let kg = k.min(L::splat(f32::MAX));
        return (L::select(k.eq(zero), zero, k * l), kg, q);
    }
    let r_other = num_r / den_r;
    let rl_other = L::select(r_other.eq(zero), zero, r_other * l);
    let (rl, r) = if any_top {
        // A top class: r = 1 / T, r L = ln S / T (-> 1 as T -> 0), each corrected for the
        // rounding of T and S (and of ln S).
        // (Only where T is normal: 1 / T of a subnormal T may be infinite.)
        let normal = row.t.ge(L::splat(f32::MIN_POSITIVE));
        let r_top = r_other;
        let rl_top = row.ln_s / row.t;
        let rl_fix = rl_top.mul_add(-row.tc, row.ln_s_lo.mul_add(r_top, rl_top));
        let rl_top = L::select(normal, rl_fix, L::select(t_zero, one, rl_top));
        let r_top = L::select(normal, r_top.mul_add(-row.tc, r_top), r_top);
        (
            L::select(top, rl_top, rl_other),
            L::select(top, r_top, r_other),
        )
    } else {
        (rl_other, r_other)
    };
    let m = match c.power {
        Power::Zero => one,
        Power::One => q,
        Power::Two => q * q,
        Power::Half => q.sqrt(),
        Power::Log => log_power(top, any_top, r, row, c),
    };
    let g = m * c.gamma.mul_add(rl, one);
    let kg = (k * g).min(L::splat(f32::MAX));
    // K = 0 (an unlabelled class, a padding lane) gives 0 even where L = inf (a -inf logit).
    let loss = L::select(k.eq(zero), zero, (k * m) * l);
    (loss, kg, q)
}

/// `q^gamma = exp(-gamma (A + B))` for [`Power::Log`], `r = p / q`.
///
/// Where `r <= 1` (every class but a top class with `T < 1`): `-ln q = ln(1 + r)`, `A = 0`,
/// `B = ln_1p(r)` of order one. A top class with `T < 1` has `-ln q = ln S - ln T`, where
/// `ln T` may be `-100`: with `T = 2^k m_T` (`m_T` in `[sqrt(1/2), sqrt 2)`), `A = -k LN2_HI`
/// is exact and `B = ln S - k LN2_LO - ln m_T` is of order one, its roundings and the
/// corrections of `ln S` and `T` carried in `B_lo`, so that the sigmoid core's split
/// modulator carries only the errors of `exp`, of `ln m_T` and of the `e^(d_c)` summed into
/// `T` (the last times `gamma`). `T = 0` (`p = 1` exactly) gives `M = 0`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn log_power<L: Lane>(top: L::Mask, any_top: bool, r: L, row: &Row<L>, c: &Consts<L>) -> L {
    let zero = L::splat(0.0);
    let one = L::splat(1.0);
    let unit = r.le(one);
    let b_unit = r.min(one).max(zero).ln_1p();
    if !any_top || L::all(unit) {
        return modulator::<L, true>(zero, b_unit, zero, &c.log);
    }
    // Top lanes with T < 1 (r > 1 there): T normalised (subnormal T scaled by 2^24 first),
    // its mantissa centred on 1 (about: split at the f32 below sqrt 2, |ln m_T| <= ln(2) / 2
    // to an ULP).
    let t = row.t;
    let tiny = t.lt(L::splat(f32::MIN_POSITIVE));
    let t_n = L::select(tiny, t * L::splat(16_777_216.0), t);
    let t_n = L::select(t.eq(zero), one, t_n);
    let (k, mant) = t_n.frexp();
    let k = L::select(tiny, k - L::splat(24.0), k);
    let upper = mant.ge(L::splat(core::f32::consts::SQRT_2));
    let mant = L::select(upper, mant * L::splat(0.5), mant);
    let k = L::select(upper, k + one, k);
    let a = -k * L::splat(LN2_HI);
    // B = ln S - k LN2_LO - ln m_T, the roundings of its two sums and the corrections of
    // ln S and T kept in B_lo (-ln T = -(k ln 2 + ln m_T + tc)); the rounding of
    // k LN2_LO (|k LN2_LO| < 2^-12, so below 2^-36) is dropped.
    let (u, u_err) = two_sum(k * L::splat(LN2_LO), mant.ln());
    let (b, b_err) = two_sum(row.ln_s, -u);
    let b_lo = (b_err - u_err) + (row.ln_s_lo - row.tc);
    // One modulator for both kinds of lane, on arguments chosen per lane: it is lane-wise,
    // so that each lane has the bits of its own branch.
    let far = top & !unit;
    let a = L::select(far, a, zero);
    let b_lo = L::select(far, b_lo, zero);
    let m = modulator::<L, true>(a, L::select(far, b, b_unit), b_lo, &c.log);
    L::select(far & t.eq(zero), zero, m)
}

/// One class's term in a row of two classes, `(K M L, min(K g q, MAX))`: the loss term and the
/// magnitude of its derivative with respect to `x = z_c - z_o`, the class's margin over the
/// other one (exactly 0 on a tie, also of two infinite logits: the row is then uniform).
///
/// With two classes `p_c = sigmoid(x)`, `q_c = sigmoid(-x)` and `-ln p_c = softplus(-x)`, so
/// that the term is the sigmoid family's hard element with target 1 at `x`: `K q^gamma
/// softplus(-x)`, derivative `-K q^gamma (q + gamma p softplus(-x))` (the softmax's `-K g q`,
/// see the module's notes). That core forms `q` from `e^(-|x|)` and one reciprocal without
/// division, never as `1 - p`, and its modulator in log space for any `gamma` (its documented
/// error: a few ULP), at a fraction of the cost of [`term`] and the row sums it needs. The
/// weight multiplies the modulator first, as in [`term`]: `(K M) L`, so that a large `K`
/// times a tiny `M L` (a confident row, `M L ~ e^(-(gamma + 1) x)`) does not pass through an
/// underflow. Infinite `x` are evaluated at `+-f32::MAX` with the limits of the sigmoid core:
/// `x = +inf` gives 0 and 0; `x = -inf` (the label on a `-inf` class) the loss `+inf` where
/// `K > 0` and the derivative `K`. `K = 0` gives `+0` and `+0`.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn pair_term<L: Lane>(x: L, k: L, c: &Consts<L>) -> (L, L) {
    let zero = L::splat(0.0);
    let max = L::splat(f32::MAX);
    let target = zero.eq(zero);
    let ax = x.abs();
    let (m, sp, bracket, inf, grows) = if c.pair_fast && L::all(ax.lt(L::splat(FAST_X_MAX))) {
        let (m, sp, bracket, _) = hard_terms::<L, false>(x, target, &c.log, None);
        (m, sp, bracket, None, target)
    } else {
        let inf = ax.eq(L::splat(f32::INFINITY));
        let xc = x.max(L::splat(f32::MIN)).min(max);
        let (m, sp, bracket, wrong) = hard_terms::<L, true>(xc, target, &c.log, Some(inf));
        // At x = -inf the cross-entropy grows without bound (the modulator tends to 1).
        (m, sp, bracket, Some(inf), wrong & zero.lt(k))
    };
    let km = k * m;
    (limit(inf, grows, km * sp), (km * bracket).min(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::portable::F8;

    /// The short form of `gamma = 0` in [`term`] against the general one, bit for bit, over
    /// rows from `T = 0` (a certain row) through subnormal and tiny `T` to `T = 999`, with
    /// their rounding corrections, every kind of class (top, near the top, far, `-inf`) and
    /// weights from 0 to `f32::MAX`; on one lane and on eight lanes that mix top and other
    /// classes (the selects of a block where some lanes are top classes).
    fn short_form_gives_the_bits_of_the_general_one<L: Lane>() {
        let c = Consts::<L>::new(0.0);
        assert_eq!(c.power, Power::Zero);
        let ts = [0.0, 1e-45, 3e-39, 1e-30, 1e-7, 0.5, 1.0, 3.0, 49.0, 999.0];
        let ds = [
            0.0,
            -1e-7,
            -0.1,
            -0.69,
            -3.0,
            -30.0,
            -87.5,
            -104.0,
            f32::NEG_INFINITY,
        ];
        let ks = [0.0, 1e-30, 0.25, 1.0, 7.5, 3e38, f32::MAX];
        let lanes = |v: &[f32]| L::load_or(v, 0.0);
        let mut checked = 0;
        for &t in &ts {
            for t_lo in [0.0, t * 3e-8] {
                let s = 1.0 + t;
                let s_lo = ((1.0 + t as f64) - s as f64) as f32;
                let row = Row::new(L::splat(t), L::splat(s), L::splat(t_lo), L::splat(s_lo));
                for (i, &k) in ks.iter().enumerate().flat_map(|ik| [ik; 9]) {
                    checked += 1;
                    // Lane j takes class ds[(rot + j) % 9] (eight lanes: one top lane, or
                    // none), its e at most T as in a real row (T sums the other classes' e).
                    let rot = checked + i;
                    let d: [f32; 8] = core::array::from_fn(|j| ds[(rot + j) % ds.len()]);
                    let e: [f32; 8] = core::array::from_fn(|j| match d[j] {
                        0.0 => 1.0,
                        dj => libm::expf(dj).min(t),
                    });
                    let (dl, el, kl) = (lanes(&d), lanes(&e), L::splat(k));
                    let a = term_in::<L, true>(dl, el, kl, &row, &c);
                    let b = term_in::<L, false>(dl, el, kl, &row, &c);
                    for (x, y) in [(a.0, b.0), (a.1, b.1), (a.2, b.2)] {
                        let (mut xa, mut ya) = ([0f32; 8], [0f32; 8]);
                        x.store(&mut xa);
                        y.store(&mut ya);
                        for j in 0..L::LANES {
                            let (xb, yb) = (xa[j].to_bits(), ya[j].to_bits());
                            assert_eq!(xb, yb, "T {t} t_lo {t_lo} d {} e {} K {k}", d[j], e[j]);
                        }
                    }
                }
            }
        }
        assert_eq!(checked, ts.len() * 2 * ks.len() * 9);
    }

    #[test]
    fn short_form_of_gamma_zero_one_lane() {
        short_form_gives_the_bits_of_the_general_one::<f32>();
    }

    #[test]
    fn short_form_of_gamma_zero_eight_lanes() {
        short_form_gives_the_bits_of_the_general_one::<F8>();
    }
}
