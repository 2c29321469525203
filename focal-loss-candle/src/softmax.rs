//! The softmax family as a candle op.

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Device, Error, Layout, Result, Shape, Tensor, WithDType};
use focal_loss::half::{bf16, f16};
use focal_loss::{Float, Label, Reduction, SoftmaxFocal, SoftmaxFocalConfig};

use crate::data::{Cached, elements, wrap};

/// The softmax focal family (cross-entropy, softmax focal, class-balanced; `ignore_index`)
/// as a candle loss: a [`SoftmaxFocalConfig`] that owns its class weights and a
/// [`Reduction`], `Send + Sync`, cheap to clone, to keep in a model.
///
/// `forward(logits, labels)` takes logits `[N, C]` or `[N, C, d1, ..., dk]` (PyTorch's
/// layout, read in place: the `[N, C, S]` kernel) and class indices `[N]` or
/// `[N, d1, ..., dk]` (`U8`, `U32`, `I64`; the `ignore_index` row is skipped), or an `F32`
/// distribution of the logits' shape; it returns the reduced loss as a scalar of the logits'
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
    /// per-row sample weights are per batch, not part of the module: they are dropped.
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
        let op = Op {
            loss: self.clone(),
            train: logits.track_op(),
            kept: Cached::default(),
        };
        if op.train {
            logits.apply_op2(labels, op)
        } else {
            logits.apply_op2_no_bwd(labels, &op)
        }
    }
}

struct Op {
    loss: SoftmaxFocalLoss,
    train: bool,
    kept: Cached,
}

const NAME: &str = "focal_loss_softmax";

impl Op {
    fn logits<X: Float + WithDType>(
        &self,
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
                    op: NAME,
                }
                .bt())
            }
        };
        match s2 {
            CpuStorage::U8(y) => want(&index_shape).and_then(|_| self.run(x, &elements(y, l2), l1)),
            CpuStorage::U32(y) => {
                want(&index_shape).and_then(|_| self.run(x, &elements(y, l2), l1))
            }
            CpuStorage::I64(y) => {
                want(&index_shape).and_then(|_| self.run(x, &elements(y, l2), l1))
            }
            CpuStorage::F32(y) => want(dims).and_then(|_| self.run(x, &elements(y, l2), l1)),
            other => Err(Error::UnsupportedDTypeForOp(other.dtype(), NAME).bt()),
        }
    }

    fn run<X: Float + WithDType, T: Label>(
        &self,
        x: &[X],
        y: &[T],
        l1: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = l1.dims();
        let spatial = dims[2..].iter().product::<usize>().max(1);
        let f = self
            .loss
            .config
            .softmax_focal()
            .classes(dims[1])
            .spatial(spatial);
        let r = self.loss.reduction;
        let loss = if self.train {
            let mut g = vec![X::from_f32(0.0); x.len()];
            let loss = f.loss_and_grad(x, y, &mut g, r).map_err(wrap)?;
            self.kept
                .put(Tensor::from_vec(g, l1.shape(), &Device::Cpu)?)?;
            loss
        } else {
            f.loss(x, y, r).map_err(wrap)?
        };
        Ok((
            X::to_cpu_storage_owned(vec![X::from_f32(loss)]),
            Shape::from(()),
        ))
    }
}

impl CustomOp2 for Op {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(
        &self,
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
            CpuStorage::F32(x) => self.logits::<f32>(&elements(x, l1), l1, s2, l2),
            CpuStorage::BF16(x) => self.logits::<bf16>(&elements(x, l1), l1, s2, l2),
            CpuStorage::F16(x) => self.logits::<f16>(&elements(x, l1), l1, s2, l2),
            other => Err(Error::UnsupportedDTypeForOp(other.dtype(), NAME).bt()),
        }
    }

    fn bwd(
        &self,
        _logits: &Tensor,
        _labels: &Tensor,
        _loss: &Tensor,
        grad_loss: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(self.kept.backward(NAME, grad_loss)?), None))
    }
}
