//! Double-word (`f64` + `f64`) accumulation: sums that do not depend on how a batch is split.

use core::ops::{Add, Sub};

/// An unevaluated sum `hi + lo` of two `f64`.
///
/// Values are added as in Ogita, Rump and Oishi's `Sum2` (2005): `hi` is the running f64 sum,
/// and the exact rounding error of each addition (TwoSum) is added into `lo`. The loop-carried
/// dependency is one addition, yet the result is as accurate as if computed in twice the
/// working precision: for `n` non-negative terms the relative error of `hi + lo` is at most
/// `2^-53 + (n 2^-53)^2`, so two different orders of the same additions round to the same f32
/// unless the exact sum lies within about `2^-50` of an f32 rounding boundary.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Dd {
    pub(crate) hi: f64,
    pub(crate) lo: f64,
}

/// Knuth's TwoSum on any f64 arithmetic (a scalar, `wide`'s `f64x4`, an x86 register):
/// `(s, e)` with `s = fl(a + b)` and `a + b = s + e` exactly, for any order of magnitude,
/// in 6 flops. The crate's only TwoSum.
///
/// Where `s` is infinite (a loss of `+inf` at an infinite logit) `e` is `inf - inf = NaN`
/// and means nothing: an infinite sum has no error term. [`Dd`] drops it at each step
/// ([`two_sum_f64`]); the per-lane accumulators of the vector backends carry it and drop it
/// at their total ([`total`]).
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn two_sum<F: Copy + Add<Output = F> + Sub<Output = F>>(a: F, b: F) -> (F, F) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// [`two_sum`] of two `f64`, the error term 0 once the sum is infinite.
#[cfg_attr(not(opt_level_0), inline(always))]
fn two_sum_f64(a: f64, b: f64) -> (f64, f64) {
    let (s, e) = two_sum(a, b);
    (s, if s.abs() < f64::INFINITY { e } else { 0.0 })
}

/// The sum of per-lane double-word accumulators (`hi[k] + lo[k]`), the error terms of
/// infinite lanes dropped (see [`two_sum`]).
pub(crate) fn total(hi: &[f64], lo: &[f64]) -> Dd {
    let mut d = Dd::ZERO;
    for (&h, &l) in hi.iter().zip(lo) {
        let lo = if h.is_finite() { l } else { 0.0 };
        d = d.add(Dd { hi: h, lo });
    }
    d
}

impl Dd {
    pub(crate) const ZERO: Dd = Dd { hi: 0.0, lo: 0.0 };

    /// Adds `v` (Sum2: one TwoSum, the error summed into `lo`).
    #[cfg_attr(not(opt_level_0), inline(always))]
    pub(crate) fn add_f64(&mut self, v: f64) {
        let (s, e) = two_sum_f64(self.hi, v);
        self.hi = s;
        self.lo += e;
    }

    /// The sum of two accumulators, renormalised (`|lo| <= ulp(hi) / 2`).
    #[cfg_attr(not(opt_level_0), inline(always))]
    pub(crate) fn add(self, o: Dd) -> Dd {
        // Every step symmetric in `self` and `o` (TwoSum's `s` and `e` are; the low words
        // are added together first), so that the merge is commutative bit for bit.
        let (s, e) = two_sum_f64(self.hi, o.hi);
        let (hi, lo) = two_sum_f64(s, e + (self.lo + o.lo));
        Dd { hi, lo }
    }

    /// The value rounded to `f64`.
    #[cfg_attr(not(opt_level_0), inline(always))]
    pub(crate) fn value(self) -> f64 {
        self.hi + self.lo
    }
}
