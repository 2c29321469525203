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
    if let Some(index) = counts.iter().position(|&n| n == 0) {
        return Err(Error::ZeroCount { index });
    }
    // ln(beta) = ln(1 - (1 - beta)) with 1 - beta exact; -inf at beta = 0, so that
    // 1 - beta^n = -expm1(-inf) = 1 and every weight is 1.
    let one_minus_beta = 1.0 - beta;
    let ln_beta = libm::log1p(-one_minus_beta);
    let weight = |n: u64| one_minus_beta / -libm::expm1(n as f64 * ln_beta);
    let total: f64 = counts.iter().map(|&n| weight(n)).sum();
    let scale = counts.len() as f64 / total;
    for (o, &n) in out.iter_mut().zip(counts) {
        *o = (weight(n) * scale) as f32;
    }
    Ok(())
}
