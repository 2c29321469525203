//! `exp`, `ln` and `ln(1+e)` in f32, written once over [`Lane`]: the vector backends use these,
//! the scalar backend uses `libm` and the tests compare the two.
//!
//! Each function reduces its argument exactly, then evaluates a polynomial: for `ln` a
//! truncated Taylor series (of `atanh`), for `exp` and `ln_1p_unit` a near-minimax fit (least
//! squares weighted toward the relative error of the result, with Lawson iterations). Next to
//! each: its domain, the function it approximates, the bits of every f32 coefficient and its
//! truncation error (the polynomial with these f32 coefficients, evaluated in f64 over 2^21
//! points of the domain); `python3 tools/fit_polynomials.py` refits and re-measures them (see
//! "Polynomials" in docs/numerics.md). The remaining error is that of a few f32 roundings.
//! Measured against f64 over 2^22 arguments spread over each domain (unit tests below):
//! `exp` 0.87 ULP, `ln` 0.85 ULP, `ln_1p_unit` on `[0, 1]` 1.49 ULP (with FMA; the tests
//! assert 1.1, 1.0 and 1.5).
//!
//! [`exp_table`], the softmax family's `exp` where a 16-entry table lookup is one instruction
//! (AVX-512), trades a little accuracy for two vector operations: its reduction rounds one
//! constant, `0.93 + 0.046 |x|` ULP measured (the test asserts `1.1 + 0.047 |x|`).

use crate::backend::lane::Lane;
use crate::sum::two_sum;

/// `ln 2 = LN2_HI + LN2_LO`. `LN2_HI = 0x3f317200` has 15 significant bits, so `n * LN2_HI`
/// is exact for every integral `|n| <= 2^9` even without a fused multiply-add;
/// `LN2_LO = ln 2 - LN2_HI` to f32 precision (the pair is ln 2 within 2^-45).
pub(crate) const LN2_HI: f32 = f32::from_bits(0x3f31_7200); // 0.693145751953125
pub(crate) const LN2_LO: f32 = 1.428_606_8e-6;
const LOG2_E: f32 = core::f32::consts::LOG2_E;

/// `e^x` for `x <= 88.72` (`-inf` included; the crate's core never asks for more: its
/// arguments are `-|x|` and `ln` of a modulator, at most 0 up to rounding).
///
/// `n = round(x / ln 2)` (from the fused `x log2(e) + 1.5 2^23`), `r = x - n ln 2`
/// (Cody-Waite, exact), `|r| <= ln 2 / 2` plus a rounding; `e^r = 1 + r + r^2 P(r)`,
/// evaluated as `1 + r (1 + r P(r))` by Horner's scheme; `e^x = e^r 2^n` scaled by
/// [`Lane::scale2`], so results in the subnormal range round once. Inputs below -104, whose
/// f32 result is 0, are clamped.
///
/// `P`, degree 4, approximates `(e^r - 1 - r) / r^2` on `|r| <= 1.002 ln 2 / 2 = 0.34727`: least
/// squares weighted by `r^2 e^-r` (the residual is the relative error of `e^r`), 200 Lawson
/// iterations on 20001 uniform points, rounded to the nearest f32 (the script reproduces these
/// bits). Relative error of `1 + r + r^2 P(r)` (f64, 2^21 points): 3.10e-9 with the f64 fit,
/// 4.16e-9 (0.070 x 2^-24) with the f32 coefficients below. In f32: within 1.1 ULP (unit test;
/// measured 0.87; 1.02 with Estrin's scheme, which it used until 2026-12-05).
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn exp<L: Lane>(x: L) -> L {
    let (p, n) = exp_parts(x.max(L::splat(-104.0)));
    p.scale2(n)
}

