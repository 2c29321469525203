//! The model both tasks train: logits `z = W x + b` over `DIM` features, Adam, mini-batches.
//! The loss and its gradient with respect to `z` come from the caller (the crate's kernel);
//! this file holds the rest of a training step.

use std::time::{Duration, Instant};

use crate::data::Rng;

/// Feature dimensions (a multiple of 8: see `Linear::forward`).
pub const DIM: usize = 64;
const _: () = assert!(DIM.is_multiple_of(8));

/// Rows per mini-batch.
pub const BATCH: usize = 512;

/// A linear classifier with its Adam state.
pub struct Linear {
    classes: usize,
    w: Vec<f32>,
    b: Vec<f32>,
    adam_w: Adam,
    adam_b: Adam,
    gw: Vec<f32>,
    gb: Vec<f32>,
}

impl Linear {
    /// Small random weights, zero biases.
    pub fn new(classes: usize, rng: &mut Rng) -> Linear {
        let w: Vec<f32> = (0..classes * DIM)
            .map(|_| (rng.normal() * 0.01) as f32)
            .collect();
        Linear {
            classes,
            adam_w: Adam::new(w.len()),
            adam_b: Adam::new(classes),
            gw: vec![0.0; w.len()],
            gb: vec![0.0; classes],
            w,
            b: vec![0.0; classes],
        }
    }

    /// `logits[i, c] = W[c] . x[i] + b[c]` for every row of `x` (`[rows, DIM]`).
    pub fn forward(&self, x: &[f32], logits: &mut [f32]) {
        for (xr, zr) in x
            .chunks_exact(DIM)
            .zip(logits.chunks_exact_mut(self.classes))
        {
            for ((z, wr), bias) in zr.iter_mut().zip(self.w.chunks_exact(DIM)).zip(&self.b) {
                // Eight partial sums, so that the compiler vectorises the dot product.
                let mut acc = [0f32; 8];
                for (xs, ws) in xr.chunks_exact(8).zip(wr.chunks_exact(8)) {
                    for k in 0..8 {
                        acc[k] += xs[k] * ws[k];
                    }
                }
                *z = acc.iter().sum::<f32>() + bias;
            }
        }
    }

    /// One Adam step from `grad = dL/dz` (`[rows, C]`) of the batch `x`: back through
    /// `z = W x + b`, then update.
    pub fn step(&mut self, x: &[f32], grad: &[f32], lr: f32) {
        self.gw.fill(0.0);
        self.gb.fill(0.0);
        for (xr, gr) in x.chunks_exact(DIM).zip(grad.chunks_exact(self.classes)) {
            for ((gwr, gb), &g) in self.gw.chunks_exact_mut(DIM).zip(&mut self.gb).zip(gr) {
                *gb += g;
                for (a, &xv) in gwr.iter_mut().zip(xr) {
                    *a += g * xv;
                }
            }
        }
        self.adam_w.step(&mut self.w, &self.gw, lr);
        self.adam_b.step(&mut self.b, &self.gb, lr);
    }
}

/// Adam (beta1 0.9, beta2 0.999) on one parameter slice.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    fn new(n: usize) -> Adam {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }
    fn step(&mut self, p: &mut [f32], g: &[f32], lr: f32) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        self.t += 1;
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for ((p, &g), (m, v)) in p.iter_mut().zip(g).zip(self.m.iter_mut().zip(&mut self.v)) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
        }
    }
}

/// Trains `model` on the rows of `x` for `epochs` epochs of shuffled mini-batches of `BATCH`
/// rows (the last partial batch of an epoch is skipped). The learning rate falls from `lr` to
/// `lr / 6` over the run, as `lr / (1 + 5 t)` with `t` the fraction of the steps done. For each
/// batch, `loss_and_grad(rows, logits, grad)` gets the indices of the batch's rows and their
/// logits, and writes `dL/dlogits` into `grad`.
pub fn fit(
    model: &mut Linear,
    x: &[f32],
    epochs: usize,
    lr: f32,
    rng: &mut Rng,
    mut loss_and_grad: impl FnMut(&[usize], &[f32], &mut [f32]),
) {
    let n = x.len() / DIM;
    let mut order: Vec<usize> = (0..n).collect();
    let mut xb = vec![0f32; BATCH * DIM];
    let mut z = vec![0f32; BATCH * model.classes];
    let mut g = vec![0f32; BATCH * model.classes];
    let steps = (epochs * (n / BATCH)) as f32;
    let mut step = 0.0;
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for rows in order.chunks_exact(BATCH) {
            for (dst, &i) in xb.chunks_exact_mut(DIM).zip(rows) {
                dst.copy_from_slice(&x[i * DIM..(i + 1) * DIM]);
            }
            model.forward(&xb, &mut z);
            loss_and_grad(rows, &z, &mut g);
            model.step(&xb, &g, lr / (1.0 + 5.0 * step / steps));
            step += 1.0;
        }
    }
}

/// Time spent in the loss kernel and the logits it processed.
#[derive(Default)]
pub struct KernelClock {
    time: Duration,
    logits: u64,
}

impl KernelClock {
    /// Runs `call` (one kernel call on `logits` logits) and adds its time.
    pub fn time<T>(&mut self, logits: usize, call: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = call();
        self.time += start.elapsed();
        self.logits += logits as u64;
        out
    }
    /// Mean kernel time per logit, in nanoseconds.
    pub fn ns_per_logit(&self) -> f64 {
        self.time.as_secs_f64() * 1e9 / self.logits.max(1) as f64
    }
}
