//! Reductions and the partial sums that combine chunks of a batch exactly.

use crate::error::Error;
use crate::sum::Dd;

/// How the per-element losses `l_i` (already multiplied by their class and sample weights) are
/// reduced to the one number a loss call returns. The gradient written is the gradient of that
/// number: every element's derivative is multiplied by the same factor (rounded once to f32).
///
/// | variant | value | gradient factor | peer |
/// |---|---|---|---|
/// | `Sum` | `sum l_i` | 1 | torchvision `reduction="sum"` |
/// | `Mean` | `sum l_i / N` (`N` = rows x classes; 0 when `N = 0`) | `1/N` | torchvision `"mean"` |
/// | `PerPositive` | `sum l_i / max(sum t_i, 1)` (raw targets, before smoothing) | `1/max(sum t_i, 1)` | original TF code |
/// | `WeightedMean` | `sum l_i / W`, `W` the sum of the element weights (0 when `W = 0`) | `1/W` | torch `cross_entropy(weight=w)` `"mean"` |
/// | `Scale(s)` | `s * sum l_i` | `s` | an external normaliser, e.g. `1 / global positives` |
///
/// The element weights of `WeightedMean` are the weights a loss multiplies in besides its
/// focal factors: for [`Focal`](crate::Focal), `W = sum over elements of w_c s_r` (class
/// weight times sample weight, each 1 when unset: `W = N` without weights, and `WeightedMean`
/// is `Mean`); for [`SoftmaxFocal`](crate::SoftmaxFocal), `W = sum over rows not ignored of
/// s_r w_{y_r}` (for label distributions, `s_r sum_c y_c w_c` with the raw labels), which is
/// PyTorch's normaliser. Alpha, `pos_weight` and label smoothing are not part of `W`.
///
/// `Scale(s)` requires a finite `s`; otherwise the call returns
/// [`Error::InvalidParameter`] with name `"Reduction::Scale"`.
///
/// # Example
/// ```
/// use focal_loss::{Focal, Reduction};
/// let (x, t) = ([2.0f32, -1.0, 0.5, 3.0], [1.0f32, 0.0, 1.0, 0.0]);
/// let f = Focal::new(2.0);
/// let sum = f.loss(&x, &t, Reduction::Sum)?;
/// assert!((f.loss(&x, &t, Reduction::Mean)? - sum / 4.0).abs() <= 1e-7 * sum);
/// assert!((f.loss(&x, &t, Reduction::PerPositive)? - sum / 2.0).abs() <= 1e-7 * sum);
/// assert_eq!(f.loss(&x, &t, Reduction::Scale(0.5))?, sum * 0.5);
/// # Ok::<(), focal_loss::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Reduction {
    /// `sum l_i`.
    Sum,
    /// `sum l_i / N`.
    #[default]
    Mean,
    /// `sum l_i / max(sum t_i, 1)`.
    PerPositive,
    /// `sum l_i / W` (the sum of the element weights; 0 when `W = 0`).
    WeightedMean,
    /// `s * sum l_i`.
    Scale(f32),
}

impl Reduction {
    /// `Scale(1 / max(positives, 1))`: the factor of `PerPositive` for a batch split into
    /// chunks, from the positives of the whole batch (summed over the chunks' [`Partial`]s,
    /// or with [`Focal::positives`](crate::Focal::positives) /
    /// [`SoftmaxFocal::positives`](crate::SoftmaxFocal::positives) per chunk), rounded once
    /// to f32 as a whole call rounds its own factor.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Grad, Reduction};
    /// let (x, t) = ([0.5f32, -1.0, 2.0, 0.3], [1.0f32, 0.0, 1.0, 1.0]);
    /// let f = Focal::new(2.0).classes(2);
    /// // Each worker counts its chunk; the sum is all-reduced; each scales by the total.
    /// let total = f.positives(&t[..2])? + f.positives(&t[2..])?;
    /// let scale = Reduction::per_positive(total);
    /// let mut whole = [0f32; 4];
    /// f.loss_and_grad(&x, &t, &mut whole, Reduction::PerPositive)?;
    /// let mut g = [0f32; 4];
    /// let Reduction::Scale(s) = scale else { unreachable!() };
    /// f.partial(&x[..2], &t[..2], Grad::Write(&mut g[..2], s))?;
    /// f.partial(&x[2..], &t[2..], Grad::Write(&mut g[2..], s))?;
    /// assert_eq!(g, whole);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn per_positive(positives: f64) -> Reduction {
        Reduction::Scale((1.0 / positives.max(1.0)) as f32)
    }

    /// The factor applied to the weighted loss sum, in f64, for `elements` elements whose raw
    /// targets sum to `positives` and element weights to `weight`.
    pub(crate) fn factor(self, elements: u64, positives: f64, weight: f64) -> Result<f64, Error> {
        Ok(match self {
            Reduction::Sum => 1.0,
            Reduction::Mean => 1.0 / (elements.max(1) as f64),
            Reduction::PerPositive => 1.0 / positives.max(1.0),
            Reduction::WeightedMean if weight > 0.0 => 1.0 / weight,
            Reduction::WeightedMean => 0.0,
            Reduction::Scale(s) => {
                if !s.is_finite() {
                    return Err(Error::InvalidParameter {
                        name: "Reduction::Scale",
                        index: None,
                        value: s as f64,
                        expected: "finite",
                    });
                }
                s as f64
            }
        })
    }
}