/// `e^x` for `x` in `[-87, 0]`, with the bits of [`exp`] but one power-of-two factor.
///
/// There `n = round(x log2 e)` is in `[-126, 0]` (`-87 log2 e = -125.5`), the domain of
/// [`Lane::pow2i`], and `e^r` in `[0.70, 1.42]`: `e^r 2^n` is the same exact product that
/// [`exp`] forms in two exact steps, rounded once in both (into the subnormal range too), so
/// the bits agree. That saves the split of `n` and a multiply (7 of the 22 vector operations
/// of AVX2's [`exp`]; where [`Lane::SCALE2_FAST`], `scale2` as in [`exp`]) and the clamp at
/// -104, which changes nothing there. Outside the domain the result is meaningless: callers
/// check it.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn exp_normal<L: Lane>(x: L) -> L {
    let (p, n) = exp_parts(x);
    if L::SCALE2_FAST {
        p.scale2(n)
    } else {
        p * L::pow2i(n)
    }
}

/// `(e^r, n)` with `e^x = e^r 2^n` for `x >= -104` (see [`exp`]).
#[cfg_attr(not(opt_level_0), inline(always))]
fn exp_parts<L: Lane>(x: L) -> (L, L) {
    const P: [f32; 5] = [
        0.499_999_94,    // 0x3eff_fffe
        0.166_665_2,     // 0x3e2a_aa48
        0.041_668_4,     // 0x3d2a_ac7c
        0.008_368_85,    // 0x3c09_1d80
        0.001_381_430_1, // 0x3ab5_111a
    ];
    // 1.5 * 2^23: adding and subtracting it rounds to an integer in the default mode.
    let shift = L::splat(12_582_912.0);
    let n = x.mul_add(L::splat(LOG2_E), shift) - shift;
    let r = (-n).mul_add(L::splat(LN2_HI), x);
    let r = (-n).mul_add(L::splat(LN2_LO), r);
    // e^r = 1 + r (1 + r P(r)) by Horner's scheme: six fused multiply-adds, one fewer than
    // Estrin's scheme with the leading terms added last (r^2, four for P, r^2 P + r, + 1),
    // and more accurate with the same coefficients (2^24 points of [-87, 0]: max 0.88 ULP
    // against 1.01). Its longer chain of dependent operations: the softmax row kernel hides
    // it (one operation fewer a chunk, 1-2% faster); the sigmoid loops measured 0.5-0.9%
    // slower, within this machine's spread (BENCHMARKS.md).
    let c = |k: usize| L::splat(P[k]);
    let one = L::splat(1.0);
    let h = r.mul_add(c(4), c(3));
    let h = h.mul_add(r, c(2));
    let h = h.mul_add(r, c(1));
    let h = h.mul_add(r, c(0));
    let h = h.mul_add(r, one);
    (h.mul_add(r, one), n)
}

/// `2^(j / 16)` for `j = 0..16`, each the nearest f32 (bits beside, and the relative error of
/// the rounding in units of `2^-24`; at most 0.794).
// `2^(8/16)` is `SQRT_2`: every entry a decimal literal, the bits beside it checked by a test.
#[allow(clippy::approx_constant)]
const EXP2_SIXTEENTHS: [f32; 16] = [
    1.0,         // 0x3f80_0000  +0.000
    1.044_273_7, // 0x3f85_aac3  -0.777
    1.090_507_7, // 0x3f8b_95c2  +0.201
    1.138_788_6, // 0x3f91_c3d3  -0.794
    1.189_207_1, // 0x3f98_37f0  -0.536
    1.241_857_8, // 0x3f9e_f532  -0.608
    1.296_839_6, // 0x3fa5_fed7  +0.520
    1.354_255_6, // 0x3fad_583f  +0.125
    1.414_213_5, // 0x3fb5_04f3  -0.287
    1.476_826_2, // 0x3fbd_08a4  +0.511
    1.542_210_8, // 0x3fc5_672a  -0.088
    1.610_490_3, // 0x3fce_248c  -0.102
    1.681_792_9, // 0x3fd7_44fd  +0.247
    1.756_252_2, // 0x3fe0_ccdf  +0.088
    1.834_008_1, // 0x3fea_c0c7  +0.103
    1.915_206_6, // 0x3ff5_257d  -0.086
];

