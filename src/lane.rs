//! The small lane trait the numeric core is written against, and its scalar instantiation.
//!
//! A `Lane` is `LANES` independent `f32` values with IEEE arithmetic (`+ - * /` correctly
//! rounded, `mul_add` fused or not), compare/select, and three elementary functions.
//! The core in [`crate::kernel`] only ever calls these; the scalar `f32` below (on `libm`) and
//! the vector type in [`crate::simd`] are the two instantiations.

use core::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Not, Sub};

use crate::sum::Dd;

/// `LANES` f32 values processed in lock step.
pub(crate) trait Lane:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// Number of f32 values.
    const LANES: usize;
    /// Whether [`Lane::mul_add`] is fused (rounded once).
    const FMA: bool;
    /// Whether loops should process two values at a time (enough registers for both).
    const PAIRS: bool = false;
    /// Lane-wise boolean.
    type Mask: Copy
        + BitAnd<Output = Self::Mask>
        + BitOr<Output = Self::Mask>
        + BitXor<Output = Self::Mask>
        + Not<Output = Self::Mask>;
    /// Per-lane accumulators: the loss in double-word (`f64` hi + lo), the targets in `f64`.
    type Acc: Copy;

    fn splat(v: f32) -> Self;
    /// `src[..LANES]`, or `src` padded with `fill` when it is shorter.
    fn load_or(src: &[f32], fill: f32) -> Self;
    /// Writes the first `min(dst.len(), LANES)` lanes.
    fn store(self, dst: &mut [f32]);

    /// `self * a + b`, fused where the instruction set has it.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// The exact rounding error `a*b - p` of the product `p = fl(a*b)` (finite, no underflow).
    fn mul_err(a: Self, b: Self, p: Self) -> Self;
    fn abs(self) -> Self;
    /// `max`/`min` of non-NaN values.
    fn max(self, o: Self) -> Self;
    fn min(self, o: Self) -> Self;

    fn lt(self, o: Self) -> Self::Mask;
    fn ge(self, o: Self) -> Self::Mask;
    fn le(self, o: Self) -> Self::Mask;
    fn eq(self, o: Self) -> Self::Mask;
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;
    /// Whether every lane of the mask is set.
    fn all(m: Self::Mask) -> bool;
    /// Whether any lane of the mask is set.
    fn any(m: Self::Mask) -> bool;

    /// Whether every lane has `|x| < bound` and `t` 0 or 1, and the lanes where `t = 1`
    /// (meaningful when the first is true).
    #[inline(always)]
    fn all_hard(x: Self, t: Self, bound: f32) -> (bool, Self::Mask) {
        let y = t.eq(Self::splat(1.0));
        let ok = x.abs().lt(Self::splat(bound)) & (y | t.eq(Self::splat(0.0)));
        (Self::all(ok), y)
    }
    /// `2^n` for an integral `n` in `[-126, 127]`.
    fn pow2i(n: Self) -> Self;
    /// `self * 2^n` for an integral `n` in `[-252, 254]`, rounded once (also into the
    /// subnormal range): two exact power-of-two factors by default.
    #[inline(always)]
    fn scale2(self, n: Self) -> Self {
        let n1 = (n * Self::splat(0.5)).round_half();
        self * Self::pow2i(n1) * Self::pow2i(n - n1)
    }
    /// `1 / self` for `self` in `[1, 2]`, within 1 ULP (a true division by default).
    #[inline(always)]
    fn recip_1_2(self) -> Self {
        Self::splat(1.0) / self
    }
    /// `1 / self` for `self` in `[1, 2]` with a relative error below `2^-14` (the
    /// correctly rounded [`Lane::recip_1_2`] by default).
    #[inline(always)]
    fn recip_approx(self) -> Self {
        self.recip_1_2()
    }
    /// The nearest integer (ties to even) of `|self| < 2^22`.
    #[inline(always)]
    fn round_half(self) -> Self {
        // 1.5 * 2^23: adding and subtracting it rounds to an integer in the default mode.
        (self + Self::splat(12_582_912.0)) - Self::splat(12_582_912.0)
    }
    /// `(k, m)` with `self = m * 2^k`, `m` in `[1, 2)`, for a positive normal `self`.
    fn frexp(self) -> (Self, Self);

    /// `sqrt(self)` for `self >= 0`, correctly rounded (IEEE 754).
    fn sqrt(self) -> Self;
    /// `e^self` within 1.1 ULP for `self <= 88.72` (`-inf` gives 0).
    fn exp(self) -> Self;
    /// `ln(self)` for `self > 0` (subnormals included), within 1 ULP.
    fn ln(self) -> Self;
    /// `ln(1 + self)` for `self` in `[0, 1]`, within 1.5 ULP.
    fn ln_1p(self) -> Self;

    fn acc_zero() -> Self::Acc;
    /// Adds every lane of `loss` to the double-word loss sum.
    fn acc_add(acc: &mut Self::Acc, loss: Self);
    /// Adds every lane of `a` and of `b` to the double-word loss sum.
    #[inline(always)]
    fn acc_add2(acc: &mut Self::Acc, a: Self, b: Self) {
        Self::acc_add(acc, a);
        Self::acc_add(acc, b);
    }
    /// Adds every lane of `t` to the `f64` target sum.
    fn acc_add_t(acc: &mut Self::Acc, t: Self);
    /// The sums over all lanes: loss, targets.
    fn acc_total(acc: Self::Acc) -> (Dd, f64);
}

