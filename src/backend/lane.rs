//! The small lane trait the numeric core is written against, and [`Two`], two lanes in lock
//! step.
//!
//! A `Lane` is `LANES` independent `f32` values with IEEE arithmetic (`+ - * /` correctly
//! rounded, `mul_add` fused or not), compare/select, and three elementary functions.
//! The core in [`crate::sigmoid::kernel`] only ever calls these; the scalar `f32` (on
//! `libm`, [`super::scalar`]) and the vector types (`wide`'s in [`super::portable`], the
//! intrinsics' in `x86`) instantiate it.
//! The fast loops of the vector backends run the core on [`Two`] of their vectors: the same
//! operations on each half, hence the same bits, issued side by side.

use core::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Not, Sub};

use crate::backend::MAX_LANES;
use crate::float;
use crate::math;
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
    /// Whether the fast loops take two vectors at a time, as one [`Two`] (the vector
    /// backends: two interleaved dependency chains keep more of the core busy, 10-27%
    /// measured; the scalar one has nothing to gain).
    const PAIRS: bool = false;
    /// Whether [`Lane::exp`], [`Lane::ln`] and [`Lane::ln_1p`] are the polynomials of
    /// [`crate::math`] (so that [`Two`] may evaluate them on both halves at once).
    const POLY: bool = false;
    /// Whether [`Lane::scale2`] is one instruction (AVX-512's `vscalef`), so that
    /// [`Lane::exp_normal`] has nothing to save over [`Lane::exp`].
    const SCALE2_FAST: bool = false;
    /// Whether [`Lane::lookup16`] is one instruction (AVX-512's `vpermps`), so that the
    /// softmax family's `exp` ([`Lane::softmax_exp`]) takes the table form of
    /// [`math::exp_table`]. Only with [`Lane::FMA`].
    const LOOKUP16_FAST: bool = false;
    /// Lane-wise boolean.
    type Mask: Copy
        + BitAnd<Output = Self::Mask>
        + BitOr<Output = Self::Mask>
        + BitXor<Output = Self::Mask>
        + Not<Output = Self::Mask>;
    /// Per-lane accumulators: the loss in double-word (`f64` hi + lo), the targets in `f64`.
    type Acc: Copy;
    /// The block of the softmax column kernels' fast path on rows of at most 16 classes
    /// (class-last, or `[N, C, S]` positions), taken whenever [`Lane::PAIRS`] is set: as many
    /// vectors in lock step as the registers hold, because each block's per-row work is a
    /// serial chain of some hundreds of cycles that only independent blocks overlap. [`Two`]
    /// of the vector with 16 registers (AVX2, portable); two [`Two`]s with AVX-512's 32
    /// (class-last C = 2 ran 14-22% faster than with one [`Two`], C = 4 to 12 4-19%,
    /// `[N, C, S]` C = 2 to 8 8-26%; on AVX2 the same took 15-19% longer, spilling
    /// registers, and the portable backend 40% longer). On a Zen 1 core's AVX2, one vector a
    /// block made C = 2 18% slower and left C = 4 to 16 level, and two [`Two`]s for C = 2
    /// alone made it 3-14% slower (`BENCHMARKS.md`, eleventh session).
    type Cols: Lane<Acc = Self::Acc>;
    /// The most classes of a class-last row that the softmax column kernels take (blocks of
    /// rows transposed): 16 where [`Lane::transpose_rows`] leaves larger rows to a scalar
    /// loop. AVX-512's tiles take 30: from 17 classes in [`Two`] blocks, the row kernel's
    /// per-row work outweighs the transposition there (at 64K logits, gamma 2, the column
    /// kernel took 31-32% less time at C = 17 and 20, 15% at 24, 6% at 28, 22-35% for
    /// distributions; at 31 the two were level and at 32 the row kernel took 6% less).
    const LAST_COLS: usize = 16;

    fn splat(v: f32) -> Self;
    /// `src[..LANES]`, or `src` padded with `fill` when it is shorter.
    fn load_or(src: &[f32], fill: f32) -> Self;
    /// Writes the first `min(dst.len(), LANES)` lanes.
    fn store(self, dst: &mut [f32]);
    /// `src[..LANES]` as `bf16` bits widened to `f32` (exactly: a shift), or `src` padded
    /// with `fill` when it is shorter.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn load_bf16(src: &[u16], fill: f32) -> Self {
        let a: [f32; MAX_LANES] = float::padded_bf16(src, fill);
        Self::load_or(&a[..Self::LANES], fill)
    }
    /// `src[..LANES]` as `f16` bits widened to `f32` (exactly), or `src` padded with `fill`.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn load_f16(src: &[u16], fill: f32) -> Self {
        let a: [f32; MAX_LANES] = float::padded_f16(src, fill);
        Self::load_or(&a[..Self::LANES], fill)
    }
    /// `src[..LANES]` as `f32` (exactly), or `src` padded with 0 when it is shorter.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn load_u8(src: &[u8]) -> Self {
        let a: [f32; MAX_LANES] = float::padded_u8(src);
        Self::load_or(&a[..Self::LANES], 0.0)
    }
    /// Writes the first `min(dst.len(), LANES)` lanes as `bf16` bits, each rounded to
    /// nearest, ties to even (a NaN stays a quiet NaN).
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn store_bf16(self, dst: &mut [u16]) {
        let mut a = [0f32; MAX_LANES];
        self.store(&mut a[..Self::LANES]);
        for (d, &v) in dst.iter_mut().zip(&a[..Self::LANES]) {
            *d = float::f32_to_bf16_bits(v);
        }
    }
    /// Whether this CPU converts to `bf16` in one instruction that [`Lane::store_bf16_native`]
    /// uses (AVX-512 BF16); asked once per run of the sigmoid family's typed hard-target
    /// loop, which then has a copy of its own that writes through it.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn bf16_native() -> bool {
        false
    }
    /// [`Lane::store_bf16`], the same bits, with the CPU's conversion where
    /// [`Lane::bf16_native`] said it has one (only then called).
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn store_bf16_native(self, dst: &mut [u16]) {
        self.store_bf16(dst)
    }
    /// Writes the first `min(dst.len(), LANES)` lanes as `f16` bits, each rounded to
    /// nearest, ties to even (beyond 65520 in magnitude: `inf`).
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn store_f16(self, dst: &mut [u16]) {
        let mut a = [0f32; MAX_LANES];
        self.store(&mut a[..Self::LANES]);
        for (d, &v) in dst.iter_mut().zip(&a[..Self::LANES]) {
            *d = float::f32_to_f16_bits(v);
        }
    }

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
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn all_hard(x: Self, t: Self, bound: f32) -> (bool, Self::Mask) {
        let y = t.eq(Self::splat(1.0));
        let ok = x.abs().lt(Self::splat(bound)) & (y | t.eq(Self::splat(0.0)));
        (Self::all(ok), y)
    }
    /// `2^n` for an integral `n` in `[-126, 127]`.
    fn pow2i(n: Self) -> Self;
    /// `self * 2^n` for an integral `n` in `[-252, 254]`, rounded once (also into the
    /// subnormal range): two exact power-of-two factors by default.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn scale2(self, n: Self) -> Self {
        let n1 = (n * Self::splat(0.5)).round_half();
        self * Self::pow2i(n1) * Self::pow2i(n - n1)
    }
    /// `1 / self` for `self` in `[1, 2]`, within 1 ULP (a true division by default).
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn recip_1_2(self) -> Self {
        Self::splat(1.0) / self
    }
    /// `1 / self` for `self` in `[1, 2]` with a relative error below `2^-14` (the
    /// correctly rounded [`Lane::recip_1_2`] by default).
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn recip_approx(self) -> Self {
        self.recip_1_2()
    }
    /// The nearest integer (ties to even) of `|self| < 2^22`.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn round_half(self) -> Self {
        // 1.5 * 2^23: adding and subtracting it rounds to an integer in the default mode.
        (self + Self::splat(12_582_912.0)) - Self::splat(12_582_912.0)
    }
    /// `(k, m)` with `self = m * 2^k`, `m` in `[1, 2)`, for a positive normal `self`.
    fn frexp(self) -> (Self, Self);

    /// `sqrt(self)` for `self >= 0`, correctly rounded (IEEE 754).
    fn sqrt(self) -> Self;
    /// `e^self` within 1.1 ULP for `self <= 88.72` (`-inf` gives 0); the polynomial of
    /// [`crate::math`] by default.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn exp(self) -> Self {
        math::exp(self)
    }
    /// `e^self` for `self` in `[-87, 0]` with the bits of [`Lane::exp`], cheaper where
    /// [`Lane::scale2`] is two multiplies ([`math::exp_normal`] by default); meaningless
    /// outside that domain.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn exp_normal(self) -> Self {
        math::exp_normal(self)
    }
    /// `e^self` for `self <= 0` (`-inf` gives 0) in the softmax family, where `self = z - m`
    /// is an f32 difference: [`math::exp_table`] where [`Lane::LOOKUP16_FAST`] (within
    /// `1.1 + 0.047 |self|` ULP), [`Lane::exp`] otherwise.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn softmax_exp(self) -> Self {
        if Self::LOOKUP16_FAST {
            math::exp_table(self)
        } else {
            self.exp()
        }
    }
    /// [`Lane::softmax_exp`] for `self` in `[-87, 0]`, with its bits and cheaper (as
    /// [`Lane::exp_normal`] is to [`Lane::exp`]); meaningless outside that domain.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn softmax_exp_normal(self) -> Self {
        if Self::LOOKUP16_FAST {
            math::exp_table_normal(self)
        } else {
            self.exp_normal()
        }
    }
    /// Lane by lane, `table[b & 15]` of the lane's bit pattern `b`; a round trip through
    /// memory by default.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn lookup16(self, table: &[f32; 16]) -> Self {
        let mut a = [0f32; super::MAX_LANES];
        self.store(&mut a);
        for v in &mut a[..Self::LANES] {
            *v = table[(v.to_bits() & 15) as usize];
        }
        Self::load_or(&a[..Self::LANES], 0.0)
    }
    /// `ln(self)` for `self > 0` (subnormals included), within 1 ULP; the polynomial of
    /// [`crate::math`] by default.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn ln(self) -> Self {
        math::ln(self)
    }
    /// `ln(1 + self)` for `self` in `[0, 1]`, within 1.5 ULP; the polynomial of
    /// [`crate::math`] by default.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn ln_1p(self) -> Self {
        math::ln_1p_unit(self)
    }
    /// `ln(1 + self)` for `self` in `[0, 1]` as `(l, lo)`: `l` has the bits of
    /// [`Lane::ln_1p`], and `l + lo` is within 1 ULP of the truth, where `l` alone is within
    /// 1.5 (the polynomials of [`crate::math`] by default; `libm` in f64 for the scalar lane).
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn ln_1p_lo(self) -> (Self, Self) {
        math::ln_1p_unit_lo(self)
    }

    fn acc_zero() -> Self::Acc;
    /// Adds every lane of `loss` to the double-word loss sum.
    fn acc_add(acc: &mut Self::Acc, loss: Self);
    /// Adds every lane of `a` and of `b` to the double-word loss sum.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn acc_add2(acc: &mut Self::Acc, a: Self, b: Self) {
        Self::acc_add(acc, a);
        Self::acc_add(acc, b);
    }
    /// Adds every lane of `t` to the `f64` target sum.
    fn acc_add_t(acc: &mut Self::Acc, t: Self);
    /// The sums over all lanes: loss, targets.
    fn acc_total(acc: Self::Acc) -> (Dd, f64);

    /// One `f64` sum per lane (the per-row class sums of the softmax family, whose order of
    /// operations must not depend on the layout: see `crate::softmax::pass`).
    type Wide: Copy;
    /// Every lane 0.
    fn wide_zero() -> Self::Wide;
    /// `acc + v`, lane by lane: `v` widened exactly, then one `f64` rounding per lane.
    fn wide_add(acc: Self::Wide, v: Self) -> Self::Wide;
    /// `acc + v` in the lanes of `keep` and `acc` in the others: the bits of
    /// `wide_add(acc, select(keep, v, 0))`, which a backend with mask registers may form
    /// without the select (in its widening conversions).
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn wide_add_where(acc: Self::Wide, v: Self, keep: Self::Mask) -> Self::Wide {
        Self::wide_add(acc, Self::select(keep, v, Self::splat(0.0)))
    }
    /// `v` widened exactly: the bits of `wide_add(wide_zero(), v)` for `v` without `-0`
    /// lanes (`+0 + x = x` for every other `x`), without the additions.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn widen(v: Self) -> Self::Wide {
        Self::wide_add(Self::wide_zero(), v)
    }
    /// `v` widened exactly in the lanes of `keep`, `+0` in the others: the bits of
    /// `widen(select(keep, v, 0))`, formed as [`Lane::wide_add_where`] forms its addend.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn widen_where(v: Self, keep: Self::Mask) -> Self::Wide {
        Self::widen(Self::select(keep, v, Self::splat(0.0)))
    }
    /// `a + b`, lane by lane, in `f64`.
    fn wide_sum(a: Self::Wide, b: Self::Wide) -> Self::Wide;
    /// Writes the `LANES` sums, lane `j` to `dst[j]` (`dst` has at least `LANES` elements).
    fn wide_store(a: Self::Wide, dst: &mut [f64]);
    /// Every lane rounded to `f32` (to nearest, as `as f32`).
    fn wide_round(a: Self::Wide) -> Self;
    /// Lane `j` from `src[j]` (`src` has at least `LANES` elements): the inverse of
    /// [`Lane::wide_store`].
    fn wide_load(src: &[f64]) -> Self::Wide;
    /// The sum of the lanes in the fixed tree `a[j] += a[j + h]` for `h = LANES/2, ..., 1`
    /// (the order `crate::softmax::pass` relies on), in `f64`.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn wide_tree(a: Self::Wide) -> f64 {
        let mut v = [0f64; MAX_LANES];
        Self::wide_store(a, &mut v);
        let mut h = Self::LANES / 2;
        while h >= 1 {
            for j in 0..h {
                v[j] += v[j + h];
            }
            h /= 2;
        }
        v[0]
    }
    /// [`Lane::wide_tree`] of `a[j]` as lane `j`, for `j < LANES`, with its bits (the sums
    /// of a block of rows, one row per lane). The default takes one tree after another; a
    /// backend may add the same pairs of lanes of several rows in one vector.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn wide_trees(a: &[Self::Wide; MAX_LANES]) -> Self::Wide {
        const { assert!(Self::LANES <= MAX_LANES) };
        let mut v = [0f64; MAX_LANES];
        for (o, &w) in v.iter_mut().zip(a).take(Self::LANES) {
            *o = Self::wide_tree(w);
        }
        Self::wide_load(&v)
    }
    /// The largest lane; with a NaN lane, the largest of the others or NaN (a tree of
    /// `f32::max` by default, which takes the others).
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn reduce_max(self) -> f32 {
        let mut v = [f32::NEG_INFINITY; MAX_LANES];
        self.store(&mut v);
        let mut h = Self::LANES / 2;
        while h >= 1 {
            for j in 0..h {
                v[j] = v[j].max(v[j + h]);
            }
            h /= 2;
        }
        v[0]
    }
    /// The number of lanes set.
    fn count(m: Self::Mask) -> u32;
    /// Transposes a whole block of `ln` rows of `cn` classes, if this backend has a faster
    /// way than the compiler's code for a loop with `cn` fixed: `dst[c ln + p] = src[p cn + c]`
    /// for `p < ln`, `c < cn`, with `src.len() == cn ln`. Returns `false`, having written
    /// nothing, where it has none (the default) or the shape is not one it takes; `true` when
    /// `dst` holds the transposition. A pure permutation of bits: every backend's result is
    /// the same.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn transpose_rows(src: &[f32], dst: &mut [f32], cn: usize, ln: usize) -> bool {
        let _ = (src, dst, cn, ln);
        false
    }
    /// The inverse of [`Lane::transpose_rows`]: `dst[p cn + c] = src[c ln + p]` for `p < ln`,
    /// `c < cn`, with `dst.len() == cn ln`; `false`, having written nothing, where not taken.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn untranspose_rows(src: &[f32], dst: &mut [f32], cn: usize, ln: usize) -> bool {
        let _ = (src, dst, cn, ln);
        false
    }
}