/// `ln 2` rounded to the nearest f32, `0x3f31_7218`: `ln 2 + 1.905e-9`.
const LN2_F32: f32 = core::f32::consts::LN_2;

/// `e^x` for `x <= 0` (`-inf` included) by a table of sixteenths of a power of two, for the
/// softmax family's `d = z - m` on backends where [`Lane::lookup16`] is one instruction: two
/// vector operations fewer than [`exp`] (on AVX-512 nine where [`exp_normal`] takes eleven).
///
/// `k = round(16 x log2 e) / 16` (from the fused `x log2(e) + 1.5 2^19`, whose unit in the last
/// place is `1/16`), `r = x - k LN2_F32` (one fused multiply-add, rounded once to within
/// `2^-30`, `|r| <= 1.002 ln 2 / 32`), `e^x = 2^floor(k) 2^(j/16) e^r` with `j = 16 (k -
/// floor k)`, the low four bits of the fused sum's pattern, and `2^(j/16)` from
/// [`EXP2_SIXTEENTHS`]; `2^(j/16) e^r = T + (T r) (1 + r Q(r))`, three operations. Needs a
/// fused multiply-add (the product `k LN2_F32` is exact only inside one).
///
/// One constant for `ln 2` where [`exp`] takes two: `LN2_F32` is `ln 2` within `1.905e-9`,
/// so the result carries a relative error of `k 1.905e-9 <= |x| 2.75e-9`, `0.046 |x|` units of
/// `2^-24`. The softmax's `x = z - m` is itself an f32 rounding, whose half-ULP moves `e^x` by
/// up to `|x| 2^-24`, twenty times that; the crate's accuracy table allows the conditioning
/// twice. `Q`, degree 1, approximates `(e^r - 1 - r) / r^2` on `|r| <= 1.002 ln 2 / 32` as
/// [`exp`]'s `P` does on its domain (`tools/fit_polynomials.py`, these bits reproduced):
/// relative error 1.61e-9 (0.027 x 2^-24). In f32 the table's rounding (up to 0.794 x 2^-24)
/// dominates the rest: within `1.1 + 0.047 |x|` ULP (unit test; measured `0.93 + 0.046 |x|`,
/// 0.53 where `k = 0`, 4.5 at most, near -87), where [`exp`] is within 0.87. Inputs below
/// -104, whose f32 result is 0, are clamped (which may lose a NaN, as in [`exp`]).
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn exp_table<L: Lane>(x: L) -> L {
    let (e, k) = exp_table_parts(x.max(L::splat(-104.0)));
    e.scale2(floor_sixteenths(k))
}

/// [`exp_table`] for `x` in `[-87, 0]`, with its bits (no clamp; where [`Lane::SCALE2_FAST`],
/// the same operations less one).
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn exp_table_normal<L: Lane>(x: L) -> L {
    let (e, k) = exp_table_parts(x);
    if L::SCALE2_FAST {
        e.scale2(k)
    } else {
        e * L::pow2i(floor_sixteenths(k))
    }
}

/// `floor(k)` of a multiple `k` of 1/16 below 2^18 in magnitude: for `k = i + j/16`, `k - 15/32`
/// lies within `15/32` of `i`. Where [`Lane::SCALE2_FAST`] (`vscalef` takes `2^floor(n)` of any
/// `n`), `k` itself.
#[cfg_attr(not(opt_level_0), inline(always))]
fn floor_sixteenths<L: Lane>(k: L) -> L {
    if L::SCALE2_FAST {
        k
    } else {
        (k - L::splat(15.0 / 32.0)).round_half()
    }
}

