//! The AVX2 + FMA (+ F16C, POPCNT) backend: 16 lanes as two 256-bit registers.
//!
//! `unsafe`: see the safety section of [`super`]. The vector type is private to this file;
//! [`run`] alone instantiates work with it, and needs a [`Token`].

use core::arch::x86_64::*;
use core::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Not, Sub};

use super::{padded, store_u16x16, total};
use crate::backend::MAX_LANES;
use crate::backend::lane::{Lane, Two};
use crate::float;
use crate::sum::Dd;

entry! {
    vector: V256x2,
    what: "AVX, AVX2, FMA, F16C and POPCNT",
    enable: "avx,avx2,fma,f16c,popcnt",
    detect: ["avx", "avx2", "fma", "popcnt"],
    extra: super::f16c(),
    f64: F64x4(__m256d, _mm256_add_pd, _mm256_sub_pd),
    sum2: sum2_256
}

// ---------------------------------------------------------------------------------------
// AVX2 + FMA: 16 lanes as two 256-bit registers (more independent work per iteration than
// one), masks as all-ones lanes.

/// The lanes of the column kernels' block ([`Lane::Cols`]).
pub(crate) const COL_LANES: usize = <<V256x2 as Lane>::Cols as Lane>::LANES;

#[derive(Clone, Copy)]
struct V256x2([__m256; 2]);

#[derive(Clone, Copy)]
struct M256x2([__m256; 2]);

