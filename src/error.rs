//! The one error type of the crate.

use core::fmt;

/// Everything that can be wrong with a call, named precisely enough to fix it.
///
/// Every fallible function of the crate returns `Result<_, Error>`; none panics. Parameters
/// and lengths are validated before anything is written. The data (NaN logits, targets out
/// of range) is checked before anything is written by the calls that accumulate
/// (`grad += ...`), which therefore change nothing when they fail; the calls that *write*
/// their outputs (`grad = ...`, `out = ...`) check it in the same pass, and after such an
/// error the outputs' contents are unspecified (partly written).
///
/// # Example
/// ```
/// use focal_loss::{Error, Focal, Reduction};
/// let (x, t) = ([0.5, -1.0, 2.0, f32::NAN], [1.0, 0.0, 0.0, 1.0]);
/// let err = Focal::new(2.0).classes(2).loss(&x, &t, Reduction::Sum).unwrap_err();
/// assert_eq!(err, Error::NanLogit { index: 3, row: 1, class: 1 });
/// assert_eq!(err.to_string(), "logits[3] (row 1, class 1) is NaN");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A slice has the wrong length: `what` (e.g. `"targets"`, `"grad"`, `"sample_weights"`)
    /// has `found` elements where `expected` were required.
    LengthMismatch {
        /// Which slice.
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        found: usize,
    },
    /// The number of elements `len` is not a multiple of the number of classes.
    NotMultipleOfClasses {
        /// Number of logits.
        len: usize,
        /// Number of classes (columns).
        classes: usize,
    },
    /// Two per-class settings disagree on the number of classes: `what` has `found`
    /// entries where an earlier setting implied `expected` classes.
    ClassCountMismatch {
        /// Which per-class setting.
        what: &'static str,
        /// The number of classes implied by the earlier setting.
        expected: usize,
        /// The number of entries in this one.
        found: usize,
    },
    /// The number of classes is zero (an empty per-class slice, `classes(0)`, or empty counts).
    ZeroClasses,
    /// `logits[index]` is NaN. (Infinite logits are valid and give the limits.)
    ///
    /// `row` and `class` locate `index` in the call's layout (see [`Error::TargetOutOfRange`]).
    NanLogit {
        /// Flat index of the offending logit.
        index: usize,
        /// Its row (with `.spatial(S)`, its position `n S + s` in the `[N, S]` label map).
        row: usize,
        /// Its class (column).
        class: usize,
    },
    /// `targets[index]` (the sigmoid family's targets, or the softmax family's distributions,
    /// `f32`, `bf16` or `f16`) is outside `[0, 1]` or NaN.
    ///
    /// `row` and `class` locate `index` in the call's layout: `index = row * C + class` for
    /// `[rows, C]`; for the softmax family's `[N, C, S]` layout, `index = (n C + class) S + s`
    /// and `row = n S + s` (the index of its label map). A sigmoid call whose number of classes
    /// is set by nothing (no `.classes`, no per-class slice) is one row: `row = 0`,
    /// `class = index`. A `positives` call that knows no class count locates the index as
    /// if the labels were one row (one image of `S` positions with `.spatial(S)`: `row =
    /// index % S`, `class = index / S`), which is exact only for a batch of one.
    TargetOutOfRange {
        /// Flat index of the offending target.
        index: usize,
        /// Its row (with `.spatial(S)`, its position `n S + s`).
        row: usize,
        /// Its class (column).
        class: usize,
        /// The value found.
        value: f32,
    },
    /// A parameter is outside its domain: `name` (with `index` for per-class and per-row
    /// slices) has `value`, which is not `expected`.
    InvalidParameter {
        /// Parameter name, as spelled in the builder (e.g. `"gamma"`, `"class_weights"`).
        name: &'static str,
        /// Position in a per-class or per-row slice, `None` for a scalar parameter.
        index: Option<usize>,
        /// The rejected value, widened to `f64` (exactly, except an integer above 2^53, such
        /// as a `spatial` whose product with the class count overflows, which is rounded).
        value: f64,
        /// The domain, in words (e.g. `"finite and >= 0"`).
        expected: &'static str,
    },
    /// The requested [`Backend`](crate::Backend) needs an instruction set this CPU lacks.
    BackendUnavailable {
        /// The backend's name (e.g. `"avx512"`).
        backend: &'static str,
    },
    /// `labels[row]` is a class index outside `[0, classes)` that is not the `ignore_index`
    /// ([`SoftmaxFocal`](crate::SoftmaxFocal) with integer labels; `row` is a position of
    /// the `[N, S]` label map with `.spatial(S)`).
    LabelOutOfRange {
        /// Index of the row (the label's index in `labels`).
        row: usize,
        /// The label found (widened to `i64`; a `u64`-sized value beyond it cannot occur).
        label: i64,
        /// The number of classes.
        classes: usize,
    },
    /// The number of classes cannot be inferred: [`SoftmaxFocal`](crate::SoftmaxFocal) with
    /// label distributions needs `.classes(c)` or `.class_weights(w)`.
    UnknownClasses,
    /// `counts[index]` is zero: the class-balanced weight `(1-beta)/(1-beta^0)` is `0/0`.
    ZeroCount {
        /// Index of the empty class.
        index: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::LengthMismatch {
                what,
                expected,
                found,
            } => write!(f, "{what} has length {found}, expected {expected}"),
            Error::NotMultipleOfClasses { len, classes } => write!(
                f,
                "{len} elements are not a whole number of rows of {classes} classes"
            ),
            Error::ClassCountMismatch {
                what,
                expected,
                found,
            } => write!(
                f,
                "{what} has {found} entries, but the number of classes is {expected}"
            ),
            Error::ZeroClasses => write!(f, "the number of classes is zero"),
            Error::NanLogit { index, row, class } => {
                write!(f, "logits[{index}] (row {row}, class {class}) is NaN")
            }
            Error::TargetOutOfRange {
                index,
                row,
                class,
                value,
            } => write!(
                f,
                "targets[{index}] (row {row}, class {class}) = {value} is outside [0, 1]"
            ),
            Error::InvalidParameter {
                name,
                index: Some(i),
                value,
                expected,
            } => write!(f, "{name}[{i}] = {value} must be {expected}"),
            Error::InvalidParameter {
                name,
                index: None,
                value,
                expected,
            } => write!(f, "{name} = {value} must be {expected}"),
            Error::BackendUnavailable { backend } => {
                write!(f, "backend {backend} is not available on this CPU")
            }
            Error::LabelOutOfRange {
                row,
                label,
                classes,
            } => write!(
                f,
                "labels[{row}] = {label} is not a class in [0, {classes}) nor the ignore_index"
            ),
            Error::UnknownClasses => write!(
                f,
                "the number of classes is unknown: set .classes(c) or .class_weights(w)"
            ),
            Error::ZeroCount { index } => write!(
                f,
                "counts[{index}] is 0: a class with no examples has no class-balanced weight"
            ),
        }
    }
}