impl Lane for f32 {
    const LANES: usize = 1;
    const FMA: bool = true;
    type Mask = bool;
    type Acc = (Dd, f64);

    #[inline(always)]
    fn splat(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn load_or(src: &[f32], fill: f32) -> Self {
        src.first().copied().unwrap_or(fill)
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32]) {
        if let Some(d) = dst.first_mut() {
            *d = self;
        }
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        libm::fmaf(self, a, b)
    }
    #[inline(always)]
    fn mul_err(a: Self, b: Self, p: Self) -> Self {
        // A product of two f32 is exact in f64 (24 + 24 <= 53 bits), and so is the difference.
        ((a as f64) * (b as f64) - p as f64) as f32
    }
    #[inline(always)]
    fn abs(self) -> Self {
        libm::fabsf(self)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        if self >= o { self } else { o }
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        if self <= o { self } else { o }
    }
    #[inline(always)]
    fn lt(self, o: Self) -> bool {
        self < o
    }
    #[inline(always)]
    fn ge(self, o: Self) -> bool {
        self >= o
    }
    #[inline(always)]
    fn le(self, o: Self) -> bool {
        self <= o
    }
    #[inline(always)]
    fn eq(self, o: Self) -> bool {
        self == o
    }
    #[inline(always)]
    fn select(m: bool, a: Self, b: Self) -> Self {
        if m { a } else { b }
    }
    #[inline(always)]
    fn all(m: bool) -> bool {
        m
    }
    #[inline(always)]
    fn any(m: bool) -> bool {
        m
    }
    #[inline(always)]
    fn pow2i(n: Self) -> Self {
        f32::from_bits((((n as i32) + 127) as u32) << 23)
    }
    #[inline(always)]
    fn frexp(self) -> (Self, Self) {
        let b = self.to_bits();
        let k = ((b >> 23) as i32 - 127) as f32;
        (k, f32::from_bits((b & 0x007f_ffff) | 0x3f80_0000))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        libm::sqrtf(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        libm::expf(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        libm::logf(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        libm::log1pf(self)
    }
    #[inline(always)]
    fn acc_zero() -> (Dd, f64) {
        (Dd::ZERO, 0.0)
    }
    #[inline(always)]
    fn acc_add(acc: &mut (Dd, f64), loss: Self) {
        acc.0.add_f64(loss as f64);
    }
    #[inline(always)]
    fn acc_add_t(acc: &mut (Dd, f64), t: Self) {
        acc.1 += t as f64;
    }
    #[inline(always)]
    fn acc_total(acc: (Dd, f64)) -> (Dd, f64) {
        acc
    }
}