/// `(2^(j/16) e^r, k)` with `e^x = 2^(j/16) e^r 2^floor(k)` for `x >= -104` (see [`exp_table`]).
#[cfg_attr(not(opt_level_0), inline(always))]
fn exp_table_parts<L: Lane>(x: L) -> (L, L) {
    const Q: [f32; 2] = [
        0.500_016_2,  // 0x3f00_0110
        0.166_667_21, // 0x3e2a_aacf
    ];
    // 1.5 * 2^19: adding and subtracting it rounds to a multiple of 1/16.
    let shift = L::splat(786_432.0);
    let t = x.mul_add(L::splat(LOG2_E), shift);
    let k = t - shift;
    let r = (-k).mul_add(L::splat(LN2_F32), x);
    // The pattern of `t` is that of 1.5 2^19 plus `16 k` in its low bits: `j = 16 k mod 16`.
    let tj = t.lookup16(&EXP2_SIXTEENTHS);
    let a = r.mul_add(L::splat(Q[1]), L::splat(Q[0]));
    let a = a.mul_add(r, L::splat(1.0));
    ((tj * r).mul_add(a, tj), k)
}

/// `ln y` for `y > 0` (subnormals included; `+inf` is not an input of the crate's core).
///
/// `y = m 2^k` with `m` in `[sqrt(1/2), sqrt 2)`, `f = m - 1` (exact), `s = f / (2 + f)`;
/// `ln(1 + f) = 2 atanh s = f - f^2/2 + s (f^2/2 + R)`.
///
/// `R = sum_{j=1..5} 2 z^j / (2j + 1)` in `z = s^2`, `|s| <= 0.17158`: not a fit but the Taylor
/// series of `2 atanh(s) / s - 2` truncated after `j = 5`, its coefficients `2/(2j+1)` rounded
/// to the nearest f32 (bits next to them). Truncation: the tail
/// `2 sum_{j>=6} |s|^(2j+1) / (2j+1) <= 2 |s|^13 / (13 (1 - s^2))`, relative to
/// `|ln(1 + f)| >= 2 |s|` at most `s^12 / (13 (1 - s^2)) <= 5.2e-11`. Relative error of
/// `ln(1 + f)` so computed (f64, 2^21 points): 5.09e-11 with the exact `2/(2j+1)`, 2.41e-10
/// (0.004 x 2^-24) with the f32 ones. In f32: below 1 ULP (unit test; measured 0.85).
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn ln<L: Lane>(y: L) -> L {
    let (k, lnm) = ln_exp_mant(y);
    k.mul_add(L::splat(LN2_HI), k.mul_add(L::splat(LN2_LO), lnm))
}

/// `ln y` for `y > 0` as `hi + lo + lo_err`: `hi = k LN2_HI` exact (`|k| <= 149`, and
/// `LN2_HI` has 15 significant bits), `lo + lo_err = k LN2_LO + ln m` exactly but for the
/// rounding of `k LN2_LO` (below `2^-36`). The error is that of `ln m` (`|ln m| <= ln(2) / 2`,
/// below 1 ULP of it, so below `2^-25` absolute) and `LN2_LO`'s (`k 2^-45`), where [`ln`]
/// rounds the sum once more, an error up to half an ULP of `|ln y|` (`2^-18` absolute at
/// `y = 1e-30`): for a caller that multiplies the logarithm by a large factor (a power
/// `b^gamma = exp(gamma ln b)` of a tiny `b`), that rounding would be a relative error of
/// `gamma |ln y| 2^-24`.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn ln_parts<L: Lane>(y: L) -> (L, L, L) {
    let (k, lnm) = ln_exp_mant(y);
    let (lo, lo_err) = two_sum(k * L::splat(LN2_LO), lnm);
    (k * L::splat(LN2_HI), lo, lo_err)
}

