//! The `wide` instantiation of [`Lane`]: the only file of the crate that names `wide`.
//!
//! `f32x8` maps to one AVX register when the build enables AVX (e.g. `-C target-cpu=native`),
//! to two SSE2 registers otherwise, to two NEON registers on aarch64, and to two `v128` on
//! wasm32 built with `simd128` (`-C target-feature=+simd128`; WebAssembly has no run-time
//! detection, so this is the crate's wasm SIMD backend, chosen at compile time). Elsewhere
//! (wasm32 without `simd128`, Cortex-M) `wide` computes lane by lane. The elementary
//! functions are the crate's own ([`crate::math`]), not `wide`'s, so the error bounds written
//! there hold on every target.
// Without vector registers no `Token` exists, so nothing instantiates the lane type below,
// and it and its helpers are dead code there (wasm32 without `simd128`, Cortex-M).
#![cfg_attr(
    not(any(
        target_feature = "sse",
        all(target_arch = "aarch64", target_feature = "neon"),
        all(target_arch = "wasm32", target_feature = "simd128")
    )),
    allow(dead_code)
)]

use wide::{f32x8, f64x4, i16x8, i32x8, u16x8, u32x8};

use crate::backend::Kernel;
use crate::backend::lane::{Lane, Two};
use crate::float;
use crate::math;
use crate::sigmoid::pass::Body;
use crate::sum::{self, Dd, two_sum};

/// Eight f32 lanes.
pub(crate) const LANES: usize = 8;

/// `$vector` items where `wide` holds `f32x8` in vector registers in this build (the targets
/// and features its own code paths select: SSE2, NEON, wasm `simd128`), `$lanes` items
/// elsewhere (Cortex-M, wasm without `simd128`), where it computes lane by lane.
macro_rules! by_registers {
    (vector { $($vector:item)* } lanes { $($lanes:item)* }) => {
        $(
            #[cfg(any(
                target_feature = "sse",
                all(target_arch = "aarch64", target_feature = "neon"),
                all(target_arch = "wasm32", target_feature = "simd128")
            ))]
            $vector
        )*
        $(
            #[cfg(not(any(
                target_feature = "sse",
                all(target_arch = "aarch64", target_feature = "neon"),
                all(target_arch = "wasm32", target_feature = "simd128")
            )))]
            $lanes
        )*
    };
}

by_registers! {
    vector {
        /// The proof that `wide` has vector registers in this build, which [`run`] takes.
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct Token(());

        /// The token: this build has vector registers.
        pub(crate) fn detect() -> Option<Token> {
            Some(Token(()))
        }

        /// `k` on `wide`'s `f32x8`: compiled once per kind of work (each caller that
        /// inlined it would compile the whole pass again).
        #[inline(never)]
        pub(crate) fn run<K: Kernel>(_: Token, k: K) -> K::Output {
            crate::backend::frame_first();
            k.run::<F8>()
        }
    }

    lanes {
        /// No token: computed lane by lane, `f32x8` is slower than the scalar backend, and
        /// its kernels would take most of a microcontroller's flash (2.6 MB of a Cortex-M4F
        /// firmware), so the backend is not compiled at all.
        #[derive(Clone, Copy, Debug)]
        pub(crate) enum Token {}

        /// No token in this build.
        pub(crate) fn detect() -> Option<Token> {
            None
        }

        /// Never called (no [`Token`] exists); instantiates nothing.
        pub(crate) fn run<K: Kernel>(t: Token, _: K) -> K::Output {
            match t {}
        }
    }
}

impl Body for F8 {}

/// Per-lane double-word loss sums and target sums, lanes 0..4 and 4..8.
#[derive(Clone, Copy)]
pub(crate) struct Acc {
    /// Loss of lanes `k` and `k + 4` together: running sum and sum of its rounding errors.
    hi: f64x4,
    lo: f64x4,
    t: [f64x4; 2],
}

/// `bits` in every lane, without a loop. rustc emits an array repeat (`[v; 8]`, or `[v, v,
/// ..., v]`, which its MIR optimisations turn into one) as a loop unless the value is an
/// integer constant of one repeated byte (a `memset`), and `wide`'s `splat` is one: `[0.0;
/// 8]` is a loop, `[0u32; 8]` is not. Once the helpers were inlined, the sigmoid pass had
/// thousands of these loops (one per vector constant), and LLVM's loop passes, whose cost per
/// loop grows with the size of the function, took most of the crate's release build.
#[inline(always)]
fn splat_u32(bits: u32) -> u32x8 {
    let mut a = [0u32; 8];
    a[0] = bits;
    a[1] = bits;
    a[2] = bits;
    a[3] = bits;
    a[4] = bits;
    a[5] = bits;
    a[6] = bits;
    a[7] = bits;
    u32x8::new(a)
}