/// Per-lane sums: loss (`hi` running sum, `lo` sum of its rounding errors) of lanes `k` and
/// `k + 4` of each register together, and targets, four lanes each.
#[derive(Clone, Copy)]
struct Acc256 {
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

/// The lanes j + (j + 8), then j + (j + 4), of a row's 16 sums: four lanes.
#[inline(always)]
fn quads_sum(a: [__m256d; 4]) -> __m256d {
    // SAFETY: invariant (AVX).
    unsafe { _mm256_add_pd(_mm256_add_pd(a[0], a[2]), _mm256_add_pd(a[1], a[3])) }
}

/// `[x_j + x_(j+2) | y_j + y_(j+2)]`, `j < 2`: the 128-bit halves of two rows.
#[inline(always)]
fn halves_sum(x: __m256d, y: __m256d) -> __m256d {
    // SAFETY: invariant (AVX).
    unsafe {
        _mm256_add_pd(
            _mm256_permute2f128_pd::<0x20>(x, y),
            _mm256_permute2f128_pd::<0x31>(x, y),
        )
    }
}

/// [`Lane::wide_tree`] of four rows' sums `a`, row `r` in lane `r`, with its additions: each
/// row's [`quads_sum`]; for the pairs of rows (0, 2) and (1, 3) the lanes j + (j + 2) of both
/// in one addition (their 128-bit halves side by side); last the lanes j + (j + 1) of the
/// four rows (even against odd lanes).
#[inline(always)]
fn trees4(a: &[[__m256d; 4]]) -> __m256d {
    let a = &a[..4];
    // SAFETY: invariant (AVX).
    unsafe {
        let q = [
            quads_sum(a[0]),
            quads_sum(a[1]),
            quads_sum(a[2]),
            quads_sum(a[3]),
        ];
        // [row 0 | row 2] and [row 1 | row 3], two lanes a row.
        let even = halves_sum(q[0], q[2]);
        let odd = halves_sum(q[1], q[3]);
        _mm256_add_pd(_mm256_unpacklo_pd(even, odd), _mm256_unpackhi_pd(even, odd))
    }
}

impl Lane for V256x2 {
    const LANES: usize = LANES;
    const POLY: bool = true;
    const PAIRS: bool = true;
    const FMA: bool = true;
    type Mask = M256x2;
    type Acc = Acc256;
    type Cols = Two<V256x2>;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: invariant (AVX).
        let s = unsafe { _mm256_set1_ps(v) };
        V256x2([s, s])
    }
    #[inline(always)]
    fn load_or(src: &[f32], fill: f32) -> Self {
        #[inline(always)]
        fn load(a: &[f32; 16]) -> V256x2 {
            // SAFETY: invariant; reads bytes 0..32 and 32..64 of the 64-byte array `a`.
            unsafe {
                V256x2([
                    _mm256_loadu_ps(a.as_ptr()),
                    _mm256_loadu_ps(a[8..].as_ptr()),
                ])
            }
        }
        match src.first_chunk::<16>() {
            Some(a) => load(a),
            None => load(&padded(src, fill)),
        }
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32]) {
        #[inline(always)]
        fn store(d: &mut [f32; 16], v: [__m256; 2]) {
            // SAFETY: invariant; writes bytes 0..32 and 32..64 of the 64-byte array `d`.
            unsafe {
                _mm256_storeu_ps(d.as_mut_ptr(), v[0]);
                _mm256_storeu_ps(d[8..].as_mut_ptr(), v[1]);
            }
        }
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
    fn load_bf16(src: &[u16], fill: f32) -> Self {
        // (Helpers are functions, never closures: a closure that is not inlined is compiled
        // without the instruction set, and each intrinsic in it becomes a call; the bf16
        // store ran 5-6x slower so.)
        #[inline(always)]
        fn w(p: &[u16; 8]) -> __m256 {
            // SAFETY: invariant (AVX2); reads the 16 bytes of the array `p`.
            unsafe {
                let v = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.as_ptr().cast()));
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(v))
            }
        }
        match src.first_chunk::<16>() {
            Some(a) => {
                let (lo, hi) = a.split_at(8);
                V256x2([w(lo.try_into().unwrap()), w(hi.try_into().unwrap())])
            }
            None => Self::load_or(&float::padded_bf16::<16>(src, fill), fill),
        }
    }
    #[inline(always)]
    fn load_f16(src: &[u16], fill: f32) -> Self {
        #[inline(always)]
        fn w(p: &[u16; 8]) -> __m256 {
            // SAFETY: invariant (F16C); reads the 16 bytes of the array `p`.
            unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.as_ptr().cast())) }
        }
        match src.first_chunk::<16>() {
            Some(a) => {
                let (lo, hi) = a.split_at(8);
                V256x2([w(lo.try_into().unwrap()), w(hi.try_into().unwrap())])
            }
            None => Self::load_or(&float::padded_f16::<16>(src, fill), fill),
        }
    }
    #[inline(always)]
    fn load_u8(src: &[u8]) -> Self {
        match src.first_chunk::<16>() {
            // SAFETY: invariant (AVX2); reads the 16 bytes of the array `a`.
            Some(a) => unsafe {
                let v = _mm_loadu_si128(a.as_ptr().cast());
                let lo = _mm256_cvtepu8_epi32(v);
                let hi = _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(v));
                V256x2([_mm256_cvtepi32_ps(lo), _mm256_cvtepi32_ps(hi)])
            },
            None => Self::load_or(&float::padded_u8::<16>(src), 0.0),
        }
    }
    #[inline(always)]
    fn store_bf16(self, dst: &mut [u16]) {
        /// Round to nearest even on the bits (add 0x7fff and the lowest kept bit), quiet NaN
        /// kept: the bf16 bits in the low word of each lane.
        #[inline(always)]
        fn r(v: __m256) -> __m256i {
            // SAFETY: invariant (AVX2).
            unsafe {
                let x = _mm256_castps_si256(v);
                let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(x), _mm256_set1_epi32(1));
                let up = _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), lsb);
                let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
                let q = _mm256_or_si256(x, _mm256_set1_epi32(0x0040_0000));
                _mm256_srli_epi32::<16>(_mm256_blendv_epi8(up, q, nan))
            }
        }
        // SAFETY: invariant (AVX2). The two halves' words packed in lane order.
        let packed = unsafe {
            let p = _mm256_packus_epi32(r(self.0[0]), r(self.0[1]));
            _mm256_permute4x64_epi64::<0b11_01_10_00>(p)
        };
        store_u16x16(packed, dst);
    }
    #[inline(always)]
    fn store_f16(self, dst: &mut [u16]) {
        // SAFETY: invariant (F16C).
        let packed = unsafe {
            let (lo, hi) = (self.0[0], self.0[1]);
            _mm256_set_m128i(
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(hi),
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(lo),
            )
        };
        store_u16x16(packed, dst);
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
        #[inline(always)]
        fn f(v: __m256) -> __m256 {
            // SAFETY: invariant (AVX2).
            unsafe {
                let i = _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(127));
                _mm256_castsi256_ps(_mm256_slli_epi32::<23>(i))
            }
        }
        V256x2([f(n.0[0]), f(n.0[1])])
    }
    #[inline(always)]
    fn frexp(self) -> (Self, Self) {
        #[inline(always)]
        fn f(v: __m256) -> (__m256, __m256) {
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
        }
        let ((k0, m0), (k1, m1)) = (f(self.0[0]), f(self.0[1]));
        (V256x2([k0, k1]), V256x2([m0, m1]))
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
    type Wide = [__m256d; 4];
    #[inline(always)]
    fn wide_zero() -> [__m256d; 4] {
        // SAFETY: invariant (AVX).
        [unsafe { _mm256_setzero_pd() }; 4]
    }
    #[inline(always)]
    fn wide_add(acc: [__m256d; 4], v: Self) -> [__m256d; 4] {
        Self::wide_sum(acc, widen256(v.0))
    }
    #[inline(always)]
    fn widen(v: Self) -> [__m256d; 4] {
        widen256(v.0)
    }
    #[inline(always)]
    fn wide_sum(a: [__m256d; 4], b: [__m256d; 4]) -> [__m256d; 4] {
        // SAFETY: invariant (AVX).
        core::array::from_fn(|i| unsafe { _mm256_add_pd(a[i], b[i]) })
    }
    #[inline(always)]
    fn wide_store(a: [__m256d; 4], dst: &mut [f64]) {
        let d = &mut dst[..16];
        for (i, v) in a.into_iter().enumerate() {
            // SAFETY: invariant; each store writes 32 bytes inside the 16 elements of `d`.
            unsafe { _mm256_storeu_pd(d[4 * i..].as_mut_ptr(), v) };
        }
    }
    #[inline(always)]
    fn wide_load(src: &[f64]) -> [__m256d; 4] {
        let s = &src[..16];
        // SAFETY: invariant; each load reads 32 bytes inside the 16 elements of `s`.
        core::array::from_fn(|i| unsafe { _mm256_loadu_pd(s[4 * i..].as_ptr()) })
    }
    #[inline(always)]
    fn wide_tree(a: [__m256d; 4]) -> f64 {
        // SAFETY: invariant (AVX). The default's tree: lanes j + (j + 8), j + (j + 4),
        // j + (j + 2), j + (j + 1), each an f64 addition per lane.
        unsafe {
            let s4 = quads_sum(a);
            let s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd::<1>(s4));
            _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)))
        }
    }
    #[inline(always)]
    fn wide_trees(a: &[[__m256d; 4]; MAX_LANES]) -> [__m256d; 4] {
        [
            trees4(&a[..4]),
            trees4(&a[4..8]),
            trees4(&a[8..12]),
            trees4(&a[12..]),
        ]
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        // SAFETY: invariant (AVX). Halves, then quarters, eighths and sixteenths of the lanes
        // (`vmaxps`: its second operand where either is NaN).
        unsafe {
            let m = _mm256_max_ps(self.0[0], self.0[1]);
            let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
            let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
            _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
        }
    }
    #[inline(always)]
    fn count(m: M256x2) -> u32 {
        // SAFETY: invariant (AVX).
        unsafe {
            (_mm256_movemask_ps(m.0[0]) as u32).count_ones()
                + (_mm256_movemask_ps(m.0[1]) as u32).count_ones()
        }
    }
    #[inline(always)]
    fn transpose_rows(src: &[f32], dst: &mut [f32], cn: usize, ln: usize) -> bool {
        if !tiles(cn, ln, src.len(), dst.len()) {
            return false;
        }
        // SAFETY: invariant (AVX); the lengths, `ln` and `cn` as [`tiles`] checked.
        unsafe { tile_count::<false>(src, dst, cn, ln) }
    }
    #[inline(always)]
    fn untranspose_rows(src: &[f32], dst: &mut [f32], cn: usize, ln: usize) -> bool {
        if !tiles(cn, ln, dst.len(), src.len()) {
            return false;
        }
        // SAFETY: invariant (AVX); the lengths, `ln` and `cn` as [`tiles`] checked.
        unsafe { tile_count::<true>(src, dst, cn, ln) }
    }
    #[inline(always)]
    fn wide_round(a: [__m256d; 4]) -> Self {
        // SAFETY: invariant (AVX). Each quarter rounded to nearest (the default mode).
        unsafe {
            let q: [__m128; 4] = core::array::from_fn(|i| _mm256_cvtpd_ps(a[i]));
            V256x2([
                _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(q[0]), q[1]),
                _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(q[2]), q[3]),
            ])
        }
    }
}

