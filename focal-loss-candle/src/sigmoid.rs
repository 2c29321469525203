//! The sigmoid family as a candle op.

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Error, Layout, Result, Shape, Tensor, WithDType};
use focal_loss::half::{bf16, f16};
use focal_loss::{Float, Focal, FocalConfig, Reduction, Target};

use crate::data::{Loss, Step, apply, apply_weighted, compute, elements};

/// The sigmoid focal family (BCE with logits, alpha-balanced, focal, class-balanced) as a
/// candle loss: a [`FocalConfig`] that owns its weights and a [`Reduction`], `Send + Sync`,
/// cheap to clone, to keep in a model.
///
/// `forward(logits, targets)` takes logits of any shape whose last dimension is the classes
/// (`[rows, classes]`, or `[N, A, classes]` for anchors), targets of the same shape, and
/// returns the reduced loss as a scalar of the logits' dtype. See the [crate
/// docs](crate#forward-and-backward) for how the gradient is computed.
///
/// # Numerics
/// Those of [`Focal`]: loss and gradient within about 8 ULP of `f32` against an f64 oracle
/// (`bf16`/`f16`: the `f32` result rounded once). The backward pass multiplies the kept
/// gradient by the incoming one in the logits' dtype (exact for the usual `1`).
///
/// # Example
/// ```
/// use candle_core::{DType, Device, Tensor, Var};
/// use focal_loss::{Focal, Reduction};
/// use focal_loss_candle::SigmoidFocalLoss;
/// // bf16 logits and gradient, byte targets.
/// let x = Var::from_tensor(&Tensor::new(&[[0.5f32, -2.0], [1.0, 0.0]], &Device::Cpu)?.to_dtype(DType::BF16)?)?;
/// let t = Tensor::new(&[[1u8, 0], [0, 1]], &Device::Cpu)?;
/// let loss = SigmoidFocalLoss::new(&Focal::new(2.0), Reduction::Sum).forward(&x, &t)?;
/// assert_eq!(loss.dtype(), DType::BF16);
/// let g = loss.backward()?.get(&x).unwrap().to_dtype(DType::F32)?.to_vec2::<f32>()?;
/// assert!(g[0][0] < 0.0 && g[0][1] > 0.0);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SigmoidFocalLoss {
    config: FocalConfig<Arc<[f32]>>,
    reduction: Reduction,
}

impl SigmoidFocalLoss {
    /// The loss of `focal` (its weights copied into shared owners) reduced by `reduction`.
    /// Per-row sample weights are per batch, not part of the module: they are dropped here;
    /// pass each batch's to [`forward_weighted`](Self::forward_weighted).
    pub fn new(focal: &Focal<'_>, reduction: Reduction) -> Self {
        Self::from_config(FocalConfig::from_focal(focal, Arc::from), reduction)
    }

    /// The loss of an owned configuration.
    pub fn from_config(config: FocalConfig<Arc<[f32]>>, reduction: Reduction) -> Self {
        SigmoidFocalLoss { config, reduction }
    }

    /// The configuration.
    pub fn config(&self) -> &FocalConfig<Arc<[f32]>> {
        &self.config
    }

    /// The reduction.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// The reduced loss of `logits` against `targets` (same shape), differentiable with
    /// respect to `logits` when they track gradients.
    ///
    /// # Errors
    /// Shapes that differ, a dtype other than those listed in the [crate docs](crate#data),
    /// a non-CPU tensor, or a [`focal_loss::Error`] of the kernel, wrapped.
    pub fn forward(&self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        apply(self, logits, targets)
    }

    /// [`forward`](Self::forward) with this batch's per-row sample weights `s_r`: one per
    /// row, of the logits' shape without the class dimension (`[rows]`, or `[N, A]` for
    /// logits `[N, A, classes]`; a scalar for rank-1 logits, one row), any float dtype,
    /// layout or device (read as `f32`). They
    /// are constants of the loss (no gradient flows to them, as with torch's `weight`);
    /// `Reduction::WeightedMean` divides by the sum of the element weights.
    ///
    /// # Errors
    /// Those of [`forward`](Self::forward); weights of another shape; a negative or
    /// non-finite weight ([`focal_loss::Error::InvalidParameter`], wrapped).
    ///
    /// # Example
    /// ```
    /// use candle_core::{Device, Tensor, Var};
    /// use focal_loss::{Focal, Reduction};
    /// use focal_loss_candle::SigmoidFocalLoss;
    /// let x = Var::new(&[[0.5f32, -2.0], [1.0, 0.0]], &Device::Cpu)?;
    /// let t = Tensor::new(&[[1u8, 0], [0, 1]], &Device::Cpu)?;
    /// let loss_fn = SigmoidFocalLoss::new(&Focal::new(2.0), Reduction::Sum);
    /// let s = Tensor::new(&[1.0f32, 0.0], &Device::Cpu)?; // the second row does not count
    /// let l = loss_fn.forward_weighted(&x, &t, &s)?;
    /// let first = loss_fn.forward(&x.narrow(0, 0, 1)?, &t.narrow(0, 0, 1)?)?;
    /// assert_eq!(l.to_scalar::<f32>()?, first.to_scalar::<f32>()?);
    /// let g = l.backward()?.get(&x).unwrap().to_vec2::<f32>()?;
    /// assert_eq!(g[1], [0.0, 0.0]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn forward_weighted(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        sample_weights: &Tensor,
    ) -> Result<Tensor> {
        let dims = logits.dims();
        let rows = &dims[..dims.len().saturating_sub(1)];
        apply_weighted(self, logits, targets, Some((sample_weights, rows)))
    }
}

impl SigmoidFocalLoss {
    fn logits<X: Float + WithDType>(
        &self,
        step: &Step,
        x: &[X],
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        match s2 {
            CpuStorage::U8(t) => self.run(step, x, &elements(t, l2), l1),
            CpuStorage::F32(t) => self.run(step, x, &elements(t, l2), l1),
            CpuStorage::BF16(t) => self.run(step, x, &elements(t, l2), l1),
            CpuStorage::F16(t) => self.run(step, x, &elements(t, l2), l1),
            other => Err(Error::UnsupportedDTypeForOp(other.dtype(), Self::NAME).bt()),
        }
    }

    fn run<X: Float + WithDType, T: Target>(
        &self,
        step: &Step,
        x: &[X],
        t: &[T],
        l1: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let classes = l1.dims().last().copied().unwrap_or(1).max(1);
        let mut f = self.config.focal().classes(classes);
        if let Some(s) = &step.sample_weights {
            f = f.sample_weights(s);
        }
        let r = self.reduction;
        compute::<X>(step, l1, |g| match g {
            Some(g) => f.loss_and_grad(x, t, g, r),
            None => f.loss(x, t, r),
        })
    }
}

impl Loss for SigmoidFocalLoss {
    const NAME: &'static str = "focal_loss_sigmoid";

    fn forward(
        &self,
        step: &Step,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            return Err(Error::ShapeMismatchBinaryOp {
                lhs: l1.shape().clone(),
                rhs: l2.shape().clone(),
                op: Self::NAME,
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
