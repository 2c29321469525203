//! Reading candle storage: a contiguous slice in place, or the elements of a strided layout
//! gathered in order; the op's cached gradient; error conversion.

use std::borrow::Cow;
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Result, Shape, Tensor, WithDType};
use focal_loss::Float;

/// The elements of `layout` in `v`, in row-major order: borrowed when contiguous, else
/// gathered by walking the multi-index (the last dimension fastest).
pub(crate) fn elements<'a, T: Copy>(v: &'a [T], layout: &Layout) -> Cow<'a, [T]> {
    if let Some((start, end)) = layout.contiguous_offsets() {
        return Cow::Borrowed(&v[start..end]);
    }
    let (dims, stride) = (layout.dims(), layout.stride());
    let n: usize = dims.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; dims.len()];
    let mut off = layout.start_offset();
    for _ in 0..n {
        out.push(v[off]);
        // Increment the multi-index, last dimension first.
        for d in (0..dims.len()).rev() {
            idx[d] += 1;
            off += stride[d];
            if idx[d] < dims[d] {
                break;
            }
            off -= stride[d] * dims[d];
            idx[d] = 0;
        }
    }
    Cow::Owned(out)
}

/// A kernel error as a candle error.
pub(crate) fn wrap(e: focal_loss::Error) -> candle_core::Error {
    candle_core::Error::wrap(e)
}

/// The gradient a forward pass wrote, for the backward pass.
#[derive(Default)]
pub(crate) struct Cached(Mutex<Option<Tensor>>);

impl Cached {
    pub(crate) fn put(&self, g: Tensor) -> Result<()> {
        *self
            .0
            .lock()
            .map_err(|_| candle_core::Error::msg("poisoned gradient cache"))? = Some(g);
        Ok(())
    }

    /// `grad_res` times the kept gradient.
    pub(crate) fn backward(&self, name: &str, grad_res: &Tensor) -> Result<Tensor> {
        let g = self
            .0
            .lock()
            .map_err(|_| candle_core::Error::msg("poisoned gradient cache"))?
            .clone();
        match g {
            Some(g) => g.broadcast_mul(grad_res),
            None => Err(candle_core::Error::msg(format!(
                "{name}: no gradient kept (the logits did not track gradients in the forward pass)"
            ))),
        }
    }
}

/// A loss module: what each family's op does with its storages.
pub(crate) trait Loss: Clone + Send + Sync + 'static {
    /// The op's name (in candle's errors).
    const NAME: &'static str;
    /// Checks the shapes and dtypes and computes the loss, through [`compute`].
    fn forward(
        &self,
        step: &Step,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)>;
}

/// One application of a loss: whether to keep a gradient, the gradient, and this batch's
/// per-row sample weights (`forward_weighted`).
pub(crate) struct Step {
    train: bool,
    kept: Cached,
    pub(crate) sample_weights: Option<Vec<f32>>,
}

/// The loss `f` computes on logits of the shape `l1`, as a scalar storage of the logits'
/// dtype: with the gradient (kept for the backward pass) when training, else alone.
pub(crate) fn compute<X: Float + WithDType>(
    step: &Step,
    l1: &Layout,
    f: impl FnOnce(Option<&mut [X]>) -> core::result::Result<f32, focal_loss::Error>,
) -> Result<(CpuStorage, Shape)> {
    let loss = if step.train {
        let mut g = vec![X::from_f32(0.0); l1.shape().elem_count()];
        let loss = f(Some(&mut g)).map_err(wrap)?;
        step.kept
            .put(Tensor::from_vec(g, l1.shape(), &Device::Cpu)?)?;
        loss
    } else {
        f(None).map_err(wrap)?
    };
    Ok((
        X::to_cpu_storage_owned(vec![X::from_f32(loss)]),
        Shape::from(()),
    ))
}

/// The candle op of a loss.
struct Op<F> {
    loss: F,
    step: Step,
}

impl<F: Loss> CustomOp2 for Op<F> {
    fn name(&self) -> &'static str {
        F::NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.loss.forward(&self.step, s1, l1, s2, l2)
    }

    fn bwd(
        &self,
        _logits: &Tensor,
        _rhs: &Tensor,
        _loss: &Tensor,
        grad_loss: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(self.step.kept.backward(F::NAME, grad_loss)?), None))
    }
}

/// `loss` of `logits` against `rhs`: differentiable (the fused pass, its gradient kept) when
/// the logits track gradients, the loss alone otherwise.
pub(crate) fn apply<F: Loss>(loss: &F, logits: &Tensor, rhs: &Tensor) -> Result<Tensor> {
    apply_weighted(loss, logits, rhs, None)
}

/// [`apply`] with this batch's sample weights (already checked against `rows`, the shape
/// they must have): read as `f32` in row-major order, from any dtype, layout or device.
pub(crate) fn apply_weighted<F: Loss>(
    loss: &F,
    logits: &Tensor,
    rhs: &Tensor,
    weights: Option<(&Tensor, &[usize])>,
) -> Result<Tensor> {
    let sample_weights = match weights {
        None => None,
        Some((w, rows)) => {
            if w.dims() != rows {
                return Err(candle_core::Error::ShapeMismatchBinaryOp {
                    lhs: logits.shape().clone(),
                    rhs: w.shape().clone(),
                    op: F::NAME,
                }
                .bt());
            }
            Some(w.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
        }
    };
    let train = logits.track_op();
    let op = Op {
        loss: loss.clone(),
        step: Step {
            train,
            kept: Cached::default(),
            sample_weights,
        },
    };
    if train {
        logits.apply_op2(rhs, op)
    } else {
        logits.apply_op2_no_bwd(rhs, &op)
    }
}