/// `(k, ln m)` with `y = m 2^k`, `m` in `[sqrt(1/2), sqrt 2)`: the two parts of [`ln`].
#[cfg_attr(not(opt_level_0), inline(always))]
fn ln_exp_mant<L: Lane>(y: L) -> (L, L) {
    let tiny = y.lt(L::splat(f32::MIN_POSITIVE));
    let y = L::select(tiny, y * L::splat(16_777_216.0), y); // 2^24
    let (k, m) = y.frexp();
    let k = L::select(tiny, k - L::splat(24.0), k);
    let big = m.ge(L::splat(core::f32::consts::SQRT_2));
    let m = L::select(big, m * L::splat(0.5), m);
    let k = L::select(big, k + L::splat(1.0), k);
    let f = m - L::splat(1.0);
    let s = f / (L::splat(2.0) + f);
    let z = s * s;
    // 2/(2j+1) for j = 5 down to 1, each one correctly rounded f32 division.
    let mut r = L::splat(2.0 / 11.0); // 0x3e3a_2e8c
    r = r.mul_add(z, L::splat(2.0 / 9.0)); // 0x3e63_8e39
    r = r.mul_add(z, L::splat(2.0 / 7.0)); // 0x3e92_4925
    r = r.mul_add(z, L::splat(2.0 / 5.0)); // 0x3ecc_cccd
    r = r.mul_add(z, L::splat(2.0 / 3.0)); // 0x3f2a_aaab
    let r = r * z;
    let hfsq = L::splat(0.5) * f * f;
    let lnm = f - (hfsq - s * (hfsq + r));
    (k, lnm)
}

/// `ln(1 + e)` for `e` in `[0, 1]`, without a division: `e + e^2 R(e)`.
///
/// `R`, degree 8, approximates `(ln(1 + e) - e) / e^2` on `[0, 1]`: least squares weighted by
/// `e^2 / ln(1 + e)` (the residual is the relative error of the result), Lawson iterations,
/// rounded to the nearest f32. The script's 200 iterations on 20001 uniform points do not
/// reproduce these bits (the last five differ by 1 to 38 f32 ULPs; the exact procedure is not
/// known). Relative error of `e + e^2 R(e)` (f64, 2^21 points): 5.12e-9 with the f64 fit,
/// 3.55e-8 (0.59 x 2^-24) with the f32 coefficients below, whose rounding dominates (the
/// script's own rounded fit: 3.74e-8). In f32: within 1.5 ULP with FMA (unit test; measured
/// 1.49; Horner's scheme throughout gave 1.4, at a dependency chain 8 operations longer).
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn ln_1p_unit<L: Lane>(e: L) -> L {
    ln_1p_unit_lo(e).0
}

/// [`ln_1p_unit`] as `(l, lo)`, `l` its bits and `lo` the rounding errors of its last step
/// (`l = e + e^2 R`: the product `e^2`, and the final multiply-add, both exact residuals), so
/// that `l + lo` carries only the error of `R`: the polynomial's own 3.55e-8 relative (with its
/// f32 coefficients, above), and the roundings of its evaluation, whose relative error in `R`
/// is damped by `e^2 |R| / l <= (1 - ln 2) / ln 2 < 0.45`: within 0.94 ULP of `ln(1 + e)`
/// where `l` alone is within 1.49 (measured with FMA, unit test below). The caller that uses
/// `l` alone pays nothing for `lo`.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn ln_1p_unit_lo<L: Lane>(e: L) -> (L, L) {
    const R: [f32; 9] = [
        -0.499_999_3,   // 0xbeff_ffe9
        0.333_305_12,   // 0x3eaa_a6f8
        -0.249_585_87,  // 0xbe7f_9370
        0.196_953_95,   // 0x3e49_ae4c
        -0.153_553_81,  // 0xbe1d_3d36
        0.106_805_31,   // 0x3dda_bcbe
        -0.057_664_2,   // 0xbd6c_314c
        0.020_204_456,  // 0x3ca5_83d1
        -0.003_318_444, // 0xbb59_7a40
    ];
    // R(e) = R0 + e (R1 + e T(e)): the last two steps as Horner's scheme (the rounding
    // errors of T are damped by e^2), T = R2 + ... + R8 e^6 by Estrin's scheme, for a
    // dependency chain 8 operations shorter than Horner's throughout.
    let c = |k: usize| L::splat(R[k]);
    let e2 = e * e;
    if !L::FMA {
        // Horner's scheme throughout: fewer roundings where each product rounds apart.
        let mut r = c(8);
        for k in (0..8).rev() {
            r = r.mul_add(e, c(k));
        }
        return with_lo(e, e2, r);
    }
    let e4 = e2 * e2;
    let q2 = e.mul_add(c(3), c(2));
    let q4 = e.mul_add(c(5), c(4));
    let q6 = e.mul_add(c(7), c(6));
    let t = e2.mul_add(q4, q2);
    let u = e2.mul_add(c(8), q6);
    let t = e4.mul_add(u, t);
    let r = e.mul_add(t, c(1));
    let r = e.mul_add(r, c(0));
    with_lo(e, e2, r)
}

