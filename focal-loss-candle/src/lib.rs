//! [candle](https://github.com/huggingface/candle) adapters for `focal-loss`: the sigmoid and
//! softmax focal families as `CustomOp2`s, whose forward pass runs the fused loss-and-gradient
//! kernel and whose backward pass returns the gradient it wrote.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use focal_loss::{Focal, Reduction};
//! use focal_loss_candle::SigmoidFocalLoss;
//!
//! let loss_fn = SigmoidFocalLoss::new(&Focal::torchvision(0.25, 2.0), Reduction::Mean);
//! let logits = Var::new(&[[2.0f32, -1.0, 0.5], [0.1, 3.0, -2.0]], &Device::Cpu)?;
//! let targets = Tensor::new(&[[1u8, 0, 0], [0, 1, 0]], &Device::Cpu)?;
//! let loss = loss_fn.forward(&logits, &targets)?;
//! let grads = loss.backward()?;
//! let g = grads.get(&logits).expect("a gradient for the logits");
//! assert_eq!(g.dims(), &[2, 3]);
//! # Ok::<(), candle_core::Error>(())
//! ```
//!
//! # Forward and backward
//! A loss module's forward pass does not know whether a backward pass will follow. These ops
//! decide from the logits: when they take part in autograd
//! ([`Tensor::track_op`](candle_core::Tensor::track_op): a `Var`, or computed from one), the
//! forward pass computes the loss and its gradient in one fused pass and keeps the gradient in
//! the op, and the backward pass multiplies it by the incoming gradient (a scalar: the losses
//! are reduced); otherwise (evaluation, or tensors detached from the graph) it computes the
//! loss alone. So training costs one pass over the logits and evaluation writes no gradient.
//!
//! # Data
//! CPU tensors; logits `F32`, `BF16` or `F16` (the loss and the gradient have the logits'
//! dtype); sigmoid targets `U8`, `F32`, `BF16` or `F16` with the logits' shape; softmax labels
//! `U8`, `U32` or `I64` class indices of shape `[N, d1, ..]` for logits `[N, C, d1, ..]`, or a
//! distribution (`F32`, `BF16`, `F16`) with the logits' shape; per-row sample weights per
//! batch through `forward_weighted` (any float dtype). Any layout: contiguous tensors are read in
//! place, strided ones (transposed, narrowed, broadcast) are gathered first. A wrong shape or
//! dtype is a candle error; an error of the kernel (a NaN logit, a label out of range) is a
//! candle error wrapping [`focal_loss::Error`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod data;
mod sigmoid;
mod softmax;

pub use sigmoid::SigmoidFocalLoss;
pub use softmax::SoftmaxFocalLoss;
