//! The scalar backend: one `f32` at a time, `libm` for the elementary functions (the same
//! code on every target, `no_std` microcontrollers included).

use crate::backend::Kernel;
use crate::backend::lane::Lane;
use crate::sigmoid::pass::Body;
use crate::sum::Dd;

/// One lane.
pub(crate) const LANES: usize = 1;

/// `k` on the scalar lane, in a frame of its own (inlined into the dispatch, the scalar pass's
/// stack frame would be taken by every call, whichever backend runs it).
#[inline(never)]
pub(crate) fn run<K: Kernel>(k: K) -> K::Output {
    crate::backend::frame_first();
    k.run::<f32>()
}

impl Body for f32 {}

impl Lane for f32 {
    const LANES: usize = LANES;
    const FMA: bool = true;
    type Mask = bool;
    type Acc = (Dd, f64);
    type Cols = f32;

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
    fn exp_normal(self) -> Self {
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
    fn ln_1p_lo(self) -> (Self, Self) {
        let l = libm::log1pf(self);
        (l, (libm::log1p(self as f64) - l as f64) as f32)
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
    type Wide = f64;
    #[inline(always)]
    fn wide_zero() -> f64 {
        0.0
    }
    #[inline(always)]
    fn wide_add(acc: f64, v: Self) -> f64 {
        acc + v as f64
    }
    #[inline(always)]
    fn wide_sum(a: f64, b: f64) -> f64 {
        a + b
    }
    #[inline(always)]
    fn wide_store(a: f64, dst: &mut [f64]) {
        dst[0] = a;
    }
    #[inline(always)]
    fn wide_load(src: &[f64]) -> f64 {
        src[0]
    }
    #[inline(always)]
    fn wide_round(a: f64) -> f32 {
        a as f32
    }
    #[inline(always)]
    fn count(m: bool) -> u32 {
        m as u32
    }
}