/// `v` in every lane (see [`splat_u32`]).
#[inline(always)]
fn splat_f32(v: f32) -> f32x8 {
    f32x8::from_bits(splat_u32(v.to_bits()))
}

/// `v` in every lane (see [`splat_u32`]).
#[inline(always)]
fn splat_i32(v: i32) -> i32x8 {
    wide::bytemuck::cast(splat_u32(v as u32))
}

/// Bits as a vector of `i32` (a reinterpretation).
#[inline(always)]
fn bits_i32(v: f32x8) -> i32x8 {
    wide::bytemuck::cast(v.to_bits())
}

/// The `f32` with these bits (a reinterpretation).
#[inline(always)]
fn from_bits_i32(b: i32x8) -> f32x8 {
    f32x8::from_bits(wide::bytemuck::cast(b))
}

/// Eight `bf16` bit patterns as `f32`: the bits shifted to the top half, exact.
#[inline(always)]
fn widen_bf16(h: &[u16; 8]) -> f32x8 {
    from_bits_i32(words(h) << 16)
}

/// Eight 16-bit words zero-extended to `i32` lanes (SSE2: two unpacks and shifts).
#[inline(always)]
fn words(h: &[u16; 8]) -> i32x8 {
    i32x8::from_u16x8(u16x8::new(*h))
}

/// Eight `f16` bit patterns as `f32`, exactly, and with the bits of the `half` crate's
/// `f16::to_f32` everywhere (a NaN keeps its payload and becomes quiet), in vector registers:
/// the magnitude's bits shifted into place as an `f32` whose exponent is 112 short, times
/// `2^112` (one exact product, which also normalises the subnormals), and infinities and NaN
/// (exponent 31) assembled from the bits. Needs subnormal `f32` arithmetic (no
/// flush-to-zero): every target that has this backend (SSE2, aarch64 NEON, wasm `simd128`).
#[inline(always)]
fn widen_f16(h: &[u16; 8]) -> f32x8 {
    let h = words(h);
    let mag = h & splat_i32(0x7fff);
    let u = mag << 13;
    // 2^112 = 0x7780_0000: exact products, from 2^-24 x 1 (the least subnormal) to 65504.
    let finite = bits_i32(from_bits_i32(u) * splat_f32(f32::from_bits(0x7780_0000)));
    let nan = mag.simd_gt(splat_i32(0x7c00));
    let special = u | splat_i32(0x7f80_0000) | (nan & splat_i32(0x0040_0000));
    let m = mag.simd_gt(splat_i32(0x7bff)).select(special, finite);
    from_bits_i32(m | ((h & splat_i32(0x8000)) << 16))
}

/// The low 16 bits of each lane, stored to `dst[..8]` (SSE2: shifts and one pack).
#[inline(always)]
fn store_words(v: i32x8, dst: &mut [u16; 8]) {
    *dst = wide::bytemuck::cast(i16x8::from_i32x8_truncate(v));
}

/// `v` rounded to `bf16` bits (nearest, ties to even, on the bits: add `0x7fff` and the
/// lowest kept bit), a NaN kept quiet with its payload's top bits: the bits of the `half`
/// crate's `bf16::from_f32`.
#[inline(always)]
fn narrow_bf16(v: f32x8, dst: &mut [u16; 8]) {
    let x = bits_i32(v);
    let nan = (x & splat_i32(0x7fff_ffff)).simd_gt(splat_i32(0x7f80_0000));
    let up = x + splat_i32(0x7fff) + ((x >> 16) & splat_i32(1));
    let q = x | splat_i32(0x0040_0000);
    store_words(nan.select(q, up) >> 16, dst);
}

