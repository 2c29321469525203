//! The softmax family as a candle op.

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Error, Layout, Result, Shape, Tensor, WithDType};
use focal_loss::half::{bf16, f16};
use focal_loss::{Float, Label, Reduction, SoftmaxFocal, SoftmaxFocalConfig};

use crate::data::{Loss, Step, apply, apply_weighted, compute, elements};

/// The softmax focal family (cross-entropy, softmax focal, class-balanced; `ignore_index`)
/// as a candle loss: a [`SoftmaxFocalConfig`] that owns its class weights and a
/// [`Reduction`], `Send + Sync`, cheap to clone, to keep in a model.
///
/// `forward(logits, labels)` takes logits `[N, C]` or `[N, C, d1, ..., dk]` (PyTorch's
/// layout, read in place: the `[N, C, S]` kernel) and class indices `[N]` or
/// `[N, d1, ..., dk]` (`U8`, `U32`, `I64`; the `ignore_index` row is skipped), or a
/// distribution of the logits' shape (`F32`, `BF16`, `F16`); it returns the reduced loss as a scalar of the logits'
/// dtype.
///
/// # Numerics
/// Those of [`SoftmaxFocal`]: within `8 + gamma` ULP of `f32` beyond the conditioning, `1 - p`
/// of the largest class never formed by subtraction.
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use focal_loss::{Reduction, SoftmaxFocal};
/// use focal_loss_candle::SoftmaxFocalLoss;
/// let x = Var::new(&[[2.0f32, 0.5, -1.0], [0.0, 0.0, 3.0]], &Device::Cpu)?;
/// let y = Tensor::new(&[0i64, -100], &Device::Cpu)?;
/// let ce = SoftmaxFocalLoss::new(&SoftmaxFocal::cross_entropy().ignore_index(-100), Reduction::Mean);
/// let loss = ce.forward(&x, &y)?;
/// let g = loss.backward()?.get(&x).unwrap().to_vec2::<f32>()?;
/// assert_eq!(g[1], [0.0, 0.0, 0.0]); // the ignored row
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SoftmaxFocalLoss {
    config: SoftmaxFocalConfig<Arc<[f32]>>,
    reduction: Reduction,
}

impl SoftmaxFocalLoss {
    /// The loss of `sf` (its class weights copied into a shared owner) reduced by
    /// `reduction`. Its `classes` and `spatial` settings are taken from each call's shapes;
    /// per-row sample weights are per batch, not part of the module: they are dropped here;
    /// pass each batch's to [`forward_weighted`](Self::forward_weighted).
    pub fn new(sf: &SoftmaxFocal<'_>, reduction: Reduction) -> Self {
        Self::from_config(
            SoftmaxFocalConfig::from_softmax_focal(sf, Arc::from),
            reduction,
        )
    }

    /// The loss of an owned configuration.
    pub fn from_config(config: SoftmaxFocalConfig<Arc<[f32]>>, reduction: Reduction) -> Self {
        SoftmaxFocalLoss { config, reduction }
    }

    /// The configuration.
    pub fn config(&self) -> &SoftmaxFocalConfig<Arc<[f32]>> {
        &self.config
    }

    /// The reduction.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// The reduced loss of `logits` against `labels`, differentiable with respect to `logits`
    /// when they track gradients.
    ///
    /// # Errors
    /// Logits of rank below 2, labels of the wrong shape or dtype, a non-CPU tensor, or a
    /// [`focal_loss::Error`] of the kernel (a label out of range, a NaN logit), wrapped.
    pub fn forward(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        apply(self, logits, labels)
    }

