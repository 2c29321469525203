//! The adapters against candle's own autograd of the plain expressions (gamma 0 and 2), and
//! their data handling: dtypes, strided layouts, shapes, errors, evaluation without a kept
//! gradient.

use candle_core::{DType, Device, Result, Tensor, Var};
use focal_loss::half::bf16;
use focal_loss::{Focal, Reduction, SoftmaxFocal};
use focal_loss_candle::{SigmoidFocalLoss, SoftmaxFocalLoss};

const CPU: Device = Device::Cpu;

/// Deterministic logits in [-4, 4].
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
        })
        .collect()
}

/// The largest difference between two gradients, relative to the largest magnitude.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = b
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// torchvision's sigmoid focal loss (mean) written with candle ops.
fn sigmoid_expr(x: &Tensor, t: &Tensor, alpha: f64, gamma: f64) -> Result<Tensor> {
    let p = x.neg()?.exp()?.affine(1.0, 1.0)?.recip()?;
    let q = p.affine(-1.0, 1.0)?;
    let nt = t.affine(-1.0, 1.0)?;
    let ce = ((t * p.log()?)? + (&nt * q.log()?)?)?.neg()?;
    let p_t = ((&p * t)? + (&q * &nt)?)?;
    let m = p_t.affine(-1.0, 1.0)?.powf(gamma)?;
    let a_t = (t.affine(alpha, 0.0)? + nt.affine(1.0 - alpha, 0.0)?)?;
    (a_t * m)?.mul(&ce)?.mean_all()
}

/// torchvision's focal loss of one element in f64 (`t` 0 or 1).
fn sigmoid_f64(x: f64, t: f64, alpha: f64, gamma: f64) -> f64 {
    let p = 1.0 / (1.0 + (-x).exp());
    let p_t = if t == 1.0 { p } else { 1.0 / (1.0 + x.exp()) };
    let a_t = if t == 1.0 { alpha } else { 1.0 - alpha };
    a_t * (1.0 - p_t).powf(gamma) * -p_t.ln()
}

#[test]
fn sigmoid_matches_candle_autograd() -> Result<()> {
    let (rows, classes) = (37, 11);
    let x0 = values(rows * classes, 1);
    let t0: Vec<u8> = values(rows * classes, 2)
        .iter()
        .map(|&v| (v > 2.5) as u8)
        .collect();
    let tf: Vec<f32> = t0.iter().map(|&v| v as f32).collect();
    for gamma in [0.0f32, 2.0] {
        let x = Var::from_vec(x0.clone(), (rows, classes), &CPU)?;
        let t8 = Tensor::from_vec(t0.clone(), (rows, classes), &CPU)?;
        let tt = Tensor::from_vec(tf.clone(), (rows, classes), &CPU)?;
        let ours = SigmoidFocalLoss::new(&Focal::torchvision(0.25, gamma), Reduction::Mean);
        let l = ours.forward(&x, &t8)?;
        let g = l
            .backward()?
            .get(&x)
            .unwrap()
            .flatten_all()?
            .to_vec1::<f32>()?;
        let y = Var::from_vec(x0.clone(), (rows, classes), &CPU)?;
        let le = sigmoid_expr(&y, &tt, 0.25, gamma as f64)?;
        let ge = le
            .backward()?
            .get(&y)
            .unwrap()
            .flatten_all()?
            .to_vec1::<f32>()?;
        let (a, b) = (l.to_scalar::<f32>()?, le.to_scalar::<f32>()?);
        let d = rel_diff(&g, &ge);
        // The f64 truth (central differences of the f64 loss, error ~1e-10): candle's
        // expression forms 1 - p by subtraction, which costs it about 2^-24 / (1 - p)
        // relatively (3e-6 at x = 4); the fused kernel does not.
        let n = (rows * classes) as f64;
        let g64: Vec<f32> = x0
            .iter()
            .zip(&tf)
            .map(|(&x, &t)| {
                let (x, t, h) = (x as f64, t as f64, 1e-5);
                let l = |x| sigmoid_f64(x, t, 0.25, gamma as f64);
                ((l(x + h) - l(x - h)) / (2.0 * h) / n) as f32
            })
            .collect();
        let (d_ours, d_candle) = (rel_diff(&g, &g64), rel_diff(&ge, &g64));
        eprintln!(
            "sigmoid gamma {gamma}: loss {a} vs candle {b}; gradient vs candle {d:e}, \
             vs f64: ours {d_ours:e}, candle {d_candle:e}"
        );
        assert!((a - b).abs() <= 1e-6 * b.abs(), "gamma {gamma}: {a} vs {b}");
        assert!(d <= 1e-5, "gamma {gamma}: {d}");
        assert!(
            d_ours <= 1e-6 && d_ours <= d_candle,
            "gamma {gamma}: {d_ours} {d_candle}"
        );
    }
    Ok(())
}

