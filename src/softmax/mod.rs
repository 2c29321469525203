//! The softmax (multi-class) focal loss family: its public API ([`SoftmaxFocal`]) and
//! validation here, one class's terms in [`kernel`], and the loops that feed it in [`pass`].

pub(crate) mod kernel;
pub(crate) mod pass;

use crate::backend::{Backend, Isa};
use crate::chunk::{Exec, Grid, Serial, WinOut, Windows};
use crate::error::Error;
use crate::float::{Float, Half, Src, bf16_bits_to_f32, f16_bits_to_f32};
use crate::label::Label;
use crate::label::sealed::Labels;
use crate::reduce::{Partial, Reduction};
use crate::sigmoid::pass::Out;
use crate::sigmoid::{Grad, check_len, check_weights};
use pass::Job;

/// The most classes a row may have: a class index is carried exactly as an `f32` lane.
const MAX_CLASSES: usize = 1 << 24;

/// The softmax focal loss family on `[rows, C]` or `[N, C, S]` `f32` logits with a class index
/// or a distribution per row, and its gradient in the same pass.
///
/// For a row `r` (a sample, or one position of a segmentation map) with logits `z_1..z_C`,
/// labels `y` (one-hot from a class index, or a distribution) and `p = softmax(z)`:
///
/// ```text
/// y'_c     = y_c (1 - eps) + eps / C                       (label smoothing)
/// l_r      = s_r alpha sum_c y'_c w_c (1 - p_c)^gamma (-ln p_c)
/// dl_r/dz_j = A_j - p_j sum_c A_c,
/// A_c      = s_r alpha y'_c w_c [gamma (1 - p_c)^(gamma - 1) p_c ln p_c - (1 - p_c)^gamma]
/// ```
///
/// `gamma = 0` is softmax cross-entropy (PyTorch `F.cross_entropy`); `w` are class weights
/// (torch's `weight`, the class-balanced `w_y`), `s_r` sample weights, `alpha` a scalar factor
/// (mmcv, Keras). Every unset option is 1. Rows whose integer label is the
/// [`ignore_index`](Self::ignore_index) have loss 0 and gradient 0, are not counted by the
/// reductions, and their logits are not read (they may be NaN).
///
/// | layout | logits | index labels | distributions (`f32`, `bf16`, `f16`) | sample weights, per-row output |
/// |---|---|---|---|---|
/// | default | `[rows, C]` | `[rows]` | `[rows, C]` | `[rows]` |
/// | `.spatial(S)` | `[N, C, S]` (PyTorch's `(N, C, d1, ..., dk)`) | `[N, S]` | `[N, C, S]` | `[N, S]` |
///
/// `C` comes from [`classes`](Self::classes), the class weights, or (index labels)
/// `logits.len() / labels.len()`; all that are given must agree.
///
/// # Reductions
/// `Sum`; `Mean` divides by the rows not ignored (torch `cross_entropy` `"mean"` without
/// weights); `PerPositive` by `max(sum of raw labels, 1)` (the rows not ignored, for index
/// labels); `WeightedMean` by `W = sum over rows not ignored of s_r w_{y_r}` (for
/// distributions `s_r sum_c y_c w_c`, raw labels; 0 when `W = 0`), torch's
/// `cross_entropy(weight=w)` `"mean"`; `Scale(s)` multiplies. The gradient is that of the
/// reduced value.
///
/// # Peers
/// | peer | here |
/// |---|---|
/// | torch `F.cross_entropy(z, y, weight=w, ignore_index=i, label_smoothing=e)` | [`cross_entropy`](Self::cross_entropy)`.class_weights(&w).ignore_index(i).label_smoothing(e)`, `WeightedMean` (`Mean` without weights) |
/// | mmcv `softmax_focal_loss(z, y, gamma, alpha, weight)`, `"mean"` | [`mmcv`](Self::mmcv)`(alpha, gamma).class_weights(&w)`, `Mean` |
/// | Keras `CategoricalFocalCrossentropy(alpha, gamma)` | [`keras`](Self::keras)`(alpha, gamma)`, `Mean` |
/// | class-balanced softmax CE (Cui et al.) | [`class_balanced`](Self::class_balanced)`(&w)`, `Mean` |
/// | kornia `focal_loss(z, y, alpha=a, gamma=g, reduction="mean")` | `new(g).class_weights(&[1 - a, a, ..., a])`, `Scale(1 / (N C S))` (kornia's mean keeps the class dimension) |
///
/// # Numerics
/// `ln p_c = (z_c - m) - ln S` with `m` the row's largest logit and `S = 1 + T`, `T` the sum
/// of the other classes' `e^(z_k - m)` (in f64). For the largest class `1 - p = T / S` and
/// `-ln p = ln(1 + T)` (never `1 - p` by subtraction), so a confidently right row
/// (`p_y = 1 - 1e-30`) has an accurate loss and gradient where the peers return 0. The
/// modulator is `q^2` for `gamma = 2` (likewise 0, 1, 1/2), otherwise `exp(gamma ln q)` with
/// the large part of `ln q` split off exactly. Finite for every `gamma >= 0` (the derivative
/// is written as `q^gamma (1 + gamma p (-ln p) / q)`, no `q^(gamma - 1)`). `-inf` logits are
/// valid (masked classes, `p = 0`): a label on one gives loss `+inf` and a finite gradient;
/// `+inf` logits take the limit (the `+inf` classes share the probability); a row of `-inf`
/// only is uniform. No input without a NaN gives a NaN. Measured against an f64 oracle
/// (`tests/softmax.rs`): loss and gradient within the tolerance table of `tests/common`
/// (8 ULP times the conditioning that the rounding of `z_k - m` forces; the measured table is
/// in `docs/numerics.md`). Every backend, and both layouts, give the same bits for a row
/// whatever its position.
///
/// # Errors
/// Parameters and lengths are checked before anything is written: [`Error::InvalidParameter`]
/// (`gamma`, `alpha` negative or not finite, `label_smoothing` outside `[0, 1)`, a negative
/// or non-finite weight, `spatial` 0, more than 2^24 classes), [`Error::ClassCountMismatch`],
/// [`Error::ZeroClasses`], [`Error::UnknownClasses`], [`Error::LengthMismatch`],
/// [`Error::NotMultipleOfClasses`]. Labels are checked before anything is written:
/// [`Error::LabelOutOfRange`] (row and label), [`Error::TargetOutOfRange`] (a distribution's
/// value outside `[0, 1]`, with its row and class). A NaN logit in a counted row is [`Error::NanLogit`] (the first in
/// index order), found in the same pass by the calls that write (their outputs are then
/// partly written) and before anything is written by the calls that accumulate.
///
/// # Example
/// ```
/// use focal_loss::{Reduction, SoftmaxFocal};
/// // Two rows of three classes; the second row is padding.
/// let logits = [2.0f32, -1.0, 0.5, f32::NAN, f32::NAN, f32::NAN];
/// let labels = [0i64, -100];
/// let mut grad = [0f32; 6];
/// let sf = SoftmaxFocal::new(2.0).ignore_index(-100);
/// let mean = sf.loss_and_grad(&logits, &labels, &mut grad, Reduction::Mean)?;
/// assert!(mean > 0.0 && grad[0] < 0.0 && grad[1] > 0.0);
/// assert_eq!(&grad[3..], &[0.0; 3]);
/// # Ok::<(), focal_loss::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftmaxFocal<'a> {
    pub(crate) gamma: f32,
    pub(crate) alpha: f32,
    pub(crate) class_weights: Option<&'a [f32]>,
    pub(crate) sample_weights: Option<&'a [f32]>,
    pub(crate) eps: f32,
    pub(crate) ignore_index: Option<i64>,
    pub(crate) classes: Option<usize>,
    pub(crate) spatial: usize,
    pub(crate) backend: Backend,
}

