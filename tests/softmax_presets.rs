//! The presets of the softmax family against their peers' expressions evaluated in float64:
//! fixed reference values (each with the numpy float64 expression that produced it, the peer's
//! formula written out; `python3 -c` on the batch below), and the same expressions in f64 here
//! over random batches.

mod common;

use common::softmax::Rng;
use focal_loss::{Reduction, SoftmaxFocal};

const Z: [f32; 16] = [
    2.0, -1.0, 0.5, 0.25, 0.0, 3.0, -2.0, 1.0, -1.5, -0.5, 4.0, 0.0, 1.0, 1.0, 1.0, -3.0,
];
const Y: [i64; 4] = [0, 3, 2, 1];
const W: [f32; 4] = [0.5, 2.0, 1.0, 4.0];

/// Within `ulps` f32 ULP of the f64 reference (relative).
fn close(got: f32, want: f64, ulps: f64) -> bool {
    ((got as f64) - want).abs() <= ulps * f32::EPSILON as f64 * want.abs()
}

fn log_softmax(z: &[f32]) -> Vec<f64> {
    let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let s: f64 = z.iter().map(|&v| (v as f64 - m).exp()).sum();
    z.iter().map(|&v| v as f64 - m - s.ln()).collect()
}

#[test]
fn torch_cross_entropy() {
    // lp = log_softmax(z); keep = y != -100 (y[3] = -100), eps = 0.1, C = 4:
    // ((1 - eps) sum_keep(-w[y] lp[y]) + eps / C sum_keep(-(w * lp).sum())) / sum_keep(w[y])
    // = torch F.cross_entropy(z, y, weight=w, ignore_index=-100, label_smoothing=0.1)
    let want = 1.737232022114047;
    let y = [0i64, 3, 2, -100];
    let f = SoftmaxFocal::cross_entropy()
        .class_weights(&W)
        .ignore_index(-100)
        .label_smoothing(0.1);
    let got = f.loss(&Z, &y, Reduction::WeightedMean).unwrap();
    assert!(close(got, want, 4.0), "{got} {want}");
}

#[test]
fn mmcv_softmax_focal_loss() {
    // mean_i(-a (1 - p[i, y_i])^g ln(max(p[i, y_i], FLT_MIN)) w[y_i]), a = 0.25, g = 2
    // = mmcv softmax_focal_loss(z, y, gamma=2, alpha=0.25, weight=w, reduction="mean")
    let want = 0.49022438131346235;
    let got = SoftmaxFocal::mmcv(0.25, 2.0)
        .class_weights(&W)
        .loss(&Z, &Y, Reduction::Mean)
        .unwrap();
    assert!(close(got, want, 4.0), "{got} {want}");
}

#[test]
fn keras_categorical_focal_crossentropy() {
    // oh = onehot(y) (1 - 0.05) + 0.05 / C; pc = clip(softmax(z), 1e-7, 1 - 1e-7);
    // mean_i sum_c(0.25 (1 - pc)^2 (-oh) ln pc)
    // = keras CategoricalFocalCrossentropy(alpha=0.25, gamma=2, from_logits=True,
    //   label_smoothing=0.05) (default reduction: sum over batch size)
    let want = 0.16123811831444174;
    let got = SoftmaxFocal::keras(0.25, 2.0)
        .label_smoothing(0.05)
        .loss(&Z, &Y, Reduction::Mean)
        .unwrap();
    // Keras clips p to [1e-7, 1 - 1e-7]; no p of this batch is that close to 0 or 1.
    assert!(close(got, want, 4.0), "{got} {want}");
}

#[test]
fn class_balanced_softmax() {
    // sum_i(w[y_i] (-lp[i, y_i])) / count_nonzero(w[y])
    // = tf.losses.softmax_cross_entropy(onehot(y), z, weights=w[y]) (SUM_BY_NONZERO_WEIGHTS)
    let want = 2.7822652418865;
    let got = SoftmaxFocal::class_balanced(&W)
        .loss(&Z, &Y, Reduction::Mean)
        .unwrap();
    assert!(close(got, want, 4.0), "{got} {want}");
}

#[test]
fn kornia_focal_loss() {
    // mean over N x C of onehot(y) [1-a, a, ..., a] (-(1 - p)^2 lp), a = 0.25
    // = kornia 0.7+ focal_loss(z, y, alpha=0.25, gamma=2, reduction="mean") (its alpha is
    //   [1 - a, a, ..., a] per class and its unreduced loss keeps the class dimension)
    let want = 0.03608002467397692;
    let a = [0.75f32, 0.25, 0.25, 0.25];
    let got = SoftmaxFocal::new(2.0)
        .class_weights(&a)
        .loss(&Z, &Y, Reduction::Scale(1.0 / 16.0))
        .unwrap();
    assert!(close(got, want, 4.0), "{got} {want}");
}

