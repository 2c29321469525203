//! x86-64 backends chosen at run time: AVX-512F (`V512`, 16 lanes in one register) and
//! AVX2 + FMA (`V256x2`, 16 lanes in two registers), and the CPU detection that picks them.
//! The only module of the crate with `unsafe` code.
//!
//! # Safety invariant
//! The intrinsics used here need AVX-512F (for `V512`) or AVX, AVX2 and FMA (for `V256x2`).
//! Values of these types are created only inside [`pass_avx512`], [`pass_avx2`],
//! [`scan_avx512`] and [`scan_avx2`] (the types are private to this module and to the
//! generic code those functions instantiate), and each of these functions first checks, with
//! CPUID and XGETBV, that the CPU and the operating system support the instruction set. The
//! backends' [`Body`] functions need a `State` of these types, which only those passes create.
//! Every `unsafe` block below that calls a non-memory intrinsic relies on that check and says
//! so as `// SAFETY: invariant`. Memory intrinsics (`loadu`, `storeu`) additionally take
//! pointers from references to arrays of exactly the register's size, so every access is in
//! bounds; unaligned access is what `loadu`/`storeu` are for.

use core::arch::x86_64::*;
use core::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Not, Sub};
use core::sync::atomic::{AtomicU8, Ordering};

use crate::lane::Lane;
use crate::math;
use crate::pass::{self, Body, ClassParams, Job, Sink, State, Sums};
use crate::sum::Dd;
use crate::target::Target;

// ---------------------------------------------------------------------------------------
// Detection.

/// Bit 0: detection done; bit 1: AVX2 + FMA usable; bit 2: AVX-512F usable.
static FEATURES: AtomicU8 = AtomicU8::new(0);
const DONE: u8 = 1;
const AVX2: u8 = 2;
const AVX512: u8 = 4;

fn features() -> u8 {
    let f = FEATURES.load(Ordering::Relaxed);
    if f != 0 {
        return f;
    }
    let f = detect() | DONE;
    FEATURES.store(f, Ordering::Relaxed);
    f
}

/// Under Miri, which cannot execute CPUID or XGETBV (inline assembly): the features enabled
/// at compile time (`RUSTFLAGS="-C target-feature=+avx2,+fma"`), as `std`'s
/// `is_x86_feature_detected!` reports under Miri.
#[cfg(miri)]
fn detect() -> u8 {
    let mut f = 0;
    if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
        f |= AVX2;
    }
    if cfg!(target_feature = "avx512f") {
        f |= AVX512;
    }
    f
}

#[cfg(not(miri))]
fn detect() -> u8 {
    // CPUID leaf 1: ECX bit 12 FMA, bit 27 OSXSAVE, bit 28 AVX. Leaf 7: EBX bit 5 AVX2,
    // bit 16 AVX-512F. XCR0 bits 1-2 (SSE, AVX state) and 5-7 (opmask, ZMM) must be enabled
    // by the OS for the registers to be saved across context switches.
    // SAFETY: CPUID exists on every x86-64 CPU. (`__cpuid` is safe from Rust 1.94 on; the
    // block keeps the crate building on its MSRV, 1.89.)
    #[allow(unused_unsafe)]
    let (max_leaf, l1) = unsafe { (__cpuid(0).eax, __cpuid(1)) };
    let (fma, osxsave, avx) = (
        l1.ecx & (1 << 12) != 0,
        l1.ecx & (1 << 27) != 0,
        l1.ecx & (1 << 28) != 0,
    );
    if !(osxsave && avx) || max_leaf < 7 {
        return 0;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is supported and XCR0 readable.
    let xcr0 = unsafe { xcr0() };
    // SAFETY: as above.
    #[allow(unused_unsafe)]
    let l7 = unsafe { __cpuid_count(7, 0) };
    let mut f = 0;
    if xcr0 & 0b110 == 0b110 && fma && l7.ebx & (1 << 5) != 0 {
        f |= AVX2;
    }
    if xcr0 & 0b1110_0110 == 0b1110_0110 && l7.ebx & (1 << 16) != 0 {
        f |= AVX512;
    }
    f
}

#[cfg(not(miri))]
#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    // SAFETY: the caller has checked OSXSAVE.
    unsafe { _xgetbv(0) }
}