/// What a call computes besides the loss sum.
#[derive(Clone, Copy)]
struct Counts {
    rows: u64,
    positives: f64,
    weight: f64,
}

impl Counts {
    const ZERO: Counts = Counts {
        rows: 0,
        positives: 0.0,
        weight: 0.0,
    };

    fn merge(self, o: Counts) -> Counts {
        Counts {
            rows: self.rows + o.rows,
            positives: self.positives + o.positives,
            weight: self.weight + o.weight,
        }
    }
}

impl<'a> SoftmaxFocal<'a> {
    /// The softmax focal loss with focusing parameter `gamma` (`>= 0`, checked when a loss is
    /// computed; 0 is softmax cross-entropy), every other option unset.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let x = [1.0f32, 0.0];
    /// let ce = SoftmaxFocal::new(0.0).loss(&x, &[0u8], Reduction::Sum)?;
    /// let fl = SoftmaxFocal::new(2.0).loss(&x, &[0u8], Reduction::Sum)?;
    /// assert!(fl < ce); // the well-classified row is down-weighted
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn new(gamma: f32) -> Self {
        SoftmaxFocal {
            gamma,
            alpha: 1.0,
            class_weights: None,
            sample_weights: None,
            eps: 0.0,
            ignore_index: None,
            classes: None,
            spatial: 1,
            backend: Backend::Auto,
        }
    }

