//! The AVX-512 backend (F and DQ): 16 lanes in one 512-bit register, masks in k-registers.
//! DQ converts 64-bit integers (`i64` class labels) in vectors: without it LLVM converted
//! them one by one (class-last C = 2 to 8 and `[N, 2, S]` 2-5% faster with it).
//!
//! `unsafe`: see the safety section of [`super`]. The vector type is private to this file;
//! [`run`] alone instantiates work with it, and needs a [`Token`].

use core::arch::x86_64::*;
use core::ops::{Add, Div, Mul, Neg, Sub};
use core::sync::atomic::{AtomicU8, Ordering};

use super::{padded, store_u16x16, total};
use crate::backend::MAX_LANES;
use crate::backend::lane::{Lane, Two};
use crate::float;
use crate::sum::Dd;

entry! {
    vector: V512,
    what: "AVX-512F, AVX-512DQ and POPCNT",
    enable: "avx512f,avx512dq,popcnt",
    detect: ["avx512f", "avx512dq", "popcnt"],
    extra: true,
    f64: F64x8(__m512d, _mm512_add_pd, _mm512_sub_pd),
    sum2: sum2_512
}

// ---------------------------------------------------------------------------------------
// AVX-512F: 16 lanes, masks in k-registers (`u16`).

/// The lanes of the column kernels' block ([`Lane::Cols`]).
pub(crate) const COL_LANES: usize = <<V512 as Lane>::Cols as Lane>::LANES;

#[derive(Clone, Copy)]
struct V512(__m512);