/// `l = e + e2 r` (as [`Lane::mul_add`] rounds it) and the rounding errors of `e2 = fl(e e)`
/// and of that last step: `l - e` is exact (Sterbenz: `l` is within `[e/2, e]`), so
/// `e2 r - (l - e)` and `(e e - e2) r` are the missing parts, each formed with one rounding
/// of a value far below `ulp(l)`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn with_lo<L: Lane>(e: L, e2: L, r: L) -> (L, L) {
    let l = e2.mul_add(r, e);
    let step = if L::FMA {
        e2.mul_add(r, e - l)
    } else {
        let p = e2 * r;
        (p - (l - e)) + L::mul_err(e2, r, p)
    };
    (l, L::mul_err(e, e, e2).mul_add(r, step))
}

/// Dekker's exact product error `a*b - p`, `p = fl(a*b)`, for backends without a fused
/// multiply-add: Veltkamp splits (`4097 = 2^12 + 1`) into 12-bit halves whose pairwise
/// products are exact. An operand above `2^100` trades a factor `2^64` with the other
/// (`a b = (a 2^-64)(b 2^64)` exactly), so that `4097 a` cannot overflow while the product is
/// finite.
#[cfg_attr(not(opt_level_0), inline(always))]
#[allow(dead_code)] // used by the vector backend when the build has no FMA
pub(crate) fn mul_err_dekker<L: Lane>(a: L, b: L, p: L) -> L {
    let pow2 = |e: i32| L::splat(f32::from_bits(((127 + e) as u32) << 23));
    let one = L::splat(1.0);
    let big_a = a.abs().ge(pow2(100));
    let big_b = b.abs().ge(pow2(100));
    let fa = L::select(big_a, pow2(-64), L::select(big_b, pow2(64), one));
    let fb = L::select(big_a, pow2(64), L::select(big_b, pow2(-64), one));
    let (a, b) = (a * fa, b * fb);
    let split = |v: L| {
        let c = v * L::splat(4097.0);
        let hi = c - (c - v);
        (hi, v - hi)
    };
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    (((ah * bh - p) + ah * bl) + al * bh) + al * bl
}

#[cfg(test)]
mod tests {
    //! The polynomials instantiated on the scalar lane, against f64 (`std`) on 2^22 arguments
    //! per function spread over each domain, and at the domain edges (`cargo test --release
    //! --lib math -- --nocapture` prints the worst errors); and the documented coefficient bits.
    extern crate std;
    use super::*;

    fn ulp_err(got: f32, want: f64) -> f64 {
        ((got as f64) - want).abs() / ulp_of(want)
    }

    fn ulp_of(want: f64) -> f64 {
        let a = want.abs();
        if a < f32::MIN_POSITIVE as f64 {
            (2f64).powi(-149)
        } else {
            (2f64).powi(a.log2().floor() as i32 - 23)
        }
    }