/// The peers' expressions in f64 over random batches with every preset's options.
#[test]
fn presets_agree_with_the_peer_expressions() {
    let mut rng = Rng(23);
    for c in [2usize, 5, 19, 50, 200] {
        let rows = 33;
        let z: Vec<f32> = (0..rows * c).map(|_| rng.range(-6.0, 6.0) as f32).collect();
        let y: Vec<u32> = (0..rows).map(|_| rng.below(c) as u32).collect();
        let w: Vec<f32> = (0..c).map(|_| rng.range(0.1, 3.0) as f32).collect();
        let lps: Vec<Vec<f64>> = z.chunks(c).map(log_softmax).collect();
        let nll = |r: usize| -lps[r][y[r] as usize];
        // torch F.cross_entropy(weight=w, label_smoothing=0.2), "mean".
        let eps = 0.2f32;
        let num: f64 = (0..rows)
            .map(|r| {
                let wy = w[y[r] as usize] as f64;
                let smooth: f64 = (0..c).map(|k| -(w[k] as f64) * lps[r][k]).sum();
                (1.0 - eps as f64) * wy * nll(r) + eps as f64 / c as f64 * smooth
            })
            .sum();
        let den: f64 = (0..rows).map(|r| w[y[r] as usize] as f64).sum();
        let got = SoftmaxFocal::cross_entropy()
            .class_weights(&w)
            .label_smoothing(eps)
            .loss(&z, &y, Reduction::WeightedMean)
            .unwrap();
        assert!(
            close(got, num / den, 8.0),
            "torch C {c}: {got} {}",
            num / den
        );
        // mmcv: -a (1 - p_y)^g ln p_y w_y, mean over rows.
        let (a, g) = (0.25f64, 2.0f64);
        let mm: f64 = (0..rows)
            .map(|r| {
                let py = lps[r][y[r] as usize].exp();
                a * (1.0 - py).powf(g) * nll(r) * w[y[r] as usize] as f64
            })
            .sum::<f64>()
            / rows as f64;
        let got = SoftmaxFocal::mmcv(0.25, 2.0)
            .class_weights(&w)
            .loss(&z, &y, Reduction::Mean)
            .unwrap();
        assert!(close(got, mm, 8.0), "mmcv C {c}: {got} {mm}");
        // Keras: sum_c a (1 - p_c)^g (-y'_c) ln p_c, mean over rows (p away from the clip).
        let ls = 0.1;
        let kf: f64 = (0..rows)
            .map(|r| {
                (0..c)
                    .map(|k| {
                        let yk = if k == y[r] as usize { 1.0 } else { 0.0 };
                        let yp = yk * (1.0 - ls) + ls / c as f64;
                        let p = lps[r][k].exp();
                        a * (1.0 - p).powf(g) * yp * -lps[r][k]
                    })
                    .sum::<f64>()
            })
            .sum::<f64>()
            / rows as f64;
        let got = SoftmaxFocal::keras(0.25, 2.0)
            .label_smoothing(ls as f32)
            .loss(&z, &y, Reduction::Mean)
            .unwrap();
        assert!(close(got, kf, 8.0), "keras C {c}: {got} {kf}");
        // Class-balanced softmax CE: mean over rows of w_y (-ln p_y).
        let cb: f64 = (0..rows)
            .map(|r| w[y[r] as usize] as f64 * nll(r))
            .sum::<f64>()
            / rows as f64;
        let got = SoftmaxFocal::class_balanced(&w)
            .loss(&z, &y, Reduction::Mean)
            .unwrap();
        assert!(close(got, cb, 8.0), "class-balanced C {c}: {got} {cb}");
    }
}