/// Whether [`Lane::transpose_rows`] takes a block of `ln` rows of `cn` classes, `rows` of
/// them row-major and `cols` transposed: groups of 8 rows of 2 to 16 classes (every count of
/// the column kernels, [`Lane::LAST_COLS`]; [`tile_rows`]), where the compiler's code for
/// the fixed-length loops moved one value at a time (14% of the time of a `[rows, 4]` batch
/// on a Zen 1 core). The bound is the literal 16, not `LAST_COLS`: [`tile_count`] runs any
/// count it does not list as 16 classes, which is sound only while nothing above 16 passes.
#[inline(always)]
fn tiles(cn: usize, ln: usize, rows: usize, cols: usize) -> bool {
    // (`checked_mul`: a product that wrapped would pass for a short slice.)
    let n = cn.checked_mul(ln);
    (2..=16).contains(&cn)
        && ln.is_multiple_of(8)
        && n == Some(rows)
        && n.is_some_and(|n| cols >= n)
}

/// The 4 x 4 transposition within each 128-bit half: lane `j` of a half of result `i` is
/// lane `i` of that half of `v[j]`. Its own inverse. Four unpacks and four shuffles, none
/// across the halves.
#[inline(always)]
fn transpose4(v: [__m256; 4]) -> [__m256; 4] {
    // SAFETY: invariant (AVX).
    unsafe {
        let t0 = _mm256_unpacklo_ps(v[0], v[1]);
        let t1 = _mm256_unpackhi_ps(v[0], v[1]);
        let t2 = _mm256_unpacklo_ps(v[2], v[3]);
        let t3 = _mm256_unpackhi_ps(v[2], v[3]);
        [
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
        ]
    }
}

