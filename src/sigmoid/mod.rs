//! The sigmoid focal loss family: its public API ([`Focal`], [`Modulator`], [`Grad`]) and
//! validation here, one element's loss and gradient in [`kernel`], and the loop that feeds
//! it in [`pass`] (run on the chosen backend by [`crate::backend::select`]).

pub(crate) mod kernel;
pub(crate) mod pass;

use crate::backend::Backend;
use crate::chunk::{Exec, Grid, Serial};
use crate::error::Error;
use crate::float::{Float, Src};
use crate::reduce::{Partial, Reduction};
use crate::target::Target;
use pass::{Alpha, Job, Out, Sums};

/// Which focal modulator `m` multiplies the cross-entropy. All three are equal when every
/// target is 0 or 1 (with [`Separable`](Modulator::Separable) taking alpha as `alpha` and
/// `1 - alpha` on its two terms); they differ for soft targets. With `p = sigmoid(x)`,
/// `q = 1 - p` and target `t`:
///
/// - `Linear` (default; torchvision, Keras, optax, TF-Addons): `m = (1 - p_t)^gamma`,
///   `1 - p_t = t q + (1 - t) p`. Tends to `(1 - t)^gamma` or `t^gamma` as `x -> +-inf`.
/// - `Geometric` (the original TensorFlow code of Cui et al., the VidHOI PyTorch class):
///   `m = q^(gamma t) p^(gamma (1 - t)) = exp(-gamma t x - gamma ln(1 + e^-x))`.
///   With soft targets the loss tends to 0 as `x -> +-inf` and its gradient changes sign
///   (at `t = 0.1`, `gamma = 2`: 0.002 at `x = 50`, where `Linear` gives 36). This is the
///   peer's formula, reproduced, not corrected.
/// - `Separable` (kornia, mmcv): each term gets its own hard modulator,
///   `L = alpha t q^gamma sp(-x) + (1 - alpha)(1 - t) p^gamma sp(x)`.
///
/// # Example
/// ```
/// use focal_loss::{Focal, Modulator, Reduction};
/// let (x, hard, soft) = ([1.5f32, -0.7], [1.0f32, 0.0], [0.9f32, 0.2]);
/// let lin = Focal::new(2.0).alpha(0.25);
/// let geo = lin.modulator(Modulator::Geometric);
/// let a = lin.loss(&x, &hard, Reduction::Sum)?;
/// let b = geo.loss(&x, &hard, Reduction::Sum)?;
/// assert!((a - b).abs() <= 4.0 * f32::EPSILON * a);
/// assert!(lin.loss(&x, &soft, Reduction::Sum)? != geo.loss(&x, &soft, Reduction::Sum)?);
/// # Ok::<(), focal_loss::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Modulator {
    /// `(1 - p_t)^gamma`.
    #[default]
    Linear,
    /// `q^(gamma t) p^(gamma (1 - t))`.
    Geometric,
    /// `q^gamma` on the positive term, `p^gamma` on the negative term.
    Separable,
}

impl Modulator {
    /// The core's tag for this convention.
    fn code(self) -> u8 {
        match self {
            Modulator::Linear => kernel::LINEAR,
            Modulator::Geometric => kernel::GEOMETRIC,
            Modulator::Separable => kernel::SEPARABLE,
        }
    }
}