/// `v` rounded to `f16` bits (nearest, ties to even), with the bits of the `half` crate's
/// `f16::from_f32` everywhere: `|v| >= 65536` (and `65520 <= |v|` by rounding) to infinity,
/// a NaN quiet with its payload's top bits; magnitudes below `2^-14` rounded by one `f32`
/// addition of 0.5 (whose last place is `2^-24`, the least `f16` subnormal), the others on
/// the bits (rebias, add `0xfff` and the lowest kept bit).
#[inline(always)]
fn narrow_f16(v: f32x8, dst: &mut [u16; 8]) {
    let x = bits_i32(v);
    let ax = x & splat_i32(0x7fff_ffff);
    let nan = ax.simd_gt(splat_i32(0x7f80_0000));
    let special = nan.select(
        splat_i32(0x7e00) | ((ax & splat_i32(0x007f_ffff)) >> 13),
        splat_i32(0x7c00),
    );
    let sub = bits_i32(from_bits_i32(ax) + splat_f32(0.5)) - splat_i32(0x3f00_0000);
    let odd = (ax >> 13) & splat_i32(1);
    let normal = (ax - splat_i32((127 - 15) << 23) + splat_i32(0xfff) + odd) >> 13;
    let finite = ax.simd_lt(splat_i32(0x3880_0000)).select(sub, normal);
    let m = ax.simd_gt(splat_i32(0x477f_ffff)).select(special, finite);
    store_words(m | ((x >> 16) & splat_i32(0x8000)), dst);
}

/// The first `min(dst.len(), 8)` lanes of `v` rounded by `narrow` (`narrow_bf16` or
/// `narrow_f16`) into `dst`.
#[inline(always)]
fn store_narrowed<F: Fn(f32x8, &mut [u16; 8])>(v: f32x8, dst: &mut [u16], narrow: F) {
    match dst.first_chunk_mut::<8>() {
        Some(d) => narrow(v, d),
        None => {
            let mut d = [0u16; 8];
            narrow(v, &mut d);
            let n = dst.len();
            dst[..n].copy_from_slice(&d[..n]);
        }
    }
}

/// `wide`'s `f32x8` with the crate's own splat, absolute value and negation (without
/// `wide`'s loops: see [`splat_u32`]); every other operation is `wide`'s.
#[derive(Clone, Copy)]
pub(crate) struct F8(f32x8);

macro_rules! binary {
    ($($tr:ident $f:ident),*) => {$(
        impl core::ops::$tr for F8 {
            type Output = F8;
            #[inline(always)]
            fn $f(self, o: F8) -> F8 {
                F8(core::ops::$tr::$f(self.0, o.0))
            }
        }
    )*};
}
binary!(Add add, Sub sub, Mul mul, Div div);

impl core::ops::Neg for F8 {
    type Output = F8;
    /// The sign bit flipped, as `wide`'s negation (whose SSE2 path splats `-0.0` with a loop).
    #[inline(always)]
    fn neg(self) -> F8 {
        F8(f32x8::from_bits(self.0.to_bits() ^ splat_u32(0x8000_0000)))
    }
}

#[inline(always)]
fn halves(v: F8) -> [f64x4; 2] {
    let a = v.0.to_array();
    [
        f64x4::new([a[0] as f64, a[1] as f64, a[2] as f64, a[3] as f64]),
        f64x4::new([a[4] as f64, a[5] as f64, a[6] as f64, a[7] as f64]),
    ]
}

impl Lane for F8 {
    const LANES: usize = LANES;
    const POLY: bool = true;
    const PAIRS: bool = true;
    // `wide` fuses with FMA on x86-64, and always on aarch64 (NEON `vfmaq_f32`).
    const FMA: bool =
        cfg!(target_feature = "fma") || cfg!(all(target_arch = "aarch64", target_feature = "neon"));
    type Mask = f32x8;
    type Acc = Acc;
    type Cols = Two<F8>;