/// `$body` for `$i` = 0, 1, ... while below `$n`, written out up to a bound of 4, 8 or 16
/// (the first argument, at least `$n`): the compiler does not unroll the transpositions'
/// loops over 11 or more classes by itself, and then indexes its registers through the
/// stack. The bound is the smallest that covers `$n`: the branches never taken still index
/// with constants, and a larger bound would put those out of range (a compile error,
/// `unconditional_panic`).
macro_rules! each {
    (4, $n:expr, |$i:ident| $body:block) => {
        each!(@ $n, $i, $body, 0 1 2 3)
    };
    (8, $n:expr, |$i:ident| $body:block) => {
        each!(@ $n, $i, $body, 0 1 2 3 4 5 6 7)
    };
    (16, $n:expr, |$i:ident| $body:block) => {
        each!(@ $n, $i, $body, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    };
    (@ $n:expr, $i:ident, $body:block, $($k:literal)*) => {
        $(
            if $k < $n {
                let $i: usize = $k;
                $body
            }
        )*
    };
}

/// 8 rows of `C` classes (2 to 16) transposed in `v[..C]` (the other entries unused), or
/// back (`BACK`). The row-major side is read and written in quarters of 4 values (`Q_k`,
/// values `4 k..4 k + 4` of the group's `8 C`: rows 0-3 are `Q_0..Q_C`, rows 4-7 the
/// rest), `v[j]` holding `Q_j` in its low half and `Q_(j + C)` in its high one, so that both
/// halves hold the same classes of rows `r` and `r + 4` and no shuffle crosses the halves (a
/// cross-half permute is 8 micro-ops on Zen 1; the compiler still merges the back
/// direction's 128-bit stores of neighbouring quarters into 256-bit ones through
/// `vperm2f128`, one to seven a group). Lane `r` of class vector `c` is row `r`'s class `c`.
/// In each half, class `c` of row `r < 4` is value `r C + c` of the half's `C` quarters, and
/// `C mod 4` decides how the values move:
/// - `C = 4 m` (a row is `m` quarters): [`tile_quads`], one [`transpose4`] a quarter of a row;
/// - `C = 2 P`, `P` odd: [`tile_pairs`], in pairs of classes;
/// - `C` odd: [`tile_odd`], blends and one permute a class.
///
/// (No closures in these helpers: one that the compiler does not inline runs without the
/// backend's instruction set, every intrinsic in it a call; two classes ran twice as long.)
#[inline(always)]
fn tile<const C: usize, const BACK: bool>(v: &mut [__m256; 16]) {
    match C % 4 {
        0 => tile_quads::<C, BACK>(v),
        2 => tile_pairs::<C, BACK>(v),
        _ => tile_odd::<C, BACK>(v),
    }
}

/// [`tile`] for `C = 4 m`: quarter `r m + k` of a half is classes `4 k..4 k + 4` of row `r`,
/// so the [`transpose4`] of quarters `k`, `m + k`, `2 m + k`, `3 m + k` is those four
/// classes; it is its own inverse. `2 C` unpacks and shuffles.
#[inline(always)]
fn tile_quads<const C: usize, const BACK: bool>(v: &mut [__m256; 16]) {
    let m = C / 4;
    let mut out = *v;
    each!(4, m, |k| {
        if BACK {
            let t = transpose4([v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]]);
            for r in 0..4 {
                out[r * m + k] = t[r];
            }
        } else {
            let t = transpose4([v[k], v[m + k], v[2 * m + k], v[3 * m + k]]);
            for r in 0..4 {
                out[4 * k + r] = t[r];
            }
        }
    });
    *v = out;
}