/// Where a gradient goes, for [`Focal::partial`].
///
/// `Write(grad, s)` sets `grad[i] = s * d(sum l)/dx_i`; `Accumulate(grad, s)` adds it
/// (`grad[i] += ...`, for runtimes that sum gradients); `Skip` computes the loss only. `s` is
/// the factor of the reduction the caller applies to the merged partials (e.g.
/// `1 / global_positives`); it must be finite. `G` is the gradient's element type: that of
/// the logits in [`Focal::partial`] and [`SoftmaxFocal::partial`](crate::SoftmaxFocal::partial)
/// (as an autograd runtime's gradient; [`Focal::loss_and_grad`] writes any [`Float`] for any
/// logits).
///
/// # Example
/// ```
/// use focal_loss::{Focal, Grad};
/// let (x, t) = ([0.5f32, -1.0], [1.0f32, 0.0]);
/// let mut g = [1.0f32; 2];
/// Focal::new(0.0).partial(&x, &t, Grad::Accumulate(&mut g, 1.0))?;
/// // BCE: d/dx = sigmoid(x) - t
/// assert!((g[0] - (1.0 + (1.0 / (1.0 + 0.5f32.exp()) * -1.0))).abs() < 1e-6);
/// # Ok::<(), focal_loss::Error>(())
/// ```
#[derive(Debug)]
pub enum Grad<'g, G: Float = f32> {
    /// No gradient.
    Skip,
    /// `grad = s * dL/dx`.
    Write(&'g mut [G], f32),
    /// `grad += s * dL/dx`.
    Accumulate(&'g mut [G], f32),
}

impl<'g, G: Float> Grad<'g, G> {
    /// The output and factor of a partial call; a non-finite factor is an error naming the
    /// variant that carried it.
    pub(crate) fn into_out(self) -> Result<(Out<'g>, f32), Error> {
        let (out, s, name) = match self {
            Grad::Skip => return Ok((Out::None, 1.0)),
            Grad::Write(g, s) => (Out::Write(G::dst(g), s), s, "Grad::Write"),
            Grad::Accumulate(g, s) => (Out::Add(G::dst(g), s), s, "Grad::Accumulate"),
        };
        if !s.is_finite() {
            return Err(Error::InvalidParameter {
                name,
                index: None,
                value: s as f64,
                expected: "finite",
            });
        }
        Ok((out, s))
    }
}

/// The sigmoid focal loss family on flat row-major `[rows, classes]` `f32` slices, with its
/// gradient in the same pass.
///
/// For logit `x`, target `t` in `[0, 1]` (after label smoothing `t <- t (1 - eps) + eps / 2`),
/// class `c` and row `r`, the element loss is
///
/// ```text
/// l = w_c * s_r * alpha_t * m * CE,   CE = w+_c t sp(-x) + (1 - t) sp(x),
/// alpha_t = alpha_c t + (1 - alpha_c)(1 - t),   sp(z) = ln(1 + e^z),
/// ```
///
/// with `m` the [`Modulator`] (`m = 1` when `gamma = 0`: plain cross-entropy with logits),
/// `w_c` the class weight, `s_r` the sample weight, `w+_c` PyTorch's `pos_weight`, and every
/// unset option equal to 1 (`alpha_t = 1` without alpha). `Separable` applies `alpha_c` and
/// `1 - alpha_c` to its own two terms instead of `alpha_t`. A call reduces the `l_i` with a
/// [`Reduction`] and writes the gradient of the reduced value.
///
/// # Numerics
/// `p`, `q` and both softplus values come from one `e = exp(-|x|)`; nothing is formed as
/// `1 - p`; the modulator is computed in log space with the `gamma |x|` part split exactly.
/// Measured against an f64 oracle over the whole f32 range (`tests/oracle.rs`,
/// `tests/properties.rs`), for hard targets and normal results: loss and gradient within
/// 8 ULP (declared; plus 2 when alpha or weights multiply; points the fuzzers found
/// beyond it near `x = 0` at gamma 5, and on `Portable` without FMA at gamma 2, were fixed,
/// see `docs/numerics.md`), every
/// finite logit and `gamma` in `[0, 5]`; soft targets within `8 (1 + kappa) + 2 gamma` ULP, `kappa` the
/// condition number of the result for relative perturbations of `x`, `t` and `1 - t`. `x = +-inf` gives the limits: loss `+inf`
/// or 0, a finite gradient. The guarantee covers weights that are 0 or in `[2^-30, 2^30]`
/// (products of four such weights stay normal); a hard target's weight multiplies its
/// modulator first, so that it does not scale a subnormal intermediate into a normal result
/// (but for `e^-|x|` beyond `|x| = 87`, or a modulator below `2^-126`, reached only by weight
/// products above about `2^(126 / gamma) / (1 + gamma)`; a soft target's weight moves its
/// power of two into the modulator where `m CE` is tiny, but with [`Modulator::Separable`]:
/// see `docs/numerics.md`). Reduced
/// values are compensated f64 sums
/// (relative error at most `2^-51 + (n 2^-53)^2`).
///
/// # Errors
/// Validation happens when a loss is computed (parameters and lengths before anything is
/// written; the data, for the calls that write rather than accumulate, in the same pass: see
/// [`Error`]): [`Error::InvalidParameter`] for `gamma` negative or not finite, `alpha` outside `[0, 1]`,
/// a negative or non-finite weight, `label_smoothing` outside `[0, 1)`;
/// [`Error::ClassCountMismatch`] / [`Error::ZeroClasses`] for per-class settings that
/// disagree or are empty; [`Error::LengthMismatch`] / [`Error::NotMultipleOfClasses`] for
/// slices of the wrong length; [`Error::NanLogit`] and [`Error::TargetOutOfRange`] for bad data.
///
/// # Example
/// ```
/// use focal_loss::{class_balanced_weights, Focal, Modulator, Reduction};
/// let counts = [90_000u64, 1_200, 15, 3];
/// let mut w = [0f32; 4];
/// class_balanced_weights(&counts, 0.9999, &mut w)?;
/// let logits = [2.0f32, -1.0, 0.3, -4.0, -3.0, 1.0, 0.0, 0.5];
/// let targets = [1.0f32, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
/// let mut grad = [0f32; 8];
/// let focal = Focal::new(2.0).alpha(0.25).class_weights(&w).modulator(Modulator::Linear);
/// let mean = focal.loss_and_grad(&logits, &targets, &mut grad, Reduction::Mean)?;
/// assert!(mean > 0.0 && grad[0] < 0.0 && grad[1] > 0.0);
/// # Ok::<(), focal_loss::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Focal<'a> {
    pub(crate) gamma: f32,
    pub(crate) alpha: Alpha<'a>,
    pub(crate) class_weights: Option<&'a [f32]>,
    pub(crate) pos_weight: Option<&'a [f32]>,
    pub(crate) sample_weights: Option<&'a [f32]>,
    pub(crate) eps: f32,
    pub(crate) classes: Option<usize>,
    pub(crate) modulator: Modulator,
    pub(crate) backend: Backend,
}

/// The factor of the gradient: given by the caller, or that of a reduction.
#[derive(Clone, Copy)]
enum GradFactor {
    Given(f32),
    Of(Reduction),
}

pub(crate) fn check_weights(name: &'static str, w: &[f32]) -> Result<(), Error> {
    // Finite and >= 0 (NaN fails both comparisons); whole chunks without an early exit, so
    // that the check vectorizes (a weight per element is as long as the batch), and the first
    // bad index only on failure.
    let good = |v: f32| (0.0..=f32::MAX).contains(&v);
    if w.chunks(256)
        .all(|c| c.iter().fold(true, |all, &v| all & good(v)))
    {
        return Ok(());
    }
    match w.iter().position(|&v| !good(v)) {
        Some(i) => Err(Error::InvalidParameter {
            name,
            index: Some(i),
            value: w[i] as f64,
            expected: "finite and >= 0",
        }),
        None => Ok(()),
    }
}

/// [`check_weights`] of a per-class slice, returning its largest weight (0 for none).
fn class_weights_max(name: &'static str, w: &[f32]) -> Result<f32, Error> {
    check_weights(name, w)?;
    Ok(w.iter().fold(0f32, |m, &v| m.max(v)))
}

