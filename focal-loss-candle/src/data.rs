//! Reading candle storage: a contiguous slice in place, or the elements of a strided layout
//! gathered in order; the op's cached gradient; error conversion.

use std::borrow::Cow;
use std::sync::Mutex;

use candle_core::{Layout, Result, Tensor};

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