/// The 64-bit lane `i0` of `a` then lane `i1` of `b`, in each half: one shuffle.
#[inline(always)]
fn pick_pd(a: __m256, i0: usize, b: __m256, i1: usize) -> __m256 {
    // SAFETY: invariant (AVX).
    unsafe {
        let (a, b) = (_mm256_castps_pd(a), _mm256_castps_pd(b));
        _mm256_castpd_ps(match (i0, i1) {
            (0, 0) => _mm256_unpacklo_pd(a, b),
            (1, 1) => _mm256_unpackhi_pd(a, b),
            (0, _) => _mm256_blend_pd::<0b1010>(a, b),
            _ => _mm256_shuffle_pd::<0b0101>(a, b),
        })
    }
}

/// [`tile`] for `C = 2 P` with `P` odd (2, 6, 10, 14), in pairs of classes (64-bit lanes):
/// in each half, pair `k` of row `r` is pair `j = r P + k`, lane `j % 2` of quarter `j / 2`.
/// Pair `k` of rows 0 and 1 (`A_k`), and of rows 2 and 3 (`B_k`), are one 64-bit shuffle
/// each ([`pick_pd`]), and one shuffle of `A_k` and `B_k` gives each class of the pair: `2
/// C` operations. Back, two unpacks give `A_k` and `B_k`, and one 64-bit shuffle each
/// quarter.
#[inline(always)]
fn tile_pairs<const C: usize, const BACK: bool>(v: &mut [__m256; 16]) {
    let p = C / 2;
    let mut out = *v;
    if BACK {
        // `A_k` in `ab[k]`, `B_k` in `ab[8 + k]`: pair `k` of rows `2 h`, `2 h + 1` in
        // `ab[8 h + k]`, lanes `0` and `1`.
        let mut ab = *v;
        each!(8, p, |k| {
            let (even, odd) = (v[2 * k], v[2 * k + 1]);
            // SAFETY: invariant (AVX).
            unsafe {
                ab[k] = _mm256_unpacklo_ps(even, odd);
                ab[8 + k] = _mm256_unpackhi_ps(even, odd);
            }
        });
        each!(16, C, |q| {
            // Pair `2 q + l` of the half is pair `(2 q + l) % P` of row `(2 q + l) / P`.
            let (r0, r1) = ((2 * q) / p, (2 * q + 1) / p);
            let (i0, i1) = (8 * (r0 / 2) + (2 * q) % p, 8 * (r1 / 2) + (2 * q + 1) % p);
            // (`% 16` changes no index of a count that comes here, at most 14; `tile`
            // instantiates this for every `C`, and an odd one would index 16 in a branch it
            // never takes.)
            out[q] = pick_pd(ab[i0 % 16], r0 % 2, ab[i1 % 16], r1 % 2);
        });
    } else {
        each!(8, p, |k| {
            // Pair `k` of row `r` is pair `j = r P + k`: lane `j % 2` of quarter `j / 2`.
            let j = [k, p + k, 2 * p + k, 3 * p + k];
            let a = pick_pd(v[j[0] / 2], j[0] % 2, v[j[1] / 2], j[1] % 2);
            let b = pick_pd(v[j[2] / 2], j[2] % 2, v[j[3] / 2], j[3] % 2);
            // SAFETY: invariant (AVX).
            unsafe {
                out[2 * k] = _mm256_shuffle_ps::<0x88>(a, b);
                out[2 * k + 1] = _mm256_shuffle_ps::<0xDD>(a, b);
            }
        });
    }
    *v = out;
}