/// The softmax focal loss (mean over rows), log-softmax over dimension 1, written with candle
/// ops; `onehot` has the logits' shape.
fn softmax_expr(x: &Tensor, onehot: &Tensor, gamma: f64) -> Result<Tensor> {
    let m = x.max_keepdim(1)?;
    let lse = x
        .broadcast_sub(&m)?
        .exp()?
        .sum_keepdim(1)?
        .log()?
        .broadcast_add(&m)?;
    let logp = x.broadcast_sub(&lse)?;
    let logp_y = (logp * onehot)?.sum_keepdim(1)?;
    let m = logp_y.exp()?.affine(-1.0, 1.0)?.powf(gamma)?;
    (m * logp_y.neg()?)?.mean_all()
}

#[test]
fn softmax_matches_candle_autograd() -> Result<()> {
    // [N, C] and [N, C, H, W].
    for dims in [vec![29usize, 7], vec![3, 5, 4, 6]] {
        let (n, c) = (dims[0], dims[1]);
        let s: usize = dims[2..].iter().product();
        let x0 = values(n * c * s, 3);
        let labels: Vec<u32> = values(n * s, 4)
            .iter()
            .map(|&v| ((v + 4.0) / 8.0 * c as f32) as u32 % c as u32)
            .collect();
        let mut onehot = vec![0f32; n * c * s];
        for (r, &y) in labels.iter().enumerate() {
            let (img, p) = (r / s, r % s);
            onehot[(img * c + y as usize) * s + p] = 1.0;
        }
        let label_dims: Vec<usize> = dims[..1].iter().chain(&dims[2..]).copied().collect();
        for gamma in [0.0f32, 2.0] {
            let x = Var::from_vec(x0.clone(), dims.as_slice(), &CPU)?;
            let y = Tensor::from_vec(labels.clone(), label_dims.as_slice(), &CPU)?;
            let ours = SoftmaxFocalLoss::new(&SoftmaxFocal::new(gamma), Reduction::Mean);
            let l = ours.forward(&x, &y)?;
            let g = l
                .backward()?
                .get(&x)
                .unwrap()
                .flatten_all()?
                .to_vec1::<f32>()?;
            let z = Var::from_vec(x0.clone(), dims.as_slice(), &CPU)?;
            let oh = Tensor::from_vec(onehot.clone(), dims.as_slice(), &CPU)?;
            let le = softmax_expr(&z, &oh, gamma as f64)?;
            let ge = le
                .backward()?
                .get(&z)
                .unwrap()
                .flatten_all()?
                .to_vec1::<f32>()?;
            let (a, b) = (l.to_scalar::<f32>()?, le.to_scalar::<f32>()?);
            let d = rel_diff(&g, &ge);
            eprintln!(
                "softmax {dims:?} gamma {gamma}: loss {a} vs {b}, gradient max rel diff {d:e}"
            );
            assert!(
                (a - b).abs() <= 1e-6 * b.abs(),
                "{dims:?} gamma {gamma}: {a} vs {b}"
            );
            assert!(d <= 1e-6, "{dims:?} gamma {gamma}: {d}");
        }
    }
    Ok(())
}

#[test]
fn half_precision_logits_give_the_rounded_f32_results() -> Result<()> {
    let (rows, c) = (16, 9);
    let xf = Tensor::from_vec(values(rows * c, 5), (rows, c), &CPU)?.to_dtype(DType::BF16)?;
    let x_wide = xf.to_dtype(DType::F32)?;
    let y = Tensor::from_vec(
        (0..rows as u32).map(|r| r % c as u32).collect::<Vec<_>>(),
        rows,
        &CPU,
    )?;
    let loss = SoftmaxFocalLoss::new(&SoftmaxFocal::new(2.0), Reduction::Sum);
    let xb = Var::from_tensor(&xf)?;
    let xw = Var::from_tensor(&x_wide)?;
    let lb = loss.forward(&xb, &y)?;
    let lw = loss.forward(&xw, &y)?;
    assert_eq!(lb.dtype(), DType::BF16);
    assert_eq!(
        lb.to_scalar::<bf16>()?,
        bf16::from_f32(lw.to_scalar::<f32>()?)
    );
    let gb = lb
        .backward()?
        .get(&xb)
        .unwrap()
        .flatten_all()?
        .to_vec1::<bf16>()?;
    let gw = lw
        .backward()?
        .get(&xw)
        .unwrap()
        .flatten_all()?
        .to_vec1::<f32>()?;
    assert!(gb.iter().zip(&gw).all(|(b, &w)| *b == bf16::from_f32(w)));
    Ok(())
}

