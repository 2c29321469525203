//! The element types a label slice of [`SoftmaxFocal`](crate::SoftmaxFocal) may have.

/// An element type of a softmax label slice: a class index per row (`u8`, `u16`, `u32`,
/// `i32`, `i64`: the types runtimes store labels in; PyTorch's are `i64`) or a distribution
/// per row (`f32`, [`half::bf16`] or [`half::f16`], laid out like the logits, each value in
/// `[0, 1]`).
///
/// Index labels give bit for bit the results of the same labels written as one-hot `f32`
/// rows; `bf16` and `f16` distributions give bit for bit those of their exact `f32` values
/// (widened in registers, inside the pass). An index outside `[0, classes)` that is not the
/// [`ignore_index`](crate::SoftmaxFocal::ignore_index) is a
/// [`LabelOutOfRange`](crate::Error::LabelOutOfRange) error; a distribution's value outside
/// `[0, 1]` (or NaN) a [`TargetOutOfRange`](crate::Error::TargetOutOfRange) error. The trait
/// is sealed.
///
/// # Example
/// ```
/// use focal_loss::{Reduction, SoftmaxFocal};
/// let x = [2.0f32, -1.0, 0.5, 0.0, 1.0, 3.0];
/// let f = SoftmaxFocal::new(2.0).classes(3);
/// let a = f.loss(&x, &[0u8, 2], Reduction::Sum)?;
/// let b = f.loss(&x, &[0i64, 2], Reduction::Sum)?;
/// let c = f.loss(&x, &[1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0], Reduction::Sum)?;
/// let soft = [0.75f32, 0.25, 0.0, 0.0, 0.5, 0.5];
/// let d = f.loss(&x, &soft, Reduction::Sum)?;
/// let soft_bf16 = soft.map(half::bf16::from_f32); // 0.75, 0.25, 0.5 are exact in bf16
/// assert_eq!(f.loss(&x, &soft_bf16, Reduction::Sum)?, d);
/// assert!(a == b && b == c);
/// # Ok::<(), focal_loss::Error>(())
/// ```
pub trait Label: Copy + Sync + sealed::Sealed {}