/// `b` with lane `s` of each half taken from `a`.
#[inline(always)]
fn take_lane(b: __m256, a: __m256, s: usize) -> __m256 {
    // SAFETY (four calls): invariant (AVX).
    unsafe {
        match s {
            0 => _mm256_blend_ps::<0x11>(b, a),
            1 => _mm256_blend_ps::<0x22>(b, a),
            2 => _mm256_blend_ps::<0x44>(b, a),
            _ => _mm256_blend_ps::<0x88>(b, a),
        }
    }
}

/// Lane `i` of each half of the result is lane `from[i]` of that half of `v`.
#[inline(always)]
fn permute_halves(v: __m256, from: [usize; 4]) -> __m256 {
    let [a, b, c, d] = [
        from[0] as i32,
        from[1] as i32,
        from[2] as i32,
        from[3] as i32,
    ];
    // SAFETY: invariant (AVX).
    unsafe { _mm256_permutevar_ps(v, _mm256_setr_epi32(a, b, c, d, a, b, c, d)) }
}

/// [`tile`] for an odd `C`: class `c` of row `r` is value `j = r C + c` of the half, lane
/// `j % 4` of quarter `j / 4`, and for an odd `C` the four rows of a class are at four
/// different lanes. So each class takes its four lanes from their quarters (blends) and
/// then puts them in row order (one permute): `4 C` operations. Back, each class is
/// permuted to its lanes, and each quarter blends its four lanes from the classes there.
#[inline(always)]
fn tile_odd<const C: usize, const BACK: bool>(v: &mut [__m256; 16]) {
    let mut out = *v;
    if BACK {
        let mut moved = *v;
        each!(16, C, |c| {
            let mut from = [0; 4];
            for r in 0..4 {
                from[(r * C + c) % 4] = r;
            }
            moved[c] = permute_halves(v[c], from);
        });
        each!(16, C, |q| {
            // (Value `4 q + s` of the half is class `(4 q + s) % C` of a row.)
            let mut b = moved[4 * q % C];
            for s in 1..4 {
                b = take_lane(b, moved[(4 * q + s) % C], s);
            }
            out[q] = b;
        });
    } else {
        each!(16, C, |c| {
            // Row 0 is lane `c % 4` of quarter `c / 4`; rows 1 to 3 blended in.
            let mut b = v[c / 4];
            let mut from = [c % 4; 4];
            for r in 1..4 {
                from[r] = (r * C + c) % 4;
                b = take_lane(b, v[(r * C + c) / 4], from[r]);
            }
            out[c] = permute_halves(b, from);
        });
    }
    *v = out;
}