#[test]
fn strided_layouts_read_the_same_values() -> Result<()> {
    // A transposed view and a narrowed one give the results of their contiguous copies.
    let x = Tensor::from_vec(values(8 * 6, 6), (8, 6), &CPU)?;
    let t = Tensor::from_vec(
        values(8 * 6, 7)
            .iter()
            .map(|&v| (v > 0.0) as u8)
            .collect::<Vec<_>>(),
        (6, 8),
        &CPU,
    )?;
    let xt = x.t()?; // [6, 8], strided
    assert!(!xt.is_contiguous());
    let f = SigmoidFocalLoss::new(&Focal::new(2.0), Reduction::Sum);
    let a = f.forward(&xt, &t)?.to_scalar::<f32>()?;
    let b = f.forward(&xt.contiguous()?, &t)?.to_scalar::<f32>()?;
    assert_eq!(a, b);
    let xn = x.narrow(1, 1, 4)?; // [8, 4], rows with a stride of 6
    let y = Tensor::new(&[0i64, 1, 2, 3, 0, 1, 2, 3], &CPU)?;
    let s = SoftmaxFocalLoss::new(&SoftmaxFocal::cross_entropy(), Reduction::Mean);
    assert_eq!(
        s.forward(&xn, &y)?.to_scalar::<f32>()?,
        s.forward(&xn.contiguous()?, &y)?.to_scalar::<f32>()?
    );
    // And the gradient of the strided view comes back in the view's shape.
    let v = Var::from_tensor(&xn)?;
    let g = s
        .forward(&v, &y)?
        .backward()?
        .get(&v)
        .unwrap()
        .dims()
        .to_vec();
    assert_eq!(g, vec![8, 4]);
    Ok(())
}

#[test]
fn shapes_dtypes_and_kernel_errors_are_candle_errors() -> Result<()> {
    let x = Tensor::from_vec(values(12, 8), (3, 4), &CPU)?;
    let f = SigmoidFocalLoss::new(&Focal::new(2.0), Reduction::Mean);
    // Same element count, other shape.
    assert!(
        f.forward(&x, &Tensor::zeros((4, 3), DType::U8, &CPU)?)
            .is_err()
    );
    // Targets of an unsupported dtype.
    assert!(
        f.forward(&x, &Tensor::zeros((3, 4), DType::I64, &CPU)?)
            .is_err()
    );
    // A kernel error, wrapped: a target of 2.
    let e = f
        .forward(&x, &Tensor::full(2u8, (3, 4), &CPU)?)
        .unwrap_err()
        .to_string();
    assert!(e.contains("target"), "{e}");
    let s = SoftmaxFocalLoss::new(&SoftmaxFocal::new(2.0), Reduction::Mean);
    // Labels [3] for logits [3, 4]: fine; [4]: a shape error; a label of 4: out of range.
    assert!(s.forward(&x, &Tensor::new(&[0u32, 1, 3], &CPU)?).is_ok());
    assert!(
        s.forward(&x, &Tensor::new(&[0u32, 1, 3, 2], &CPU)?)
            .is_err()
    );
    let e = s
        .forward(&x, &Tensor::new(&[0u32, 4, 1], &CPU)?)
        .unwrap_err()
        .to_string();
    assert!(e.contains("label"), "{e}");
    // Rank 1 logits.
    assert!(
        s.forward(&x.flatten_all()?, &Tensor::new(&[0u32], &CPU)?)
            .is_err()
    );
    Ok(())
}

#[test]
fn evaluation_keeps_no_gradient_and_gives_the_same_loss() -> Result<()> {
    let x = Tensor::from_vec(values(20, 9), (4, 5), &CPU)?;
    let y = Tensor::new(&[0u8, 4, 2, 1], &CPU)?;
    let s = SoftmaxFocalLoss::new(&SoftmaxFocal::new(2.0), Reduction::Mean);
    let eval = s.forward(&x, &y)?; // a plain tensor: no autograd, the loss alone
    assert!(!eval.track_op());
    let v = Var::from_tensor(&x)?;
    let train = s.forward(&v, &y)?;
    assert!(train.track_op());
    assert_eq!(eval.to_scalar::<f32>()?, train.to_scalar::<f32>()?);
    Ok(())
}