/// `Reduction::WeightedMean` for the sigmoid family: the sum of the element weights
/// `w_c s_r` (rows x classes without weights, where it is `Mean`).
#[test]
fn weighted_mean_of_the_sigmoid_family() {
    use focal_loss::{Focal, Grad};
    let x = [0.5f32, -1.0, 2.0, 0.25, -0.5, 1.5];
    let t = [1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0];
    let f = Focal::new(2.0).alpha(0.25);
    assert_eq!(
        f.loss(&x, &t, Reduction::WeightedMean).unwrap(),
        f.loss(&x, &t, Reduction::Mean).unwrap()
    );
    let (w, s) = ([0.5f32, 2.0, 4.0], [3.0f32, 0.25]);
    let fw = f.class_weights(&w).sample_weights(&s);
    let p = fw.partial(&x, &t, Grad::Skip).unwrap();
    let total: f64 = (0..2)
        .map(|r| (0..3).map(|c| (w[c] * s[r]) as f64).sum::<f64>())
        .sum();
    assert_eq!(p.weight(), total);
    let sum = fw.loss(&x, &t, Reduction::Sum).unwrap() as f64;
    let got = fw.loss(&x, &t, Reduction::WeightedMean).unwrap() as f64;
    assert!((got - sum / total).abs() <= 2.0 * f32::EPSILON as f64 * got);
    // The gradient is that of the reduced value: the Sum gradient over W.
    let (mut gs, mut gw) = ([0f32; 6], [0f32; 6]);
    fw.loss_and_grad(&x, &t, &mut gs, Reduction::Sum).unwrap();
    fw.loss_and_grad(&x, &t, &mut gw, Reduction::WeightedMean)
        .unwrap();
    for (a, b) in gs.iter().zip(&gw) {
        assert!(
            ((*a as f64) / total - *b as f64).abs() <= 2.0 * f32::EPSILON as f64 * b.abs() as f64
        );
    }
}

/// Empty classes in the class-balanced weights: each policy.
#[test]
fn class_balanced_weights_of_empty_classes() {
    use focal_loss::{EmptyClass, Error, class_balanced_weights, class_balanced_weights_with};
    let mut w = [0f32; 4];
    let counts = [1000u64, 0, 20, 0];
    assert_eq!(
        class_balanced_weights(&counts, 0.999, &mut w),
        Err(Error::ZeroCount { index: 1 })
    );
    class_balanced_weights_with(&counts, 0.999, EmptyClass::AsOne, &mut w).unwrap();
    let mut as_one = [0f32; 4];
    class_balanced_weights(&[1000, 1, 20, 1], 0.999, &mut as_one).unwrap();
    assert_eq!(w, as_one);
    class_balanced_weights_with(&counts, 0.999, EmptyClass::Zero, &mut w).unwrap();
    let mut kept = [0f32; 2];
    class_balanced_weights(&[1000, 20], 0.999, &mut kept).unwrap();
    assert_eq!(w, [kept[0], 0.0, kept[1], 0.0]);
    assert_eq!(
        class_balanced_weights_with(&[0, 0], 0.9, EmptyClass::Zero, &mut [0f32; 2]),
        Err(Error::ZeroCount { index: 0 })
    );
}

/// The per-positive factor of a batch split into chunks, and partials taken apart and put
/// together again, give the whole call's loss and gradient bits.
#[test]
fn chunks_with_counted_positives_and_parts() {
    use focal_loss::{Grad, Partial, PartialParts};
    let mut rng = Rng(41);
    let (rows, c) = (40usize, 7usize);
    let x: Vec<f32> = (0..rows * c).map(|_| rng.range(-5.0, 5.0) as f32).collect();
    let y: Vec<i64> = (0..rows)
        .map(|r| if r % 6 == 0 { -100 } else { (r % c) as i64 })
        .collect();
    let f = SoftmaxFocal::new(2.0).ignore_index(-100);
    let mut whole = vec![0f32; rows * c];
    let l = f
        .loss_and_grad(&x, &y, &mut whole, Reduction::PerPositive)
        .unwrap();
    let chunks: Vec<(usize, usize)> = vec![(0, 13), (13, 29), (29, 40)];
    let total: f64 = chunks
        .iter()
        .map(|&(a, b)| f.positives(&y[a..b]).unwrap())
        .sum();
    let Reduction::Scale(s) = Reduction::per_positive(total) else {
        unreachable!()
    };
    let mut g = vec![0f32; rows * c];
    let mut merged = Partial::EMPTY;
    for &(a, b) in &chunks {
        let p = f
            .partial(
                &x[a * c..b * c],
                &y[a..b],
                Grad::Write(&mut g[a * c..b * c], s),
            )
            .unwrap();
        // Across a process boundary and back.
        let parts: PartialParts = p.into();
        merged = merged.merge(Partial::from(parts));
    }
    assert_eq!(g, whole);
    assert_eq!(merged.reduce(Reduction::PerPositive).unwrap(), l);
    assert_eq!(merged.positives(), total);
}