    /// [`forward`](Self::forward) with this batch's per-row sample weights `s_r`: one per row
    /// or position, of the index labels' shape `[N]` or `[N, d1, ..., dk]`, any float dtype,
    /// layout or device (read as `f32`). They are constants of the loss (no gradient flows
    /// to them); `Reduction::WeightedMean` divides by `sum s_r w_{y_r}` over the rows not
    /// ignored.
    ///
    /// # Errors
    /// Those of [`forward`](Self::forward); weights of another shape; a negative or
    /// non-finite weight ([`focal_loss::Error::InvalidParameter`], wrapped).
    ///
    /// # Example
    /// ```
    /// use candle_core::{Device, Tensor, Var};
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// use focal_loss_candle::SoftmaxFocalLoss;
    /// let x = Var::new(&[[2.0f32, 0.5, -1.0], [0.0, 0.0, 3.0]], &Device::Cpu)?;
    /// let y = Tensor::new(&[0u32, 1], &Device::Cpu)?;
    /// let ce = SoftmaxFocalLoss::new(&SoftmaxFocal::cross_entropy(), Reduction::WeightedMean);
    /// let s = Tensor::new(&[3.0f32, 1.0], &Device::Cpu)?;
    /// let l = ce.forward_weighted(&x, &y, &s)?.to_scalar::<f32>()?;
    /// let each = SoftmaxFocalLoss::new(&SoftmaxFocal::cross_entropy(), Reduction::Sum);
    /// let (a, b) = (
    ///     each.forward(&x.narrow(0, 0, 1)?, &y.narrow(0, 0, 1)?)?.to_scalar::<f32>()?,
    ///     each.forward(&x.narrow(0, 1, 1)?, &y.narrow(0, 1, 1)?)?.to_scalar::<f32>()?,
    /// );
    /// assert!((l - (3.0 * a + b) / 4.0).abs() <= 1e-6 * l);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn forward_weighted(
        &self,
        logits: &Tensor,
        labels: &Tensor,
        sample_weights: &Tensor,
    ) -> Result<Tensor> {
        let dims = logits.dims();
        if dims.len() < 2 {
            // (The error `forward` gives, before the weights' shape is compared.)
            return apply(self, logits, labels);
        }
        let rows: Vec<usize> = dims[..1].iter().chain(&dims[2..]).copied().collect();
        apply_weighted(self, logits, labels, Some((sample_weights, &rows)))
    }
}

impl SoftmaxFocalLoss {
    fn logits<X: Float + WithDType>(
        &self,
        step: &Step,
        x: &[X],
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = l1.dims();
        let index_shape: Vec<usize> = dims[..1].iter().chain(&dims[2..]).copied().collect();
        let want = |shape: &[usize]| -> Result<()> {
            if l2.dims() == shape {
                Ok(())
            } else {
                Err(Error::ShapeMismatchBinaryOp {
                    lhs: l1.shape().clone(),
                    rhs: l2.shape().clone(),
                    op: Self::NAME,
                }
                .bt())
            }
        };
        match s2 {
            CpuStorage::U8(y) => {
                want(&index_shape).and_then(|_| self.run(step, x, &elements(y, l2), l1))
            }
            CpuStorage::U32(y) => {
                want(&index_shape).and_then(|_| self.run(step, x, &elements(y, l2), l1))
            }
            CpuStorage::I64(y) => {
                want(&index_shape).and_then(|_| self.run(step, x, &elements(y, l2), l1))
            }
            CpuStorage::F32(y) => want(dims).and_then(|_| self.run(step, x, &elements(y, l2), l1)),
            CpuStorage::BF16(y) => want(dims).and_then(|_| self.run(step, x, &elements(y, l2), l1)),
            CpuStorage::F16(y) => want(dims).and_then(|_| self.run(step, x, &elements(y, l2), l1)),
            other => Err(Error::UnsupportedDTypeForOp(other.dtype(), Self::NAME).bt()),
        }
    }

    fn run<X: Float + WithDType, T: Label>(
        &self,
        step: &Step,
        x: &[X],
        y: &[T],
        l1: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = l1.dims();
        let spatial = dims[2..].iter().product::<usize>().max(1);
        let mut f = self
            .config
            .softmax_focal()
            .classes(dims[1])
            .spatial(spatial);
        if let Some(s) = &step.sample_weights {
            f = f.sample_weights(s);
        }
        let r = self.reduction;
        compute::<X>(step, l1, |g| match g {
            Some(g) => f.loss_and_grad(x, y, g, r),
            None => f.loss(x, y, r),
        })
    }
}

impl Loss for SoftmaxFocalLoss {
    const NAME: &'static str = "focal_loss_softmax";

    fn forward(
        &self,
        step: &Step,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if l1.dims().len() < 2 {
            return Err(Error::UnexpectedNumberOfDims {
                expected: 2,
                got: l1.dims().len(),
                shape: l1.shape().clone(),
            }
            .bt());
        }
        match s1 {
            CpuStorage::F32(x) => self.logits::<f32>(step, &elements(x, l1), l1, s2, l2),
            CpuStorage::BF16(x) => self.logits::<bf16>(step, &elements(x, l1), l1, s2, l2),
            CpuStorage::F16(x) => self.logits::<f16>(step, &elements(x, l1), l1, s2, l2),
            other => Err(Error::UnsupportedDTypeForOp(other.dtype(), Self::NAME).bt()),
        }
    }
}