/// Two lanes in lock step, `2 * L::LANES` values: every operation is issued for both halves
/// back to back, so that a loop over `Two<L>` offers the out-of-order core two independent
/// dependency chains side by side instead of one after the other. Each half gets exactly the
/// operations, hence the bits, of `L` (the elementary functions too: see [`Lane::POLY`]).
#[derive(Clone, Copy)]
pub(crate) struct Two<L>(pub L, pub L);

/// The mask of [`Two`].
#[derive(Clone, Copy)]
pub(crate) struct TwoMask<M>(pub M, pub M);

macro_rules! two_op {
    ($tr:ident, $f:ident, $ty:ident, $bound:ident) => {
        impl<L: $bound> $tr for $ty<L> {
            type Output = Self;
            #[cfg_attr(not(opt_level_0), inline(always))]
            fn $f(self, o: Self) -> Self {
                $ty(self.0.$f(o.0), self.1.$f(o.1))
            }
        }
    };
}
two_op!(Add, add, Two, Lane);
two_op!(Sub, sub, Two, Lane);
two_op!(Mul, mul, Two, Lane);
two_op!(Div, div, Two, Lane);
two_op!(BitAnd, bitand, TwoMask, TwoMaskBits);
two_op!(BitOr, bitor, TwoMask, TwoMaskBits);
two_op!(BitXor, bitxor, TwoMask, TwoMaskBits);