/// The gradient of `loss` with respect to `x`, flattened.
fn grad_of(loss: &Tensor, x: &Var) -> Result<Vec<f32>> {
    loss.backward()?
        .get(x)
        .expect("a gradient for the logits")
        .flatten_all()?
        .to_vec1::<f32>()
}

#[test]
fn per_batch_sample_weights_are_the_kernels() -> Result<()> {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    // Sigmoid on [N, A, classes] = [2, 3, 4]: six rows.
    let x0 = values(24, 21);
    let t0: Vec<u8> = values(24, 22).iter().map(|&v| (v > 1.0) as u8).collect();
    let s0: Vec<f32> = values(6, 23).iter().map(|&v| (v + 4.0) / 4.0).collect();
    let focal = Focal::torchvision(0.25, 2.0);
    for r in [Reduction::Sum, Reduction::Mean, Reduction::WeightedMean] {
        let x = Var::from_vec(x0.clone(), (2, 3, 4), &CPU)?;
        let t = Tensor::from_vec(t0.clone(), (2, 3, 4), &CPU)?;
        // Weights [2, 3] given transposed (a strided layout), and again as f64 (exactly the same).
        let s = Tensor::from_vec(s0.clone(), (3, 2), &CPU)?.t()?;
        let s_rows: Vec<f32> = s.flatten_all()?.to_vec1()?;
        let l = SigmoidFocalLoss::new(&focal, r).forward_weighted(&x, &t, &s)?;
        let mut g = vec![0f32; 24];
        let want = focal
            .classes(4)
            .sample_weights(&s_rows)
            .loss_and_grad(&x0, &t0, &mut g, r)
            .unwrap();
        assert_eq!(l.to_scalar::<f32>()?.to_bits(), want.to_bits(), "{r:?}");
        assert_eq!(bits(&grad_of(&l, &x)?), bits(&g), "{r:?}");
        let s64 = s.to_dtype(DType::F64)?;
        let l64 = SigmoidFocalLoss::new(&focal, r).forward_weighted(&x, &t, &s64)?;
        assert_eq!(l64.to_scalar::<f32>()?.to_bits(), want.to_bits());
    }
    // Softmax on [N, C, H, W] = [2, 5, 2, 3]: weights per position [2, 2, 3].
    let x0 = values(60, 24);
    let y0: Vec<i64> = values(12, 25)
        .iter()
        .map(|&v| {
            if v > 3.0 {
                -100
            } else {
                ((v + 4.0) as i64) % 5
            }
        })
        .collect();
    let s0: Vec<f32> = values(12, 26).iter().map(|&v| (v + 4.0) / 4.0).collect();
    let w = [0.5f32, 1.0, 2.0, 1.5, 0.25];
    let sf = SoftmaxFocal::new(2.0).class_weights(&w).ignore_index(-100);
    for r in [Reduction::Sum, Reduction::Mean, Reduction::WeightedMean] {
        let x = Var::from_vec(x0.clone(), (2, 5, 2, 3), &CPU)?;
        let y = Tensor::from_vec(y0.clone(), (2, 2, 3), &CPU)?;
        let s = Tensor::from_vec(s0.clone(), (2, 2, 3), &CPU)?;
        let l = SoftmaxFocalLoss::new(&sf, r).forward_weighted(&x, &y, &s)?;
        let mut g = vec![0f32; 60];
        let want = sf
            .spatial(6)
            .sample_weights(&s0)
            .loss_and_grad(&x0, &y0, &mut g, r)
            .unwrap();
        assert_eq!(l.to_scalar::<f32>()?.to_bits(), want.to_bits(), "{r:?}");
        assert_eq!(bits(&grad_of(&l, &x)?), bits(&g), "{r:?}");
    }
    // Shapes and values the kernel rejects are errors.
    let x = Tensor::from_vec(values(12, 8), (3, 4), &CPU)?;
    let t = Tensor::zeros((3, 4), DType::U8, &CPU)?;
    let f = SigmoidFocalLoss::new(&focal, Reduction::Mean);
    assert!(
        f.forward_weighted(&x, &t, &Tensor::ones(4, DType::F32, &CPU)?)
            .is_err()
    );
    assert!(
        f.forward_weighted(&x, &t, &Tensor::ones((3, 4), DType::F32, &CPU)?)
            .is_err()
    );
    let e = f
        .forward_weighted(&x, &t, &Tensor::new(&[1.0f32, -1.0, 1.0], &CPU)?)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sample_weights"), "{e}");
    let s = SoftmaxFocalLoss::new(&SoftmaxFocal::new(2.0), Reduction::Mean);
    let y = Tensor::new(&[0u32, 1, 3], &CPU)?;
    assert!(
        s.forward_weighted(&x, &y, &Tensor::ones(3, DType::F32, &CPU)?)
            .is_ok()
    );
    assert!(
        s.forward_weighted(&x, &y, &Tensor::ones(4, DType::F32, &CPU)?)
            .is_err()
    );
    Ok(())
}

