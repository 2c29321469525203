//! Double-word (`f64` + `f64`) accumulation: sums that do not depend on how a batch is split.

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

/// `(s, e)` with `s = fl(a + b)` and `a + b = s + e` exactly (Knuth's TwoSum, 6 flops, any
/// order of magnitude). An infinite `s` (a loss of `+inf` at an infinite logit) gives `e = 0`
/// rather than the `inf - inf` of the formula.
#[inline(always)]
pub(crate) fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, if s.abs() < f64::INFINITY { e } else { 0.0 })
}

impl Dd {
    pub(crate) const ZERO: Dd = Dd { hi: 0.0, lo: 0.0 };

    /// Adds `v` (Sum2: one TwoSum, the error summed into `lo`).
    #[inline(always)]
    pub(crate) fn add_f64(&mut self, v: f64) {
        let (s, e) = two_sum(self.hi, v);
        self.hi = s;
        self.lo += e;
    }

    /// The sum of two accumulators, renormalised (`|lo| <= ulp(hi) / 2`).
    #[inline(always)]
    pub(crate) fn add(self, o: Dd) -> Dd {
        // Every step symmetric in `self` and `o` (TwoSum's `s` and `e` are; the low words
        // are added together first), so that the merge is commutative bit for bit.
        let (s, e) = two_sum(self.hi, o.hi);
        let (hi, lo) = two_sum(s, e + (self.lo + o.lo));
        Dd { hi, lo }
    }

    /// The value rounded to `f64`.
    #[inline(always)]
    pub(crate) fn value(self) -> f64 {
        self.hi + self.lo
    }
}