    fn grid(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f32> {
        (0..n).map(move |i| (lo + (hi - lo) * (i as f64 + 0.5) / n as f64) as f32)
    }

    #[test]
    fn exp_is_within_1_1_ulp() {
        let mut worst = 0f64;
        for x in grid(-104.0, 88.7, 1 << 22).chain([0.0, -0.0, 88.72, -87.33, -103.9, 1e-30]) {
            let e = ulp_err(exp(x), (x as f64).exp());
            worst = worst.max(e);
        }
        std::println!("exp: {worst:.3} ULP");
        assert!(worst < 1.1, "exp: {worst} ULP");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-200.0f32), 0.0);
        assert_eq!(exp(89.0f32), f32::INFINITY);
        assert_eq!(exp(0.0f32), 1.0);
    }

    /// [`exp_table`] on the scalar lane (the memory round trip of [`Lane::lookup16`], the
    /// floor by rounding; the AVX-512 lane's bits are these, `backend::tests`): within `1.1 +
    /// 0.047 |x|` ULP over `[-104, 0]` (the second term is `LN2_F32`'s error, `k 1.905e-9`
    /// relative), and [`exp_table_normal`] with its bits on `[-87, 0]`.
    #[test]
    fn exp_table_is_within_1_1_ulp_plus_its_reduction() {
        let (mut worst, mut worst_k0, mut worst_const) = (0f64, 0f64, 0f64);
        let points = grid(-104.0, 0.0, 1 << 22).chain(grid(-0.0217, 0.0217, 1 << 20));
        for x in points.chain([0.0, -0.0, -87.33, -103.9, -1e-30]) {
            let e = ulp_err(exp_table(x), (x as f64).exp());
            worst = worst.max(e);
            worst_const = worst_const.max(e - 0.047 * (x as f64).abs());
            if x.abs() < 0.0216 {
                worst_k0 = worst_k0.max(e);
            }
            if x >= -87.0 {
                assert_eq!(exp_table(x).to_bits(), exp_table_normal(x).to_bits(), "{x}");
            }
        }
        std::println!(
            "exp_table: {worst_const:.3} + 0.047 |x| ULP ({worst:.3} at most, {worst_k0:.3} \
             where k = 0)"
        );
        assert!(
            worst_const <= 1.1,
            "exp_table: {worst_const} + 0.047 |x| ULP"
        );
        assert_eq!(exp_table(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_table(-200.0f32), 0.0);
        assert_eq!(exp_table(0.0f32), 1.0);
        assert!(exp_table_normal(f32::NAN).is_nan());
    }

    #[test]
    fn ln_is_below_one_ulp() {
        let mut worst = 0f64;
        // Log-uniform over the whole positive range, subnormals included.
        for u in grid(-149.0, 128.0, 1 << 22) {
            let y = (2f64).powf(u as f64) as f32;
            if y == 0.0 || !y.is_finite() {
                continue;
            }
            worst = worst.max(ulp_err(ln(y), (y as f64).ln()));
        }
        for y in grid(0.5, 2.0, 1 << 20) {
            worst = worst.max(ulp_err(ln(y), (y as f64).ln()));
        }
        std::println!("ln: {worst:.3} ULP");
        assert!(worst < 1.0, "ln: {worst} ULP");
        assert_eq!(ln(1.0f32), 0.0);
    }

    #[test]
    fn ln_1p_unit_is_within_1_5_ulp() {
        let mut worst = 0f64;
        for u in grid(-149.0, 0.0, 1 << 21) {
            let x = (2f64).powf(u as f64) as f32;
            worst = worst.max(ulp_err(ln_1p_unit(x), (x as f64).ln_1p()));
        }
        for x in grid(0.0, 1.0, 1 << 21) {
            worst = worst.max(ulp_err(ln_1p_unit(x), (x as f64).ln_1p()));
        }
        std::println!("ln_1p_unit: {worst:.3} ULP");
        assert!(worst < 1.5, "ln_1p_unit: {worst} ULP");
        assert_eq!(ln_1p_unit(0.0f32), 0.0);
        assert_eq!(ln_1p_unit(1e-45f32), 1e-45);
    }

    #[test]
    fn ln_1p_unit_lo_is_within_1_ulp() {
        // `l + lo` in units of the last place of the truth; `l` keeps the bits of ln_1p_unit.
        let err = |x: f32| {
            let (l, lo) = ln_1p_unit_lo(x);
            assert_eq!(l.to_bits(), ln_1p_unit(x).to_bits());
            let want = (x as f64).ln_1p();
            (l as f64 + lo as f64 - want).abs() / ulp_of(want)
        };
        let mut worst = 0f64;
        for u in grid(-149.0, 0.0, 1 << 21) {
            worst = worst.max(err((2f64).powf(u as f64) as f32));
        }
        for x in grid(0.0, 1.0, 1 << 21) {
            worst = worst.max(err(x));
        }
        std::println!("ln_1p_unit_lo: {worst:.3} ULP");
        assert!(worst < 1.0, "ln_1p_unit_lo: {worst} ULP");
    }

    #[test]
    fn coefficient_comments_are_their_bits() {
        // Every code line above the tests with a comment `// 0x<hex>` is an f32 constant with
        // those bits: a literal `<decimal>,` (P of exp, Q and the table of exp_table, R of
        // ln_1p_unit_lo) or `L::splat(a / b)` (the 2/(2j+1) of ln, one f32 division as the
        // compiler folds it).
        let src = include_str!("math.rs");
        let code = &src[..src.find("#[cfg(test)]").unwrap()];
        let mut n = 0;
        for line in code.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            let Some((expr, hex)) = line.split_once("// 0x") else {
                continue;
            };
            let hex = hex.split_whitespace().next().unwrap();
            let want = u32::from_str_radix(&hex.replace('_', ""), 16).unwrap();
            let expr = expr.trim().trim_end_matches([',', ';']);
            let got: f32 = match expr.split_once("L::splat(") {
                Some((_, q)) => {
                    let (a, b) = q.trim_end_matches(')').split_once(" / ").unwrap();
                    a.parse::<f32>().unwrap() / b.parse::<f32>().unwrap()
                }
                None => expr.replace('_', "").parse().unwrap(),
            };
            let bits = got.to_bits();
            assert_eq!(bits, want, "{line}: the bits are {bits:#010x}");
            n += 1;
        }
        assert_eq!(n, 5 + 16 + 2 + 5 + 9, "coefficient lines found");
    }

    #[test]
    fn dekker_product_error_is_exact() {
        let mut s = 0x1234_5678_9abc_def0u64;
        for _ in 0..1_000_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let a = f32::from_bits(0x3000_0000 + (s as u32 % 0x1c00_0000));
            let b = f32::from_bits(0x2800_0000 + ((s >> 32) as u32 % 0x2000_0000));
            let p = a * b;
            let exact = (a as f64) * (b as f64) - p as f64;
            assert_eq!(mul_err_dekker(a, b, p) as f64, exact, "{a} * {b}");
            // A huge operand times a small one: the split must not overflow.
            let big = f32::from_bits(0x7100_0000 + (s as u32 % 0x0e00_0000)); // [2^99, 2^127]
            let small = f32::from_bits(0x1800_0000 + ((s >> 32) as u32 % 0x1000_0000));
            for (a, b) in [(big, small), (small, big), (-big, small)] {
                let p = a * b;
                let exact = (a as f64) * (b as f64) - p as f64;
                assert_eq!(mul_err_dekker(a, b, p) as f64, exact, "{a} * {b}");
            }
        }
    }
}