/// The operations a mask of a [`Lane`] has (an alias for the bounds of [`Lane::Mask`]).
pub(crate) trait TwoMaskBits:
    Copy + BitAnd<Output = Self> + BitOr<Output = Self> + BitXor<Output = Self> + Not<Output = Self>
{
}
impl<M> TwoMaskBits for M where
    M: Copy + BitAnd<Output = M> + BitOr<Output = M> + BitXor<Output = M> + Not<Output = M>
{
}

impl<L: Lane> Neg for Two<L> {
    type Output = Self;
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn neg(self) -> Self {
        Two(-self.0, -self.1)
    }
}

impl<M: TwoMaskBits> Not for TwoMask<M> {
    type Output = Self;
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn not(self) -> Self {
        TwoMask(!self.0, !self.1)
    }
}

impl<L: Lane> Lane for Two<L> {
    const LANES: usize = 2 * L::LANES;
    const FMA: bool = L::FMA;
    const POLY: bool = L::POLY;
    const SCALE2_FAST: bool = L::SCALE2_FAST;
    const LOOKUP16_FAST: bool = L::LOOKUP16_FAST;
    type Mask = TwoMask<L::Mask>;
    type Acc = L::Acc;
    /// (Never asked for: the column kernels take `Cols` of a backend's own vector.)
    type Cols = Self;

