//! Property checks shared by the fuzz targets: every input built by `arbitrary` either is
//! valid, and then every entry point returns `Ok`, agrees with the f64 oracle of the test
//! suite within its tolerance table, has no NaN, agrees across backends and does not depend
//! on where an element sits; or it is invalid, and then the entry point returns exactly the
//! error the validation order below predicts, and an accumulating call leaves the gradient
//! untouched.

use arbitrary::Arbitrary;
use focal_loss::{Backend, Error, Focal, Grad, Modulator, Reduction, class_balanced_weights};

#[path = "../../tests/common/mod.rs"]
mod oracle;

/// The entry point a fuzz target exercises.
#[derive(Clone, Copy, Debug)]
pub enum Entry {
    Loss,
    LossAndGrad,
    Elementwise,
    Accumulate,
    Partial,
}

/// A logit: mostly ordinary values, with every kind of special value reachable.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Logit {
    Small(i16),
    Bits(u32),
    Special(u8),
}

impl Logit {
    fn value(self) -> f32 {
        match self {
            Logit::Small(v) => v as f32 / 256.0,
            Logit::Bits(b) => f32::from_bits(b),
            Logit::Special(k) => [
                0.0,
                -0.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                f32::MAX,
                f32::MIN,
                1e-45,
                -1e-45,
                17.0,
                -17.0,
                88.7,
                -88.7,
                103.9,
                -103.9,
                1e4,
            ][k as usize % 16],
        }
    }
}

/// A target: hard, soft, or any bit pattern (mostly out of range).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum TargetIn {
    Hard(bool),
    Soft(u16),
    Bits(u32),
}

