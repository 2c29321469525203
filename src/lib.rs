//! Exact, fused focal losses for `no_std` Rust: the sigmoid family and the softmax family.
//!
//! On flat row-major `[rows, classes]` `f32` slices, without allocating, this crate computes
//! binary cross-entropy with logits, alpha-balanced cross-entropy, the sigmoid focal loss of
//! Lin et al. (2017) in its three conventions, with per-class, positive and per-row weights,
//! label smoothing and the reductions the peers use, and writes the loss and its gradient in
//! one pass. [`SoftmaxFocal`] does the same for softmax cross-entropy and the softmax focal
//! loss (class indices or distributions, `ignore_index`, the `[N, C, S]` layout).
//! [`class_balanced_weights`] computes the weights of Cui et al. (2019).
//!
//! | item | what |
//! |---|---|
//! | [`Focal`] | the loss: builder, `loss`, `loss_and_grad`, `loss_elementwise`, `partial` |
//! | [`Modulator`] | `Linear` (torchvision) / `Geometric` (original TF) / `Separable` (kornia) |
//! | [`SoftmaxFocal`] | the softmax family: builder, `loss`, `loss_and_grad`, `loss_per_row`, `partial` |
//! | [`Label`] | the label types of `SoftmaxFocal`: `u8`..`i64` indices, `f32`/`bf16`/`f16` distributions |
//! | [`Reduction`] | `Sum`, `Mean`, `PerPositive`, `WeightedMean`, `Scale(s)` |
//! | [`Partial`], [`Grad`] | chunks of a batch, combined exactly |
//! | [`class_balanced_weights`] | `(1 - beta) / (1 - beta^n)`, normalised ([`EmptyClass`]: classes without examples) |
//! | [`FocalConfig`], [`SoftmaxFocalConfig`] | owned, `'static` forms of the builders (see [`config`]) |
//! | [`Error`] | every way a call can be wrong |
//!
//! Everything is exact where the peers are not: the result is within a few ULP of the true
//! value for every finite logit (torchvision returns 0 for many `5 < |x| < 88`), finite for
//! every `gamma >= 0` (PyTorch implementations return NaN gradients for `gamma < 1`), and
//! gives the limits at `x = +-inf`.
//!
//! ```
//! use focal_loss::{class_balanced_weights, Focal, Modulator, Reduction};
//! let counts = [120_000u64, 800, 9];
//! let mut w = [0f32; 3];
//! class_balanced_weights(&counts, 0.9999, &mut w)?;
//! let logits = [3.0f32, -2.0, -5.0, 0.5, 1.0, -0.2];
//! let targets = [1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0];
//! let mut grad = [0f32; 6];
//! let focal = Focal::new(0.5).class_weights(&w).modulator(Modulator::Geometric);
//! let loss = focal.loss_and_grad(&logits, &targets, &mut grad, Reduction::PerPositive)?;
//! assert!(loss.is_finite() && grad[2] < grad[0]);
//! # Ok::<(), focal_loss::Error>(())
//! ```
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod backend;
mod chunk;
mod class_balanced;
pub mod config;
mod error;
mod float;
mod label;
mod math;
#[cfg(feature = "rayon")]
pub mod par;
mod reduce;
mod sigmoid;
mod softmax;
mod sum;
mod target;

pub use backend::Backend;
pub use class_balanced::{EmptyClass, class_balanced_weights, class_balanced_weights_with};
pub use config::{FocalConfig, SoftmaxFocalConfig};
pub use error::Error;
pub use float::Float;
/// The `half` crate, whose `bf16` and `f16` the entry points take (re-exported so that a
/// caller names the same version).
pub use half;
pub use label::Label;
pub use reduce::{Partial, PartialParts, Reduction};
pub use sigmoid::{Focal, Grad, Modulator};
pub use softmax::SoftmaxFocal;
pub use target::Target;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
