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

use wide::{f32x8, f64x4, i32x8, u32x8};

use crate::backend::Kernel;
use crate::backend::lane::{Lane, Two};
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