/// Per-lane sums: loss (`hi` running sum, `lo` sum of its rounding errors) of lanes `k` and
/// `k + 8` together, and targets of lanes 0..8 and 8..16.
#[derive(Clone, Copy)]
struct Acc512 {
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

/// Whether [`Lane::transpose_rows`] takes a block of `ln` rows of `cn` classes, `rows` of
/// them row-major and `cols` transposed: whole tiles of 16 rows, and 9 to
/// [`Lane::LAST_COLS`] classes (one or two tiles across, [`transpose16`]), where the compiler
/// does not vectorize the fixed-length loops, or 2, 4 or 8 ([`unzip_tile`]), where its
/// shuffles took twice as many (C = 8: 48 two-source permutes and their index loads a tile
/// each way, against 24; 18% of the time of a `[rows, 8]` batch). Other counts below 9 keep
/// the compiler's code.
#[inline(always)]
fn tiles(cn: usize, ln: usize, rows: usize, cols: usize) -> bool {
    // (`checked_mul`: a product that wrapped would pass for a short slice.)
    let n = cn.checked_mul(ln);
    ((9..=<V512 as Lane>::LAST_COLS).contains(&cn) || matches!(cn, 2 | 4 | 8))
        && ln.is_multiple_of(16)
        && n == Some(rows)
        && n.is_some_and(|n| cols >= n)
}

/// The lanes `2 i + ODD` (`i < 16`) of the 32 lanes of `a` then `b`: one `vpermt2ps`.
#[inline(always)]
fn unzip<const ODD: i32>(a: __m512, b: __m512) -> __m512 {
    // SAFETY: invariant (AVX-512F).
    unsafe {
        let idx = _mm512_setr_epi32(
            ODD,
            2 + ODD,
            4 + ODD,
            6 + ODD,
            8 + ODD,
            10 + ODD,
            12 + ODD,
            14 + ODD,
            16 + ODD,
            18 + ODD,
            20 + ODD,
            22 + ODD,
            24 + ODD,
            26 + ODD,
            28 + ODD,
            30 + ODD,
        );
        _mm512_permutex2var_ps(a, idx, b)
    }
}

/// The inverse of [`unzip`]: lanes `8 H..8 H + 8` of `e` and of `o`, interleaved (`e_i`,
/// `o_i`, ...): the lanes `16 H..16 H + 16` of the sequence whose even lanes are `e` and odd
/// lanes `o`. One `vpermt2ps`.
#[inline(always)]
fn zip<const H: i32>(e: __m512, o: __m512) -> __m512 {
    let b = 8 * H;
    // SAFETY: invariant (AVX-512F).
    unsafe {
        let idx = _mm512_setr_epi32(
            b,
            16 + b,
            b + 1,
            17 + b,
            b + 2,
            18 + b,
            b + 3,
            19 + b,
            b + 4,
            20 + b,
            b + 5,
            21 + b,
            b + 6,
            22 + b,
            b + 7,
            23 + b,
        );
        _mm512_permutex2var_ps(e, idx, o)
    }
}

/// 16 rows of `C = 2^k` classes (`C <= 16`) transposed: `v` holds the tile's `16 C` values in
/// row-major order (lane `i` of `v[j]` is value `16 j + i`, row `(16 j + i) / C`, class
/// `(16 j + i) % C`); lane `r` of the result's `c` is row `r`'s class `c`. `k` rounds of `C`
/// permutes ([`unzip`]): round `s` splits each of the `2^s` runs of the sequence, the
/// values whose class is `c` modulo `2^s` (run `c`), into its even and odd values, classes
/// `c` and `c + 2^s` modulo `2^(s + 1)`: runs `c` and `c + 2^s` of the next round.
#[inline(always)]
fn unzip_tile<const C: usize>(v: [__m512; C]) -> [__m512; C] {
    let mut cur = v;
    let mut runs = 1;
    while runs < C {
        // Each run has `m` vectors; the next round's `m / 2`.
        let m = C / runs;
        let mut next = cur;
        for r in 0..runs {
            for j in 0..m / 2 {
                let (a, b) = (cur[r * m + 2 * j], cur[r * m + 2 * j + 1]);
                next[r * (m / 2) + j] = unzip::<0>(a, b);
                next[(r + runs) * (m / 2) + j] = unzip::<1>(a, b);
            }
        }
        cur = next;
        runs *= 2;
    }
    cur
}

/// The inverse of [`unzip_tile`]: class vectors back to 16 rows in row-major order, the
/// rounds in reverse ([`zip`]).
#[inline(always)]
fn zip_tile<const C: usize>(v: [__m512; C]) -> [__m512; C] {
    let mut cur = v;
    let mut runs = C;
    while runs > 1 {
        runs /= 2;
        // Runs `r` and `r + runs` of `m / 2` vectors each merge into run `r` of `m`.
        let m = C / runs;
        let mut next = cur;
        for r in 0..runs {
            for j in 0..m / 2 {
                let (e, o) = (cur[r * (m / 2) + j], cur[(r + runs) * (m / 2) + j]);
                next[r * m + 2 * j] = zip::<0>(e, o);
                next[r * m + 2 * j + 1] = zip::<1>(e, o);
            }
        }
        cur = next;
    }
    cur
}

/// [`Lane::transpose_rows`] (`BACK = false`, [`unzip_tile`]) or [`Lane::untranspose_rows`]
/// (`BACK`, [`zip_tile`]) of `ln / 16` tiles of `C = 2^k` classes; `true`. Vector `j` of
/// tile `g` in row-major order is at `16 (g C + j)`, its class `c` at `c ln + 16 g`.
///
/// # Safety
/// The row-major slice (`src`, or `dst` when `BACK`) has length `C ln`, the other at least
/// `C ln`, `16 | ln` ([`tiles`]); AVX-512F.
#[inline(always)]
unsafe fn tile_rows<const C: usize, const BACK: bool>(
    src: &[f32],
    dst: &mut [f32],
    ln: usize,
) -> bool {
    for g in 0..ln / 16 {
        let (row, col) = (|i: usize| 16 * (g * C + i), |i: usize| i * ln + 16 * g);
        // SAFETY: AVX-512F (the caller's).
        let mut v = [unsafe { _mm512_setzero_ps() }; C];
        for (i, v) in v.iter_mut().enumerate() {
            let at = if BACK { col(i) } else { row(i) };
            // SAFETY: `at + 16 <= C ln` for `i < C`, `g < ln / 16`.
            *v = unsafe { _mm512_loadu_ps(src.as_ptr().add(at)) };
        }
        let v = if BACK {
            zip_tile::<C>(v)
        } else {
            unzip_tile::<C>(v)
        };
        for (i, v) in v.iter().enumerate() {
            let at = if BACK { row(i) } else { col(i) };
            // SAFETY: as for the loads.
            unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add(at), *v) };
        }
    }
    true
}

/// Whether this CPU has AVX-512 BF16 (CPUID leaf 7, sub-leaf 1, EAX bit 5), asked once: 0 not
/// yet asked, 1 no, 2 yes. (cpufeatures 0.3 does not list it; the operating system's support
/// of the 512-bit state is the AVX-512F token's.)
static BF16: AtomicU8 = AtomicU8::new(0);