/// What a chunk of a batch contributes to the reduced loss of the whole batch: the weighted
/// loss sum (in double-word precision), the sum of raw targets (f64), and the element count.
///
/// Split a `[rows, classes]` batch at row boundaries, compute each chunk with
/// [`Focal::partial`](crate::Focal::partial) (on any thread or machine), [`merge`](Self::merge)
/// the results in any order and [`reduce`](Self::reduce): the value equals the single call on
/// the whole batch. The loss sums are compensated f64 sums (Ogita-Rump-Oishi `Sum2` over
/// groups of up to four elements added in f64: relative error at most `2^-51 + (n 2^-53)^2`
/// for `n` non-negative terms), so different splits round to the same f32 except when the exact sum
/// lies within about `2^-50` of an f32 rounding boundary.
///
/// # Example
/// ```
/// use focal_loss::{Focal, Grad, Partial, Reduction};
/// let x = [0.3f32, -2.0, 4.0, 1.5, -0.5, 2.5];
/// let t = [1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0];
/// let f = Focal::new(2.0).alpha(0.25).classes(3);
/// let whole = f.loss(&x, &t, Reduction::PerPositive)?;
/// let a = f.partial(&x[..3], &t[..3], Grad::Skip)?;
/// let b = f.partial(&x[3..], &t[3..], Grad::Skip)?;
/// assert_eq!(b.merge(a).reduce(Reduction::PerPositive)?, whole);
/// assert_eq!(a.merge(b).positives(), 3.0);
/// # Ok::<(), focal_loss::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Partial {
    pub(crate) loss: Dd,
    pub(crate) positives: f64,
    pub(crate) elements: u64,
    pub(crate) weight: f64,
}

/// A [`Partial`] taken apart into plain numbers, to cross a process boundary (an all-gather
/// between workers) and be put together again exactly: [`Partial::from_parts`] of
/// [`Partial::to_parts`] is the same partial, bit for bit.
///
/// # Example
/// ```
/// use focal_loss::{Focal, Grad, Partial, PartialParts, Reduction};
/// let f = Focal::new(2.0);
/// let p = f.partial(&[0.5f32, -1.0], &[1.0f32, 0.0], Grad::Skip)?;
/// let parts: PartialParts = p.to_parts();
/// let wire = [parts.loss_hi, parts.loss_lo, parts.positives, parts.elements as f64, parts.weight];
/// let back = Partial::from_parts(PartialParts {
///     loss_hi: wire[0],
///     loss_lo: wire[1],
///     positives: wire[2],
///     elements: wire[3] as u64,
///     weight: wire[4],
/// });
/// assert_eq!(back, p);
/// assert_eq!(back.reduce(Reduction::Mean)?, p.reduce(Reduction::Mean)?);
/// # Ok::<(), focal_loss::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct PartialParts {
    /// The loss sum as a double-word: `loss_hi + loss_lo` (f64 each).
    pub loss_hi: f64,
    /// The low word of the loss sum.
    pub loss_lo: f64,
    /// [`Partial::positives`].
    pub positives: f64,
    /// [`Partial::elements`].
    pub elements: u64,
    /// [`Partial::weight`].
    pub weight: f64,
}

impl From<Partial> for PartialParts {
    fn from(p: Partial) -> PartialParts {
        p.to_parts()
    }
}

impl From<PartialParts> for Partial {
    fn from(p: PartialParts) -> Partial {
        Partial::from_parts(p)
    }
}

impl Partial {
    /// The partial as plain numbers (see [`PartialParts`]).
    ///
    /// # Example
    /// ```
    /// use focal_loss::Partial;
    /// assert_eq!(Partial::EMPTY.to_parts().elements, 0);
    /// ```
    pub fn to_parts(&self) -> PartialParts {
        PartialParts {
            loss_hi: self.loss.hi,
            loss_lo: self.loss.lo,
            positives: self.positives,
            elements: self.elements,
            weight: self.weight,
        }
    }

    /// The partial of [`to_parts`](Self::to_parts), exactly.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Partial, PartialParts};
    /// let p = Partial::from_parts(PartialParts { loss_hi: 3.0, elements: 2, ..Default::default() });
    /// assert_eq!(p.loss_sum(), 3.0);
    /// assert_eq!(Partial::from_parts(p.to_parts()), p);
    /// ```
    pub fn from_parts(parts: PartialParts) -> Partial {
        Partial {
            loss: Dd {
                hi: parts.loss_hi,
                lo: parts.loss_lo,
            },
            positives: parts.positives,
            elements: parts.elements,
            weight: parts.weight,
        }
    }

