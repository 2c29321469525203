//! A linear classifier in candle trained on long-tailed data through the adapter: 10 classes,
//! 1000 training examples of the most frequent down to 10 of the rarest (imbalance 100),
//! cross-entropy against class-balanced softmax focal (beta 0.999, gamma 2), scored by the
//! top-1 accuracy of the frequent and the rare classes on a balanced test set.
//!
//! `cargo run --release -p focal-loss-candle --example train`

use candle_core::{D, DType, Device, Result, Tensor, Var};
use focal_loss::{Reduction, SoftmaxFocal, class_balanced_weights};
use focal_loss_candle::SoftmaxFocalLoss;

const CLASSES: usize = 10;
const FEATURES: usize = 16;

/// xorshift64*: deterministic data without a dependency.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32
    }
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-7), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

/// `counts[c]` examples of class `c`: its centre plus unit noise.
fn data(rng: &mut Rng, centres: &[Vec<f32>], counts: &[usize]) -> Result<(Tensor, Tensor)> {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (c, &n) in counts.iter().enumerate() {
        for _ in 0..n {
            x.extend(centres[c].iter().map(|&m| m + 1.5 * rng.normal()));
            y.push(c as u32);
        }
    }
    let rows = y.len();
    Ok((
        Tensor::from_vec(x, (rows, FEATURES), &Device::Cpu)?,
        Tensor::from_vec(y, rows, &Device::Cpu)?,
    ))
}

fn train(
    name: &str,
    loss: &SoftmaxFocalLoss,
    x: &Tensor,
    y: &Tensor,
    test: &(Tensor, Tensor),
) -> Result<()> {
    let w = Var::zeros((FEATURES, CLASSES), DType::F32, &Device::Cpu)?;
    let b = Var::zeros(CLASSES, DType::F32, &Device::Cpu)?;
    for _ in 0..300 {
        let logits = x.matmul(&w)?.broadcast_add(&b)?;
        let grads = loss.forward(&logits, y)?.backward()?;
        for v in [&w, &b] {
            let g = grads.get(v).expect("a gradient");
            v.set(&(v.as_tensor() - (g * 0.5)?)?)?;
        }
    }
    let pred = test
        .0
        .matmul(&w)?
        .broadcast_add(&b)?
        .argmax(D::Minus1)?
        .to_vec1::<u32>()?;
    let truth = test.1.to_vec1::<u32>()?;
    let acc = |classes: std::ops::Range<u32>| {
        let hits = pred
            .iter()
            .zip(&truth)
            .filter(|(p, t)| classes.contains(t) && p == t)
            .count();
        hits as f32 / truth.iter().filter(|t| classes.contains(t)).count() as f32
    };
    println!(
        "{name:<34} top-1: frequent (0-2) {:.3}  medium (3-6) {:.3}  rare (7-9) {:.3}  all {:.3}",
        acc(0..3),
        acc(3..7),
        acc(7..10),
        acc(0..10)
    );
    Ok(())
}

fn main() -> Result<()> {
    let mut rng = Rng(7);
    let centres: Vec<Vec<f32>> = (0..CLASSES)
        .map(|_| (0..FEATURES).map(|_| rng.normal()).collect())
        .collect();
    // 1000 * 0.01^(c / 9): 1000, 599, 359, ..., 10.
    let counts: Vec<usize> = (0..CLASSES)
        .map(|c| (1000.0 * 0.01f64.powf(c as f64 / 9.0)).round() as usize)
        .collect();
    let (x, y) = data(&mut rng, &centres, &counts)?;
    let test = data(&mut rng, &centres, &[300; CLASSES])?;
    println!("training counts per class: {counts:?}");
    let mut w = [0f32; CLASSES];
    let n: Vec<u64> = counts.iter().map(|&c| c as u64).collect();
    class_balanced_weights(&n, 0.999, &mut w).map_err(candle_core::Error::wrap)?;
    let ce = SoftmaxFocalLoss::new(&SoftmaxFocal::cross_entropy(), Reduction::Mean);
    let cb = SoftmaxFocalLoss::new(
        &SoftmaxFocal::new(2.0).class_weights(&w),
        Reduction::WeightedMean,
    );
    train("cross-entropy", &ce, &x, &y, &test)?;
    train("class-balanced focal (beta 0.999)", &cb, &x, &y, &test)?;
    Ok(())
}