pub(crate) fn has_avx2() -> bool {
    features() & AVX2 != 0
}

pub(crate) fn has_avx512() -> bool {
    features() & AVX512 != 0
}

// ---------------------------------------------------------------------------------------
// Entry points: the generic pass compiled with the instruction set enabled.

#[target_feature(enable = "avx512f")]
fn pass_avx512_tf<T: Target>(job: &Job<'_, T>, sink: &mut Sink<'_>) -> Sums {
    pass::pass::<V512, T>(job, sink)
}

#[target_feature(enable = "avx,avx2,fma")]
fn pass_avx2_tf<T: Target>(job: &Job<'_, T>, sink: &mut Sink<'_>) -> Sums {
    pass::pass::<V256x2, T>(job, sink)
}

#[target_feature(enable = "avx512f")]
fn scan_avx512_tf<T: Target>(x: &[f32], t: &[T]) -> Sums {
    pass::scan::<V512, T>(x, t)
}

#[target_feature(enable = "avx,avx2,fma")]
fn scan_avx2_tf<T: Target>(x: &[f32], t: &[T]) -> Sums {
    pass::scan::<V256x2, T>(x, t)
}

#[target_feature(enable = "avx512f")]
fn body_avx512(
    job: &Job<'_, f32>,
    params: &ClassParams<'_>,
    sink: &mut Sink<'_>,
    st: &mut State<V512>,
) {
    pass::body::<V512>(job, params, sink, st)
}

#[target_feature(enable = "avx,avx2,fma")]
fn body_avx2(
    job: &Job<'_, f32>,
    params: &ClassParams<'_>,
    sink: &mut Sink<'_>,
    st: &mut State<V256x2>,
) {
    pass::body::<V256x2>(job, params, sink, st)
}

impl Body for V512 {
    #[inline(never)]
    fn body(
        job: &Job<'_, f32>,
        params: &ClassParams<'_>,
        sink: &mut Sink<'_>,
        st: &mut State<V512>,
    ) {
        // SAFETY: invariant. A `State<V512>` exists only inside `pass_avx512_tf`, which runs
        // after the check: its fields are private to `pass`, whose `pass()` alone creates one.
        unsafe { body_avx512(job, params, sink, st) }
    }
}

impl Body for V256x2 {
    #[inline(never)]
    fn body(
        job: &Job<'_, f32>,
        params: &ClassParams<'_>,
        sink: &mut Sink<'_>,
        st: &mut State<V256x2>,
    ) {
        // SAFETY: invariant. A `State<V256x2>` exists only inside `pass_avx2_tf`, which runs
        // after the check: its fields are private to `pass`, whose `pass()` alone creates one.
        unsafe { body_avx2(job, params, sink, st) }
    }
}

/// The pass on AVX-512F; the portable backend if the CPU lacks it (callers resolve first).
pub(crate) fn pass_avx512<T: Target>(job: &Job<'_, T>, sink: &mut Sink<'_>) -> Sums {
    if has_avx512() {
        // SAFETY: the CPU and OS support AVX-512F (checked just above).
        unsafe { pass_avx512_tf::<T>(job, sink) }
    } else {
        crate::backend::pass_portable(job, sink)
    }
}

/// The pass on AVX2 + FMA; the portable backend if the CPU lacks them.
pub(crate) fn pass_avx2<T: Target>(job: &Job<'_, T>, sink: &mut Sink<'_>) -> Sums {
    if has_avx2() {
        // SAFETY: the CPU and OS support AVX, AVX2 and FMA (checked just above).
        unsafe { pass_avx2_tf::<T>(job, sink) }
    } else {
        crate::backend::pass_portable(job, sink)
    }
}

pub(crate) fn scan_avx512<T: Target>(x: &[f32], t: &[T]) -> Sums {
    if has_avx512() {
        // SAFETY: the CPU and OS support AVX-512F (checked just above).
        unsafe { scan_avx512_tf(x, t) }
    } else {
        crate::backend::scan_portable(x, t)
    }
}

