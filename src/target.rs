//! The element types a target slice may have.

/// An element type of a target slice: `f32` (any target in `[0, 1]`, hard or soft) or `u8`
/// (hard targets 0 and 1 in a quarter of the bytes, for multi-label batches whose labels are
/// stored as bytes: 9 bytes per element of loss and gradient instead of 12).
///
/// Every entry point of [`Focal`](crate::Focal) takes `&[T]` for either type, and gives
/// bit-for-bit the same results for the same values. A `u8` above 1 is a
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
pub trait Target: Copy + sealed::Sealed {
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
    /// A target slice of either type, so that the crate compiles its passes once, for these
    /// two concrete types, instead of in every crate that calls a generic entry point.
    pub enum Slice<'a> {
        F32(&'a [f32]),
        U8(&'a [u8]),
    }

    /// How the pass reads a target slice (not part of the public interface).
    pub trait Sealed: Copy {
        /// The slice as one of the concrete types.
        fn slice(src: &[Self]) -> Slice<'_>;
        /// The slice itself when the targets are already `f32`.
        fn as_f32(src: &[Self]) -> Option<&[f32]>;
        /// Writes `src` (at most `dst.len()` targets) into `dst` as `f32`.
        fn widen(src: &[Self], dst: &mut [f32]);
    }
    impl Sealed for f32 {
        #[inline(always)]
        fn slice(src: &[f32]) -> Slice<'_> {
            Slice::F32(src)
        }
        #[inline(always)]
        fn as_f32(src: &[f32]) -> Option<&[f32]> {
            Some(src)
        }
        #[inline(always)]
        fn widen(src: &[f32], dst: &mut [f32]) {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = s;
            }
        }
    }
    impl Sealed for u8 {
        #[inline(always)]
        fn slice(src: &[u8]) -> Slice<'_> {
            Slice::U8(src)
        }
        #[inline(always)]
        fn as_f32(_: &[u8]) -> Option<&[f32]> {
            None
        }
        #[inline(always)]
        fn widen(src: &[u8], dst: &mut [f32]) {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = s as f32;
            }
        }
    }
}

impl Target for f32 {
    #[inline(always)]
    fn value(self) -> f32 {
        self
    }
}

impl Target for u8 {
    #[inline(always)]
    fn value(self) -> f32 {
        self as f32
    }
}