    /// PyTorch `F.cross_entropy`: `gamma = 0`. With `Reduction::Mean` (no class weights) or
    /// `Reduction::WeightedMean` (class weights) it is torch's `"mean"`; add
    /// `.ignore_index(-100)` for torch's default.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// // torch: F.cross_entropy(tensor([[0., 0.]]), tensor([1])) = ln 2
    /// let l = SoftmaxFocal::cross_entropy().loss(&[0.0f32, 0.0], &[1u8], Reduction::Mean)?;
    /// assert!((l - core::f32::consts::LN_2).abs() <= f32::EPSILON);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn cross_entropy() -> Self {
        SoftmaxFocal::new(0.0)
    }

    /// mmcv's `softmax_focal_loss(input, target, gamma, alpha, weight)`: `alpha` a scalar
    /// factor of every row, per-class weights through [`class_weights`](Self::class_weights);
    /// its `"mean"` is `Reduction::Mean`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let (x, y) = ([2.0f32, 0.0, -1.0], [0u8]);
    /// let a = SoftmaxFocal::mmcv(0.25, 2.0).loss(&x, &y, Reduction::Mean)?;
    /// let b = SoftmaxFocal::new(2.0).loss(&x, &y, Reduction::Mean)?;
    /// assert!((a - 0.25 * b).abs() <= f32::EPSILON * b);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn mmcv(alpha: f32, gamma: f32) -> Self {
        SoftmaxFocal::new(gamma).alpha(alpha)
    }

    /// Keras `CategoricalFocalCrossentropy(alpha, gamma)` (on logits, away from its `1e-7`
    /// clipping of `p`): `sum_c -alpha y_c (1 - p_c)^gamma ln p_c` per row; its default
    /// reduction is `Reduction::Mean`, its `label_smoothing` is
    /// [`label_smoothing`](Self::label_smoothing).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let x = [1.0f32, 2.0, 0.5];
    /// let y = [0.0f32, 1.0, 0.0];
    /// let l = SoftmaxFocal::keras(0.25, 2.0).classes(3).loss(&x, &y, Reduction::Mean)?;
    /// assert!(l > 0.0 && l < 0.25);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn keras(alpha: f32, gamma: f32) -> Self {
        SoftmaxFocal::new(gamma).alpha(alpha)
    }

    /// The class-balanced softmax cross-entropy of Cui et al. (2019): `gamma = 0`, class
    /// weights `w` (e.g. from [`class_balanced_weights`](crate::class_balanced_weights)), each
    /// row weighted by `w_{y_r}`, `Reduction::Mean` over rows (the original code's
    /// `tf.losses.softmax_cross_entropy(weights=w_y)`). The class-balanced focal loss is
    /// `SoftmaxFocal::new(gamma).class_weights(&w)`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{class_balanced_weights, Reduction, SoftmaxFocal};
    /// let mut w = [0f32; 3];
    /// class_balanced_weights(&[5000, 500, 5], 0.999, &mut w)?;
    /// let x = [0.0f32; 3];
    /// let head = SoftmaxFocal::class_balanced(&w).loss(&x, &[0u8], Reduction::Mean)?;
    /// let tail = SoftmaxFocal::class_balanced(&w).loss(&x, &[2u8], Reduction::Mean)?;
    /// assert!(tail > head);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn class_balanced(weights: &'a [f32]) -> Self {
        SoftmaxFocal::new(0.0).class_weights(weights)
    }

    /// A scalar factor `alpha` (finite, `>= 0`) of every term (mmcv, Keras).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let (x, y) = ([0.5f32, -0.5], [1u8]);
    /// let a = SoftmaxFocal::new(2.0).alpha(0.5).loss(&x, &y, Reduction::Sum)?;
    /// let b = SoftmaxFocal::new(2.0).loss(&x, &y, Reduction::Sum)?;
    /// assert_eq!(a, 0.5 * b);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }

    /// Class weights `w_c` (one per class, finite, `>= 0`).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let x = [0.0f32; 4];
    /// let f = SoftmaxFocal::cross_entropy().class_weights(&[1.0, 3.0]);
    /// let l = f.loss(&x, &[0u8, 1], Reduction::WeightedMean)?; // torch's weighted mean
    /// assert!((l - core::f32::consts::LN_2).abs() <= f32::EPSILON);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn class_weights(mut self, w: &'a [f32]) -> Self {
        self.class_weights = Some(w);
        self
    }

    /// Sample weights `s_r`: one per row (per position with [`spatial`](Self::spatial)),
    /// finite, `>= 0`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let x = [1.0f32, 0.0, 1.0, 0.0];
    /// let f = SoftmaxFocal::new(2.0).sample_weights(&[1.0, 0.0]);
    /// let l = f.loss(&x, &[1u8, 1], Reduction::Sum)?;
    /// assert_eq!(l, SoftmaxFocal::new(2.0).loss(&x[..2], &[1u8], Reduction::Sum)?);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn sample_weights(mut self, s: &'a [f32]) -> Self {
        self.sample_weights = Some(s);
        self
    }

    /// Label smoothing `eps` in `[0, 1)`: `y' = y (1 - eps) + eps / C` (torch, Keras).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let x = [4.0f32, 0.0];
    /// let hard = SoftmaxFocal::cross_entropy().loss(&x, &[0u8], Reduction::Sum)?;
    /// let soft = SoftmaxFocal::cross_entropy().label_smoothing(0.2).loss(&x, &[0u8], Reduction::Sum)?;
    /// assert!(soft > hard);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn label_smoothing(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    /// Rows whose integer label equals `index` (torch's default is -100) have loss 0 and
    /// gradient 0, are not counted by `Mean`, `PerPositive` and `WeightedMean`, and their
    /// logits are not read. Applies to integer labels.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let x = [1.0f32, 0.0, f32::NAN, f32::NAN];
    /// let f = SoftmaxFocal::cross_entropy().ignore_index(255);
    /// let both = f.loss(&x, &[0u8, 255], Reduction::Mean)?;
    /// assert_eq!(both, f.loss(&x[..2], &[0u8], Reduction::Mean)?);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn ignore_index(mut self, index: i64) -> Self {
        self.ignore_index = Some(index);
        self
    }

    /// States the number of classes `C` (needed with distributions when no class weights imply
    /// it; it must agree with every other source).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let x = [0.0f32; 6];
    /// let y = [0.5f32, 0.5, 0.0, 0.0, 0.0, 1.0];
    /// assert!(SoftmaxFocal::new(2.0).loss(&x, &y, Reduction::Sum).is_err());
    /// assert!(SoftmaxFocal::new(2.0).classes(3).loss(&x, &y, Reduction::Sum).is_ok());
    /// ```
    pub fn classes(mut self, classes: usize) -> Self {
        self.classes = Some(classes);
        self
    }

    /// The `[N, C, S]` layout: `S` positions per image (`h * w` of an `(N, C, H, W)` tensor),
    /// logits of class `c` at position `s` of image `n` at `(n C + c) S + s`; labels, sample
    /// weights and per-row outputs `[N, S]` (distributions `[N, C, S]`). Default 1
    /// (class-last `[rows, C]`). Nothing is transposed in memory.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// // One image, 2 classes, 3 positions: class 0 = [a, b, c], class 1 = [d, e, f].
    /// let nchw = [1.0f32, 2.0, 3.0, 0.0, 0.5, -1.0];
    /// let rows = [1.0f32, 0.0, 2.0, 0.5, 3.0, -1.0];
    /// let y = [0u8, 1, 0];
    /// let f = SoftmaxFocal::new(2.0);
    /// let a = f.spatial(3).loss(&nchw, &y, Reduction::Sum)?;
    /// let b = f.loss(&rows, &y, Reduction::Sum)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn spatial(mut self, positions: usize) -> Self {
        self.spatial = positions;
        self
    }

    /// Runs on `backend` instead of the widest one this CPU has.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Backend, Reduction, SoftmaxFocal};
    /// let (x, y) = ([0.3f32, -0.2, 1.0], [2u8]);
    /// let a = SoftmaxFocal::new(2.0).backend(Backend::Scalar).loss(&x, &y, Reduction::Sum)?;
    /// let b = SoftmaxFocal::new(2.0).loss(&x, &y, Reduction::Sum)?;
    /// assert!((a - b).abs() <= 8.0 * f32::EPSILON * a);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The reduced loss.
    ///
    /// # Errors
    /// Those listed on [`SoftmaxFocal`].
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let x = [0.0f32; 6];
    /// let l = SoftmaxFocal::cross_entropy().loss(&x, &[0u16, 2], Reduction::Mean)?;
    /// assert!((l - 3f32.ln()).abs() <= f32::EPSILON);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn loss<X: Float, T: Label>(
        &self,
        logits: &[X],
        labels: &[T],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        self.reduced_on(&Serial, logits, labels, Out::None, reduction)
    }

    /// The reduced loss, and `grad = d(reduced loss)/d logits` (the layout of the logits) in
    /// the same pass.
    ///
    /// # Errors
    /// Those listed on [`SoftmaxFocal`]; `grad` must have the length of `logits`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let x = [1.0f32, 0.0, -1.0];
    /// let mut g = [0f32; 3];
    /// SoftmaxFocal::cross_entropy().loss_and_grad(&x, &[0u8], &mut g, Reduction::Sum)?;
    /// // cross-entropy: d/dz = p - onehot(y); the gradient of a row sums to 0
    /// assert!(g[0] < 0.0 && (g.iter().sum::<f32>()).abs() < 1e-7);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn loss_and_grad<X: Float, T: Label, G: Float>(
        &self,
        logits: &[X],
        labels: &[T],
        grad: &mut [G],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        let out = Out::Write(G::dst(grad), 1.0);
        self.reduced_on(&Serial, logits, labels, out, reduction)
    }

    /// As [`loss_and_grad`](Self::loss_and_grad), but adds: `grad += d(reduced loss)/dz`.
    ///
    /// # Errors
    /// As `loss_and_grad`. A call that returns an error has not changed `grad`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let x = [1.0f32, 0.0, -1.0];
    /// let (mut once, mut twice) = ([0f32; 3], [0f32; 3]);
    /// let f = SoftmaxFocal::new(2.0);
    /// f.loss_and_grad(&x, &[2u8], &mut once, Reduction::Sum)?;
    /// f.loss_and_grad_accumulate(&x, &[2u8], &mut twice, Reduction::Sum)?;
    /// f.loss_and_grad_accumulate(&x, &[2u8], &mut twice, Reduction::Sum)?;
    /// assert_eq!(twice, once.map(|g| 2.0 * g));
    /// assert!(f.loss_and_grad_accumulate(&x, &[3u8], &mut twice, Reduction::Sum).is_err());
    /// assert_eq!(twice, once.map(|g| 2.0 * g));
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn loss_and_grad_accumulate<X: Float, T: Label, G: Float>(
        &self,
        logits: &[X],
        labels: &[T],
        grad: &mut [G],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        let out = Out::Add(G::dst(grad), 1.0);
        self.reduced_on(&Serial, logits, labels, out, reduction)
    }

    /// The weighted loss of every row, unreduced: `out[r] = l_r` (0 for ignored rows), one
    /// value per row (per position with [`spatial`](Self::spatial), laid out `[N, S]`).
    ///
    /// # Errors
    /// Those listed on [`SoftmaxFocal`]; `out` must have one element per row.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let x = [3.0f32, 0.0, 0.0, 3.0];
    /// let mut l = [0f32; 2];
    /// let f = SoftmaxFocal::new(2.0);
    /// f.loss_per_row(&x, &[0u8, 0], &mut l)?;
    /// assert!(l[1] > l[0]); // the misclassified row dominates
    /// assert_eq!(l[0] + l[1], f.loss(&x, &[0u8, 0], Reduction::Sum)?);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn loss_per_row<X: Float, T: Label, G: Float>(
        &self,
        logits: &[X],
        labels: &[T],
        out: &mut [G],
    ) -> Result<(), Error> {
        self.per_row_on(&Serial, logits, labels, out)
    }

    /// What `PerPositive` divides by for a chunk: the rows not ignored (index labels), or the
    /// sum of the raw labels (distributions), to be summed over the chunks of a batch and
    /// turned into the chunks' gradient factor with [`Reduction::per_positive`]. Equal to the
    /// chunk's [`Partial::positives`] (bit for bit for index labels; distributions are summed
    /// in another order, within the f64 rounding).
    ///
    /// # Errors
    /// [`Error::LabelOutOfRange`] for an index outside `[0, C)` that is not the ignore index
    /// (checked when `C` is known from [`classes`](Self::classes) or the class weights);
    /// [`Error::TargetOutOfRange`] for a distribution's value outside `[0, 1]`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::SoftmaxFocal;
    /// let f = SoftmaxFocal::new(2.0).ignore_index(-100);
    /// assert_eq!(f.positives(&[3i64, -100, 0])?, 2.0);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn positives<T: Label>(&self, labels: &[T]) -> Result<f64, Error> {
        let classes = self.classes.or(self.class_weights.map(<[f32]>::len));
        match T::labels(labels) {
            Labels::Dense(lab) => {
                let mut sum = 0.0;
                if let Some(i) = lab.first_outside_unit() {
                    let c = classes.unwrap_or(lab.len());
                    return Err(Error::target_out_of_range(i, lab.get(i), c, self.spatial));
                }
                for v in lab.iter() {
                    sum += v as f64;
                }
                Ok(sum)
            }
            labels => {
                let mut kept = 0u64;
                for row in 0..labels.len() {
                    let v = labels.class(row);
                    if Some(v) == self.ignore_index {
                        continue;
                    }
                    if let Some(c) = classes
                        && !(0..c as i64).contains(&v)
                    {
                        return Err(Error::LabelOutOfRange {
                            row,
                            label: v,
                            classes: c,
                        });
                    }
                    kept += 1;
                }
                Ok(kept as f64)
            }
        }
    }

    /// One chunk of a larger batch (whole rows; whole images with
    /// [`spatial`](Self::spatial)): its [`Partial`] sums, and its gradient as [`Grad`] asks
    /// (`s` the factor of the reduction applied to the merged partials). The partial's
    /// `elements` are the rows not ignored, its `positives` the sum of the raw labels (the
    /// rows not ignored for index labels), its `weight` the divisor of `WeightedMean`.
    ///
    /// # Errors
    /// Those listed on [`SoftmaxFocal`]; a non-finite gradient factor
    /// ([`Error::InvalidParameter`] named `"Grad::Write"` or `"Grad::Accumulate"`). With
    /// `Grad::Accumulate`, an error leaves the gradient unchanged.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Grad, Reduction, SoftmaxFocal};
    /// let x = [0.2f32, -1.0, 3.0, 0.7];
    /// let y = [1u8, 0];
    /// let f = SoftmaxFocal::new(2.0);
    /// let mut g = [0f32; 4];
    /// let (g0, g1) = g.split_at_mut(2);
    /// let a = f.partial(&x[..2], &y[..1], Grad::Write(g0, 0.5))?;
    /// let b = f.partial(&x[2..], &y[1..], Grad::Write(g1, 0.5))?;
    /// let mut whole = [0f32; 4];
    /// let mean = f.loss_and_grad(&x, &y, &mut whole, Reduction::Mean)?;
    /// assert_eq!(a.merge(b).reduce(Reduction::Mean)?, mean);
    /// assert_eq!(g, whole);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn partial<X: Float, T: Label>(
        &self,
        logits: &[X],
        labels: &[T],
        grad: Grad<'_, X>,
    ) -> Result<Partial, Error> {
        self.partial_on(&Serial, logits, labels, grad)
    }

    /// The reduced loss, `out` written (`loss`, `loss_and_grad`, `..._accumulate`), the
    /// chunks run by `exec`.
    pub(crate) fn reduced_on<E: Exec, X: Float, T: Label>(
        &self,
        exec: &E,
        logits: &[X],
        labels: &[T],
        out: Out<'_>,
        reduction: Reduction,
    ) -> Result<f32, Error> {
        self.execute(exec, X::src(logits), labels, out, Factor::Of(reduction))?
            .reduce(reduction)
    }

    /// [`loss_per_row`](Self::loss_per_row), the chunks run by `exec`.
    pub(crate) fn per_row_on<E: Exec, X: Float, T: Label, G: Float>(
        &self,
        exec: &E,
        logits: &[X],
        labels: &[T],
        out: &mut [G],
    ) -> Result<(), Error> {
        let out = Out::Elementwise(G::dst(out));
        self.execute(exec, X::src(logits), labels, out, Factor::Given(1.0))?;
        Ok(())
    }

    /// [`partial`](Self::partial), the chunks run by `exec`.
    pub(crate) fn partial_on<E: Exec, X: Float, T: Label>(
        &self,
        exec: &E,
        logits: &[X],
        labels: &[T],
        grad: Grad<'_, X>,
    ) -> Result<Partial, Error> {
        let (out, s) = grad.into_out()?;
        self.execute(exec, X::src(logits), labels, out, Factor::Given(s))
    }

    /// Validates, counts the labels, runs one pass, and reports the first NaN logit of a
    /// counted row if the pass saw one; the chunks (whole rows of a class-last batch, whole
    /// images of an `[N, C, S]` one, windows of positions of images larger than
    /// `chunk::WINDOW`) run by `exec`.
    fn execute<T: Label, E: Exec>(
        &self,
        exec: &E,
        logits: Src<'_>,
        labels: &[T],
        sink: Out<'_>,
        factor: Factor,
    ) -> Result<Partial, Error> {
        if let Factor::Of(r) = factor {
            r.factor(0, 0.0, 0.0)?;
        }
        let out = sink.len().map(|n| match sink {
            Out::Elementwise(_) => ("out", n, false),
            _ => ("grad", n, true),
        });
        let job = self.job(logits, T::labels(labels), out)?;
        let isa = self.backend.isa()?;
        let (c, sp) = (job.classes, job.spatial);
        let grid_units = logits.len() / (c * sp);
        let grid = Grid::new(grid_units, c * sp);
        // (No output: the checks and counts write nothing.)
        let none = || (Out::None, 0);
        // The counts and the NaN check chunk by chunk too (folded in the same order), so
        // that they run in parallel; an error is then found again on the whole batch.
        let counts = exec.fold(
            &grid,
            none(),
            Some(Counts::ZERO),
            |k, _| count(isa, &job.units(grid.units(k))).ok(),
            |a, b| Some(a?.merge(b?)),
        );
        let Some(counts) = counts else {
            return Err(count(isa, &job).err().unwrap_or(Error::ZeroClasses));
        };
        if matches!(sink, Out::Add(..)) {
            let nan = |k: usize| has_nan(&job.units(grid.units(k)));
            if exec.fold(&grid, none(), false, |k, _| nan(k), |a, b| a | b)
                && let Some(e) = first_nan(&job)
            {
                return Err(e);
            }
        }
        let scale = match factor {
            Factor::Given(s) => s,
            // `WeightedMean` over weights below 2^-128 overflows f32: the largest factor
            // (the gradient saturates instead of forming `0 * inf`).
            Factor::Of(r) => r
                .factor(counts.rows, counts.positives, counts.weight)?
                .min(f32::MAX as f64) as f32,
        };
        let sink = sink.with_factor(scale);
        // Gradients hold every element, per-row outputs one item per row (`S` per image).
        let per_unit = match sink {
            Out::Elementwise(_) => sp,
            _ => c * sp,
        };
        let job = &job;
        let merge = |a: pass::Sums, b: pass::Sums| pass::Sums {
            loss: a.loss.add(b.loss),
            bad: a.bad | b.bad,
        };
        let zero = pass::Sums::ZERO;
        // Large images in windows of positions (see `chunk`), the same in every call.
        let sums = match Windows::of(grid_units, c, sp) {
            None => exec.fold(
                &grid,
                (sink, per_unit),
                zero,
                |k, mut sink| pass::run(isa, &job.units(grid.units(k)), &mut sink, scale),
                merge,
            ),
            Some(win) => exec.fold_windows(
                &win,
                sink,
                zero,
                |i, p, out| match out {
                    WinOut::Out(mut out) => pass::run(isa, &job.window(i, p), &mut out, scale),
                    WinOut::Split(planes, add) => {
                        pass::run_split(isa, &job.window(i, p), planes, add, scale)
                    }
                },
                merge,
            ),
        };
        if sums.bad
            && let Some(e) = first_nan(job)
        {
            return Err(e);
        }
        Ok(Partial {
            loss: sums.loss,
            positives: counts.positives,
            elements: counts.rows,
            weight: counts.weight,
        })
    }

    /// Validates parameters and lengths.
    fn job<'d>(
        &self,
        logits: Src<'d>,
        labels: Labels<'d>,
        out: Option<(&'static str, usize, bool)>,
    ) -> Result<Job<'d>, Error>
    where
        'a: 'd,
    {
        // (`value` in `f64`: a class count just above 2^24 has no `f32` of its own.)
        let param = |name, value: f64, expected| Error::InvalidParameter {
            name,
            index: None,
            value,
            expected,
        };
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(param("gamma", self.gamma.into(), "finite and >= 0"));
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(param("alpha", self.alpha.into(), "finite and >= 0"));
        }
        if !(self.eps >= 0.0 && self.eps < 1.0) {
            return Err(param("label_smoothing", self.eps.into(), "in [0, 1)"));
        }
        if self.spatial == 0 {
            return Err(param("spatial", 0.0, ">= 1"));
        }
        let sp = self.spatial;
        let mut classes = self.classes;
        if classes == Some(0) {
            return Err(Error::ZeroClasses);
        }
        if let Some(w) = self.class_weights {
            match classes {
                _ if w.is_empty() => return Err(Error::ZeroClasses),
                Some(c) if c != w.len() => {
                    return Err(Error::ClassCountMismatch {
                        what: "class_weights",
                        expected: c,
                        found: w.len(),
                    });
                }
                _ => classes = Some(w.len()),
            }
            check_weights("class_weights", w)?;
        }
        let dense = matches!(labels, Labels::Dense(_));
        let n = logits.len();
        let c = match (classes, dense) {
            (Some(c), _) => c,
            (None, true) => return Err(Error::UnknownClasses),
            (None, false) if labels.len() == 0 => n.max(1),
            (None, false) => {
                if !n.is_multiple_of(labels.len()) || n == 0 {
                    return Err(Error::LengthMismatch {
                        what: "labels",
                        expected: n / labels.len().max(1),
                        found: labels.len(),
                    });
                }
                n / labels.len()
            }
        };
        if c > MAX_CLASSES {
            return Err(param("classes", c as f64, "at most 2^24"));
        }
        let image = c
            .checked_mul(sp)
            .ok_or(param("spatial", sp as f64, "C S <= usize::MAX"))?;
        if !n.is_multiple_of(image) {
            return Err(Error::NotMultipleOfClasses {
                len: n,
                classes: image,
            });
        }
        let rows = n / c;
        check_len("labels", if dense { n } else { rows }, labels.len())?;
        if let Some(w) = self.sample_weights {
            check_len("sample_weights", rows, w.len())?;
            check_weights("sample_weights", w)?;
        }
        if let Some((what, len, grad)) = out {
            check_len(what, if grad { n } else { rows }, len)?;
        }
        Ok(Job {
            x: logits,
            labels,
            classes: c,
            spatial: sp,
            gamma: self.gamma,
            alpha: self.alpha,
            eps: self.eps,
            class_weights: self.class_weights,
            sample_weights: self.sample_weights,
            ignore: self.ignore_index,
            // (Set by the pass from the slices' types.)
            hx: Half::Bf16,
            hg: Half::Bf16,
            large: logits.len() >= pass::LARGE,
            pos: (0, sp),
        })
    }
}