/// [`tile_rows`] of `cn` classes.
///
/// # Safety
/// As [`tile_rows`] with `C = cn`: what [`tiles`] checks (`2 <= cn <= 16`).
#[inline(always)]
unsafe fn tile_count<const BACK: bool>(src: &[f32], dst: &mut [f32], cn: usize, ln: usize) -> bool {
    // SAFETY (each call): the caller's.
    unsafe {
        match cn {
            2 => tile_rows::<2, BACK>(src, dst, ln),
            3 => tile_rows::<3, BACK>(src, dst, ln),
            4 => tile_rows::<4, BACK>(src, dst, ln),
            5 => tile_rows::<5, BACK>(src, dst, ln),
            6 => tile_rows::<6, BACK>(src, dst, ln),
            7 => tile_rows::<7, BACK>(src, dst, ln),
            8 => tile_rows::<8, BACK>(src, dst, ln),
            9 => tile_rows::<9, BACK>(src, dst, ln),
            10 => tile_rows::<10, BACK>(src, dst, ln),
            11 => tile_rows::<11, BACK>(src, dst, ln),
            12 => tile_rows::<12, BACK>(src, dst, ln),
            13 => tile_rows::<13, BACK>(src, dst, ln),
            14 => tile_rows::<14, BACK>(src, dst, ln),
            15 => tile_rows::<15, BACK>(src, dst, ln),
            _ => tile_rows::<16, BACK>(src, dst, ln),
        }
    }
}

/// [`Lane::transpose_rows`] (`BACK = false`) or [`Lane::untranspose_rows`] (`BACK`) of
/// `ln / 8` groups of 8 rows of `C` classes ([`tile`]); `true`. Quarter `k` of group `g`
/// in row-major order is at `4 (2 g C + k)`; class `c` of the group at `c ln + 8 g`.
///
/// # Safety
/// The row-major slice (`src`, or `dst` when `BACK`) has length `C ln`, the other at least
/// `C ln`, `8 | ln`, `2 <= C <= 16` ([`tiles`]); AVX.
#[inline(always)]
unsafe fn tile_rows<const C: usize, const BACK: bool>(
    src: &[f32],
    dst: &mut [f32],
    ln: usize,
) -> bool {
    for g in 0..ln / 8 {
        let (quarter, col) = (|k: usize| 4 * (2 * g * C + k), |i: usize| i * ln + 8 * g);
        // SAFETY: AVX (the caller's).
        let mut v = [unsafe { _mm256_setzero_ps() }; 16];
        for (j, v) in v.iter_mut().enumerate().take(C) {
            // SAFETY: `quarter(j + C) + 4 <= 8 (g + 1) C <= C ln` and `col(j) + 8 <= C ln`
            // for `j < C`, `g < ln / 8`.
            *v = unsafe {
                if BACK {
                    _mm256_loadu_ps(src.as_ptr().add(col(j)))
                } else {
                    let p = src.as_ptr();
                    let lo = _mm_loadu_ps(p.add(quarter(j)));
                    let hi = _mm_loadu_ps(p.add(quarter(j + C)));
                    _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(lo), hi)
                }
            };
        }
        tile::<C, BACK>(&mut v);
        for (j, v) in v.iter().enumerate().take(C) {
            // SAFETY: as for the loads.
            unsafe {
                let p = dst.as_mut_ptr();
                if BACK {
                    _mm_storeu_ps(p.add(quarter(j)), _mm256_castps256_ps128(*v));
                    _mm_storeu_ps(p.add(quarter(j + C)), _mm256_extractf128_ps::<1>(*v));
                } else {
                    _mm256_storeu_ps(p.add(col(j)), *v);
                }
            }
        }
    }
    true
}
