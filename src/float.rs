//! The floating-point element types of logits, gradients and soft targets: `f32`, and the
//! half-precision `bf16` and `f16` of the [`half`] crate.

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use crate::backend::lane::Lane;

/// An element type of logits, gradients, per-element losses and soft targets: `f32`,
/// [`half::bf16`] or [`half::f16`].
///
/// Every entry point of [`Focal`](crate::Focal) and [`SoftmaxFocal`](crate::SoftmaxFocal)
/// is generic over it: `focal.loss_and_grad(&logits_bf16, &targets_u8, &mut grad_bf16, r)`.
///
/// # Numerics
/// A half-precision input is widened to `f32` exactly (every `bf16` and `f16` is an `f32`),
/// the computation is the crate's `f32` one on those values (the same bits as the `f32` entry
/// point on the widened input), and each output is the `f32` result rounded once, to nearest
/// (ties to even), to the output type. So an output is within half an ULP of its type of the
/// `f32` result, plus the `f32` result's own error (see each family's tolerance table). The
/// conversions happen in registers inside the pass, not as a pass of their own: F16C and
/// AVX-512 converts on x86; on the `Portable` backend (SSE2, aarch64 NEON, wasm `simd128`)
/// vector integer and float operations with the bits of the `half` crate's conversions
/// (checked for every `f16` and `bf16`, and for all 2^32 `f32` on x86 and on aarch64 under
/// qemu); a shift for `bf16` logits everywhere.
///
/// Overflow: `f16`'s largest finite value is 65504; a gradient or loss above 65520 in
/// magnitude becomes `inf` (scale it down with [`Reduction::Scale`](crate::Reduction::Scale)
/// if that can happen); results below `2^-24` round to 0 or to an `f16` subnormal. `bf16`
/// has the range of `f32`. A NaN or infinite half-precision logit is an error as it is in
/// `f32`.
///
/// The trait is sealed.
///
/// # Example
/// ```
/// use focal_loss::{Focal, Reduction};
/// use half::bf16;
/// let x: Vec<bf16> = [0.3f32, -2.0, 1.5].iter().map(|&v| bf16::from_f32(v)).collect();
/// let mut g = [bf16::ZERO; 3];
/// let f = Focal::new(2.0).alpha(0.25);
/// let l = f.loss_and_grad(&x, &[1u8, 0, 1], &mut g, Reduction::Sum)?;
/// // The same as the f32 call on the widened logits, the gradient rounded once.
/// let xf: Vec<f32> = x.iter().map(|v| v.to_f32()).collect();
/// let mut gf = [0f32; 3];
/// assert_eq!(l, f.loss_and_grad(&xf, &[1u8, 0, 1], &mut gf, Reduction::Sum)?);
/// assert!(g.iter().zip(&gf).all(|(h, &v)| *h == bf16::from_f32(v)));
/// # Ok::<(), focal_loss::Error>(())
/// ```
pub trait Float: Copy + Sync + Send + sealed::Sealed {
    /// The value as an `f32` (exact).
    fn to_f32(self) -> f32;
    /// `v` rounded to this type (to nearest, ties to even).
    fn from_f32(v: f32) -> Self;
}

impl Float for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Float for bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        bf16::from_f32(v)
    }
}

impl Float for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
}

/// The format of a half-precision slice (`u16` bits in the passes), chosen at run time, so
/// that `bf16` and `f16` data share one compiled copy of the softmax passes (each pair of
/// element types is a copy of every kernel on every backend: about 10 s of the crate's
/// release build each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Half {
    Bf16,
    F16,
}