fn has_bf16() -> bool {
    match BF16.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: CPUID exists on every x86-64 CPU; sub-leaf 1 is read only where leaf 7
            // reports it (EAX of sub-leaf 0: the highest sub-leaf).
            #[allow(unused_unsafe)]
            let yes =
                unsafe { __cpuid_count(7, 0).eax >= 1 && __cpuid_count(7, 1).eax & (1 << 5) != 0 };
            BF16.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        v => v == 2,
    }
}

/// `VCVTNEPS2BF16`: each lane rounded to `bf16` (nearest, ties to even; a NaN quieted as
/// [`Lane::store_bf16`] does), but a subnormal input read as 0.
///
/// # Safety
/// The CPU has AVX-512 BF16 ([`has_bf16`]). (An assembler instruction: the intrinsic is
/// compiled with the `avx512bf16` feature, which the backend's functions do not enable, and
/// would be a call per vector.)
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn cvtneps2bf16(x: __m512) -> __m256i {
    let h: __m256i;
    // SAFETY: the caller's; reads one register and writes one, no memory, no flags.
    unsafe {
        core::arch::asm!(
            "vcvtneps2bf16 {h}, {x}",
            x = in(zmm_reg) x,
            h = out(ymm_reg) h,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    h
}

/// The first `min(n, 16)` lanes (`n >= 1`).
#[inline(always)]
fn row_mask(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as u16
}

/// The 16 x 16 transposition: lane `j` of `r[i]` to lane `i` of the result's `j`. Four rounds
/// of 16 shuffles: pairs of 32-bit lanes, pairs of 64-bit lanes, then 128-bit blocks twice.
#[inline(always)]
fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    // SAFETY: invariant (AVX-512F).
    unsafe {
        // t[2k], t[2k + 1]: rows 2k and 2k + 1 interleaved (columns 0, 1 / 2, 3 of each
        // 128-bit block).
        // (Loops, not closures: a closure is compiled without the caller's target features.)
        let mut t = [_mm512_setzero_ps(); 16];
        for k in 0..8 {
            t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
            t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
        }
        // u[4k + m]: in 128-bit block `q`, rows 4k..4k + 4 of column 4q + m.
        let mut u = [_mm512_setzero_ps(); 16];
        for k in 0..4 {
            for h in 0..2 {
                let a = _mm512_castps_pd(t[4 * k + h]);
                let b = _mm512_castps_pd(t[4 * k + 2 + h]);
                u[4 * k + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
                u[4 * k + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
            }
        }
        // Column 4q + m gathers block `q` of u[m], u[4 + m], u[8 + m], u[12 + m]: blocks
        // (0, 1) and (2, 3) of each pair first, then blocks (0, 2) and (1, 3) of those.
        let mut out = [_mm512_setzero_ps(); 16];
        for m in 0..4 {
            let w0 = _mm512_shuffle_f32x4::<0x44>(u[m], u[4 + m]);
            let w1 = _mm512_shuffle_f32x4::<0xEE>(u[m], u[4 + m]);
            let x0 = _mm512_shuffle_f32x4::<0x44>(u[8 + m], u[12 + m]);
            let x1 = _mm512_shuffle_f32x4::<0xEE>(u[8 + m], u[12 + m]);
            out[m] = _mm512_shuffle_f32x4::<0x88>(w0, x0);
            out[4 + m] = _mm512_shuffle_f32x4::<0xDD>(w0, x0);
            out[8 + m] = _mm512_shuffle_f32x4::<0x88>(w1, x1);
            out[12 + m] = _mm512_shuffle_f32x4::<0xDD>(w1, x1);
        }
        out
    }
}

/// [`Lane::wide_tree`] of eight rows' sums `a` (16 lanes each), row `r` in lane `r`, with its
/// additions: the rows' lanes j + (j + 8) each; for pairs of rows the lanes j + (j + 4) of
/// both in one addition (their lower and upper halves side by side); for two such pairs the
/// lanes j + (j + 2) (their 128-bit quarters); last the lanes j + (j + 1) of eight rows (even
/// against odd lanes). The pairs are chosen so that row `r` ends in lane `r`.
#[inline(always)]
fn trees8(a: &[[__m512d; 2]]) -> __m512d {
    let a = &a[..8];
    // SAFETY: invariant (AVX-512F).
    unsafe {
        let mut s8 = [_mm512_setzero_pd(); 8];
        for (s, a) in s8.iter_mut().zip(a) {
            *s = _mm512_add_pd(a[0], a[1]);
        }
        // [row 0 | row 2], [row 4 | row 6], [row 1 | row 3], [row 5 | row 7].
        let p02 = shuffled_sum::<0x44, 0xEE>(s8[0], s8[2]);
        let p46 = shuffled_sum::<0x44, 0xEE>(s8[4], s8[6]);
        let p13 = shuffled_sum::<0x44, 0xEE>(s8[1], s8[3]);
        let p57 = shuffled_sum::<0x44, 0xEE>(s8[5], s8[7]);
        // Two lanes a row: rows [0 0 2 2 4 4 6 6] and [1 1 3 3 5 5 7 7].
        let even = shuffled_sum::<0x88, 0xDD>(p02, p46);
        let odd = shuffled_sum::<0x88, 0xDD>(p13, p57);
        _mm512_add_pd(_mm512_unpacklo_pd(even, odd), _mm512_unpackhi_pd(even, odd))
    }
}

/// `shuffle(x, y, LO) + shuffle(x, y, HI)` (`vshuff64x2`, 128-bit quarters): with `0x44` and
/// `0xEE`, `[x_j + x_(j+4) | y_j + y_(j+4)]` for `j < 4` (the halves of two rows); with `0x88`
/// and `0xDD`, for `x = [a | b]` and `y = [c | d]` of four lanes each,
/// `[a_j + a_(j+2) | b.. | c.. | d..]` for `j < 2` (the quarters of four).
#[inline(always)]
fn shuffled_sum<const LO: i32, const HI: i32>(x: __m512d, y: __m512d) -> __m512d {
    // SAFETY: invariant (AVX-512F).
    unsafe {
        let lo = _mm512_shuffle_f64x2::<LO>(x, y);
        let hi = _mm512_shuffle_f64x2::<HI>(x, y);
        _mm512_add_pd(lo, hi)
    }
}

impl Lane for V512 {
    const LANES: usize = LANES;
    const POLY: bool = true;
    const SCALE2_FAST: bool = true;
    const LOOKUP16_FAST: bool = true;
    const FMA: bool = true;
    const PAIRS: bool = true;
    type Mask = u16;
    type Acc = Acc512;
    type Cols = Two<Two<V512>>;
    const LAST_COLS: usize = 30;

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
    fn load_bf16(src: &[u16], fill: f32) -> Self {
        match src.first_chunk::<16>() {
            // SAFETY: invariant; reads the 32 bytes of the array `a`.
            Some(a) => V512(unsafe {
                let v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(a.as_ptr().cast()));
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v))
            }),
            None => Self::load_or(&float::padded_bf16::<16>(src, fill), fill),
        }
    }
    #[inline(always)]
    fn load_f16(src: &[u16], fill: f32) -> Self {
        match src.first_chunk::<16>() {
            // SAFETY: invariant; reads the 32 bytes of the array `a`.
            Some(a) => V512(unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(a.as_ptr().cast())) }),
            None => Self::load_or(&float::padded_f16::<16>(src, fill), fill),
        }
    }
    #[inline(always)]
    fn load_u8(src: &[u8]) -> Self {
        match src.first_chunk::<16>() {
            // SAFETY: invariant; reads the 16 bytes of the array `a`.
            Some(a) => V512(unsafe {
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(a.as_ptr().cast())))
            }),
            None => Self::load_or(&float::padded_u8::<16>(src), 0.0),
        }
    }
    #[inline(always)]
    fn store_bf16(self, dst: &mut [u16]) {
        // SAFETY: invariant. Round to nearest even on the bits (add 0x7fff and the lowest
        // kept bit), quiet NaN kept, then the high words (vpmovdw).
        let h = unsafe {
            let x = _mm512_castps_si512(self.0);
            let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(x), _mm512_set1_epi32(1));
            let up = _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7fff)), lsb);
            let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0);
            let q = _mm512_or_si512(x, _mm512_set1_epi32(0x0040_0000));
            _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(_mm512_mask_blend_epi32(nan, up, q)))
        };
        store_u16x16(h, dst);
    }
    #[inline(always)]
    fn bf16_native() -> bool {
        has_bf16()
    }
    #[inline(always)]
    fn store_bf16_native(self, dst: &mut [u16]) {
        debug_assert!(has_bf16(), "store_bf16_native without AVX-512 BF16");
        // SAFETY: invariant (AVX-512DQ's vfpclassps; 0x20: subnormal). Called only where
        // `has_bf16` holds (through `bf16_native`, the trait's contract).
        unsafe {
            if _mm512_fpclass_ps_mask::<0x20>(self.0) != 0 {
                // The instruction would flush these lanes to 0.
                return self.store_bf16(dst);
            }
            store_u16x16(cvtneps2bf16(self.0), dst);
        }
    }
    #[inline(always)]
    fn store_f16(self, dst: &mut [u16]) {
        // SAFETY: invariant.
        let h = unsafe { _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(self.0) };
        store_u16x16(h, dst);
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
    fn lookup16(self, table: &[f32; 16]) -> Self {
        // SAFETY: invariant (AVX-512F); `table` is 16 f32. vpermps reads the low four bits of
        // each lane's index.
        V512(unsafe {
            let t = _mm512_loadu_ps(table.as_ptr());
            _mm512_permutexvar_ps(_mm512_castps_si512(self.0), t)
        })
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
    type Wide = [__m512d; 2];
    #[inline(always)]
    fn wide_zero() -> [__m512d; 2] {
        // SAFETY: invariant (AVX-512F).
        [unsafe { _mm512_setzero_pd() }; 2]
    }
    #[inline(always)]
    fn wide_add(acc: [__m512d; 2], v: Self) -> [__m512d; 2] {
        Self::wide_sum(acc, widen512(v.0))
    }
    #[inline(always)]
    fn wide_add_where(acc: [__m512d; 2], v: Self, keep: u16) -> [__m512d; 2] {
        Self::wide_sum(acc, Self::widen_where(v, keep))
    }
    #[inline(always)]
    fn widen_where(v: Self, keep: u16) -> [__m512d; 2] {
        // SAFETY: invariant (AVX-512F). The zero-masked conversions give the `+0` lanes of
        // the default's select, without it.
        unsafe {
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v.0)));
            [
                _mm512_maskz_cvtps_pd(keep as u8, _mm512_castps512_ps256(v.0)),
                _mm512_maskz_cvtps_pd((keep >> 8) as u8, hi),
            ]
        }
    }
    #[inline(always)]
    fn widen(v: Self) -> [__m512d; 2] {
        widen512(v.0)
    }
    #[inline(always)]
    fn wide_sum(a: [__m512d; 2], b: [__m512d; 2]) -> [__m512d; 2] {
        // SAFETY: invariant (AVX-512F).
        unsafe { [_mm512_add_pd(a[0], b[0]), _mm512_add_pd(a[1], b[1])] }
    }
    #[inline(always)]
    fn wide_store(a: [__m512d; 2], dst: &mut [f64]) {
        let d = &mut dst[..16];
        // SAFETY: invariant; each store writes 64 bytes inside the 16 elements of `d`.
        unsafe {
            _mm512_storeu_pd(d.as_mut_ptr(), a[0]);
            _mm512_storeu_pd(d[8..].as_mut_ptr(), a[1]);
        }
    }
    #[inline(always)]
    fn count(m: u16) -> u32 {
        m.count_ones()
    }
    #[inline(always)]
    fn transpose_rows(src: &[f32], dst: &mut [f32], cn: usize, ln: usize) -> bool {
        if !tiles(cn, ln, src.len(), dst.len()) {
            return false;
        }
        // SAFETY (three calls): invariant (AVX-512F); the lengths and `ln` as [`tiles`]
        // checked.
        match cn {
            2 => return unsafe { tile_rows::<2, false>(src, dst, ln) },
            4 => return unsafe { tile_rows::<4, false>(src, dst, ln) },
            8 => return unsafe { tile_rows::<8, false>(src, dst, ln) },
            _ => {}
        }
        // SAFETY: invariant (AVX-512F). Tile `(g, h)` reads rows `16 g..16 g + 16`, of each
        // the classes `16 h..min(16 h + 16, cn)` (masked: no other lane is read), below
        // `ln cn = src.len()`; and writes `dst[c ln + 16 g..][..16]` for `c < cn`, below
        // `cn ln <= dst.len()` ([`tiles`]).
        unsafe {
            for h in 0..cn.div_ceil(16) {
                let k = row_mask(cn - 16 * h);
                for g in 0..ln / 16 {
                    let base = src.as_ptr().add(16 * g * cn + 16 * h);
                    let mut rows = [_mm512_setzero_ps(); 16];
                    for (p, v) in rows.iter_mut().enumerate() {
                        *v = _mm512_maskz_loadu_ps(k, base.add(p * cn));
                    }
                    let cols = transpose16(rows);
                    for (c, v) in cols.iter().enumerate().take(cn - 16 * h) {
                        _mm512_storeu_ps(dst.as_mut_ptr().add((16 * h + c) * ln + 16 * g), *v);
                    }
                }
            }
        }
        true
    }
    #[inline(always)]
    fn untranspose_rows(src: &[f32], dst: &mut [f32], cn: usize, ln: usize) -> bool {
        if !tiles(cn, ln, dst.len(), src.len()) {
            return false;
        }
        // SAFETY (three calls): invariant (AVX-512F); the lengths and `ln` as [`tiles`]
        // checked.
        match cn {
            2 => return unsafe { tile_rows::<2, true>(src, dst, ln) },
            4 => return unsafe { tile_rows::<4, true>(src, dst, ln) },
            8 => return unsafe { tile_rows::<8, true>(src, dst, ln) },
            _ => {}
        }
        // SAFETY: as in `transpose_rows`, the roles of `src` and `dst` exchanged (the rows'
        // stores masked to their classes of the tile).
        unsafe {
            for h in 0..cn.div_ceil(16) {
                let k = row_mask(cn - 16 * h);
                for g in 0..ln / 16 {
                    let mut cols = [_mm512_setzero_ps(); 16];
                    for (c, v) in cols.iter_mut().enumerate().take(cn - 16 * h) {
                        *v = _mm512_loadu_ps(src.as_ptr().add((16 * h + c) * ln + 16 * g));
                    }
                    let rows = transpose16(cols);
                    let base = dst.as_mut_ptr().add(16 * g * cn + 16 * h);
                    for (p, v) in rows.iter().enumerate() {
                        _mm512_mask_storeu_ps(base.add(p * cn), k, *v);
                    }
                }
            }
        }
        true
    }
    #[inline(always)]
    fn wide_tree(a: [__m512d; 2]) -> f64 {
        // SAFETY: invariant (AVX-512F). The tree of the default: lanes j + (j + 8), then
        // j + (j + 4), j + (j + 2), j + (j + 1), each an f64 addition per lane.
        unsafe {
            let s8 = _mm512_add_pd(a[0], a[1]);
            let s4 = _mm256_add_pd(_mm512_castpd512_pd256(s8), _mm512_extractf64x4_pd::<1>(s8));
            let s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd::<1>(s4));
            let s1 = _mm_add_sd(s2, _mm_unpackhi_pd(s2, s2));
            _mm_cvtsd_f64(s1)
        }
    }
    #[inline(always)]
    fn wide_trees(a: &[[__m512d; 2]; MAX_LANES]) -> [__m512d; 2] {
        [trees8(&a[..8]), trees8(&a[8..])]
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        // SAFETY: invariant (AVX-512F). Maximum of non-NaN values: exact in any order.
        unsafe {
            let h = _mm512_castps_pd(self.0);
            let m8 = _mm256_max_ps(
                _mm256_castpd_ps(_mm512_castpd512_pd256(h)),
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(h)),
            );
            let m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps::<1>(m8));
            let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            let m1 = _mm_max_ss(m2, _mm_shuffle_ps::<1>(m2, m2));
            _mm_cvtss_f32(m1)
        }
    }
    #[inline(always)]
    fn wide_load(src: &[f64]) -> [__m512d; 2] {
        let s = &src[..16];
        // SAFETY: invariant; each load reads 64 bytes inside the 16 elements of `s`.
        unsafe {
            [
                _mm512_loadu_pd(s.as_ptr()),
                _mm512_loadu_pd(s[8..].as_ptr()),
            ]
        }
    }
    #[inline(always)]
    fn wide_round(a: [__m512d; 2]) -> Self {
        // SAFETY: invariant (AVX-512F). Each half rounded to nearest (the default mode).
        unsafe {
            let (lo, hi) = (_mm512_cvtpd_ps(a[0]), _mm512_cvtpd_ps(a[1]));
            let lo = _mm512_castps_pd(_mm512_castps256_ps512(lo));
            V512(_mm512_castpd_ps(_mm512_insertf64x4::<1>(
                lo,
                _mm256_castps_pd(hi),
            )))
        }
    }
}
