//! The element types a target slice may have.

/// An element type of a target slice: `f32`, [`half::bf16`] or [`half::f16`] (any target
/// in `[0, 1]`, hard or soft), or `u8` (hard targets 0 and 1 in a quarter of the bytes, for
/// multi-label batches whose labels are stored as bytes: 9 bytes per element of loss and
/// gradient instead of 12).
///
/// Every entry point of [`Focal`](crate::Focal) takes `&[T]` for any of them, and gives
/// bit-for-bit the same results for the same values (a half-precision target is widened to
/// `f32` exactly). A `u8` above 1 is a
/// [`TargetOutOfRange`](crate::Error::TargetOutOfRange) error. The trait is sealed.
///
/// # Example
/// ```
/// use focal_loss::{Focal, Reduction};
/// let x = [0.3f32, -2.0, 1.5];
/// let f = Focal::new(2.0).alpha(0.25);
/// let a = f.loss(&x, &[1.0f32, 0.0, 1.0], Reduction::Sum)?;
/// let b = f.loss(&x, &[1u8, 0, 1], Reduction::Sum)?;
/// assert_eq!(a, b);
/// # Ok::<(), focal_loss::Error>(())
/// ```
pub trait Target: Copy + Sync + sealed::Sealed {
    /// The target as an `f32`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::Target;
    /// assert_eq!(1u8.value(), 1.0f32.value());
    /// ```
    fn value(self) -> f32;
}

pub(crate) mod sealed {
    /// A target slice of any of the types (half-precision as bits), so that the crate
    /// compiles its passes once, here, instead of in every crate that calls a generic entry
    /// point.
    #[derive(Clone, Copy)]
    pub enum Slice<'a> {
        F32(&'a [f32]),
        U8(&'a [u8]),
        Bf16(&'a [u16]),
        F16(&'a [u16]),
    }

    /// How the pass reads a target slice (not part of the public interface).
    pub trait Sealed: Copy {
        /// The slice as one of the concrete types.
        fn slice(src: &[Self]) -> Slice<'_>;
    }

    impl Slice<'_> {
        /// The targets `r` into `dst` (of the same length) as `f32`, `LANES` at a time.
        #[cfg_attr(not(opt_level_0), inline(always))]
        pub(crate) fn widen<L: crate::backend::lane::Lane>(
            &self,
            r: core::ops::Range<usize>,
            dst: &mut [f32],
        ) {
            match self {
                Slice::F32(t) => dst.copy_from_slice(&t[r]),
                Slice::U8(t) => {
                    for (d, &v) in dst.iter_mut().zip(&t[r]) {
                        *d = v as f32;
                    }
                }
                Slice::Bf16(t) => crate::float::Src::Bf16(&t[r]).widen::<L>(dst),
                Slice::F16(t) => crate::float::Src::F16(&t[r]).widen::<L>(dst),
            }
        }

        /// `LANES` targets at `r` (at most `LANES` of them) as `f32`, padded with 0.
        #[cfg_attr(not(opt_level_0), inline(always))]
        pub(crate) fn load<L: crate::backend::lane::Lane>(&self, r: core::ops::Range<usize>) -> L {
            match self {
                Slice::F32(t) => L::load_or(&t[r], 0.0),
                Slice::U8(t) => L::load_u8(&t[r]),
                Slice::Bf16(t) => L::load_bf16(&t[r], 0.0),
                Slice::F16(t) => L::load_f16(&t[r], 0.0),
            }
        }

        /// The number of targets.
        #[cfg_attr(not(opt_level_0), inline(always))]
        pub(crate) fn len(&self) -> usize {
            match self {
                Slice::F32(t) => t.len(),
                Slice::U8(t) => t.len(),
                Slice::Bf16(t) | Slice::F16(t) => t.len(),
            }
        }
    }
    impl Sealed for f32 {
        #[cfg_attr(not(opt_level_0), inline(always))]
        fn slice(src: &[f32]) -> Slice<'_> {
            Slice::F32(src)
        }
    }
    impl Sealed for u8 {
        #[cfg_attr(not(opt_level_0), inline(always))]
        fn slice(src: &[u8]) -> Slice<'_> {
            Slice::U8(src)
        }
    }
    impl Sealed for half::bf16 {
        #[cfg_attr(not(opt_level_0), inline(always))]
        fn slice(src: &[half::bf16]) -> Slice<'_> {
            use half::slice::HalfFloatSliceExt;
            Slice::Bf16(src.reinterpret_cast())
        }
    }
    impl Sealed for half::f16 {
        #[cfg_attr(not(opt_level_0), inline(always))]
        fn slice(src: &[half::f16]) -> Slice<'_> {
            use half::slice::HalfFloatSliceExt;
            Slice::F16(src.reinterpret_cast())
        }
    }
}

impl Target for f32 {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn value(self) -> f32 {
        self
    }
}

impl Target for u8 {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn value(self) -> f32 {
        self as f32
    }
}

impl Target for half::bf16 {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn value(self) -> f32 {
        self.to_f32()
    }
}

impl Target for half::f16 {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn value(self) -> f32 {
        self.to_f32()
    }
}