impl TargetIn {
    fn value(self) -> f32 {
        match self {
            TargetIn::Hard(b) => b as u8 as f32,
            TargetIn::Soft(v) => v as f32 / u16::MAX as f32,
            TargetIn::Bits(b) => f32::from_bits(b),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub struct Input {
    pub logits: Vec<Logit>,
    pub targets: Vec<TargetIn>,
    /// Drop or add target elements (length mismatches).
    pub target_len_delta: i8,
    pub gamma: GammaIn,
    pub alpha: Option<AlphaIn>,
    pub class_weights: Option<Vec<f32>>,
    pub pos_weight: Option<Vec<f32>>,
    pub sample_weights: Option<Vec<f32>>,
    pub classes: Option<u8>,
    pub eps: Option<f32>,
    pub modulator: u8,
    pub reduction: ReductionIn,
    pub grad_len_delta: i8,
    pub backend: u8,
    pub u8_targets: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum GammaIn {
    Common(u8),
    Any(f32),
}

#[derive(Arbitrary, Debug)]
pub enum AlphaIn {
    Scalar(f32),
    PerClass(Vec<f32>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ReductionIn {
    Sum,
    Mean,
    PerPositive,
    Scale(f32),
}

impl ReductionIn {
    fn get(self) -> Reduction {
        match self {
            ReductionIn::Sum => Reduction::Sum,
            ReductionIn::Mean => Reduction::Mean,
            ReductionIn::PerPositive => Reduction::PerPositive,
            ReductionIn::Scale(s) => Reduction::Scale(s),
        }
    }
}

const MAX_LEN: usize = 400;

fn resize<T: Copy>(v: &[T], delta: i8, fill: T) -> Vec<T> {
    let mut v: Vec<T> = v.iter().copied().take(MAX_LEN).collect();
    if delta > 100 {
        v.push(fill);
    } else if delta < -100 {
        v.pop();
    }
    v
}

fn modulator(k: u8) -> Modulator {
    [Modulator::Linear, Modulator::Geometric, Modulator::Separable][k as usize % 3]
}

/// The crate's validation order, written from its documentation: the error a valid
/// implementation must return, or `None` for a valid input.
fn expected_error(
    f: &Spec<'_>,
    x: &[f32],
    t: &[f32],
    out_len: Option<(&'static str, usize)>,
    scale: Option<f32>,
) -> Option<String> {
    let param = |name: &'static str, index: Option<usize>, value: f64, expected: &'static str| {
        Some(format!("{:?}", Error::InvalidParameter { name, index, value, expected }))
    };
    if let Some(s) = scale {
        if !s.is_finite() {
            return param("Reduction::Scale", None, s as f64, "finite");
        }
    }
    if !(f.gamma.is_finite() && f.gamma >= 0.0) {
        return param("gamma", None, f.gamma as f64, "finite and >= 0");
    }
    if !(f.eps >= 0.0 && f.eps < 1.0) {
        return param("label_smoothing", None, f.eps as f64, "in [0, 1)");
    }
    let mut classes = f.classes;
    if classes == Some(0) {
        return Some(format!("{:?}", Error::ZeroClasses));
    }
    let mut agree = |what: &'static str, len: usize| -> Option<String> {
        if len == 0 {
            return Some(format!("{:?}", Error::ZeroClasses));
        }
        match classes {
            Some(c) if c != len => Some(format!(
                "{:?}",
                Error::ClassCountMismatch { what, expected: c, found: len }
            )),
            _ => {
                classes = Some(len);
                None
            }
        }
    };
    let bad_weight = |name: &'static str, w: &[f32]| {
        w.iter()
            .position(|v| !(v.is_finite() && *v >= 0.0))
            .and_then(|i| param(name, Some(i), w[i] as f64, "finite and >= 0"))
    };
    match &f.alpha {
        None => {}
        Some(AlphaSpec::Scalar(a)) => {
            if !(0.0..=1.0).contains(a) {
                return param("alpha", None, *a as f64, "in [0, 1]");
            }
        }
        Some(AlphaSpec::PerClass(a)) => {
            if let Some(e) = agree("alpha_per_class", a.len()) {
                return Some(e);
            }
            if let Some(i) = a.iter().position(|v| !(0.0..=1.0).contains(v)) {
                return param("alpha_per_class", Some(i), a[i] as f64, "in [0, 1]");
            }
        }
    }
    for (name, w) in [("class_weights", f.class_weights), ("pos_weight", f.pos_weight)] {
        if let Some(w) = w {
            if let Some(e) = agree(name, w.len()).or_else(|| bad_weight(name, w)) {
                return Some(e);
            }
        }
    }
    let n = x.len();
    if t.len() != n {
        return Some(format!("{:?}", Error::LengthMismatch { what: "targets", expected: n, found: t.len() }));
    }
    if let Some((what, len)) = out_len {
        if len != n {
            return Some(format!("{:?}", Error::LengthMismatch { what, expected: n, found: len }));
        }
    }
    let c = classes.unwrap_or(n.max(1));
    if n % c != 0 {
        return Some(format!("{:?}", Error::NotMultipleOfClasses { len: n, classes: c }));
    }
    if let Some(w) = f.sample_weights {
        if w.len() != n / c {
            return Some(format!(
                "{:?}",
                Error::LengthMismatch { what: "sample_weights", expected: n / c, found: w.len() }
            ));
        }
        if let Some(e) = bad_weight("sample_weights", w) {
            return Some(e);
        }
    }
    if let Err(e) = f.backend.resolve() {
        return Some(format!("{e:?}"));
    }
    for i in 0..n {
        if x[i].is_nan() {
            return Some(format!("{:?}", Error::NanLogit { index: i }));
        }
        if !(0.0..=1.0).contains(&t[i]) {
            return Some(format!("{:?}", Error::TargetOutOfRange { index: i, value: t[i] }));
        }
    }
    None
}

enum AlphaSpec<'a> {
    Scalar(f32),
    PerClass(&'a [f32]),
}

/// The options of one case, as plain data (to build a `Focal` and to predict its result).
struct Spec<'a> {
    gamma: f32,
    eps: f32,
    classes: Option<usize>,
    alpha: Option<AlphaSpec<'a>>,
    class_weights: Option<&'a [f32]>,
    pos_weight: Option<&'a [f32]>,
    sample_weights: Option<&'a [f32]>,
    modulator: Modulator,
    backend: Backend,
}

impl Spec<'_> {
    fn focal(&self) -> Focal<'_> {
        let mut f = Focal::new(self.gamma)
            .label_smoothing(self.eps)
            .modulator(self.modulator)
            .backend(self.backend);
        if let Some(c) = self.classes {
            f = f.classes(c);
        }
        f = match &self.alpha {
            None => f,
            Some(AlphaSpec::Scalar(a)) => f.alpha(*a),
            Some(AlphaSpec::PerClass(a)) => f.alpha_per_class(a),
        };
        if let Some(w) = self.class_weights {
            f = f.class_weights(w);
        }
        if let Some(w) = self.pos_weight {
            f = f.pos_weight(w);
        }
        if let Some(w) = self.sample_weights {
            f = f.sample_weights(w);
        }
        f
    }

    /// The oracle's options for element `i` of a `classes`-column batch.
    fn opts(&self, i: usize, classes: usize) -> oracle::Opts {
        let (row, col) = (i / classes, i % classes);
        let alpha = match &self.alpha {
            None => None,
            Some(AlphaSpec::Scalar(a)) => Some(*a as f64),
            Some(AlphaSpec::PerClass(a)) => Some(a[col] as f64),
        };
        let cw = self.class_weights.map_or(1.0, |w| w[col] as f64);
        let sw = self.sample_weights.map_or(1.0, |w| w[row] as f64);
        oracle::Opts {
            gamma: self.gamma as f64,
            alpha,
            pos_weight: self.pos_weight.map_or(1.0, |w| w[col] as f64),
            weight: cw * sw,
            eps: self.eps as f64,
            modulator: self.modulator,
        }
    }

    /// Every weight (class, positive, sample, alpha and 1 - alpha) is 0 or in
    /// `[2^-60, 2^60]`, the range of the documented accuracy.
    fn moderate_weights(&self) -> bool {
        let ok = |v: f32| v == 0.0 || (8.7e-19..=1.2e18).contains(&v);
        let all = |w: Option<&[f32]>| w.is_none_or(|w| w.iter().all(|&v| ok(v)));
        let alpha_ok = match &self.alpha {
            None => true,
            Some(AlphaSpec::Scalar(a)) => ok(*a) && ok(1.0 - *a),
            Some(AlphaSpec::PerClass(a)) => a.iter().all(|&v| ok(v) && ok(1.0 - v)),
        };
        alpha_ok && all(self.class_weights) && all(self.pos_weight) && all(self.sample_weights)
    }

    fn classes_of(&self, n: usize) -> usize {
        self.classes
            .or(match &self.alpha {
                Some(AlphaSpec::PerClass(a)) => Some(a.len()),
                _ => None,
            })
            .or(self.class_weights.map(|w| w.len()))
            .or(self.pos_weight.map(|w| w.len()))
            .unwrap_or(n.max(1))
    }
}

fn small_vec(v: &Option<Vec<f32>>) -> Option<Vec<f32>> {
    v.as_ref().map(|w| w.iter().copied().take(64).collect())
}

/// Runs one entry point on `input` and checks every property; panics on a violation.
pub fn check(input: &Input, entry: Entry) {
    let x: Vec<f32> = input.logits.iter().take(MAX_LEN).map(|l| l.value()).collect();
    let t_raw: Vec<f32> = input.targets.iter().map(|t| t.value()).collect();
    let t = resize(&t_raw[..t_raw.len().min(x.len() + 1)], input.target_len_delta, 0.5);
    let alpha_pc: Vec<f32>;
    let alpha = match &input.alpha {
        None => None,
        Some(AlphaIn::Scalar(a)) => Some(AlphaSpec::Scalar(*a)),
        Some(AlphaIn::PerClass(a)) => {
            alpha_pc = a.iter().copied().take(64).collect();
            Some(AlphaSpec::PerClass(&alpha_pc))
        }
    };
    let (cw, pw, sw) = (
        small_vec(&input.class_weights),
        small_vec(&input.pos_weight),
        input.sample_weights.as_ref().map(|w| w.iter().copied().take(MAX_LEN).collect::<Vec<_>>()),
    );
    let gamma = match input.gamma {
        GammaIn::Common(k) => [0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0, 0.25][k as usize % 8],
        GammaIn::Any(g) => g,
    };
    let backends: Vec<Backend> = Backend::available().collect();
    let spec = Spec {
        gamma,
        eps: input.eps.unwrap_or(0.0),
        classes: input.classes.map(|c| c as usize),
        alpha,
        class_weights: cw.as_deref(),
        pos_weight: pw.as_deref(),
        sample_weights: sw.as_deref(),
        modulator: modulator(input.modulator),
        backend: match input.backend % 8 {
            0 => Backend::Avx512,
            k => backends[k as usize % backends.len()],
        },
    };
    let f = spec.focal();
    let reduction = input.reduction.get();
    let n = x.len();
    let glen = resize(&vec![0f32; n], input.grad_len_delta, 0.0).len();
    let sentinel: Vec<f32> = (0..glen).map(|i| i as f32 * 0.5 - 3.0).collect();
    let mut out = sentinel.clone();
    let t8: Option<Vec<u8>> = if input.u8_targets && t.iter().all(|&v| v == 0.0 || v == 1.0) {
        Some(t.iter().map(|&v| v as u8).collect())
    } else {
        None
    };

    let (scale, out_len) = match entry {
        Entry::Loss => (scale_of_opt(reduction), None),
        Entry::LossAndGrad | Entry::Accumulate => (scale_of_opt(reduction), Some(("grad", glen))),
        Entry::Elementwise => (None, Some(("out", glen))),
        Entry::Partial => (Some(scale_of(reduction)), Some(("grad", glen))),
    };
    let want_err = expected_error(&spec, &x, &t, out_len, scale);
    let run = |out: &mut [f32]| -> Result<f32, Error> {
        match (entry, &t8) {
            (Entry::Loss, None) => f.loss(&x, &t, reduction),
            (Entry::Loss, Some(t8)) => f.loss(&x, t8, reduction),
            (Entry::LossAndGrad, None) => f.loss_and_grad(&x, &t, out, reduction),
            (Entry::LossAndGrad, Some(t8)) => f.loss_and_grad(&x, t8, out, reduction),
            (Entry::Accumulate, _) => f.loss_and_grad_accumulate(&x, &t, out, reduction),
            (Entry::Elementwise, _) => f.loss_elementwise(&x, &t, out).map(|_| 0.0),
            (Entry::Partial, _) => f
                .partial(&x, &t, Grad::Accumulate(out, scale_of(reduction)))
                .map(|p| p.loss_sum() as f32),
        }
    };
    let got = run(&mut out);
    match (&want_err, &got) {
        (Some(w), Err(e)) => {
            assert_eq!(w, &format!("{e:?}"), "wrong error");
            if matches!(entry, Entry::Accumulate | Entry::Partial) {
                assert_eq!(
                    sentinel.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "an accumulating call that failed wrote into grad"
                );
            }
            return;
        }
        (Some(w), Ok(_)) => panic!("expected {w}, got Ok"),
        (None, Err(e)) => panic!("valid input rejected: {e:?}"),
        (None, Ok(v)) => assert!(!v.is_nan(), "NaN result for valid input"),
    }

    // Valid: per-element values against the oracle, on the chosen backend and on scalar.
    let classes = spec.classes_of(n);
    let mut l = vec![0f32; n];
    let mut g = vec![0f32; n];
    for b in [spec.backend, Backend::Scalar] {
        let fb = f.backend(b);
        fb.loss_elementwise(&x, &t, &mut l).expect("valid");
        fb.loss_and_grad(&x, &t, &mut g, Reduction::Sum).expect("valid");
        for i in 0..n {
            let o = spec.opts(i, classes);
            let (xi, ti) = (x[i] as f64, t[i] as f64);
            assert!(!l[i].is_nan() && !g[i].is_nan(), "{b:?} NaN at {i}");
            if !spec.moderate_weights() {
                continue; // the documented accuracy covers weights 0 or in [2^-60, 2^60]
            }
            assert!(g[i].is_finite(), "{b:?} infinite gradient at {i}: x={xi}");
            if x[i].is_infinite() {
                continue; // the limits are checked by tests/identities.rs
            }
            let (wl, wg) = oracle::loss_grad(xi, ti, &o);
            let hard = (ti == 0.0 || ti == 1.0) && o.eps == 0.0;
            let (kl, kg) = if hard { (0.0, 0.0) } else { oracle::kappas(xi, ti, &o) };
            assert!(oracle::within_opts(l[i], wl, kl, hard, &o), "{b:?} loss at {i}: {} vs {wl:e} ({o:?}, x={xi}, t={ti})", l[i]);
            assert!(oracle::within_opts(g[i], wg, kg, hard, &o), "{b:?} grad at {i}: {} vs {wg:e} ({o:?}, x={xi}, t={ti})", g[i]);
        }
        // Position independence: the first row alone gives the same bits.
        if n >= classes && spec.sample_weights.is_none() {
            let (mut l1, mut g1) = (vec![0f32; classes], vec![0f32; classes]);
            fb.loss_elementwise(&x[n - classes..], &t[n - classes..], &mut l1).expect("valid");
            fb.loss_and_grad(&x[n - classes..], &t[n - classes..], &mut g1, Reduction::Sum).expect("valid");
            assert_eq!(&l[n - classes..], &l1[..], "{b:?}: last row alone differs");
            assert_eq!(&g[n - classes..], &g1[..], "{b:?}: last row alone differs");
        }
    }
}

fn scale_of(r: Reduction) -> f32 {
    match r {
        Reduction::Scale(s) => s,
        _ => 1.0,
    }
}

fn scale_of_opt(r: Reduction) -> Option<f32> {
    match r {
        Reduction::Scale(s) => Some(s),
        _ => None,
    }
}

#[derive(Arbitrary, Debug)]
pub struct CbInput {
    pub counts: Vec<u64>,
    pub beta: f64,
    pub out_len_delta: i8,
}

/// `class_balanced_weights`: the predicted error, or weights that are finite, positive,
/// within 1e-5 of an f64 evaluation of the formula, decreasing in the count, and summing to C.
pub fn check_class_balanced(input: &CbInput) {
    let counts: Vec<u64> = input.counts.iter().copied().take(256).collect();
    let olen = resize(&counts, input.out_len_delta, 0).len();
    let mut out = vec![-1f32; olen];
    let got = class_balanced_weights(&counts, input.beta, &mut out);
    let want = if olen != counts.len() {
        Some(Error::LengthMismatch { what: "out", expected: counts.len(), found: olen })
    } else if counts.is_empty() {
        Some(Error::ZeroClasses)
    } else if !(0.0..1.0).contains(&input.beta) {
        Some(Error::InvalidParameter { name: "beta", index: None, value: input.beta, expected: "in [0, 1)" })
    } else {
        counts.iter().position(|&n| n == 0).map(|index| Error::ZeroCount { index })
    };
    match want {
        Some(w) => {
            assert_eq!(format!("{w:?}"), format!("{:?}", got.expect_err("expected an error")));
            assert!(out.iter().all(|&v| v == -1.0), "out written on error");
        }
        None => {
            got.expect("valid input rejected");
            let beta = input.beta;
            let raw: Vec<f64> = counts
                .iter()
                .map(|&n| -(1.0 - beta) / (n as f64 * (-(1.0 - beta)).ln_1p()).exp_m1())
                .collect();
            let total: f64 = raw.iter().sum();
            let c = counts.len() as f64;
            for (i, (&w, &r)) in out.iter().zip(&raw).enumerate() {
                let want = r * c / total;
                assert!(w.is_finite() && w >= 0.0, "weight {i} = {w}");
                if want >= f32::MIN_POSITIVE as f64 {
                    assert!(((w as f64) - want).abs() <= 1e-6 * want, "weight {i}: {w} vs {want}");
                }
            }
            for i in 0..counts.len() {
                for j in 0..counts.len() {
                    if counts[i] < counts[j] {
                        assert!(out[i] >= out[j], "weights not decreasing in the count");
                    }
                }
            }
            let sum: f64 = out.iter().map(|&v| v as f64).sum();
            assert!((sum - c).abs() <= 1e-5 * c, "sum {sum} vs {c}");
        }
    }
}