impl core::error::Error for Error {}

impl Error {
    /// [`Error::NanLogit`] at flat `index` of a `[N, classes, spatial]` layout (`spatial` 1
    /// for `[rows, classes]`).
    pub(crate) fn nan_logit(index: usize, classes: usize, spatial: usize) -> Error {
        let (row, class) = locate(index, classes, spatial);
        Error::NanLogit { index, row, class }
    }

    /// [`Error::TargetOutOfRange`] at flat `index` of a `[N, classes, spatial]` layout.
    pub(crate) fn target_out_of_range(
        index: usize,
        value: f32,
        classes: usize,
        spatial: usize,
    ) -> Error {
        let (row, class) = locate(index, classes, spatial);
        Error::TargetOutOfRange {
            index,
            row,
            class,
            value,
        }
    }
}

/// `(n spatial + s, class)` for `index = (n classes + class) spatial + s`; both factors at
/// least 1 (a zero is treated as 1: the callers have rejected zero classes before).
fn locate(index: usize, classes: usize, spatial: usize) -> (usize, usize) {
    let (c, s) = (classes.max(1), spatial.max(1));
    let cs = c.saturating_mul(s);
    let (n, rest) = (index / cs, index % cs);
    (n * s + rest % s, rest / s)
}

#[cfg(test)]
mod tests {
    use super::locate;

    #[test]
    fn locate_inverts_both_layouts() {
        // [rows, C]
        assert_eq!(locate(0, 5, 1), (0, 0));
        assert_eq!(locate(13, 5, 1), (2, 3));
        // [N, C, S] with C = 3, S = 4: index (n C + c) S + s.
        for n in 0..2 {
            for c in 0..3 {
                for s in 0..4 {
                    assert_eq!(locate((n * 3 + c) * 4 + s, 3, 4), (n * 4 + s, c));
                }
            }
        }
    }
}