/// How the passes read and write an element type, `LANES` at a time (internal: the lane
/// trait is not public). `h` is the [`Half`] format of a `u16` slice; `f32` ignores it.
pub(crate) trait Elem: Copy + Send + Sync {
    /// Whether this is `f32` (whose slices the passes may use as scratch space).
    const IS_F32: bool = false;
    /// The slice itself, when it is `f32`.
    #[inline(always)]
    fn as_f32_mut(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
    /// `src[..LANES]` as `f32`, or `src` padded with `fill` when it is shorter.
    fn load<L: Lane>(src: &[Self], fill: f32, h: Half) -> L;
    /// Writes the first `min(dst.len(), LANES)` lanes, each rounded once.
    fn store<L: Lane>(v: L, dst: &mut [Self], h: Half);
    /// One value, exactly.
    fn get(self, h: Half) -> f32;
    /// One value, rounded once.
    fn put(v: f32, h: Half) -> Self;
    /// The slice as a [`Src`] (half-precision bits in the format `h`).
    fn src(s: &[Self], h: Half) -> Src<'_>;
    /// The slice as a [`Dst`] (half-precision bits in the format `h`).
    fn dst(s: &mut [Self], h: Half) -> Dst<'_>;
}

impl Elem for f32 {
    const IS_F32: bool = true;
    #[inline(always)]
    fn as_f32_mut(s: &mut [f32]) -> Option<&mut [f32]> {
        Some(s)
    }
    #[inline(always)]
    fn load<L: Lane>(src: &[f32], fill: f32, _: Half) -> L {
        L::load_or(src, fill)
    }
    #[inline(always)]
    fn store<L: Lane>(v: L, dst: &mut [f32], _: Half) {
        v.store(dst)
    }
    #[inline(always)]
    fn get(self, _: Half) -> f32 {
        self
    }
    #[inline(always)]
    fn put(v: f32, _: Half) -> f32 {
        v
    }
    #[inline(always)]
    fn src(s: &[f32], _: Half) -> Src<'_> {
        Src::F32(s)
    }
    #[inline(always)]
    fn dst(s: &mut [f32], _: Half) -> Dst<'_> {
        Dst::F32(s)
    }
}

/// The bits of a `bf16` or `f16` element (the slices of [`Src`] and [`Dst`]), in the
/// format `h`.
impl Elem for u16 {
    #[inline(always)]
    fn load<L: Lane>(src: &[u16], fill: f32, h: Half) -> L {
        match h {
            Half::Bf16 => L::load_bf16(src, fill),
            Half::F16 => L::load_f16(src, fill),
        }
    }
    #[inline(always)]
    fn store<L: Lane>(v: L, dst: &mut [u16], h: Half) {
        match h {
            Half::Bf16 => v.store_bf16(dst),
            Half::F16 => v.store_f16(dst),
        }
    }
    #[inline(always)]
    fn get(self, h: Half) -> f32 {
        match h {
            Half::Bf16 => bf16_bits_to_f32(self),
            Half::F16 => f16_bits_to_f32(self),
        }
    }
    #[inline(always)]
    fn put(v: f32, h: Half) -> u16 {
        match h {
            Half::Bf16 => f32_to_bf16_bits(v),
            Half::F16 => f32_to_f16_bits(v),
        }
    }
    #[inline(always)]
    fn src(s: &[u16], h: Half) -> Src<'_> {
        match h {
            Half::Bf16 => Src::Bf16(s),
            Half::F16 => Src::F16(s),
        }
    }
    #[inline(always)]
    fn dst(s: &mut [u16], h: Half) -> Dst<'_> {
        match h {
            Half::Bf16 => Dst::Bf16(s),
            Half::F16 => Dst::F16(s),
        }
    }
}

pub(crate) mod sealed {
    /// How the passes see a slice of a [`Float`](super::Float) type (not part of the public
    /// interface).
    pub trait Sealed: Copy {
        /// The slice as one of the concrete kinds.
        fn src(s: &[Self]) -> super::Src<'_>;
        /// The mutable slice as one of the concrete kinds.
        fn dst(s: &mut [Self]) -> super::Dst<'_>;
    }
}

impl sealed::Sealed for f32 {
    #[inline(always)]
    fn src(s: &[f32]) -> Src<'_> {
        Src::F32(s)
    }
    #[inline(always)]
    fn dst(s: &mut [f32]) -> Dst<'_> {
        Dst::F32(s)
    }
}

impl sealed::Sealed for bf16 {
    #[inline(always)]
    fn src(s: &[bf16]) -> Src<'_> {
        Src::Bf16(s.reinterpret_cast())
    }
    #[inline(always)]
    fn dst(s: &mut [bf16]) -> Dst<'_> {
        Dst::Bf16(s.reinterpret_cast_mut())
    }
}