impl<'a> Focal<'a> {
    /// A focal loss with exponent `gamma` (`>= 0`; `0` is binary cross-entropy with logits),
    /// no alpha, no weights, [`Modulator::Linear`]. Infallible: `gamma` is checked when a loss
    /// is computed.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// // BCE with logits of x = 0 is ln 2.
    /// let l = Focal::new(0.0).loss(&[0.0], &[1.0], Reduction::Sum)?;
    /// assert_eq!(l, core::f32::consts::LN_2);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub const fn new(gamma: f32) -> Focal<'static> {
        Focal {
            gamma,
            alpha: Alpha::None,
            class_weights: None,
            pos_weight: None,
            sample_weights: None,
            eps: 0.0,
            classes: None,
            modulator: Modulator::Linear,
            backend: Backend::Auto,
        }
    }

    /// The preset of torchvision's `sigmoid_focal_loss(inputs, targets, alpha, gamma,
    /// reduction)`: [`Modulator::Linear`], alpha balancing with `alpha` when `alpha >= 0` and
    /// none when `alpha < 0` (torchvision's `alpha=-1`), the same for optax's
    /// `sigmoid_focal_loss` and Keras' `BinaryFocalCrossentropy(apply_class_balancing=True)`.
    /// Use [`Reduction::Mean`] / [`Reduction::Sum`] for `reduction="mean"` / `"sum"`, and
    /// [`loss_elementwise`](Self::loss_elementwise) for `"none"`. Unlike torchvision in f32,
    /// the result stays exact for `5 < |x| < 88` and its gradient finite for `gamma < 1`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// // torchvision.ops.sigmoid_focal_loss(tensor([2.0, -1.0]), tensor([1.0, 0.0]),
    /// //     alpha=0.25, gamma=2.0, reduction="sum"), its expression in float64: 0.0174444...
    /// let l = Focal::torchvision(0.25, 2.0).loss(&[2.0, -1.0], &[1.0, 0.0], Reduction::Sum)?;
    /// assert!((l as f64 - 0.017_444_434).abs() < 1e-8);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub const fn torchvision(alpha: f32, gamma: f32) -> Focal<'static> {
        let f = Focal::new(gamma);
        if alpha < 0.0 { f } else { f.alpha(alpha) }
    }

    /// The preset of the original TensorFlow code of the class-balanced loss (Cui et al.,
    /// 2019): [`Modulator::Geometric`], `modulator = exp(-gamma t x - gamma ln(1 + e^-x))`,
    /// no alpha. The paper's per-class `alpha` is [`class_weights`](Self::class_weights)
    /// (e.g. from [`class_balanced_weights`](crate::class_balanced_weights)), and its
    /// normalisation `sum(weighted loss) / sum(labels)` is [`Reduction::PerPositive`]. Exact
    /// where the original returns 0 and NaN (`x <= -89`).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Modulator, Reduction};
    /// let f = Focal::tf_original(2.0).class_weights(&[0.5, 1.5]);
    /// assert_eq!(f, Focal::new(2.0).modulator(Modulator::Geometric).class_weights(&[0.5, 1.5]));
    /// let l = f.loss(&[1.5, -0.5, -100.0, 3.0], &[1.0, 0.0, 1.0, 0.0], Reduction::PerPositive)?;
    /// assert!(l.is_finite() && l > 10.0); // x = -100 with t = 1 costs about 100 * 0.5 / 2
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub const fn tf_original(gamma: f32) -> Focal<'static> {
        Focal::new(gamma).modulator(Modulator::Geometric)
    }

    /// The setting used to train on VidHOI (video human-object interaction): `gamma = 0.5`, [`Modulator::Geometric`] (its
    /// PyTorch focal class follows the original TF formula), and class-balanced weights, one
    /// per predicate class, from [`class_balanced_weights`](crate::class_balanced_weights)
    /// with `beta = 0.9999`; reduce with [`Reduction::PerPositive`]. Per element:
    /// `CB_focal = w_c q^(0.5 t) p^(0.5 (1-t)) CE`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{class_balanced_weights, Focal, Reduction};
    /// let counts = [180_000u64, 25_000, 900, 40, 6];
    /// let mut w = [0f32; 5];
    /// class_balanced_weights(&counts, 0.9999, &mut w)?;
    /// let x = [2.0f32, -1.0, -3.0, 0.5, -2.0];
    /// let t = [1.0f32, 0.0, 1.0, 0.0, 1.0];
    /// let mut g = [0f32; 5];
    /// let l = Focal::vidhoi(&w).loss_and_grad(&x, &t, &mut g, Reduction::PerPositive)?;
    /// assert!(l > 0.0 && g[4].abs() > g[0].abs()); // the rare class pulls harder
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub const fn vidhoi(class_weights: &'a [f32]) -> Focal<'a> {
        Focal::new(0.5)
            .modulator(Modulator::Geometric)
            .class_weights(class_weights)
    }

    /// The preset of kornia's `BinaryFocalLossWithLogits` and mmcv's `sigmoid_focal_loss`
    /// with soft targets: [`Modulator::Separable`], `alpha` on the positive term and
    /// `1 - alpha` on the negative one.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let (x, t) = ([0.3f32, -1.2], [1.0f32, 0.0]);
    /// // Equal to the Linear preset for hard targets.
    /// let a = Focal::kornia(0.25, 2.0).loss(&x, &t, Reduction::Sum)?;
    /// let b = Focal::torchvision(0.25, 2.0).loss(&x, &t, Reduction::Sum)?;
    /// assert!((a - b).abs() <= 4.0 * f32::EPSILON * a);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub const fn kornia(alpha: f32, gamma: f32) -> Focal<'static> {
        Focal::new(gamma)
            .alpha(alpha)
            .modulator(Modulator::Separable)
    }

    /// Alpha balancing with one `alpha` in `[0, 1]`: `alpha_t = alpha t + (1 - alpha)(1 - t)`
    /// (torchvision's `alpha`; `0.25` in Lin et al.). Replaces an earlier
    /// [`alpha_per_class`](Self::alpha_per_class).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let f = Focal::new(0.0);
    /// let full = f.loss(&[0.3], &[1.0], Reduction::Sum)?;
    /// assert_eq!(f.alpha(0.25).loss(&[0.3], &[1.0], Reduction::Sum)?, 0.25 * full);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    #[must_use]
    pub const fn alpha(mut self, alpha: f32) -> Self {
        self.alpha = Alpha::Scalar(alpha);
        self
    }

    /// Alpha balancing with one alpha per class (each in `[0, 1]`; the slice length is the
    /// number of classes). Replaces an earlier [`alpha`](Self::alpha).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let a = [0.25f32, 0.75];
    /// let l = Focal::new(0.0).alpha_per_class(&a).loss(&[0.0, 0.0], &[1.0, 1.0], Reduction::Sum)?;
    /// assert!((l - core::f32::consts::LN_2).abs() < 1e-6);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    #[must_use]
    pub const fn alpha_per_class<'b>(self, alpha: &'b [f32]) -> Focal<'b>
    where
        'a: 'b,
    {
        let mut f: Focal<'b> = self;
        f.alpha = Alpha::PerClass(alpha);
        f
    }

    /// One weight per class (finite, `>= 0`) multiplying the whole element loss, e.g. from
    /// [`class_balanced_weights`](crate::class_balanced_weights).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let w = [2.0f32, 0.5];
    /// let f = Focal::new(2.0);
    /// let (x, t) = ([0.4f32, 0.4], [1.0f32, 1.0]);
    /// let one = f.loss(&x[..1], &t[..1], Reduction::Sum)?;
    /// assert_eq!(f.class_weights(&w).loss(&x, &t, Reduction::Sum)?, 2.5 * one);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    #[must_use]
    pub const fn class_weights<'b>(self, w: &'b [f32]) -> Focal<'b>
    where
        'a: 'b,
    {
        let mut f: Focal<'b> = self;
        f.class_weights = Some(w);
        f
    }

    /// PyTorch `BCEWithLogitsLoss(pos_weight=...)`: one weight per class (finite, `>= 0`)
    /// on the positive term of the cross-entropy only,
    /// `CE = w+ t sp(-x) + (1 - t) sp(x)`. The modulator and alpha are unchanged.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let f = Focal::new(0.0);
    /// let (x, t) = ([0.7f32], [1.0f32]);
    /// let l = f.loss(&x, &t, Reduction::Sum)?;
    /// assert_eq!(f.pos_weight(&[3.0]).loss(&x, &t, Reduction::Sum)?, 3.0 * l);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    #[must_use]
    pub const fn pos_weight<'b>(self, w: &'b [f32]) -> Focal<'b>
    where
        'a: 'b,
    {
        let mut f: Focal<'b> = self;
        f.pos_weight = Some(w);
        f
    }

    /// One weight per row (finite, `>= 0`) multiplying every element of that row. The
    /// original single-label class-balanced code weights a row by the weight of its true class.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let f = Focal::new(2.0).classes(2);
    /// let (x, t) = ([0.5f32, -0.5, 1.0, 2.0], [1.0f32, 0.0, 0.0, 1.0]);
    /// let rows = [f.loss(&x[..2], &t[..2], Reduction::Sum)?, f.loss(&x[2..], &t[2..], Reduction::Sum)?];
    /// let w = f.sample_weights(&[3.0, 0.0]).loss(&x, &t, Reduction::Sum)?;
    /// assert!((w - 3.0 * rows[0]).abs() <= 1e-6 * w);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    #[must_use]
    pub const fn sample_weights<'b>(self, w: &'b [f32]) -> Focal<'b>
    where
        'a: 'b,
    {
        let mut f: Focal<'b> = self;
        f.sample_weights = Some(w);
        f
    }

    /// Label smoothing with `eps` in `[0, 1)`, Keras semantics: `t <- t (1 - eps) + eps / 2`,
    /// applied before `p_t`, `alpha_t` and the cross-entropy. `PerPositive` still counts the
    /// raw targets.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let a = Focal::new(0.0).label_smoothing(0.2).loss(&[1.0], &[1.0], Reduction::Sum)?;
    /// let b = Focal::new(0.0).loss(&[1.0], &[0.9], Reduction::Sum)?;
    /// assert!((a - b).abs() <= 2.0 * f32::EPSILON * a);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    #[must_use]
    pub const fn label_smoothing(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    /// States the number of classes (columns) when no per-class slice implies it; it must
    /// agree with every per-class slice. Without it and without per-class slices, a batch is
    /// one row. Needed with [`sample_weights`](Self::sample_weights) alone.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Error, Focal, Reduction};
    /// let err = Focal::new(2.0).classes(3).loss(&[0.0; 4], &[0.0; 4], Reduction::Sum);
    /// assert_eq!(err, Err(Error::NotMultipleOfClasses { len: 4, classes: 3 }));
    /// ```
    #[must_use]
    pub const fn classes(mut self, classes: usize) -> Self {
        self.classes = Some(classes);
        self
    }

    /// Chooses the [`Modulator`] convention (default `Linear`).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Modulator, Reduction};
    /// // The conventions agree on hard targets and differ on soft ones.
    /// let (linear, geometric) = (Focal::new(0.5), Focal::new(0.5).modulator(Modulator::Geometric));
    /// let hard = |f: Focal| f.loss(&[0.3f32], &[1.0f32], Reduction::Sum);
    /// let soft = |f: Focal| f.loss(&[0.3f32], &[0.7f32], Reduction::Sum);
    /// assert_eq!(hard(linear)?, hard(geometric)?);
    /// assert_ne!(soft(linear)?, soft(geometric)?);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    #[must_use]
    pub const fn modulator(mut self, modulator: Modulator) -> Self {
        self.modulator = modulator;
        self
    }

    /// Chooses the instantiation of the core that runs the calls (default
    /// [`Backend::Auto`]).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Backend, Focal, Reduction};
    /// let f = Focal::new(2.0).backend(Backend::Scalar);
    /// assert!(f.loss(&[1.0], &[1.0], Reduction::Sum)? > 0.0);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    #[must_use]
    pub const fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The reduced loss of a batch (see [`Reduction`]).
    ///
    /// # Errors
    /// Those listed on [`Focal`]; `targets` must have the length of `logits`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// // 0.25 * (1 - sigmoid(2))^2 * ln(1 + e^-2) = 4.5089071e-4 (f64), the value of
    /// // torchvision.ops.sigmoid_focal_loss(x=2, t=1, alpha=0.25, gamma=2, reduction="sum")
    /// let l = Focal::new(2.0).alpha(0.25).loss(&[2.0], &[1.0], Reduction::Sum)?;
    /// assert!((l - 4.508_907e-4).abs() <= 2e-6 * 4.508_907e-4);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn loss<X: Float, T: Target>(
        &self,
        logits: &[X],
        targets: &[T],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        self.loss_on(&Serial, logits, targets, reduction)
    }

    /// The reduced loss, with `grad = d(reduced loss)/d(logits)` written in the same pass.
    ///
    /// # Errors
    /// Those listed on [`Focal`]; `targets` and `grad` must have the length of `logits`.
    /// On error `grad` is unspecified: an invalid logit is found by the pass itself, after
    /// the vectors before it (and its own) have been written. Use
    /// [`loss_and_grad_accumulate`](Self::loss_and_grad_accumulate) to leave a gradient
    /// untouched on error.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let (x, t) = ([1.0f32, -2.0], [1.0f32, 0.0]);
    /// let mut g = [0f32; 2];
    /// let mean = Focal::new(0.0).loss_and_grad(&x, &t, &mut g, Reduction::Mean)?;
    /// // d/dx of the mean BCE = (sigmoid(x) - t) / 2
    /// assert!((g[0] - (1.0 / (1.0 + 1f32.exp()) * -0.5)).abs() < 1e-7);
    /// assert!(mean > 0.0);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn loss_and_grad<X: Float, T: Target, G: Float>(
        &self,
        logits: &[X],
        targets: &[T],
        grad: &mut [G],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        self.whole(&Serial, logits, targets, grad, reduction, false)
    }

    /// As [`loss_and_grad`](Self::loss_and_grad), but adds: `grad += d(reduced loss)/dx`.
    ///
    /// # Errors
    /// As `loss_and_grad`. A call that returns an error has not changed `grad`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let (x, t) = ([1.0f32], [1.0f32]);
    /// let (mut once, mut twice) = ([0f32], [0f32]);
    /// let f = Focal::new(2.0);
    /// f.loss_and_grad(&x, &t, &mut once, Reduction::Sum)?;
    /// f.loss_and_grad_accumulate(&x, &t, &mut twice, Reduction::Sum)?;
    /// f.loss_and_grad_accumulate(&x, &t, &mut twice, Reduction::Sum)?;
    /// assert_eq!(twice[0], 2.0 * once[0]);
    /// assert!(f.loss_and_grad_accumulate(&[f32::NAN], &t, &mut twice, Reduction::Sum).is_err());
    /// assert_eq!(twice[0], 2.0 * once[0]);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn loss_and_grad_accumulate<X: Float, T: Target, G: Float>(
        &self,
        logits: &[X],
        targets: &[T],
        grad: &mut [G],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        self.whole(&Serial, logits, targets, grad, reduction, true)
    }

    /// The weighted per-element losses `out[i] = l_i` (no reduction).
    ///
    /// # Errors
    /// Those listed on [`Focal`]; `targets` and `out` must have the length of `logits`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let (x, t) = ([3.0f32, -1.0, 0.0], [1.0f32, 1.0, 0.0]);
    /// let mut l = [0f32; 3];
    /// let f = Focal::new(2.0).alpha(0.25);
    /// f.loss_elementwise(&x, &t, &mut l)?;
    /// assert!(l[1] > l[0]); // the misclassified element dominates
    /// let sum = f.loss(&x, &t, Reduction::Sum)?;
    /// assert!((l.iter().sum::<f32>() - sum).abs() <= 1e-6 * sum);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn loss_elementwise<X: Float, T: Target, G: Float>(
        &self,
        logits: &[X],
        targets: &[T],
        out: &mut [G],
    ) -> Result<(), Error> {
        self.elementwise_on(&Serial, logits, targets, out)
    }

    /// The sum of the raw targets of a chunk (its positives, for hard targets): what
    /// `PerPositive` divides by, to be summed over the chunks of a batch (an all-reduce) and
    /// turned into the chunks' gradient factor with [`Reduction::per_positive`]. Equal to the
    /// [`Partial::positives`] of the chunk (bit for bit for hard targets).
    ///
    /// # Errors
    /// [`Error::TargetOutOfRange`] for a target outside `[0, 1]` or NaN (its row and class
    /// from the class count the builder sets, one row if none does).
    ///
    /// # Example
    /// ```
    /// use focal_loss::Focal;
    /// assert_eq!(Focal::new(2.0).positives(&[1u8, 0, 1, 1])?, 3.0);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn positives<T: Target>(&self, targets: &[T]) -> Result<f64, Error> {
        let mut sum = 0.0;
        for (i, t) in targets.iter().enumerate() {
            let v = t.value();
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::target_out_of_range(
                    i,
                    v,
                    self.class_count().unwrap_or(targets.len()),
                    1,
                ));
            }
            sum += v as f64;
        }
        Ok(sum)
    }

    /// One chunk of a larger batch: its [`Partial`] sums (to [`merge`](Partial::merge) with
    /// the other chunks and [`reduce`](Partial::reduce)), and its gradient as [`Grad`] asks.
    /// Chunks must be whole rows; per-row `sample_weights` are those of the chunk's rows.
    ///
    /// # Errors
    /// Those listed on [`Focal`]; a gradient slice of the wrong length; a non-finite
    /// gradient factor ([`Error::InvalidParameter`] named `"Grad::Write"` or
    /// `"Grad::Accumulate"`). With `Grad::Accumulate`, an error leaves the gradient unchanged.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Grad, Partial, Reduction};
    /// let x = [0.2f32, -1.0, 3.0, 0.7];
    /// let t = [1.0f32, 0.0, 0.0, 1.0];
    /// let f = Focal::new(2.0).alpha(0.25).classes(2);
    /// // Step 1: the global normaliser (e.g. positives summed over workers) -> 2.
    /// let scale = 1.0 / 2.0;
    /// let mut g = [0f32; 4];
    /// let (g0, g1) = g.split_at_mut(2);
    /// let a = f.partial(&x[..2], &t[..2], Grad::Write(g0, scale))?;
    /// let b = f.partial(&x[2..], &t[2..], Grad::Write(g1, scale))?;
    /// let mut whole = [0f32; 4];
    /// let loss = f.loss_and_grad(&x, &t, &mut whole, Reduction::PerPositive)?;
    /// assert_eq!(a.merge(b).reduce(Reduction::PerPositive)?, loss);
    /// assert_eq!(g, whole);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn partial<X: Float, T: Target>(
        &self,
        logits: &[X],
        targets: &[T],
        grad: Grad<'_, X>,
    ) -> Result<Partial, Error> {
        self.partial_on(&Serial, logits, targets, grad)
    }

    pub(crate) fn loss_on<E: Exec, X: Float, T: Target>(
        &self,
        exec: &E,
        logits: &[X],
        targets: &[T],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        reduction.factor(0, 0.0, 0.0)?;
        let count = reduction == Reduction::PerPositive;
        let x = X::src(logits);
        self.execute(exec, x, targets, Out::None, GradFactor::Given(1.0), count)?
            .reduce(reduction)
    }

    pub(crate) fn elementwise_on<E: Exec, X: Float, T: Target, G: Float>(
        &self,
        exec: &E,
        logits: &[X],
        targets: &[T],
        out: &mut [G],
    ) -> Result<(), Error> {
        let out = Out::Elementwise(G::dst(out));
        self.execute(
            exec,
            X::src(logits),
            targets,
            out,
            GradFactor::Given(1.0),
            false,
        )?;
        Ok(())
    }

    pub(crate) fn partial_on<E: Exec, X: Float, T: Target>(
        &self,
        exec: &E,
        logits: &[X],
        targets: &[T],
        grad: Grad<'_, X>,
    ) -> Result<Partial, Error> {
        let (out, s) = grad.into_out()?;
        self.execute(
            exec,
            X::src(logits),
            targets,
            out,
            GradFactor::Given(s),
            true,
        )
    }

    pub(crate) fn whole<E: Exec, X: Float, T: Target, G: Float>(
        &self,
        exec: &E,
        logits: &[X],
        targets: &[T],
        grad: &mut [G],
        reduction: Reduction,
        accumulate: bool,
    ) -> Result<f32, Error> {
        reduction.factor(0, 0.0, 0.0)?;
        let out = if accumulate {
            Out::Add(G::dst(grad), 1.0)
        } else {
            Out::Write(G::dst(grad), 1.0)
        };
        let count = reduction == Reduction::PerPositive;
        self.execute(
            exec,
            X::src(logits),
            targets,
            out,
            GradFactor::Of(reduction),
            count,
        )?
        .reduce(reduction)
    }

    /// Validates, runs one pass on the chosen backend (after a validating scan when the
    /// outputs must stay untouched on error, or the gradient factor needs the positives), and
    /// reports the first invalid element if the pass saw one. The returned positives are 0
    /// unless `count_positives`.
    fn execute<T: Target, E: Exec>(
        &self,
        exec: &E,
        x: Src<'_>,
        t: &[T],
        out: Out<'_>,
        factor: GradFactor,
        count_positives: bool,
    ) -> Result<Partial, Error> {
        let out_len = out.len().map(|n| {
            let what = if matches!(out, Out::Elementwise(_)) {
                "out"
            } else {
                "grad"
            };
            (what, n)
        });
        let mut job = self.job(x, t, out_len)?;
        let isa = self.backend.isa()?;
        let needs_scan = matches!(out, Out::Add(..))
            || matches!(
                (&out, factor),
                (Out::Write(..), GradFactor::Of(Reduction::PerPositive))
            );
        let mut positives = 0.0;
        let weight = element_weight(&job, x.len());
        job.count_positives = count_positives;
        // Whole rows per chunk, the sums folded in chunk order (see `chunk`).
        let grid = Grid::new(x.len() / job.classes, job.classes);
        let merge = |a: Sums, b: Sums| Sums {
            loss: a.loss.add(b.loss),
            positives: a.positives + b.positives,
            bad: a.bad | b.bad,
        };
        if needs_scan {
            // Accumulating must leave the gradient untouched on error: every input is checked
            // first. Scaling by the positives needs their count first: the targets alone
            // (the pass checks the logits).
            let checked = matches!(out, Out::Add(..));
            let s = exec.fold(
                &grid,
                (Out::None, 0),
                Sums::ZERO,
                |k, _| {
                    let e = grid.elems(k);
                    let x = if checked {
                        x.slice(e.clone())
                    } else {
                        Src::F32(&[])
                    };
                    pass::run_scan(isa, x, &t[e])
                },
                merge,
            );
            if s.bad {
                return Err(first_bad(x, t, job.classes));
            }
            positives = s.positives;
            job.count_positives = false;
        }
        let scale = match factor {
            GradFactor::Given(s) => s,
            // `WeightedMean` over weights below 2^-128 overflows f32: the largest factor
            // (the gradient saturates instead of forming `0 * inf`).
            GradFactor::Of(r) => r
                .factor(x.len() as u64, positives, weight)?
                .min(f32::MAX as f64) as f32,
        };
        let out = out.with_factor(scale);
        let job = &job;
        let sums = exec.fold(
            &grid,
            (out, job.classes),
            Sums::ZERO,
            |k, mut out| {
                let job = job.rows(grid.units(k));
                pass::run(isa, &job, x.slice(grid.elems(k)), &mut out)
            },
            merge,
        );
        if sums.bad {
            return Err(first_bad(x, t, job.classes));
        }
        Ok(Partial {
            loss: sums.loss,
            positives: if needs_scan {
                positives
            } else {
                sums.positives
            },
            elements: x.len() as u64,
            weight,
        })
    }

    /// Validates parameters and lengths (the data is validated by the pass itself).
    /// The number of classes the builder implies (`.classes`, then the per-class slices;
    /// `None` when nothing does: the batch is one row). For locating an index in an error.
    fn class_count(&self) -> Option<usize> {
        let per_class = match self.alpha {
            Alpha::PerClass(a) => Some(a.len()),
            _ => None,
        };
        self.classes
            .or(per_class)
            .or(self.class_weights.map(<[f32]>::len))
            .or(self.pos_weight.map(<[f32]>::len))
    }

    fn job<'d, T: Target>(
        &self,
        logits: Src<'d>,
        targets: &'d [T],
        out: Option<(&'static str, usize)>,
    ) -> Result<Job<'d, T>, Error>
    where
        'a: 'd,
    {
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(Error::InvalidParameter {
                name: "gamma",
                index: None,
                value: self.gamma as f64,
                expected: "finite and >= 0",
            });
        }
        if !(self.eps >= 0.0 && self.eps < 1.0) {
            return Err(Error::InvalidParameter {
                name: "label_smoothing",
                index: None,
                value: self.eps as f64,
                expected: "in [0, 1)",
            });
        }
        let mut classes = self.classes;
        if classes == Some(0) {
            return Err(Error::ZeroClasses);
        }
        let mut agree = |what: &'static str, len: usize| -> Result<(), Error> {
            match classes {
                _ if len == 0 => Err(Error::ZeroClasses),
                Some(c) if c != len => Err(Error::ClassCountMismatch {
                    what,
                    expected: c,
                    found: len,
                }),
                _ => {
                    classes = Some(len);
                    Ok(())
                }
            }
        };
        match self.alpha {
            Alpha::None => {}
            Alpha::Scalar(a) => {
                if !(0.0..=1.0).contains(&a) {
                    return Err(Error::InvalidParameter {
                        name: "alpha",
                        index: None,
                        value: a as f64,
                        expected: "in [0, 1]",
                    });
                }
            }
            Alpha::PerClass(a) => {
                agree("alpha_per_class", a.len())?;
                if let Some(i) = a.iter().position(|v| !(0.0..=1.0).contains(v)) {
                    return Err(Error::InvalidParameter {
                        name: "alpha_per_class",
                        index: Some(i),
                        value: a[i] as f64,
                        expected: "in [0, 1]",
                    });
                }
            }
        }
        // The largest weights (1 where unset): bounds for [`pass::Job::light`].
        let (mut w_max, mut pw_max) = (1f32, 1f32);
        if let Some(w) = self.class_weights {
            agree("class_weights", w.len())?;
            w_max = class_weights_max("class_weights", w)?;
        }
        if let Some(w) = self.pos_weight {
            agree("pos_weight", w.len())?;
            pw_max = class_weights_max("pos_weight", w)?;
        }
        let n = logits.len();
        check_len("targets", n, targets.len())?;
        if let Some((what, len)) = out {
            check_len(what, n, len)?;
        }
        let c = classes.unwrap_or(n.max(1));
        if !n.is_multiple_of(c) {
            return Err(Error::NotMultipleOfClasses { len: n, classes: c });
        }
        let rows = n / c;
        if let Some(w) = self.sample_weights {
            check_len("sample_weights", rows, w.len())?;
            check_weights("sample_weights", w)?;
        }
        Ok(Job {
            // The pass reads `f32` logits from here, others from the `Src` it is given.
            x: logits.as_f32().unwrap_or(&[]),
            t: targets,
            classes: c,
            gamma: self.gamma,
            eps: self.eps,
            alpha: self.alpha,
            class_weights: self.class_weights,
            pos_weight: self.pos_weight,
            sample_weights: self.sample_weights,
            count_positives: false,
            modulator: self.modulator.code(),
            // alpha_t <= 1 (alpha in [0, 1]); 1.5 leaves room for the roundings of the f32
            // products (relative 2^-22 in all). Not with sample weights: their maximum would
            // take a pass as long as the batch where there is one per element (6% of such a
            // call, measured), for a test that costs about 4.5% of soft targets only.
            light: self.sample_weights.is_none() && w_max <= 1.5 && pw_max <= 1.5,
        })
    }
}