#[test]
fn weighted_softmax_matches_candle_autograd() -> Result<()> {
    // torch `cross_entropy(weight=None, reduction="mean")` with per-row weights folded in:
    // sum_r s_r l_r / sum_r s_r, at gamma 0 and 2.
    let (n, c) = (23usize, 6usize);
    let x0 = values(n * c, 31);
    let labels: Vec<u32> = (0..n).map(|r| ((r * 7) % c) as u32).collect();
    let mut onehot = vec![0f32; n * c];
    for (r, &y) in labels.iter().enumerate() {
        onehot[r * c + y as usize] = 1.0;
    }
    let s0: Vec<f32> = values(n, 32).iter().map(|&v| (v + 4.0) / 4.0).collect();
    let s_sum: f32 = s0.iter().sum();
    for gamma in [0.0f32, 2.0] {
        let x = Var::from_vec(x0.clone(), (n, c), &CPU)?;
        let y = Tensor::from_vec(labels.clone(), n, &CPU)?;
        let s = Tensor::from_vec(s0.clone(), n, &CPU)?;
        let ours = SoftmaxFocalLoss::new(&SoftmaxFocal::new(gamma), Reduction::WeightedMean);
        let l = ours.forward_weighted(&x, &y, &s)?;
        let g = grad_of(&l, &x)?;
        // candle: the per-row losses (softmax_expr's mean times n, row by row) weighted.
        let z = Var::from_vec(x0.clone(), (n, c), &CPU)?;
        let oh = Tensor::from_vec(onehot.clone(), (n, c), &CPU)?;
        let m = z.max_keepdim(1)?;
        let lse = z
            .broadcast_sub(&m)?
            .exp()?
            .sum_keepdim(1)?
            .log()?
            .broadcast_add(&m)?;
        let logp_y = (z.broadcast_sub(&lse)? * oh)?.sum_keepdim(1)?;
        let md = logp_y.exp()?.affine(-1.0, 1.0)?.powf(gamma as f64)?;
        let per_row = (md * logp_y.neg()?)?.flatten_all()?;
        let le = ((per_row * Tensor::from_vec(s0.clone(), n, &CPU)?)?.sum_all()? / s_sum as f64)?;
        let ge = grad_of(&le, &z)?;
        let (a, b) = (l.to_scalar::<f32>()?, le.to_scalar::<f32>()?);
        let d = rel_diff(&g, &ge);
        eprintln!("weighted softmax gamma {gamma}: loss {a} vs candle {b}, gradient {d:e}");
        assert!((a - b).abs() <= 1e-6 * b.abs(), "gamma {gamma}: {a} vs {b}");
        assert!(d <= 1e-6, "gamma {gamma}: {d}");
    }
    Ok(())
}

#[test]
fn half_precision_distributions_are_their_f32_values() -> Result<()> {
    let (n, c) = (9usize, 4usize);
    let x0 = values(n * c, 41);
    let d: Vec<f32> = (0..n * c)
        .map(|i| [0.75f32, 0.25, 0.0, 0.0][(i + i / c) % c])
        .collect();
    let sf = SoftmaxFocalLoss::new(&SoftmaxFocal::new(2.0), Reduction::Mean);
    let x = Var::from_vec(x0.clone(), (n, c), &CPU)?;
    let d32 = Tensor::from_vec(d.clone(), (n, c), &CPU)?;
    let l32 = sf.forward(&x, &d32)?;
    let g32 = grad_of(&l32, &x)?;
    for dtype in [DType::BF16, DType::F16] {
        let x = Var::from_vec(x0.clone(), (n, c), &CPU)?;
        let l = sf.forward(&x, &d32.to_dtype(dtype)?)?;
        assert_eq!(
            l.to_scalar::<f32>()?.to_bits(),
            l32.to_scalar::<f32>()?.to_bits()
        );
        assert_eq!(grad_of(&l, &x)?, g32, "{dtype:?}");
    }
    Ok(())
}