impl sealed::Sealed for f16 {
    #[inline(always)]
    fn src(s: &[f16]) -> Src<'_> {
        Src::F16(s.reinterpret_cast())
    }
    #[inline(always)]
    fn dst(s: &mut [f16]) -> Dst<'_> {
        Dst::F16(s.reinterpret_cast_mut())
    }
}

/// The `f32` value of `bf16` bits (exact: the bits are the top half of the `f32`'s).
#[inline(always)]
pub(crate) fn bf16_bits_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// `bf16` bits of `v` rounded to nearest, ties to even; a NaN stays a (quiet) NaN.
#[inline(always)]
pub(crate) fn f32_to_bf16_bits(v: f32) -> u16 {
    bf16::from_f32(v).to_bits()
}

/// The `f32` value of `f16` bits (exact).
#[inline(always)]
pub(crate) fn f16_bits_to_f32(b: u16) -> f32 {
    f16::from_bits(b).to_f32()
}

/// `f16` bits of `v` rounded to nearest, ties to even (overflow to `inf`).
#[inline(always)]
pub(crate) fn f32_to_f16_bits(v: f32) -> u16 {
    f16::from_f32(v).to_bits()
}

/// `src` (`bf16` bits) widened into `N` `f32`, padded with `fill`.
#[inline(always)]
pub(crate) fn padded_bf16<const N: usize>(src: &[u16], fill: f32) -> [f32; N] {
    let mut a = [fill; N];
    for (d, &b) in a.iter_mut().zip(src) {
        *d = bf16_bits_to_f32(b);
    }
    a
}

/// `src` (bytes) widened into `N` `f32`, padded with 0.
#[inline(always)]
pub(crate) fn padded_u8<const N: usize>(src: &[u8]) -> [f32; N] {
    let mut a = [0.0; N];
    for (d, &b) in a.iter_mut().zip(src) {
        *d = b as f32;
    }
    a
}

/// `src` (`f16` bits) widened into `N` `f32`, padded with `fill`.
#[inline(always)]
pub(crate) fn padded_f16<const N: usize>(src: &[u16], fill: f32) -> [f32; N] {
    let mut a = [fill; N];
    for (d, &b) in a.iter_mut().zip(src) {
        *d = f16_bits_to_f32(b);
    }
    a
}

/// A read-only slice of logits, targets or gradients, by element type (half-precision as
/// their bits).
#[derive(Clone, Copy, Debug)]
pub enum Src<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u16]),
    F16(&'a [u16]),
}