pub(crate) fn scan_avx2<T: Target>(x: &[f32], t: &[T]) -> Sums {
    if has_avx2() {
        // SAFETY: the CPU and OS support AVX, AVX2 and FMA (checked just above).
        unsafe { scan_avx2_tf(x, t) }
    } else {
        crate::backend::scan_portable(x, t)
    }
}

/// Pads a short slice into a full array (the last vector of a batch).
#[inline(always)]
fn padded<const N: usize>(src: &[f32], fill: f32) -> [f32; N] {
    let mut a = [fill; N];
    let n = src.len().min(N);
    a[..n].copy_from_slice(&src[..n]);
    a
}

/// Sum2 per lane, as `sum::Dd::add_f64`: `hi += l` and its exact rounding error (TwoSum)
/// into `lo`. An infinite sum makes `lo` NaN, which `total` discards.
#[inline(always)]
fn sum2_512(hi: &mut __m512d, lo: &mut __m512d, l: __m512d) {
    // SAFETY: invariant (AVX-512F).
    unsafe {
        let s = _mm512_add_pd(*hi, l);
        let bb = _mm512_sub_pd(s, *hi);
        let e = _mm512_add_pd(
            _mm512_sub_pd(*hi, _mm512_sub_pd(s, bb)),
            _mm512_sub_pd(l, bb),
        );
        *hi = s;
        *lo = _mm512_add_pd(*lo, e);
    }
}

/// [`sum2_512`] on four lanes.
#[inline(always)]
fn sum2_256(hi: &mut __m256d, lo: &mut __m256d, l: __m256d) {
    // SAFETY: invariant (AVX).
    unsafe {
        let s = _mm256_add_pd(*hi, l);
        let bb = _mm256_sub_pd(s, *hi);
        let e = _mm256_add_pd(
            _mm256_sub_pd(*hi, _mm256_sub_pd(s, bb)),
            _mm256_sub_pd(l, bb),
        );
        *hi = s;
        *lo = _mm256_add_pd(*lo, e);
    }
}

/// Sums per-lane double-word accumulators and target sums.
fn total(hi: &[f64], lo: &[f64], t: &[f64]) -> (Dd, f64) {
    let mut d = Dd::ZERO;
    for k in 0..hi.len() {
        // A lane whose running sum is infinite (a loss of +inf at an infinite logit) has a
        // NaN error term (inf - inf in TwoSum): it is dropped.
        let lo = if hi[k].is_finite() { lo[k] } else { 0.0 };
        d = d.add(Dd { hi: hi[k], lo });
    }
    (d, t.iter().sum())
}

// ---------------------------------------------------------------------------------------
// AVX-512F: 16 lanes, masks in k-registers (`u16`).

#[derive(Clone, Copy)]
pub(crate) struct V512(__m512);

/// Per-lane sums: loss (`hi` running sum, `lo` sum of its rounding errors) of lanes `k` and
/// `k + 8` together, and targets of lanes 0..8 and 8..16.
#[derive(Clone, Copy)]
pub(crate) struct Acc512 {
    hi: __m512d,
    lo: __m512d,
    t: [__m512d; 2],
}

macro_rules! binop512 {
    ($tr:ident, $f:ident, $intr:ident) => {
        impl $tr for V512 {
            type Output = V512;
            #[inline(always)]
            fn $f(self, o: V512) -> V512 {
                // SAFETY: invariant (AVX-512F).
                V512(unsafe { $intr(self.0, o.0) })
            }
        }
    };
}
binop512!(Add, add, _mm512_add_ps);
binop512!(Sub, sub, _mm512_sub_ps);
binop512!(Mul, mul, _mm512_mul_ps);
binop512!(Div, div, _mm512_div_ps);

impl Neg for V512 {
    type Output = V512;
    #[inline(always)]
    fn neg(self) -> V512 {
        // SAFETY: invariant (AVX-512F). A product by -1 is exact and flips the sign bit, as
        // scalar negation does (NaN excepted, whose sign nothing reads); the compiler folds it
        // into the fused negated forms (vfnmadd) where it feeds one.
        V512(unsafe { _mm512_mul_ps(self.0, _mm512_set1_ps(-1.0)) })
    }
}