/// The sum of the element weights `w_c s_r` of a job (its rows times its classes without
/// weights), for [`Reduction::WeightedMean`]: the product of the two sums, in f64.
fn element_weight<T>(job: &Job<'_, T>, n: usize) -> f64 {
    let rows = n / job.classes;
    let sum =
        |w: Option<&[f32]>, n: usize| w.map_or(n as f64, |w| w.iter().map(|&v| v as f64).sum());
    sum(job.sample_weights, rows) * sum(job.class_weights, job.classes)
}

pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            found,
        })
    }
}

/// The first NaN logit or out-of-range target, in index order (the error path only).
fn first_bad<T: Target>(x: Src<'_>, t: &[T], classes: usize) -> Error {
    for (i, ti) in t.iter().enumerate().take(x.len()) {
        let xi = x.get(i);
        let ti = ti.value();
        if xi.is_nan() {
            return Error::nan_logit(i, classes, 1);
        }
        if !(0.0..=1.0).contains(&ti) {
            return Error::target_out_of_range(i, ti, classes, 1);
        }
    }
    unreachable!("first_bad called on valid data")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::float::Dst;

    /// A job whose weights are all below 2 ([`pass::Job::light`]) skips the soft path's test
    /// for rescaling by weight: the same bits as with the test, on every backend, modulator and
    /// exponent, soft and smoothed targets (tiny ones too), logits to +-90, with class and
    /// positive weights at the bound.
    #[test]
    fn light_jobs_give_the_bits_of_the_test_they_skip() {
        const ROWS: usize = 97;
        const N: usize = ROWS * 5;
        let cw = [1.5f32, 1.0, 0.5, 1.25, 1.5];
        let pw = [1.5f32, 1.0, 1.49, 0.0, 1.2];
        let n = N;
        let x: [f32; N] = core::array::from_fn(|i| ((i * 37) % 181) as f32 - 90.0);
        let targets = [
            0.0f32,
            1.0,
            0.5,
            1e-30,
            3.2e-24,
            1e-3,
            0.9999999,
            1.0 - 2e-7,
            0.25,
        ];
        let t: [f32; N] = core::array::from_fn(|i| targets[(i * 7) % targets.len()]);
        let mods = [
            Modulator::Linear,
            Modulator::Geometric,
            Modulator::Separable,
        ];
        for backend in Backend::available() {
            let isa = backend.isa().unwrap();
            for m in mods {
                for gamma in [0.0, 0.5, 2.0, 3.7] {
                    for eps in [0.0, 0.1] {
                        let f = Focal::new(gamma)
                            .alpha(0.25)
                            .modulator(m)
                            .label_smoothing(eps)
                            .class_weights(&cw)
                            .pos_weight(&pw);
                        let job = f.job(Src::F32(&x), &t[..], Some(("grad", n))).unwrap();
                        assert!(job.light);
                        let heavy = pass::Job {
                            light: false,
                            ..job
                        };
                        let mut g = [[0f32; N]; 2];
                        let [g0, g1] = &mut g;
                        let s0 =
                            pass::run(isa, &job, Src::F32(&x), &mut Out::Write(Dst::F32(g0), 1.0));
                        let s1 = pass::run(
                            isa,
                            &heavy,
                            Src::F32(&x),
                            &mut Out::Write(Dst::F32(g1), 1.0),
                        );
                        let what = (backend.name(), m, gamma, eps);
                        assert_eq!(s0.loss.hi.to_bits(), s1.loss.hi.to_bits(), "{what:?}");
                        assert_eq!(s0.loss.lo.to_bits(), s1.loss.lo.to_bits(), "{what:?}");
                        for (i, (a, b)) in g0.iter().zip(g1.iter()).enumerate() {
                            assert_eq!(a.to_bits(), b.to_bits(), "{what:?} {i}");
                        }
                    }
                }
            }
        }
        // Above 1.5 the test stays (a class weight or a `pos_weight` of 2), and with sample
        // weights (whose maximum is not sought).
        let w2 = [2.0f32, 1.0, 1.0, 1.0, 1.0];
        let f = Focal::new(2.0).class_weights(&w2);
        assert!(!f.job(Src::F32(&x), &t[..], None).unwrap().light);
        let f = Focal::new(2.0).pos_weight(&w2);
        assert!(!f.job(Src::F32(&x), &t[..], None).unwrap().light);
        let sw = [0.5f32; ROWS];
        let f = Focal::new(2.0).classes(5).sample_weights(&sw);
        assert!(!f.job(Src::F32(&x), &t[..], None).unwrap().light);
        assert!(
            Focal::new(2.0)
                .job(Src::F32(&x), &t[..], None)
                .unwrap()
                .light
        );
        // The comparison above can see a skipped rescaling: where it is needed (a weight of
        // 2^30 on `t = 3.2e-24` at `x = -70`, gamma 1), a job wrongly marked light loses it.
        let (x, t, w) = ([-70f32; 32], [3.2e-24f32; 32], [1073741824f32]);
        for backend in Backend::available() {
            let isa = backend.isa().unwrap();
            let f = Focal::new(1.0).class_weights(&w);
            let job = f.job(Src::F32(&x), &t[..], None).unwrap();
            assert!(!job.light);
            let wrong = pass::Job { light: true, ..job };
            let right = pass::run(isa, &job, Src::F32(&x), &mut Out::None);
            let lost = pass::run(isa, &wrong, Src::F32(&x), &mut Out::None);
            let what = (backend.name(), right.loss.hi, lost.loss.hi);
            assert!(
                right.loss.hi > 0.0 && lost.loss.hi != right.loss.hi,
                "{what:?}"
            );
        }
    }
}