/// The factor of the gradient: given by the caller, or that of a reduction.
#[derive(Clone, Copy)]
enum Factor {
    Given(f32),
    Of(Reduction),
}

/// Validates the labels and counts what the reductions divide by.
fn count(isa: Isa, job: &Job<'_>) -> Result<Counts, Error> {
    let c = job.classes;
    let sp = job.spatial;
    let rows = job.x.len() / c;
    let s = |r: usize| job.sample_weights.map_or(1.0, |s| s[r] as f64);
    let w = |k: usize| job.class_weights.map_or(1.0, |w| w[k] as f64);
    let mut counts = Counts {
        rows: 0,
        positives: 0.0,
        weight: 0.0,
    };
    match job.labels {
        Labels::Dense(lab) => {
            if let Some(i) = lab.first_outside_unit() {
                return Err(Error::target_out_of_range(i, lab.get(i), c, sp));
            }
            counts.rows = rows as u64;
            // One loop per element type (a `match` per element cost 1.4 ns per label).
            fn sums<T: Copy>(
                lab: &[T],
                get: impl Fn(T) -> f32,
                (c, sp, rows): (usize, usize, usize),
                s: impl Fn(usize) -> f64,
                w: impl Fn(usize) -> f64,
                counts: &mut Counts,
            ) {
                for r in 0..rows {
                    let (n, p) = (r / sp, r % sp);
                    let (mut y, mut yw) = (0.0, 0.0);
                    for k in 0..c {
                        let v = get(lab[(n * c + k) * sp + p]) as f64;
                        y += v;
                        yw += v * w(k);
                    }
                    counts.positives += y;
                    counts.weight += s(r) * yw;
                }
            }
            let shape = (c, sp, rows);
            match lab {
                Src::F32(l) => sums(l, |v| v, shape, s, w, &mut counts),
                Src::Bf16(l) => sums(l, bf16_bits_to_f32, shape, s, w, &mut counts),
                Src::F16(l) => sums(l, f16_bits_to_f32, shape, s, w, &mut counts),
            }
        }
        labels => {
            let weighted = job.sample_weights.is_some() || job.class_weights.is_some();
            debug_assert_eq!(labels.len(), rows);
            if !weighted && let Some(n) = pass::tally(isa, labels, c, job.ignore) {
                counts.rows = n;
                counts.weight = n as f64;
                counts.positives = n as f64;
                return Ok(counts);
            }
            // Weighted sums, or a label out of range to find: a block of labels at a time,
            // widened by one typed loop.
            let mut cls = [0i64; 64];
            for r0 in (0..rows).step_by(64) {
                let n = 64.min(rows - r0);
                labels.classes(r0, &mut cls[..n]);
                for (i, &v) in cls[..n].iter().enumerate() {
                    if Some(v) == job.ignore {
                        continue;
                    }
                    if !(0..c as i64).contains(&v) {
                        return Err(Error::LabelOutOfRange {
                            row: r0 + i,
                            label: v,
                            classes: c,
                        });
                    }
                    counts.rows += 1;
                    if weighted {
                        counts.weight += s(r0 + i) * w(v as usize);
                    }
                }
            }
            if !weighted {
                counts.weight = counts.rows as f64;
            }
            counts.positives = counts.rows as f64;
        }
    }
    Ok(counts)
}

/// Whether any logit is NaN (whole chunks, so that it vectorizes).
fn has_nan(job: &Job<'_>) -> bool {
    job.x.has_nan()
}

/// The first NaN logit of a counted row, in index order.
fn first_nan(job: &Job<'_>) -> Option<Error> {
    let (c, sp) = (job.classes, job.spatial);
    let dense = matches!(job.labels, Labels::Dense(_));
    for (i, v) in job.x.iter().enumerate() {
        let row = (i / (c * sp)) * sp + i % sp;
        if v.is_nan() && (dense || Some(job.labels.class(row)) != job.ignore) {
            return Some(Error::nan_logit(i, c, sp));
        }
    }
    None
}
