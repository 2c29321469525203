//! Class-balanced weights from class counts (Cui et al., CVPR 2019).

use crate::error::Error;

/// Class-balanced weights `out[c] = C * w_c / sum_j w_j`, `w_c = (1 - beta) / (1 - beta^n_c)`
/// (the inverse "effective number" of `n_c` examples), scaled so that the `C` weights sum to
/// `C`. `beta = 0` gives all ones; `beta -> 1` tends to inverse-frequency weights `1 / n_c`.
/// Typical `beta`: 0.9, 0.99, 0.999, 0.9999 (VidHOI: 0.9999).
///
/// # Numerics
/// Computed in f64 with `1 - beta^n = -expm1(n ln beta)` (no cancellation for `beta` near 1,
/// where the naive f32 `1 - beta**n` loses 7.6e-5 relative at 0.9999), then rounded once to
/// f32: each weight is within 1 ULP (f32) of the exact value for the given `beta`.
///
/// # Errors
/// [`Error::LengthMismatch`] if `out.len() != counts.len()`; [`Error::ZeroClasses`] for
/// empty `counts`; [`Error::ZeroCount`] for a class with no examples (`0/0`);
/// [`Error::InvalidParameter`] (`"beta"`) unless `0 <= beta < 1`. `out` is written only on
/// success.
///
/// # Example
/// ```
/// use focal_loss::class_balanced_weights;
/// let counts = [100_000u64, 5_000, 40, 2];
/// let mut w = [0f32; 4];
/// class_balanced_weights(&counts, 0.9999, &mut w)?;
/// assert!((w.iter().sum::<f32>() - 4.0).abs() < 1e-5);
/// assert!(w[3] > w[2] && w[2] > w[1] && w[1] > w[0]);
/// class_balanced_weights(&counts, 0.0, &mut w)?;
/// assert_eq!(w, [1.0; 4]);
/// # Ok::<(), focal_loss::Error>(())
/// ```
pub fn class_balanced_weights(counts: &[u64], beta: f64, out: &mut [f32]) -> Result<(), Error> {
    class_balanced_weights_with(counts, beta, EmptyClass::Error, out)
}

/// What [`class_balanced_weights_with`] does with a class that has no examples (common when
/// the counts come from a training split that misses a rare class).
///
/// # Example
/// ```
/// use focal_loss::{class_balanced_weights_with, EmptyClass, Error};
/// let counts = [900u64, 30, 0];
/// let mut w = [0f32; 3];
/// let err = class_balanced_weights_with(&counts, 0.999, EmptyClass::Error, &mut w);
/// assert_eq!(err, Err(Error::ZeroCount { index: 2 }));
/// class_balanced_weights_with(&counts, 0.999, EmptyClass::AsOne, &mut w)?;
/// assert!(w[2] > w[1]); // the rarest class
/// class_balanced_weights_with(&counts, 0.999, EmptyClass::Zero, &mut w)?;
/// assert_eq!(w[2], 0.0);
/// assert!((w[0] + w[1] - 2.0).abs() < 1e-6); // the others sum to their number
/// # Ok::<(), focal_loss::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EmptyClass {
    /// [`Error::ZeroCount`]: the weight `(1 - beta) / (1 - beta^0)` is `0/0`
    /// ([`class_balanced_weights`]).
    #[default]
    Error,
    /// Count it as one example: the largest weight, as the rarest class.
    AsOne,
    /// Weight 0 (its loss terms vanish); the other classes are normalised to sum to their
    /// number. Every class empty is still [`Error::ZeroCount`].
    Zero,
}

/// [`class_balanced_weights`] with a policy for classes with no examples.
///
/// # Errors
/// As [`class_balanced_weights`]; [`Error::ZeroCount`] only with [`EmptyClass::Error`], or
/// when every count is 0.
///
/// # Example
/// ```
/// use focal_loss::{class_balanced_weights, class_balanced_weights_with, EmptyClass};
/// let (mut a, mut b) = ([0f32; 3], [0f32; 3]);
/// class_balanced_weights(&[500, 7, 1], 0.99, &mut a)?;
/// class_balanced_weights_with(&[500, 7, 0], 0.99, EmptyClass::AsOne, &mut b)?;
/// assert_eq!(a, b);
/// # Ok::<(), focal_loss::Error>(())
/// ```
pub fn class_balanced_weights_with(
    counts: &[u64],
    beta: f64,
    empty: EmptyClass,
    out: &mut [f32],
) -> Result<(), Error> {
    if out.len() != counts.len() {
        return Err(Error::LengthMismatch {
            what: "out",
            expected: counts.len(),
            found: out.len(),
        });
    }
    if counts.is_empty() {
        return Err(Error::ZeroClasses);
    }
    if !(0.0..1.0).contains(&beta) {
        return Err(Error::InvalidParameter {
            name: "beta",
            index: None,
            value: beta,
            expected: "in [0, 1)",
        });
    }
    let first_empty = counts.iter().position(|&n| n == 0);
    match (first_empty, empty) {
        (Some(index), EmptyClass::Error) => return Err(Error::ZeroCount { index }),
        (Some(_), EmptyClass::Zero) if counts.iter().all(|&n| n == 0) => {
            return Err(Error::ZeroCount { index: 0 });
        }
        _ => {}
    }
    // ln(beta) = ln(1 - (1 - beta)) with 1 - beta exact; -inf at beta = 0, so that
    // 1 - beta^n = -expm1(-inf) = 1 and every weight is 1.
    let one_minus_beta = 1.0 - beta;
    let ln_beta = libm::log1p(-one_minus_beta);
    let weight = |n: u64| match (n, empty) {
        (0, EmptyClass::Zero) => 0.0,
        _ => one_minus_beta / -libm::expm1(n.max(1) as f64 * ln_beta),
    };
    let total: f64 = counts.iter().map(|&n| weight(n)).sum();
    let kept = match empty {
        EmptyClass::Zero => counts.iter().filter(|&&n| n > 0).count(),
        _ => counts.len(),
    };
    let scale = kept as f64 / total;
    for (o, &n) in out.iter_mut().zip(counts) {
        *o = (weight(n) * scale) as f32;
    }
    Ok(())
}