    /// Nothing: the identity of [`merge`](Self::merge).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Partial, Reduction};
    /// assert_eq!(Partial::EMPTY.reduce(Reduction::Mean)?, 0.0);
    /// assert_eq!(Partial::EMPTY.elements(), 0);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub const EMPTY: Partial = Partial {
        loss: Dd::ZERO,
        positives: 0.0,
        elements: 0,
        weight: 0.0,
    };

    /// The combination of two disjoint chunks: loss sums added in double-word arithmetic
    /// (renormalised, error below `2^-104` relative), targets and counts added (the count
    /// saturates at `u64::MAX`). Commutative bit for bit (`a.merge(b) == b.merge(a)`, each
    /// step symmetric in its operands); associative to within that error.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Grad, Reduction};
    /// let f = Focal::new(2.0);
    /// let a = f.partial(&[0.5f32, -1.0], &[1.0f32, 0.0], Grad::Skip)?;
    /// let b = f.partial(&[2.0f32], &[1.0f32], Grad::Skip)?;
    /// let ab = a.merge(b);
    /// assert_eq!(ab, b.merge(a));
    /// assert_eq!((ab.elements(), ab.positives()), (3, 2.0));
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    #[must_use]
    pub fn merge(self, other: Partial) -> Partial {
        Partial {
            loss: self.loss.add(other.loss),
            positives: self.positives + other.positives,
            // Saturates: 2^64 elements are not a batch, but merging a partial with itself
            // 64 times must neither panic nor wrap to 0.
            elements: self.elements.saturating_add(other.elements),
            weight: self.weight + other.weight,
        }
    }

    /// The weighted loss sum `sum l_i` (unreduced), rounded to f64 from its double-word value.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Grad};
    /// let p = Focal::new(0.0).partial(&[0.0f32, 0.0], &[1.0f32, 0.0], Grad::Skip)?;
    /// assert!((p.loss_sum() - 2.0 * core::f64::consts::LN_2).abs() < 1e-7);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn loss_sum(&self) -> f64 {
        self.loss.value()
    }

    /// The sum of the raw targets (before label smoothing): the number of positives for hard
    /// targets, exact up to 2^53; soft targets are summed in f64.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Grad};
    /// let p = Focal::new(2.0).label_smoothing(0.1).partial(&[0.0f32; 3], &[1u8, 1, 0], Grad::Skip)?;
    /// assert_eq!(p.positives(), 2.0);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn positives(&self) -> f64 {
        self.positives
    }

    /// The number of elements the mean divides by: rows x classes for [`Focal`](crate::Focal),
    /// the rows not ignored for [`SoftmaxFocal`](crate::SoftmaxFocal).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Grad};
    /// let p = Focal::new(2.0).classes(2).partial(&[0.0f32; 6], &[0.0f32; 6], Grad::Skip)?;
    /// assert_eq!(p.elements(), 6);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn elements(&self) -> u64 {
        self.elements
    }

    /// The sum of the element weights, the divisor of [`Reduction::WeightedMean`] (in f64).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Grad, Reduction};
    /// let f = Focal::new(2.0).class_weights(&[1.0, 3.0]).sample_weights(&[0.5]);
    /// let p = f.partial(&[0.0f32; 2], &[1.0f32, 0.0], Grad::Skip)?;
    /// assert_eq!(p.weight(), 2.0);
    /// assert_eq!(p.reduce(Reduction::WeightedMean)?, (p.loss_sum() / 2.0) as f32);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// The reduced loss of everything merged so far: the double-word sum divided (or
    /// multiplied) in f64 as [`Reduction`] says, rounded once to f32.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `Reduction::Scale` of a non-finite factor.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Grad, Reduction};
    /// let (x, t) = ([1.0f32, -1.0, 0.5, 2.0], [1.0f32, 0.0, 0.0, 1.0]);
    /// let p = Focal::new(2.0).partial(&x, &t, Grad::Skip)?;
    /// assert_eq!(p.reduce(Reduction::Mean)?, (p.loss_sum() / 4.0) as f32);
    /// assert_eq!(p.reduce(Reduction::PerPositive)?, (p.loss_sum() / 2.0) as f32);
    /// assert!(p.reduce(Reduction::Scale(f32::NAN)).is_err());
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn reduce(&self, reduction: Reduction) -> Result<f32, Error> {
        let s = self.loss.hi + self.loss.lo;
        let v = match reduction {
            Reduction::Sum => s,
            Reduction::Mean => s / (self.elements.max(1) as f64),
            Reduction::PerPositive => s / self.positives().max(1.0),
            Reduction::WeightedMean if self.weight > 0.0 => s / self.weight,
            Reduction::WeightedMean => 0.0,
            // A zero factor gives 0 even for an infinite sum (a loss of +inf at x = +-inf).
            Reduction::Scale(0.0) => 0.0,
            Reduction::Scale(_) => s * reduction.factor(self.elements, 0.0, 0.0)?,
        };
        Ok(v as f32)
    }
}