    #[cfg_attr(not(opt_level_0), inline(always))]
    fn splat(v: f32) -> Self {
        Two(L::splat(v), L::splat(v))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn load_or(src: &[f32], fill: f32) -> Self {
        let hi = src.get(L::LANES..).unwrap_or(&[]);
        Two(L::load_or(src, fill), L::load_or(hi, fill))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn store(self, dst: &mut [f32]) {
        self.0.store(dst);
        if let Some(hi) = dst.get_mut(L::LANES..) {
            self.1.store(hi);
        }
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn load_bf16(src: &[u16], fill: f32) -> Self {
        let hi = src.get(L::LANES..).unwrap_or(&[]);
        Two(L::load_bf16(src, fill), L::load_bf16(hi, fill))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn load_f16(src: &[u16], fill: f32) -> Self {
        let hi = src.get(L::LANES..).unwrap_or(&[]);
        Two(L::load_f16(src, fill), L::load_f16(hi, fill))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn load_u8(src: &[u8]) -> Self {
        let hi = src.get(L::LANES..).unwrap_or(&[]);
        Two(L::load_u8(src), L::load_u8(hi))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn store_bf16(self, dst: &mut [u16]) {
        self.0.store_bf16(dst);
        if let Some(hi) = dst.get_mut(L::LANES..) {
            self.1.store_bf16(hi);
        }
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn bf16_native() -> bool {
        L::bf16_native()
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn store_bf16_native(self, dst: &mut [u16]) {
        self.0.store_bf16_native(dst);
        if let Some(hi) = dst.get_mut(L::LANES..) {
            self.1.store_bf16_native(hi);
        }
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn store_f16(self, dst: &mut [u16]) {
        self.0.store_f16(dst);
        if let Some(hi) = dst.get_mut(L::LANES..) {
            self.1.store_f16(hi);
        }
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn mul_add(self, a: Self, b: Self) -> Self {
        Two(self.0.mul_add(a.0, b.0), self.1.mul_add(a.1, b.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn mul_err(a: Self, b: Self, p: Self) -> Self {
        Two(L::mul_err(a.0, b.0, p.0), L::mul_err(a.1, b.1, p.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn abs(self) -> Self {
        Two(self.0.abs(), self.1.abs())
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn max(self, o: Self) -> Self {
        Two(self.0.max(o.0), self.1.max(o.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn min(self, o: Self) -> Self {
        Two(self.0.min(o.0), self.1.min(o.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn lt(self, o: Self) -> Self::Mask {
        TwoMask(self.0.lt(o.0), self.1.lt(o.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn ge(self, o: Self) -> Self::Mask {
        TwoMask(self.0.ge(o.0), self.1.ge(o.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn le(self, o: Self) -> Self::Mask {
        TwoMask(self.0.le(o.0), self.1.le(o.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn eq(self, o: Self) -> Self::Mask {
        TwoMask(self.0.eq(o.0), self.1.eq(o.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn select(m: Self::Mask, a: Self, b: Self) -> Self {
        Two(L::select(m.0, a.0, b.0), L::select(m.1, a.1, b.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn all(m: Self::Mask) -> bool {
        L::all(m.0) && L::all(m.1)
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn any(m: Self::Mask) -> bool {
        L::any(m.0) || L::any(m.1)
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn all_hard(x: Self, t: Self, bound: f32) -> (bool, Self::Mask) {
        let (a, ya) = L::all_hard(x.0, t.0, bound);
        let (b, yb) = L::all_hard(x.1, t.1, bound);
        (a && b, TwoMask(ya, yb))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn pow2i(n: Self) -> Self {
        Two(L::pow2i(n.0), L::pow2i(n.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn scale2(self, n: Self) -> Self {
        Two(self.0.scale2(n.0), self.1.scale2(n.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn lookup16(self, table: &[f32; 16]) -> Self {
        Two(self.0.lookup16(table), self.1.lookup16(table))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn recip_1_2(self) -> Self {
        Two(self.0.recip_1_2(), self.1.recip_1_2())
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn recip_approx(self) -> Self {
        Two(self.0.recip_approx(), self.1.recip_approx())
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn round_half(self) -> Self {
        Two(self.0.round_half(), self.1.round_half())
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn frexp(self) -> (Self, Self) {
        let ((k0, m0), (k1, m1)) = (self.0.frexp(), self.1.frexp());
        (Two(k0, k1), Two(m0, m1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn sqrt(self) -> Self {
        Two(self.0.sqrt(), self.1.sqrt())
    }
    // The polynomials over `Two` interleave the halves; other elementary functions go half
    // by half.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn exp(self) -> Self {
        if L::POLY {
            math::exp(self)
        } else {
            Two(self.0.exp(), self.1.exp())
        }
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn exp_normal(self) -> Self {
        if L::POLY {
            math::exp_normal(self)
        } else {
            Two(self.0.exp_normal(), self.1.exp_normal())
        }
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn ln(self) -> Self {
        if L::POLY {
            math::ln(self)
        } else {
            Two(self.0.ln(), self.1.ln())
        }
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn ln_1p(self) -> Self {
        if L::POLY {
            math::ln_1p_unit(self)
        } else {
            Two(self.0.ln_1p(), self.1.ln_1p())
        }
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn ln_1p_lo(self) -> (Self, Self) {
        if L::POLY {
            math::ln_1p_unit_lo(self)
        } else {
            let (a, b) = (self.0.ln_1p_lo(), self.1.ln_1p_lo());
            (Two(a.0, b.0), Two(a.1, b.1))
        }
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn acc_zero() -> L::Acc {
        L::acc_zero()
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn acc_add(acc: &mut L::Acc, loss: Self) {
        L::acc_add2(acc, loss.0, loss.1);
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn acc_add_t(acc: &mut L::Acc, t: Self) {
        L::acc_add_t(acc, t.0);
        L::acc_add_t(acc, t.1);
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn acc_total(acc: L::Acc) -> (Dd, f64) {
        L::acc_total(acc)
    }
    type Wide = (L::Wide, L::Wide);
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn wide_zero() -> Self::Wide {
        (L::wide_zero(), L::wide_zero())
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn wide_add(acc: Self::Wide, v: Self) -> Self::Wide {
        (L::wide_add(acc.0, v.0), L::wide_add(acc.1, v.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn wide_add_where(acc: Self::Wide, v: Self, keep: Self::Mask) -> Self::Wide {
        (
            L::wide_add_where(acc.0, v.0, keep.0),
            L::wide_add_where(acc.1, v.1, keep.1),
        )
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn widen(v: Self) -> Self::Wide {
        (L::widen(v.0), L::widen(v.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn widen_where(v: Self, keep: Self::Mask) -> Self::Wide {
        (L::widen_where(v.0, keep.0), L::widen_where(v.1, keep.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn wide_sum(a: Self::Wide, b: Self::Wide) -> Self::Wide {
        (L::wide_sum(a.0, b.0), L::wide_sum(a.1, b.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn wide_store(a: Self::Wide, dst: &mut [f64]) {
        let (lo, hi) = dst.split_at_mut(L::LANES);
        L::wide_store(a.0, lo);
        L::wide_store(a.1, hi);
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn wide_load(src: &[f64]) -> Self::Wide {
        (L::wide_load(src), L::wide_load(&src[L::LANES..]))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn wide_round(a: Self::Wide) -> Self {
        Two(L::wide_round(a.0), L::wide_round(a.1))
    }
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn count(m: Self::Mask) -> u32 {
        L::count(m.0) + L::count(m.1)
    }
}