    /// `v` in every lane, without `wide`'s `splat` (a loop: see [`splat_u32`]).
    #[inline(always)]
    fn splat(v: f32) -> Self {
        F8(splat_f32(v))
    }
    #[inline(always)]
    fn load_or(src: &[f32], fill: f32) -> Self {
        if let Some(head) = src.first_chunk::<8>() {
            F8(f32x8::new(*head))
        } else {
            let mut a = splat_f32(fill).to_array();
            a[..src.len()].copy_from_slice(src);
            F8(f32x8::new(a))
        }
    }
    #[inline(always)]
    fn load_bf16(src: &[u16], fill: f32) -> Self {
        match src.first_chunk::<8>() {
            Some(h) => F8(widen_bf16(h)),
            None => Self::load_or(&float::padded_bf16::<8>(src, fill), fill),
        }
    }
    #[inline(always)]
    fn load_f16(src: &[u16], fill: f32) -> Self {
        match src.first_chunk::<8>() {
            Some(h) => F8(widen_f16(h)),
            None => Self::load_or(&float::padded_f16::<8>(src, fill), fill),
        }
    }
    #[inline(always)]
    fn store_bf16(self, dst: &mut [u16]) {
        store_narrowed(self.0, dst, narrow_bf16);
    }
    #[inline(always)]
    fn store_f16(self, dst: &mut [u16]) {
        store_narrowed(self.0, dst, narrow_f16);
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32]) {
        let a = self.0.to_array();
        if let Some(head) = dst.first_chunk_mut::<8>() {
            *head = a;
        } else {
            let n = dst.len();
            dst.copy_from_slice(&a[..n]);
        }
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        F8(f32x8::mul_add(self.0, a.0, b.0))
    }
    #[inline(always)]
    fn mul_err(a: Self, b: Self, p: Self) -> Self {
        if cfg!(target_feature = "fma") {
            // Fused: a*b - p rounded once, and exact because it is representable.
            F8(a.0.mul_sub(b.0, p.0))
        } else {
            math::mul_err_dekker(a, b, p)
        }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // The sign bit cleared, as `f32x8::abs`, whose SSE2 path splats its mask with a loop
        // (see [`splat_u32`]).
        F8(f32x8::from_bits(self.0.to_bits() & splat_u32(0x7fff_ffff)))
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        F8(self.0.fast_max(o.0))
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        F8(self.0.fast_min(o.0))
    }
    #[inline(always)]
    fn lt(self, o: Self) -> f32x8 {
        self.0.simd_lt(o.0)
    }
    #[inline(always)]
    fn ge(self, o: Self) -> f32x8 {
        self.0.simd_ge(o.0)
    }
    #[inline(always)]
    fn le(self, o: Self) -> f32x8 {
        self.0.simd_le(o.0)
    }
    #[inline(always)]
    fn eq(self, o: Self) -> f32x8 {
        self.0.simd_eq(o.0)
    }
    #[inline(always)]
    fn select(m: f32x8, a: Self, b: Self) -> Self {
        F8(m.select(a.0, b.0))
    }
    #[inline(always)]
    fn all(m: f32x8) -> bool {
        m.all()
    }
    #[inline(always)]
    fn any(m: f32x8) -> bool {
        m.any()
    }
    #[inline(always)]
    fn pow2i(n: Self) -> Self {
        // `n` is integral and in range: rounded exactly, without `round_int`'s fix-ups for
        // NaN and overflow (whose SSE2 path splats with a loop).
        let bits = (n.0.fast_round_int() + splat_i32(127)) << 23;
        F8(f32x8::from_bits(wide::bytemuck::cast(bits)))
    }
    #[inline(always)]
    fn frexp(self) -> (Self, Self) {
        let bits: i32x8 = wide::bytemuck::cast(self.0.to_bits());
        let k = f32x8::from_i32x8((bits >> 23) - splat_i32(127));
        let m = (bits & splat_i32(0x007f_ffff)) | splat_i32(0x3f80_0000);
        (F8(k), F8(f32x8::from_bits(wide::bytemuck::cast(m))))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        // sqrtps on x86, fsqrt on aarch64, f32x4.sqrt on wasm: correctly rounded. (The
        // backend runs only with a `Token`, i.e. on those.)
        F8(f32x8::sqrt(self.0))
    }
    #[inline(always)]
    fn acc_zero() -> Acc {
        let z = f64x4::ZERO;
        Acc {
            hi: z,
            lo: z,
            t: [z; 2],
        }
    }
    #[inline(always)]
    fn acc_add(acc: &mut Acc, loss: Self) {
        // The halves are added in f64 first (one rounding, relative 2^-53), then Sum2 per
        // lane, as `sum::Dd::add_f64`.
        let [a, b] = halves(loss);
        let (s, e) = two_sum(acc.hi, a + b);
        acc.hi = s;
        acc.lo += e;
    }
    #[inline(always)]
    fn acc_add2(acc: &mut Acc, a: Self, b: Self) {
        // Four halves added in f64 first (two roundings, relative 2^-52 in all), then Sum2.
        let ([a0, a1], [b0, b1]) = (halves(a), halves(b));
        let (s, e) = two_sum(acc.hi, (a0 + a1) + (b0 + b1));
        acc.hi = s;
        acc.lo += e;
    }
    #[inline(always)]
    fn acc_add_t(acc: &mut Acc, t: Self) {
        for (i, h) in halves(t).into_iter().enumerate() {
            acc.t[i] += h;
        }
    }
    #[inline(always)]
    fn acc_total(acc: Acc) -> (Dd, f64) {
        let d = sum::total(&acc.hi.to_array(), &acc.lo.to_array());
        (d, acc.t[0].reduce_add() + acc.t[1].reduce_add())
    }
    type Wide = [f64x4; 2];
    #[inline(always)]
    fn wide_zero() -> [f64x4; 2] {
        [f64x4::ZERO; 2]
    }
    #[inline(always)]
    fn wide_add(acc: [f64x4; 2], v: Self) -> [f64x4; 2] {
        let [a, b] = halves(v);
        [acc[0] + a, acc[1] + b]
    }
    #[inline(always)]
    fn wide_sum(a: [f64x4; 2], b: [f64x4; 2]) -> [f64x4; 2] {
        [a[0] + b[0], a[1] + b[1]]
    }
    #[inline(always)]
    fn wide_store(a: [f64x4; 2], dst: &mut [f64]) {
        dst[..4].copy_from_slice(&a[0].to_array());
        dst[4..8].copy_from_slice(&a[1].to_array());
    }
    #[inline(always)]
    fn wide_load(src: &[f64]) -> [f64x4; 2] {
        let s = &src[..8];
        [
            f64x4::new([s[0], s[1], s[2], s[3]]),
            f64x4::new([s[4], s[5], s[6], s[7]]),
        ]
    }
    #[inline(always)]
    fn wide_round(a: [f64x4; 2]) -> Self {
        let (l, h) = (a[0].to_array(), a[1].to_array());
        F8(f32x8::new([
            l[0] as f32,
            l[1] as f32,
            l[2] as f32,
            l[3] as f32,
            h[0] as f32,
            h[1] as f32,
            h[2] as f32,
            h[3] as f32,
        ]))
    }
    #[inline(always)]
    fn count(m: f32x8) -> u32 {
        m.to_bitmask().count_ones()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// `f32` bit patterns that reach every rounding case of both narrowings: every top half
    /// (sign, exponent, the mantissa's top 7 bits) with low halves at and around the
    /// `bf16` and `f16` rounding points (half, ties, one below, one above, odd and even
    /// kept bits). `FOCAL_EXHAUSTIVE=1` takes all 2^32 instead (16 s on x86; 166 s for the
    /// aarch64 build under qemu).
    fn patterns() -> impl Iterator<Item = u32> {
        const LOW: [u32; 16] = [
            0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000, 0x5555, 0x7fff, 0x8000, 0x8001,
            0xaaaa, 0xe000, 0xf000, 0xffff,
        ];
        let all = std::env::var_os("FOCAL_EXHAUSTIVE").is_some();
        let (a, b) = if all {
            (0..=u32::MAX, None)
        } else {
            (0..=0, Some(0..=0xffffu32))
        };
        a.filter(move |_| all).chain(
            b.into_iter()
                .flatten()
                .flat_map(|hi| LOW.map(|lo| hi << 16 | lo)),
        )
    }

    #[test]
    fn widen_every_half_bit_pattern() {
        for hi in 0..=0xffffu32 / 8 {
            let h: [u16; 8] = core::array::from_fn(|i| (hi * 8 + i as u32) as u16);
            let (b, f) = (widen_bf16(&h).to_array(), widen_f16(&h).to_array());
            for i in 0..8 {
                assert_eq!(b[i].to_bits(), float::bf16_bits_to_f32(h[i]).to_bits());
                assert_eq!(
                    f[i].to_bits(),
                    float::f16_bits_to_f32(h[i]).to_bits(),
                    "{:#06x}",
                    h[i]
                );
            }
        }
    }

    #[test]
    fn narrow_as_the_half_crate() {
        let mut it = patterns().peekable();
        while it.peek().is_some() {
            let mut x = [0u32; 8];
            let mut n = 0;
            for (d, v) in x.iter_mut().zip(&mut it) {
                *d = v;
                n += 1;
            }
            let v = f32x8::from_bits(u32x8::new(x));
            let (mut b, mut f) = ([0u16; 8], [0u16; 8]);
            narrow_bf16(v, &mut b);
            narrow_f16(v, &mut f);
            for i in 0..n {
                let y = f32::from_bits(x[i]);
                assert_eq!(b[i], float::f32_to_bf16_bits(y), "bf16 of {:#010x}", x[i]);
                assert_eq!(f[i], float::f32_to_f16_bits(y), "f16 of {:#010x}", x[i]);
            }
        }
    }
}