impl<'a> Src<'a> {
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        match self {
            Src::F32(s) => s.len(),
            Src::Bf16(s) | Src::F16(s) => s.len(),
        }
    }

    /// The `f32` slice, when the elements are `f32`.
    #[inline(always)]
    pub(crate) fn as_f32(&self) -> Option<&'a [f32]> {
        match self {
            Src::F32(s) => Some(s),
            _ => None,
        }
    }

    /// Element `i` as `f32`.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> f32 {
        match self {
            Src::F32(s) => s[i],
            Src::Bf16(s) => bf16_bits_to_f32(s[i]),
            Src::F16(s) => f16_bits_to_f32(s[i]),
        }
    }

    /// The elements as `f32`, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        let s = *self;
        (0..s.len()).map(move |i| s.get(i))
    }

    /// Whether any element is NaN (whole chunks, so that it vectorizes).
    pub(crate) fn has_nan(&self) -> bool {
        fn any<T: Copy>(s: &[T], nan: impl Fn(T) -> bool) -> bool {
            s.chunks(256)
                .any(|c| c.iter().fold(false, |any, &v| any | nan(v)))
        }
        match self {
            Src::F32(s) => any(s, f32::is_nan),
            Src::Bf16(s) => any(s, |b| b & 0x7fff > 0x7f80),
            Src::F16(s) => any(s, |b| b & 0x7fff > 0x7c00),
        }
    }

    /// The index of the first element outside `[0, 1]` or NaN (whole chunks first, so
    /// that the common case, none, vectorizes).
    pub(crate) fn first_outside_unit(&self) -> Option<usize> {
        fn first<T: Copy>(s: &[T], get: impl Fn(T) -> f32) -> Option<usize> {
            let out = |v: T| !(0.0..=1.0).contains(&get(v));
            let mut base = 0;
            for c in s.chunks(256) {
                if c.iter().fold(false, |any, &v| any | out(v)) {
                    return c.iter().position(|&v| out(v)).map(|i| base + i);
                }
                base += c.len();
            }
            None
        }
        match self {
            Src::F32(s) => first(s, |v| v),
            Src::Bf16(s) => first(s, bf16_bits_to_f32),
            Src::F16(s) => first(s, f16_bits_to_f32),
        }
    }

    /// The elements `r`.
    #[inline(always)]
    pub(crate) fn slice(&self, r: core::ops::Range<usize>) -> Src<'a> {
        match self {
            Src::F32(s) => Src::F32(&s[r]),
            Src::Bf16(s) => Src::Bf16(&s[r]),
            Src::F16(s) => Src::F16(&s[r]),
        }
    }

    /// `LANES` elements from `off` on as `f32`, padded with `fill` past the end.
    #[inline(always)]
    pub(crate) fn load<L: Lane>(&self, off: usize, fill: f32) -> L {
        match self {
            Src::F32(s) => L::load_or(&s[off..], fill),
            Src::Bf16(s) => L::load_bf16(&s[off..], fill),
            Src::F16(s) => L::load_f16(&s[off..], fill),
        }
    }

    /// Writes every element into `dst` (of the same length) as `f32`, `LANES` at a time.
    #[inline(always)]
    pub(crate) fn widen<L: Lane>(&self, dst: &mut [f32]) {
        let n = dst.len().min(self.len());
        let mut i = 0;
        while i < n {
            let e = (i + L::LANES).min(n);
            self.slice(i..e).load::<L>(0, 0.0).store(&mut dst[i..e]);
            i = e;
        }
    }
}