/// Splits the 16 lanes into two halves widened to f64.
#[inline(always)]
fn widen512(v: __m512) -> [__m512d; 2] {
    // SAFETY: invariant (AVX-512F).
    unsafe {
        let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
            _mm512_castps_pd(v),
        )));
        [lo, hi]
    }
}

impl Lane for V512 {
    const LANES: usize = 16;
    const POLY: bool = true;
    const FMA: bool = true;
    const PAIRS: bool = true;
    type Mask = u16;
    type Acc = Acc512;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: invariant (AVX-512F).
        V512(unsafe { _mm512_set1_ps(v) })
    }
    #[inline(always)]
    fn load_or(src: &[f32], fill: f32) -> Self {
        match src.first_chunk::<16>() {
            // SAFETY: invariant; reads the 64 bytes of the array `a`.
            Some(a) => V512(unsafe { _mm512_loadu_ps(a.as_ptr()) }),
            None => {
                let a: [f32; 16] = padded(src, fill);
                // SAFETY: invariant; reads the 64 bytes of `a`.
                V512(unsafe { _mm512_loadu_ps(a.as_ptr()) })
            }
        }
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32]) {
        if let Some(d) = dst.first_chunk_mut::<16>() {
            // SAFETY: invariant; writes the 64 bytes of the array `d`.
            unsafe { _mm512_storeu_ps(d.as_mut_ptr(), self.0) };
        } else {
            let mut a = [0f32; 16];
            // SAFETY: invariant; writes the 64 bytes of `a`.
            unsafe { _mm512_storeu_ps(a.as_mut_ptr(), self.0) };
            let n = dst.len().min(16);
            dst[..n].copy_from_slice(&a[..n]);
        }
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        // SAFETY: invariant (AVX-512F).
        V512(unsafe { _mm512_fmadd_ps(self.0, a.0, b.0) })
    }
    #[inline(always)]
    fn mul_err(a: Self, b: Self, p: Self) -> Self {
        // SAFETY: invariant (AVX-512F). a*b - p rounded once, exact because representable.
        V512(unsafe { _mm512_fmsub_ps(a.0, b.0, p.0) })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: invariant (AVX-512F).
        V512(unsafe {
            _mm512_castsi512_ps(_mm512_and_si512(
                _mm512_castps_si512(self.0),
                _mm512_set1_epi32(i32::MAX),
            ))
        })
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        // SAFETY: invariant (AVX-512F).
        V512(unsafe { _mm512_max_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        // SAFETY: invariant (AVX-512F).
        V512(unsafe { _mm512_min_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> u16 {
        // SAFETY: invariant (AVX-512F).
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn ge(self, o: Self) -> u16 {
        // SAFETY: invariant (AVX-512F).
        unsafe { _mm512_cmp_ps_mask::<_CMP_GE_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn le(self, o: Self) -> u16 {
        // SAFETY: invariant (AVX-512F).
        unsafe { _mm512_cmp_ps_mask::<_CMP_LE_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn eq(self, o: Self) -> u16 {
        // SAFETY: invariant (AVX-512F).
        unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn select(m: u16, a: Self, b: Self) -> Self {
        // SAFETY: invariant (AVX-512F). blend takes the second operand where m is set.
        V512(unsafe { _mm512_mask_blend_ps(m, b.0, a.0) })
    }
    #[inline(always)]
    fn all(m: u16) -> bool {
        m == u16::MAX
    }
    #[inline(always)]
    fn any(m: u16) -> bool {
        m != 0
    }
    #[inline(always)]
    fn pow2i(n: Self) -> Self {
        // SAFETY: invariant (AVX-512F).
        V512(unsafe {
            let i = _mm512_add_epi32(_mm512_cvtps_epi32(n.0), _mm512_set1_epi32(127));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(i))
        })
    }
    #[inline(always)]
    fn recip_1_2(self) -> Self {
        // SAFETY: invariant (AVX-512F). vrcp14ps (relative error < 2^-14) and one
        // Newton-Raphson step y' = y + y (1 - d y), whose error is below 2^-27 before the
        // final rounding: within 1 ULP, at a fraction of the cost of vdivps.
        V512(unsafe {
            let d = self.0;
            let y = _mm512_rcp14_ps(d);
            let one = _mm512_set1_ps(1.0);
            let err = _mm512_fnmadd_ps(d, y, one);
            _mm512_fmadd_ps(y, err, y)
        })
    }
    #[inline(always)]
    fn all_hard(x: Self, t: Self, bound: f32) -> (bool, u16) {
        // SAFETY: invariant (AVX-512F). The target comparisons are masked by the logit one,
        // so that one test of the union decides.
        unsafe {
            let small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x.abs().0, _mm512_set1_ps(bound));
            let y = _mm512_mask_cmp_ps_mask::<_CMP_EQ_OQ>(small, t.0, _mm512_set1_ps(1.0));
            let z = _mm512_mask_cmp_ps_mask::<_CMP_EQ_OQ>(small, t.0, _mm512_setzero_ps());
            (y | z == u16::MAX, y)
        }
    }
    #[inline(always)]
    fn recip_approx(self) -> Self {
        // SAFETY: invariant (AVX-512F). vrcp14ps: relative error below 2^-14.
        V512(unsafe { _mm512_rcp14_ps(self.0) })
    }
    #[inline(always)]
    fn scale2(self, n: Self) -> Self {
        // SAFETY: invariant (AVX-512F). vscalefps: self * 2^floor(n), rounded once.
        V512(unsafe { _mm512_scalef_ps(self.0, n.0) })
    }
    #[inline(always)]
    fn frexp(self) -> (Self, Self) {
        // SAFETY: invariant (AVX-512F).
        unsafe {
            let b = _mm512_castps_si512(self.0);
            let k = _mm512_sub_epi32(_mm512_srli_epi32::<23>(b), _mm512_set1_epi32(127));
            let m = _mm512_or_si512(
                _mm512_and_si512(b, _mm512_set1_epi32(0x007f_ffff)),
                _mm512_set1_epi32(0x3f80_0000),
            );
            (V512(_mm512_cvtepi32_ps(k)), V512(_mm512_castsi512_ps(m)))
        }
    }
    #[inline(always)]
    fn exp(self) -> Self {
        math::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        math::ln(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        math::ln_1p_unit(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        // SAFETY: invariant (AVX-512F). vsqrtps: correctly rounded.
        V512(unsafe { _mm512_sqrt_ps(self.0) })
    }
    #[inline(always)]
    fn acc_zero() -> Acc512 {
        // SAFETY: invariant (AVX-512F).
        let z = unsafe { _mm512_setzero_pd() };
        Acc512 {
            hi: z,
            lo: z,
            t: [z; 2],
        }
    }
    #[inline(always)]
    fn acc_add(acc: &mut Acc512, loss: Self) {
        let [a, b] = widen512(loss.0);
        // SAFETY: invariant (AVX-512F). The two halves are added in f64 first (one rounding,
        // relative 2^-53).
        sum2_512(&mut acc.hi, &mut acc.lo, unsafe { _mm512_add_pd(a, b) });
    }
    #[inline(always)]
    fn acc_add2(acc: &mut Acc512, a: Self, b: Self) {
        let ([a0, a1], [b0, b1]) = (widen512(a.0), widen512(b.0));
        // SAFETY: invariant (AVX-512F). Four halves added in f64 first (two roundings,
        // relative 2^-52 in all).
        let l = unsafe { _mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(b0, b1)) };
        sum2_512(&mut acc.hi, &mut acc.lo, l);
    }
    #[inline(always)]
    fn acc_add_t(acc: &mut Acc512, t: Self) {
        let t = widen512(t.0);
        // SAFETY: invariant (AVX-512F).
        unsafe {
            acc.t[0] = _mm512_add_pd(acc.t[0], t[0]);
            acc.t[1] = _mm512_add_pd(acc.t[1], t[1]);
        }
    }
    #[inline(always)]
    fn acc_total(acc: Acc512) -> (Dd, f64) {
        let (mut hi, mut lo, mut t) = ([0f64; 8], [0f64; 8], [0f64; 16]);
        // SAFETY: invariant; each store writes 64 bytes into a 64-byte array, or into one
        // half of a 128-byte array.
        unsafe {
            _mm512_storeu_pd(hi.as_mut_ptr(), acc.hi);
            _mm512_storeu_pd(lo.as_mut_ptr(), acc.lo);
            _mm512_storeu_pd(t.as_mut_ptr(), acc.t[0]);
            _mm512_storeu_pd(t[8..].as_mut_ptr(), acc.t[1]);
        }
        total(&hi, &lo, &t)
    }
}

// ---------------------------------------------------------------------------------------
// AVX2 + FMA: 16 lanes as two 256-bit registers (more independent work per iteration than
// one), masks as all-ones lanes.

#[derive(Clone, Copy)]
pub(crate) struct V256x2([__m256; 2]);

#[derive(Clone, Copy)]
pub(crate) struct M256x2([__m256; 2]);

/// Per-lane sums: loss (`hi` running sum, `lo` sum of its rounding errors) of lanes `k` and
/// `k + 4` of each register together, and targets, four lanes each.
#[derive(Clone, Copy)]
pub(crate) struct Acc256 {
    hi: [__m256d; 2],
    lo: [__m256d; 2],
    t: [__m256d; 4],
}

/// Applies a two-operand AVX intrinsic to both halves.
macro_rules! both {
    ($intr:ident, $a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        // SAFETY: invariant (AVX, AVX2, FMA).
        unsafe { [$intr(a[0], b[0]), $intr(a[1], b[1])] }
    }};
}

macro_rules! binop256 {
    ($tr:ident, $f:ident, $intr:ident) => {
        impl $tr for V256x2 {
            type Output = V256x2;
            #[inline(always)]
            fn $f(self, o: V256x2) -> V256x2 {
                V256x2(both!($intr, self.0, o.0))
            }
        }
    };
}
binop256!(Add, add, _mm256_add_ps);
binop256!(Sub, sub, _mm256_sub_ps);
binop256!(Mul, mul, _mm256_mul_ps);
binop256!(Div, div, _mm256_div_ps);

impl Neg for V256x2 {
    type Output = V256x2;
    #[inline(always)]
    fn neg(self) -> V256x2 {
        // SAFETY: invariant (AVX). Flips the sign bit.
        let s = unsafe { _mm256_set1_ps(-0.0) };
        V256x2(both!(_mm256_xor_ps, self.0, [s, s]))
    }
}

impl BitAnd for M256x2 {
    type Output = M256x2;
    #[inline(always)]
    fn bitand(self, o: M256x2) -> M256x2 {
        M256x2(both!(_mm256_and_ps, self.0, o.0))
    }
}

impl BitOr for M256x2 {
    type Output = M256x2;
    #[inline(always)]
    fn bitor(self, o: M256x2) -> M256x2 {
        M256x2(both!(_mm256_or_ps, self.0, o.0))
    }
}

impl BitXor for M256x2 {
    type Output = M256x2;
    #[inline(always)]
    fn bitxor(self, o: M256x2) -> M256x2 {
        M256x2(both!(_mm256_xor_ps, self.0, o.0))
    }
}

impl Not for M256x2 {
    type Output = M256x2;
    #[inline(always)]
    fn not(self) -> M256x2 {
        // SAFETY: invariant (AVX).
        let ones = unsafe { _mm256_castsi256_ps(_mm256_set1_epi32(-1)) };
        M256x2(both!(_mm256_xor_ps, self.0, [ones, ones]))
    }
}

macro_rules! cmp256 {
    ($f:ident, $pred:ident) => {
        #[inline(always)]
        fn $f(self, o: Self) -> M256x2 {
            let (a, b) = (self.0, o.0);
            // SAFETY: invariant (AVX).
            M256x2(unsafe {
                [
                    _mm256_cmp_ps::<$pred>(a[0], b[0]),
                    _mm256_cmp_ps::<$pred>(a[1], b[1]),
                ]
            })
        }
    };
}

/// Four groups of four lanes widened to f64.
#[inline(always)]
fn widen256(v: [__m256; 2]) -> [__m256d; 4] {
    // SAFETY: invariant (AVX).
    unsafe {
        [
            _mm256_cvtps_pd(_mm256_castps256_ps128(v[0])),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v[0])),
            _mm256_cvtps_pd(_mm256_castps256_ps128(v[1])),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v[1])),
        ]
    }
}

impl Lane for V256x2 {
    const LANES: usize = 16;
    const POLY: bool = true;
    const PAIRS: bool = true;
    const FMA: bool = true;
    type Mask = M256x2;
    type Acc = Acc256;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: invariant (AVX).
        let s = unsafe { _mm256_set1_ps(v) };
        V256x2([s, s])
    }
    #[inline(always)]
    fn load_or(src: &[f32], fill: f32) -> Self {
        let load = |a: &[f32; 16]| {
            // SAFETY: invariant; reads bytes 0..32 and 32..64 of the 64-byte array `a`.
            unsafe {
                V256x2([
                    _mm256_loadu_ps(a.as_ptr()),
                    _mm256_loadu_ps(a[8..].as_ptr()),
                ])
            }
        };
        match src.first_chunk::<16>() {
            Some(a) => load(a),
            None => load(&padded(src, fill)),
        }
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32]) {
        let store = |d: &mut [f32; 16], v: [__m256; 2]| {
            // SAFETY: invariant; writes bytes 0..32 and 32..64 of the 64-byte array `d`.
            unsafe {
                _mm256_storeu_ps(d.as_mut_ptr(), v[0]);
                _mm256_storeu_ps(d[8..].as_mut_ptr(), v[1]);
            }
        };
        if let Some(d) = dst.first_chunk_mut::<16>() {
            store(d, self.0);
        } else {
            let mut a = [0f32; 16];
            store(&mut a, self.0);
            let n = dst.len().min(16);
            dst[..n].copy_from_slice(&a[..n]);
        }
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        let (x, y, z) = (self.0, a.0, b.0);
        // SAFETY: invariant (FMA).
        V256x2(unsafe {
            [
                _mm256_fmadd_ps(x[0], y[0], z[0]),
                _mm256_fmadd_ps(x[1], y[1], z[1]),
            ]
        })
    }
    #[inline(always)]
    fn mul_err(a: Self, b: Self, p: Self) -> Self {
        let (x, y, z) = (a.0, b.0, p.0);
        // SAFETY: invariant (FMA). a*b - p rounded once, exact because representable.
        V256x2(unsafe {
            [
                _mm256_fmsub_ps(x[0], y[0], z[0]),
                _mm256_fmsub_ps(x[1], y[1], z[1]),
            ]
        })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: invariant (AVX).
        let s = unsafe { _mm256_set1_ps(-0.0) };
        V256x2(both!(_mm256_andnot_ps, [s, s], self.0))
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        V256x2(both!(_mm256_max_ps, self.0, o.0))
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        V256x2(both!(_mm256_min_ps, self.0, o.0))
    }
    cmp256!(lt, _CMP_LT_OQ);
    cmp256!(ge, _CMP_GE_OQ);
    cmp256!(le, _CMP_LE_OQ);
    cmp256!(eq, _CMP_EQ_OQ);
    #[inline(always)]
    fn select(m: M256x2, a: Self, b: Self) -> Self {
        let (m, a, b) = (m.0, a.0, b.0);
        // SAFETY: invariant (AVX). blendv takes the second operand where m is set.
        V256x2(unsafe {
            [
                _mm256_blendv_ps(b[0], a[0], m[0]),
                _mm256_blendv_ps(b[1], a[1], m[1]),
            ]
        })
    }
    #[inline(always)]
    fn all(m: M256x2) -> bool {
        // SAFETY: invariant (AVX).
        unsafe { _mm256_movemask_ps(_mm256_and_ps(m.0[0], m.0[1])) == 0xff }
    }
    #[inline(always)]
    fn any(m: M256x2) -> bool {
        // SAFETY: invariant (AVX).
        unsafe { _mm256_movemask_ps(_mm256_or_ps(m.0[0], m.0[1])) != 0 }
    }
    #[inline(always)]
    fn pow2i(n: Self) -> Self {
        let f = |v: __m256| {
            // SAFETY: invariant (AVX2).
            unsafe {
                let i = _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(127));
                _mm256_castsi256_ps(_mm256_slli_epi32::<23>(i))
            }
        };
        V256x2([f(n.0[0]), f(n.0[1])])
    }
    #[inline(always)]
    fn frexp(self) -> (Self, Self) {
        let f = |v: __m256| {
            // SAFETY: invariant (AVX2).
            unsafe {
                let b = _mm256_castps_si256(v);
                let k = _mm256_sub_epi32(_mm256_srli_epi32::<23>(b), _mm256_set1_epi32(127));
                let m = _mm256_or_si256(
                    _mm256_and_si256(b, _mm256_set1_epi32(0x007f_ffff)),
                    _mm256_set1_epi32(0x3f80_0000),
                );
                (_mm256_cvtepi32_ps(k), _mm256_castsi256_ps(m))
            }
        };
        let ((k0, m0), (k1, m1)) = (f(self.0[0]), f(self.0[1]));
        (V256x2([k0, k1]), V256x2([m0, m1]))
    }
    #[inline(always)]
    fn exp(self) -> Self {
        math::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        math::ln(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        math::ln_1p_unit(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        // vsqrtps: correctly rounded.
        let x = self.0;
        // SAFETY: invariant (AVX).
        V256x2(unsafe { [_mm256_sqrt_ps(x[0]), _mm256_sqrt_ps(x[1])] })
    }
    #[inline(always)]
    fn acc_zero() -> Acc256 {
        // SAFETY: invariant (AVX).
        let z = unsafe { _mm256_setzero_pd() };
        Acc256 {
            hi: [z; 2],
            lo: [z; 2],
            t: [z; 4],
        }
    }
    #[inline(always)]
    fn acc_add(acc: &mut Acc256, loss: Self) {
        let w = widen256(loss.0);
        for i in 0..2 {
            // SAFETY: invariant (AVX). The halves of one register are added in f64 first
            // (one rounding, relative 2^-53).
            let l = unsafe { _mm256_add_pd(w[2 * i], w[2 * i + 1]) };
            sum2_256(&mut acc.hi[i], &mut acc.lo[i], l);
        }
    }
    #[inline(always)]
    fn acc_add2(acc: &mut Acc256, a: Self, b: Self) {
        let (wa, wb) = (widen256(a.0), widen256(b.0));
        for i in 0..2 {
            // SAFETY: invariant (AVX). Four groups added in f64 first (two roundings,
            // relative 2^-52 in all).
            let l = unsafe {
                _mm256_add_pd(
                    _mm256_add_pd(wa[2 * i], wa[2 * i + 1]),
                    _mm256_add_pd(wb[2 * i], wb[2 * i + 1]),
                )
            };
            sum2_256(&mut acc.hi[i], &mut acc.lo[i], l);
        }
    }
    #[inline(always)]
    fn acc_add_t(acc: &mut Acc256, t: Self) {
        for (a, t) in acc.t.iter_mut().zip(widen256(t.0)) {
            // SAFETY: invariant (AVX).
            *a = unsafe { _mm256_add_pd(*a, t) };
        }
    }
    #[inline(always)]
    fn acc_total(acc: Acc256) -> (Dd, f64) {
        let (mut hi, mut lo, mut t) = ([0f64; 8], [0f64; 8], [0f64; 16]);
        for i in 0..2 {
            // SAFETY: invariant; each store writes 32 bytes inside a 64-byte array.
            unsafe {
                _mm256_storeu_pd(hi[4 * i..].as_mut_ptr(), acc.hi[i]);
                _mm256_storeu_pd(lo[4 * i..].as_mut_ptr(), acc.lo[i]);
            }
        }
        for i in 0..4 {
            // SAFETY: invariant; each store writes 32 bytes inside a 128-byte array.
            unsafe { _mm256_storeu_pd(t[4 * i..].as_mut_ptr(), acc.t[i]) };
        }
        total(&hi, &lo, &t)
    }
}