pub(crate) mod sealed {
    /// A label slice as one of the concrete types, so that the crate compiles its passes once
    /// (index labels are read through [`Labels::class`], a block at a time).
    #[derive(Clone, Copy)]
    pub enum Labels<'a> {
        U8(&'a [u8]),
        U16(&'a [u16]),
        U32(&'a [u32]),
        I32(&'a [i32]),
        I64(&'a [i64]),
        /// Distributions, in any of the three float types.
        Dense(crate::float::Src<'a>),
    }

    impl Labels<'_> {
        /// The number of labels.
        pub fn len(&self) -> usize {
            match self {
                Labels::U8(s) => s.len(),
                Labels::U16(s) => s.len(),
                Labels::U32(s) => s.len(),
                Labels::I32(s) => s.len(),
                Labels::I64(s) => s.len(),
                Labels::Dense(s) => s.len(),
            }
        }

        /// The labels `r` (class indices by row, distributions by element).
        pub fn slice(&self, r: core::ops::Range<usize>) -> Self {
            match self {
                Labels::U8(s) => Labels::U8(&s[r]),
                Labels::U16(s) => Labels::U16(&s[r]),
                Labels::U32(s) => Labels::U32(&s[r]),
                Labels::I32(s) => Labels::I32(&s[r]),
                Labels::I64(s) => Labels::I64(&s[r]),
                Labels::Dense(s) => Labels::Dense(s.slice(r)),
            }
        }

        /// The class indices `r0..r0 + out.len()` into `out`; `false` (and nothing written)
        /// for distributions.
        #[cfg_attr(not(opt_level_0), inline(always))]
        pub fn classes(&self, r0: usize, out: &mut [i64]) -> bool {
            fn copy<T: Copy + Into<i64>>(src: &[T], out: &mut [i64]) {
                for (o, &v) in out.iter_mut().zip(src) {
                    *o = v.into();
                }
            }
            let n = out.len();
            match self {
                Labels::U8(s) => copy(&s[r0..r0 + n], out),
                Labels::U16(s) => copy(&s[r0..r0 + n], out),
                Labels::U32(s) => copy(&s[r0..r0 + n], out),
                Labels::I32(s) => copy(&s[r0..r0 + n], out),
                Labels::I64(s) => copy(&s[r0..r0 + n], out),
                Labels::Dense(_) => return false,
            }
            true
        }

        /// The class indices `r0..r0 + out.len()` as `f32` into `out`, `-1` where a label is
        /// `ignore`; `false` (and nothing written) for distributions. (Labels are validated
        /// before a pass: every other index is in `[0, C)`.)
        #[cfg_attr(not(opt_level_0), inline(always))]
        pub fn classes_f32(&self, r0: usize, out: &mut [f32], ignore: Option<i64>) -> bool {
            #[cfg_attr(not(opt_level_0), inline(always))]
            fn copy<T: Copy + Into<i64>>(src: &[T], out: &mut [f32], ignore: Option<i64>) {
                // Every index but `ignore` is below C <= 2^24: exact as `i32`, whose conversion
                // to `f32` vectorizes (an `i64` one has no vector instruction before AVX-512).
                match ignore {
                    None => {
                        for (o, &v) in out.iter_mut().zip(src) {
                            *o = v.into() as i32 as f32;
                        }
                    }
                    Some(ig) => {
                        for (o, &v) in out.iter_mut().zip(src) {
                            let v: i64 = v.into();
                            *o = if v == ig { -1.0 } else { v as i32 as f32 };
                        }
                    }
                }
            }
            let n = out.len();
            match self {
                Labels::U8(s) => copy(&s[r0..r0 + n], out, ignore),
                Labels::U16(s) => copy(&s[r0..r0 + n], out, ignore),
                Labels::U32(s) => copy(&s[r0..r0 + n], out, ignore),
                Labels::I32(s) => copy(&s[r0..r0 + n], out, ignore),
                Labels::I64(s) => copy(&s[r0..r0 + n], out, ignore),
                Labels::Dense(_) => return false,
            }
            true
        }

        /// The class index `i` (for index labels; `i64::MIN` for distributions, never asked).
        #[cfg_attr(not(opt_level_0), inline(always))]
        pub fn class(&self, i: usize) -> i64 {
            match self {
                Labels::U8(s) => s[i] as i64,
                Labels::U16(s) => s[i] as i64,
                Labels::U32(s) => s[i] as i64,
                Labels::I32(s) => s[i] as i64,
                Labels::I64(s) => s[i],
                Labels::Dense(_) => i64::MIN,
            }
        }
    }

    /// How the crate reads a label slice (not part of the public interface).
    pub trait Sealed: Copy {
        fn labels(src: &[Self]) -> Labels<'_>;
    }
    macro_rules! index {
        ($($t:ident => $v:ident),*) => {$(
            impl Sealed for $t {
                #[cfg_attr(not(opt_level_0), inline(always))]
                fn labels(src: &[$t]) -> Labels<'_> {
                    Labels::$v(src)
                }
            }
            impl super::Label for $t {}
        )*};
    }
    index!(u8 => U8, u16 => U16, u32 => U32, i32 => I32, i64 => I64);
    macro_rules! dense {
        ($($t:ty),*) => {$(
            impl Sealed for $t {
                #[cfg_attr(not(opt_level_0), inline(always))]
                fn labels(src: &[$t]) -> Labels<'_> {
                    Labels::Dense(<$t as crate::float::sealed::Sealed>::src(src))
                }
            }
            impl super::Label for $t {}
        )*};
    }
    dense!(f32, half::bf16, half::f16);
}