/// A slice of gradients or losses to write, by element type.
#[derive(Debug)]
pub enum Dst<'a> {
    F32(&'a mut [f32]),
    Bf16(&'a mut [u16]),
    F16(&'a mut [u16]),
}

impl Dst<'_> {
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        match self {
            Dst::F32(s) => s.len(),
            Dst::Bf16(s) | Dst::F16(s) => s.len(),
        }
    }

    /// The elements `r`, reborrowed.
    #[inline(always)]
    pub(crate) fn slice(&mut self, r: core::ops::Range<usize>) -> Dst<'_> {
        match self {
            Dst::F32(s) => Dst::F32(&mut s[r]),
            Dst::Bf16(s) => Dst::Bf16(&mut s[r]),
            Dst::F16(s) => Dst::F16(&mut s[r]),
        }
    }

    /// The elements before `mid` and from `mid` on, as two slices of the same lifetime.
    #[cfg_attr(not(feature = "rayon"), allow(dead_code))]
    pub(crate) fn split_at(self, mid: usize) -> (Self, Self) {
        match self {
            Dst::F32(s) => {
                let (a, b) = s.split_at_mut(mid);
                (Dst::F32(a), Dst::F32(b))
            }
            Dst::Bf16(s) => {
                let (a, b) = s.split_at_mut(mid);
                (Dst::Bf16(a), Dst::Bf16(b))
            }
            Dst::F16(s) => {
                let (a, b) = s.split_at_mut(mid);
                (Dst::F16(a), Dst::F16(b))
            }
        }
    }

    /// Every element 0.
    #[inline(always)]
    pub(crate) fn fill_zero(&mut self) {
        match self {
            Dst::F32(s) => s.fill(0.0),
            Dst::Bf16(s) | Dst::F16(s) => s.fill(0),
        }
    }

    /// Writes the first `min(len - off, LANES)` lanes of `v` from `off` on, each rounded once.
    #[inline(always)]
    pub(crate) fn store<L: Lane>(&mut self, off: usize, v: L) {
        match self {
            Dst::F32(s) => v.store(&mut s[off..]),
            Dst::Bf16(s) => v.store_bf16(&mut s[off..]),
            Dst::F16(s) => v.store_f16(&mut s[off..]),
        }
    }

    /// The elements, read-only.
    #[inline(always)]
    pub(crate) fn src(&self) -> Src<'_> {
        match self {
            Dst::F32(s) => Src::F32(s),
            Dst::Bf16(s) => Src::Bf16(s),
            Dst::F16(s) => Src::F16(s),
        }
    }

    /// Writes every element into `dst` (of the same length) as `f32`, `LANES` at a time.
    #[inline(always)]
    pub(crate) fn widen<L: Lane>(&self, dst: &mut [f32]) {
        self.src().widen::<L>(dst)
    }

    /// Writes `src` (`f32`, of the same length) into the elements, each rounded once.
    #[inline(always)]
    pub(crate) fn narrow<L: Lane>(&mut self, src: &[f32]) {
        let n = src.len().min(self.len());
        let mut i = 0;
        while i < n {
            let e = (i + L::LANES).min(n);
            self.slice(i..e).store::<L>(0, L::load_or(&src[i..e], 0.0));
            i = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, Kernel, select};
    use crate::sigmoid::pass::Body;

    /// Every backend's conversions against `half`'s, on values built to hit every rounding
    /// case: ties (low bits exactly half an ULP of the target type) to even and odd, just
    /// above and below them, the largest finite values and the overflow boundaries, the
    /// subnormals of both types, zeros, infinities and NaNs.
    struct Convert<'a>(&'a [f32]);

    impl Kernel for Convert<'_> {
        type Output = bool;
        fn run<L: Body>(self) -> bool {
            let mut ok = true;
            for v in self.0.chunks(L::LANES) {
                let x = L::load_or(v, 0.0);
                let (mut b, mut h) = ([0u16; 64], [0u16; 64]);
                x.store_bf16(&mut b[..v.len()]);
                x.store_f16(&mut h[..v.len()]);
                // The CPU's own bf16 conversion, where the backend has one: the same bits.
                if L::bf16_native() {
                    let mut nb = [0u16; 64];
                    x.store_bf16_native(&mut nb[..v.len()]);
                    ok &= nb[..v.len()] == b[..v.len()];
                }
                for (i, &f) in v.iter().enumerate() {
                    let want_b = bf16::from_f32(f).to_bits();
                    let want_h = f16::from_f32(f).to_bits();
                    // A NaN may keep different payload bits; it must stay a NaN.
                    ok &= b[i] == want_b || (f.is_nan() && bf16::from_bits(b[i]).is_nan());
                    ok &= h[i] == want_h || (f.is_nan() && f16::from_bits(h[i]).is_nan());
                }
                let (wb, wh): (L, L) = (
                    L::load_bf16(&b[..v.len()], 0.0),
                    L::load_f16(&h[..v.len()], 0.0),
                );
                let (mut ob, mut oh) = ([0f32; 64], [0f32; 64]);
                wb.store(&mut ob[..v.len()]);
                wh.store(&mut oh[..v.len()]);
                for i in 0..v.len() {
                    ok &= ob[i].to_bits() == bf16::from_bits(b[i]).to_f32().to_bits()
                        || ob[i].is_nan();
                    ok &= oh[i].to_bits() == f16::from_bits(h[i]).to_f32().to_bits()
                        || oh[i].is_nan();
                }
            }
            ok
        }
    }

    #[test]
    fn conversions_match_half_on_every_backend() {
        let mut v = [
            0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
        ]
        .to_vec();
        v.extend([
            f32::MAX,
            -f32::MAX,
            65504.0,
            65519.996,
            65520.0,
            65536.0,
            6.1e-5,
        ]);
        v.extend([5.96e-8, 2.98e-8, 2.99e-8, 1e-40, f32::MIN_POSITIVE, 1e-45]);
        let low = [
            0u32, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x7fff, 0x8000,
        ];
        let low2 = [0x8001u32, 0xffff, 0x10000, 0x18000, 0x17fff];
        for e in 0..=255u32 {
            for m in [0u32, 0x40_0000, 0x7f_0000, 0x12_3456 & !0xffff] {
                for &l in low.iter().chain(&low2) {
                    for s in [0u32, 1 << 31] {
                        v.push(f32::from_bits(s | e << 23 | ((m | l) & 0x7f_ffff)));
                    }
                }
            }
        }
        for b in Backend::available() {
            assert!(select(b.isa().unwrap(), Convert(&v)), "{b:?}");
        }
    }
}
