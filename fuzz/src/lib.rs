//! Property checks shared by the fuzz targets: every input built by `arbitrary` either is
//! valid, and then every entry point returns `Ok`, agrees with the f64 oracle of the test
//! suite within its tolerance table, has no NaN, agrees across backends and does not depend
//! on where an element sits; or it is invalid, and then the entry point returns exactly the
//! error the validation order below predicts, and an accumulating call leaves the gradient
//! untouched (bit for bit).
//!
//! In detail, for a valid input:
//! - the entry point returns `Ok` with no NaN, on `f32` targets and (hard targets) on `u8`
//!   targets, bit for bit the same;
//! - on every available backend, every element's loss and gradient (from `loss_elementwise`
//!   and `loss_and_grad(.., Sum)`) is free of NaN and, when every weight is 0 or in
//!   `[2^-30, 2^30]` (the documented range), within the oracle's tolerance
//!   (`oracle::within_opts`) — at an infinite logit, the gradient against the oracle at
//!   `+-f32::MAX` and the loss `+inf` or 0 as the limit is;
//! - the returned reduced value is the reduction of those element losses (within 1 ULP), and
//!   the gradient written is `factor * element gradient` (added to the previous contents for
//!   accumulating calls; untouched for `Grad::Skip`);
//! - the batch without its first row, and its last row alone, give the same values
//!   (position independence, compared as floats: `-0.0 == 0.0`), and for
//!   `partial`, the batch split at a row boundary and merged gives the whole call's value and
//!   gradient;
//! - a zero factor (`Reduction::Scale(+-0)`, `Grad::Write(.., 0)`, `Grad::Accumulate(.., 0)`),
//!   whatever the input's own reduction, on every backend: a value of 0, and a gradient of
//!   zeros (written) or untouched (accumulated), even where an element's gradient overflowed;
//! - for `partial`, on the partials of the call, of the split and their merge: `merge` is
//!   commutative bit for bit, its count is the saturating sum, `Partial::EMPTY` is its
//!   identity, and merging a partial with itself 70 times doubles its sums exactly and never
//!   panics or wraps the count.
//!
//! The `merge` target ([`check_merges`]) checks the same of many small chunks' partials, and
//! that merging them in any order equals the one call on their concatenation.
//!
//! The inputs are built for the combinations that a uniform choice of each field leaves
//! rare: [`Stress`] forces zero and `f32::MAX` weights together, [`Ramp`] sweeps many logits
//! near a point, and the fields that short inputs reach come first in [`Input`].

use arbitrary::Arbitrary;
use focal_loss::{
    Backend, Error, Focal, Grad, Modulator, Partial, Reduction, class_balanced_weights,
};

#[path = "../../tests/common/mod.rs"]
mod oracle;

/// The softmax family's checks (the `softmax_*` targets).
pub mod softmax;

/// The entry point a fuzz target exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Loss,
    LossAndGrad,
    Elementwise,
    Accumulate,
    Partial,
}

/// A logit: mostly ordinary values, with every kind of special value reachable, and a fine
/// grid near 0, where a soft target's modulator is most sensitive to the rounding of
/// `e^-|x|` and `ln(1 + e^-|x|)` (`Small`'s steps of 1/256 put one value in 2700 within
/// `(0, 0.05]`; `x = 0` itself, the value of missing bytes, has `e = 1` exactly and no such
/// error).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Logit {
    Small(i16),
    Bits(u32),
    Special(u8),
    /// `v / 2^20`: `|x| < 1/32` in steps of `2^-20`.
    Fine(i16),
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
                1e20,
                -1e20,
                1e35,
                -1e35,
            ][k as usize % 20],
            Logit::Fine(v) => v as f32 / 1_048_576.0,
        }
    }
}

/// A target: hard, soft, a special soft value, or any bit pattern (mostly out of range).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum TargetIn {
    Hard(bool),
    Soft(u16),
    Bits(u32),
    Special(u8),
}

impl TargetIn {
    fn value(self) -> f32 {
        match self {
            TargetIn::Hard(b) => b as u8 as f32,
            TargetIn::Soft(v) => v as f32 / u16::MAX as f32,
            TargetIn::Bits(b) => f32::from_bits(b),
            TargetIn::Special(k) => [
                0.5,
                0.43,
                0.1,
                0.9,
                1e-6,
                1.0 - f32::EPSILON / 2.0,
                f32::EPSILON / 2.0,
                1e-40,
                1e-45,
                0.25,
            ][k as usize % 10],
        }
    }
}

/// A weight (class, positive or sample): ordinary, a power of two, special, any bits, zero,
/// or huge.
///
/// `Zero` and `Huge` are there for their products: a zero weight (or alpha) times a term
/// that overflowed gave `0 * inf = NaN`. With a soft target the positive term overflows for a
/// `pos_weight` above `2^64` only (1.9e19 at `x = f32::MIN`, 2.2e38 at `x = -3`), beyond
/// `Pow2`'s `2^64` and the special `2^60`; of the other variants only random `Bits` (one time
/// in eight) and `Special`'s `f32::MAX` (one time in 13) are that large.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum WeightIn {
    Nice(u16),
    Pow2(i8),
    Special(u8),
    Bits(u32),
    Zero,
    /// `f32::MAX` one time in four, else `2^65 .. 2^127`.
    Huge(u8),
}

impl WeightIn {
    fn value(self) -> f32 {
        match self {
            WeightIn::Nice(v) => v as f32 / 1024.0,
            WeightIn::Pow2(k) => (2f32).powi((k as i32).clamp(-64, 64)),
            WeightIn::Special(k) => [
                0.0,
                -0.0,
                1.0,
                8.673_617e-19,  // 2^-60
                1.152_921_5e18, // 2^60
                f32::MIN_POSITIVE,
                1e-45,
                f32::MAX,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                -1.0,
                0.5,
            ][k as usize % 13],
            WeightIn::Bits(b) => f32::from_bits(b),
            WeightIn::Zero => 0.0,
            WeightIn::Huge(k) if k % 4 == 0 => f32::MAX,
            WeightIn::Huge(k) => (2f32).powi(65 + (k / 4) as i32 % 63),
        }
    }
}

/// An alpha: in `[0, 1]`, special, or any bits.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum AlphaVal {
    Nice(u16),
    Special(u8),
    Bits(u32),
}

impl AlphaVal {
    fn value(self) -> f32 {
        match self {
            AlphaVal::Nice(v) => v as f32 / u16::MAX as f32,
            AlphaVal::Special(k) => [
                0.0,
                1.0,
                0.25,
                0.5,
                8.673_617e-19,
                1.0 - f32::EPSILON / 2.0,
                -0.0,
                1.000_000_1,
                f32::NAN,
                -1e-45,
            ][k as usize % 10],
            AlphaVal::Bits(b) => f32::from_bits(b),
        }
    }
}

/// Label smoothing: in `[0, 1)`, special, or any bits.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum EpsIn {
    Nice(u16),
    Special(u8),
    Bits(u32),
}

impl EpsIn {
    fn value(self) -> f32 {
        match self {
            EpsIn::Nice(v) => v as f32 / 65536.0,
            EpsIn::Special(k) => [
                0.0,
                0.1,
                0.5,
                1.0 - f32::EPSILON / 2.0,
                1.0,
                -0.0,
                f32::NAN,
                -0.1,
            ][k as usize % 8],
            EpsIn::Bits(b) => f32::from_bits(b),
        }
    }
}

/// A per-class (or per-row) slice: its values repeat to the length the batch needs, then
/// `len_delta` beyond +-100 adds or drops one (length mismatches); no values: an empty slice.
#[derive(Arbitrary, Debug)]
pub struct SliceIn<V> {
    pub values: Vec<V>,
    pub len_delta: i8,
}

impl<V: Copy> SliceIn<V> {
    fn fit(&self, len: usize, f: impl Fn(V) -> f32) -> Vec<f32> {
        if self.values.is_empty() {
            return Vec::new();
        }
        let v: Vec<f32> = (0..len)
            .map(|i| f(self.values[i % self.values.len()]))
            .collect();
        resize(&v, self.len_delta, 1.0)
    }
}

/// The number of classes stated with `classes(..)`: the batch's own, or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ClassesIn {
    Nominal,
    Other(u8),
}

/// Extremes forced on whole options, for the products that independent choices of the fields
/// rarely make: a zero factor on elements whose other factors overflow (`0 * inf = NaN`), or
/// two huge weights whose product overflows. Active when `gate >= 192` (one input in four; a
/// short input's missing bytes are 0: off). Then two bits of `codes` each for the class
/// weights, `pos_weight`, the sample weights and alpha: 1 sets every value to 0, 2 to
/// `f32::MAX` (alpha: 1), creating the option if the input has none (the per-class ones
/// with the batch's classes, alpha as a scalar); 0 and 3 keep the generated ones.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Stress {
    pub gate: u8,
    pub codes: u8,
}

/// What [`Stress`] does to one option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Force {
    Keep,
    Zero,
    Max,
}

impl Stress {
    /// The forces on the class weights, `pos_weight`, the sample weights and alpha.
    fn forces(self) -> [Force; 4] {
        core::array::from_fn(|i| match (self.gate >= 192, (self.codes >> (2 * i)) & 3) {
            (true, 1) => Force::Zero,
            (true, 2) => Force::Max,
            _ => Force::Keep,
        })
    }
}

impl Force {
    /// The forced value, with `max` for `Force::Max`.
    fn value(self, max: f32) -> Option<f32> {
        match self {
            Force::Keep => None,
            Force::Zero => Some(0.0),
            Force::Max => Some(max),
        }
    }

    /// The slice `w` (an option's values, `len` of them when created) with every value
    /// forced.
    fn apply(self, w: Option<Vec<f32>>, len: usize) -> Option<Vec<f32>> {
        match self.value(f32::MAX) {
            None => w,
            Some(v) => Some(vec![v; w.map_or(len, |w| w.len())]),
        }
    }
}

/// A run of evenly spaced logits appended to `logits`, `start + i step / 2^24` for
/// `i < count % 64 + 1` (steps below 1/512): a dense sweep of a neighbourhood (of 0, of a
/// threshold such as 17 or 88.7) from a few bytes. An accuracy defect that only a few
/// `(x, t)` in 1000 near a point show needs many of them; one logit at a time, libFuzzer's
/// short inputs make one or two per run.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Ramp {
    pub start: Logit,
    pub step: i16,
    pub count: u8,
}

#[derive(Arbitrary, Debug)]
pub struct Input {
    // `arbitrary` fills the fields in this order, and those that the input's bytes do not
    // reach get their defaults (None, 0, empty, the first variant). libFuzzer starts with
    // inputs of a few bytes and lengthens them slowly (to about 60 bytes in the first 100 000
    // runs), so these first fields are the ones short inputs exercise.
    pub stress: Stress,
    pub gamma: GammaIn,
    pub targets: Vec<TargetIn>,
    pub logits: Vec<Logit>,
    pub ramp: Option<Ramp>,
    /// Drop or add a target element (length mismatches).
    pub target_len_delta: i8,
    /// The batch's number of classes is `classes_hint % 64 + 1` when any per-class setting
    /// or `classes` is given.
    pub classes_hint: u8,
    /// Keep a number of logits that is not a multiple of the number of classes.
    pub ragged: bool,
    pub alpha: Option<AlphaIn>,
    pub class_weights: Option<SliceIn<WeightIn>>,
    pub pos_weight: Option<SliceIn<WeightIn>>,
    pub sample_weights: Option<SliceIn<WeightIn>>,
    pub classes: Option<ClassesIn>,
    pub eps: Option<EpsIn>,
    pub modulator: u8,
    pub reduction: ReductionIn,
    pub grad_len_delta: i8,
    pub backend: u8,
    pub u8_targets: bool,
    /// For `partial`: Skip, Write or Accumulate.
    pub grad_mode: u8,
    /// For `partial`: where the batch is split in two, `(rows / 2 + split) % (rows + 1)` rows
    /// in the first part: the middle when the input's bytes end before this field (a split
    /// at 0 makes one part empty, and a merge with an empty part is commutative whatever
    /// `merge` does).
    pub split: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum GammaIn {
    Common(u8),
    /// `[0, 5]`, the documented range, evenly.
    Range(u16),
    Any(f32),
    /// `[4, 5]`, evenly: the top of the documented range, where the modulator multiplies
    /// the rounding errors of its logarithm by up to 5.
    High(u16),
}

#[derive(Arbitrary, Debug)]
pub enum AlphaIn {
    Scalar(AlphaVal),
    PerClass(SliceIn<AlphaVal>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ReductionIn {
    Sum,
    Mean,
    PerPositive,
    Scale(ScaleIn),
}

/// The factor of `Reduction::Scale`: special (zeros, extremes, non-finite), or any bits.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ScaleIn {
    Special(u8),
    Any(f32),
}

impl ReductionIn {
    fn get(self) -> Reduction {
        match self {
            ReductionIn::Sum => Reduction::Sum,
            ReductionIn::Mean => Reduction::Mean,
            ReductionIn::PerPositive => Reduction::PerPositive,
            ReductionIn::Scale(ScaleIn::Special(k)) => Reduction::Scale(
                [
                    0.0,
                    -0.0,
                    0.5,
                    -1.0,
                    1e-45,
                    f32::MAX,
                    f32::MIN,
                    f32::INFINITY,
                    f32::NAN,
                    1.0 / 3.0,
                ][k as usize % 10],
            ),
            ReductionIn::Scale(ScaleIn::Any(s)) => Reduction::Scale(s),
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
    [
        Modulator::Linear,
        Modulator::Geometric,
        Modulator::Separable,
    ][k as usize % 3]
}

fn dbg(e: Error) -> String {
    format!("{e:?}")
}

/// The crate's validation order, written from its documentation: the error a valid
/// implementation must return, or `None` for a valid input.
fn expected_error(
    f: &Spec<'_>,
    x: &[f32],
    t: &[f32],
    out_len: Option<(&'static str, usize)>,
    scale: Option<(&'static str, f32)>,
) -> Option<String> {
    let param = |name: &'static str, index: Option<usize>, value: f64, expected: &'static str| {
        Some(dbg(Error::InvalidParameter {
            name,
            index,
            value,
            expected,
        }))
    };
    if let Some((name, s)) = scale
        && !s.is_finite()
    {
        return param(name, None, s as f64, "finite");
    }
    if !(f.gamma.is_finite() && f.gamma >= 0.0) {
        return param("gamma", None, f.gamma as f64, "finite and >= 0");
    }
    if !(f.eps >= 0.0 && f.eps < 1.0) {
        return param("label_smoothing", None, f.eps as f64, "in [0, 1)");
    }
    let mut classes = f.classes;
    if classes == Some(0) {
        return Some(dbg(Error::ZeroClasses));
    }
    let mut agree = |what: &'static str, len: usize| -> Option<String> {
        if len == 0 {
            return Some(dbg(Error::ZeroClasses));
        }
        match classes {
            Some(c) if c != len => Some(dbg(Error::ClassCountMismatch {
                what,
                expected: c,
                found: len,
            })),
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
    for (name, w) in [
        ("class_weights", f.class_weights),
        ("pos_weight", f.pos_weight),
    ] {
        if let Some(w) = w
            && let Some(e) = agree(name, w.len()).or_else(|| bad_weight(name, w))
        {
            return Some(e);
        }
    }
    let n = x.len();
    if t.len() != n {
        return Some(dbg(Error::LengthMismatch {
            what: "targets",
            expected: n,
            found: t.len(),
        }));
    }
    if let Some((what, len)) = out_len
        && len != n
    {
        return Some(dbg(Error::LengthMismatch {
            what,
            expected: n,
            found: len,
        }));
    }
    let c = classes.unwrap_or(n.max(1));
    if !n.is_multiple_of(c) {
        return Some(dbg(Error::NotMultipleOfClasses { len: n, classes: c }));
    }
    if let Some(w) = f.sample_weights {
        if w.len() != n / c {
            return Some(dbg(Error::LengthMismatch {
                what: "sample_weights",
                expected: n / c,
                found: w.len(),
            }));
        }
        if let Some(e) = bad_weight("sample_weights", w) {
            return Some(e);
        }
    }
    if let Err(e) = f.backend.resolve() {
        return Some(dbg(e));
    }
    for i in 0..n {
        if x[i].is_nan() {
            return Some(dbg(Error::NanLogit {
                index: i,
                row: i / c,
                class: i % c,
            }));
        }
        if !(0.0..=1.0).contains(&t[i]) {
            return Some(dbg(Error::TargetOutOfRange {
                index: i,
                row: i / c,
                class: i % c,
                value: t[i],
            }));
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

impl<'a> Spec<'a> {
    fn focal(&self) -> Focal<'a> {
        let mut f = Focal::new(self.gamma)
            .label_smoothing(self.eps)
            .modulator(self.modulator)
            .backend(self.backend);
        if let Some(c) = self.classes {
            f = f.classes(c);
        }
        f = match self.alpha {
            None => f,
            Some(AlphaSpec::Scalar(a)) => f.alpha(a),
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
    /// `[2^-30, 2^30]`, the range of the documented accuracy.
    fn moderate_weights(&self) -> bool {
        // [2^-30, 2^30]: products of four such weights stay normal.
        let ok = |v: f32| v == 0.0 || (9.313_226e-10..=1.073_741_8e9).contains(&v);
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

/// The bits of a slice, to compare NaN-free floats exactly (`-0.0` differs from `0.0`).
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| v.to_bits()).collect()
}

/// `got` is the f32 rounding of `want` (f64) within `n` ULP (`oracle::ulps`: a `want` beyond
/// the f32 range must give the infinity of its sign).
fn close(got: f32, want: f64, n: f64) -> bool {
    if want.is_infinite() {
        return got as f64 == want;
    }
    oracle::ulps(got, want) <= n
}

/// An output `now` that should be `want` = `before + gs` up to the rounding of the factor and
/// of the product and sum in f32.
fn output_ok(now: f32, want: f64, gs: f64) -> bool {
    if now.is_nan() || want.is_nan() {
        return false;
    }
    let max = f32::MAX as f64;
    if want.is_infinite() || gs.abs() > max || want.abs() > max {
        // Overflow: the infinity of the sign, or the finite value when the f32 sum came back.
        return (now.is_infinite() && (now > 0.0) == (want > 0.0))
            || ((now as f64) - want).abs() <= oracle::ulp(want) + oracle::ulp(gs);
    }
    ((now as f64) - want).abs() <= oracle::ulp(gs) + oracle::ulp(want)
}

/// One call of `entry` on `focal`, with f32 or u8 targets, its gradient in `out`: the
/// returned value (the reduced loss, 0 for `loss_elementwise`) and the `Partial` of `partial`.
fn run_entry(
    (entry, reduction, grad_mode): (Entry, Reduction, u8),
    f: &Focal<'_>,
    (x, t, t8): (&[f32], &[f32], Option<&[u8]>),
    out: &mut [f32],
) -> Result<(f32, Option<Partial>), Error> {
    let s = scale_of(reduction);
    let grad = |out| match grad_mode % 3 {
        0 => Grad::Accumulate(out, s),
        1 => Grad::Write(out, s),
        _ => Grad::Skip,
    };
    let whole = |v: Result<f32, Error>| v.map(|v| (v, None));
    match (entry, t8) {
        (Entry::Loss, None) => whole(f.loss(x, t, reduction)),
        (Entry::Loss, Some(t8)) => whole(f.loss(x, t8, reduction)),
        (Entry::LossAndGrad, None) => whole(f.loss_and_grad(x, t, out, reduction)),
        (Entry::LossAndGrad, Some(t8)) => whole(f.loss_and_grad(x, t8, out, reduction)),
        (Entry::Accumulate, None) => whole(f.loss_and_grad_accumulate(x, t, out, reduction)),
        (Entry::Accumulate, Some(t8)) => whole(f.loss_and_grad_accumulate(x, t8, out, reduction)),
        (Entry::Elementwise, None) => f.loss_elementwise(x, t, out).map(|_| (0.0, None)),
        (Entry::Elementwise, Some(t8)) => f.loss_elementwise(x, t8, out).map(|_| (0.0, None)),
        (Entry::Partial, None) => f
            .partial(x, t, grad(out))
            .map(|p| (p.loss_sum() as f32, Some(p))),
        (Entry::Partial, Some(t8)) => f
            .partial(x, t8, grad(out))
            .map(|p| (p.loss_sum() as f32, Some(p))),
    }
}

/// The oracle's loss and gradient of one element, their condition numbers, and whether the
/// target is hard.
#[derive(Clone, Copy)]
struct Truth {
    wl: f64,
    wg: f64,
    kl: f64,
    kg: f64,
    hard: bool,
}

/// Runs one entry point on `input` and checks every property; panics on a violation.
pub fn check(input: &Input, entry: Entry) {
    let c0 = input.classes_hint as usize % 64 + 1;
    let [f_cw, f_pw, f_sw, f_alpha] = input.stress.forces();
    let per_class = input.classes.is_some()
        || matches!(input.alpha, Some(AlphaIn::PerClass(_)))
        || input.class_weights.is_some()
        || input.pos_weight.is_some()
        || f_cw != Force::Keep
        || f_pw != Force::Keep;
    let mut x: Vec<f32> = input.logits.iter().map(|l| l.value()).collect();
    if let Some(r) = input.ramp {
        let (start, step) = (r.start.value(), r.step as f32 / 16_777_216.0);
        x.extend((0..r.count % 64 + 1).map(|i| step.mul_add(i as f32, start)));
    }
    let mut n = x.len().min(MAX_LEN);
    if per_class && !input.ragged {
        n -= n % c0;
    }
    x.truncate(n);
    let t_full: Vec<f32> = (0..n)
        .map(|i| match input.targets.len() {
            0 => 0.0,
            k => input.targets[i % k].value(),
        })
        .collect();
    let t = resize(&t_full, input.target_len_delta, 0.5);

    let alpha_pc: Vec<f32>;
    let fa = f_alpha.value(1.0);
    let alpha = match &input.alpha {
        None => fa.map(AlphaSpec::Scalar),
        Some(AlphaIn::Scalar(a)) => Some(AlphaSpec::Scalar(fa.unwrap_or(a.value()))),
        Some(AlphaIn::PerClass(a)) => {
            alpha_pc = a.fit(c0, |v| fa.unwrap_or(v.value()));
            Some(AlphaSpec::PerClass(&alpha_pc))
        }
    };
    let weights =
        |w: &Option<SliceIn<WeightIn>>, len: usize| w.as_ref().map(|w| w.fit(len, WeightIn::value));
    let (cw, pw) = (
        f_cw.apply(weights(&input.class_weights, c0), c0),
        f_pw.apply(weights(&input.pos_weight, c0), c0),
    );
    let rows = if per_class { n / c0 } else { 1 };
    let sw = f_sw.apply(weights(&input.sample_weights, rows), rows);
    let gamma = gamma_of(input.gamma);
    let spec = Spec {
        gamma,
        eps: input.eps.map_or(0.0, EpsIn::value),
        classes: input.classes.map(|c| match c {
            ClassesIn::Nominal => c0,
            ClassesIn::Other(k) => k as usize,
        }),
        alpha,
        class_weights: cw.as_deref(),
        pos_weight: pw.as_deref(),
        sample_weights: sw.as_deref(),
        modulator: modulator(input.modulator),
        backend: [
            Backend::Auto,
            Backend::Scalar,
            Backend::Portable,
            Backend::Avx2,
            Backend::Avx512,
        ][input.backend as usize % 5],
    };
    let f = spec.focal();
    let reduction = input.reduction.get();
    let glen = resize(&vec![0f32; n], input.grad_len_delta, 0.0).len();
    let sentinel: Vec<f32> = (0..glen).map(|i| i as f32 * 0.5 - 3.0).collect();
    // u8 targets whenever every target is an integer a byte holds (values above 1 are errors).
    let t8: Option<Vec<u8>> = if input.u8_targets
        && t.iter()
            .all(|&v| (0.0..=255.0).contains(&v) && v.fract() == 0.0)
    {
        Some(t.iter().map(|&v| v as u8).collect())
    } else {
        None
    };
    let skip = entry == Entry::Partial && input.grad_mode % 3 == 2;
    let named = |s: Option<f32>| s.map(|s| ("Reduction::Scale", s));
    // (`grad_mode % 3`: 0 accumulates, 1 writes; see `call`.)
    let grad_name = if input.grad_mode.is_multiple_of(3) {
        "Grad::Accumulate"
    } else {
        "Grad::Write"
    };
    let (scale, out_len) = match entry {
        Entry::Loss => (named(scale_of_opt(reduction)), None),
        Entry::LossAndGrad | Entry::Accumulate => {
            (named(scale_of_opt(reduction)), Some(("grad", glen)))
        }
        Entry::Elementwise => (None, Some(("out", glen))),
        // `Grad::Skip` has no factor to check.
        Entry::Partial if skip => (None, None),
        Entry::Partial => (Some((grad_name, scale_of(reduction))), Some(("grad", glen))),
    };
    let want_err = expected_error(&spec, &x, &t, out_len, scale);
    let accumulating = match entry {
        Entry::Accumulate => true,
        Entry::Partial => input.grad_mode.is_multiple_of(3),
        _ => false,
    };

    let mut out = sentinel.clone();
    let call = (entry, reduction, input.grad_mode);
    let got = run_entry(call, &f, (&x, &t, None), &mut out);
    // The same call on u8 targets: the same result, bit for bit.
    if let Some(t8) = &t8 {
        let mut out8 = sentinel.clone();
        let got8 = run_entry(call, &f, (&x, &t, Some(t8)), &mut out8);
        match (&got, &got8) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.0.to_bits(), b.0.to_bits(), "u8 targets: another value");
                assert_eq!(a.1, b.1, "u8 targets: another Partial");
                assert_eq!(bits(&out), bits(&out8), "u8 targets: another output");
            }
            // As text: an error that carries a NaN value is not equal to itself.
            (a, b) => assert_eq!(
                format!("{:?}", a.as_ref().map(|_| ())),
                format!("{:?}", b.as_ref().map(|_| ())),
                "u8 targets: another error"
            ),
        }
    }
    let (value, part) = match (&want_err, got) {
        (Some(w), Err(e)) => {
            assert_eq!(w, &dbg(e), "wrong error");
            if accumulating || skip {
                assert_eq!(
                    bits(&sentinel),
                    bits(&out),
                    "an accumulating call that failed wrote into grad"
                );
            }
            return;
        }
        (Some(w), Ok(_)) => panic!("expected {w}, got Ok"),
        (None, Err(e)) => panic!("valid input rejected: {e:?}"),
        (None, Ok(v)) => v,
    };
    assert!(
        !value.is_nan(),
        "NaN result for valid input: {entry:?} {reduction:?} gamma {} eps {} x {x:?} t {t:?} backend {:?} modulator {:?}",
        spec.gamma,
        spec.eps,
        spec.backend,
        spec.modulator
    );

    // Valid: per-element values against the oracle, on every backend.
    let classes = spec.classes_of(n);
    // The documented accuracy covers gamma in [0, 5] and weights 0 or in [2^-30, 2^30]; any
    // other valid input is checked for NaN (and, with such weights, finite gradients) only.
    let documented = spec.gamma <= 5.0;
    let moderate = spec.moderate_weights();
    let oracle_at: Vec<Option<Truth>> = (0..n)
        .map(|i| {
            if !(moderate && documented) {
                return None;
            }
            let o = spec.opts(i, classes);
            // Infinite logits: the limits, which the f64 oracle reaches at +-1e200 for every f32
            // gamma and target (not at +-f32::MAX: with gamma = 1e-38 the Geometric modulator
            // of a soft target is still e^-3 there, and it tends to 0).
            let xi = (x[i] as f64).clamp(-1e200, 1e200);
            let ti = t[i] as f64;
            // The smoothed target as the crate has it: an f32 value (documented), which may
            // round to exactly 0 or 1 where the f64 one is not. The limits at infinite logits
            // belong to it; so do the values of a target it makes hard ("snapped"): at huge
            // |x| they differ from the f64 oracle's by more than the condition number allows
            // (with the Geometric modulator, smoothing 2^-33 and x = -3.4e38 the crate has
            // t = 1, loss 3.4e38 and gradient -1; the oracle, with 1 - t = 2^-34, has 0 and
            // a condition number of 0).
            let ts = t[i].mul_add(1.0 - o.eps as f32, 0.5 * o.eps as f32) as f64;
            let snapped = o.eps > 0.0 && (ts == 0.0 || ts == 1.0);
            let o0 = oracle::Opts { eps: 0.0, ..o };
            let (wl, wg) = if x[i].is_infinite() || snapped {
                oracle::loss_grad(xi, ts, &o0)
            } else {
                oracle::loss_grad(xi, ti, &o)
            };
            let hard = (ti == 0.0 || ti == 1.0) && o.eps == 0.0;
            let (kl, kg) = if hard {
                (0.0, 0.0)
            } else if snapped {
                oracle::kappas(xi, ts, &o0)
            } else {
                oracle::kappas(xi, ti, &o)
            };
            Some(Truth {
                wl,
                wg,
                kl,
                kg,
                hard,
            })
        })
        .collect();
    let mut l = vec![0f32; n];
    let mut g = vec![0f32; n];
    let (mut l_chosen, mut g_chosen) = (Vec::new(), Vec::new());
    let chosen = spec.backend.resolve().expect("valid");
    for b in Backend::available() {
        let fb = f.backend(b);
        fb.loss_elementwise(&x, &t, &mut l).expect("valid");
        fb.loss_and_grad(&x, &t, &mut g, Reduction::Sum)
            .expect("valid");
        for i in 0..n {
            let o = spec.opts(i, classes);
            let (xi, ti) = (x[i], t[i]);
            assert!(
                !l[i].is_nan() && !g[i].is_nan(),
                "{b:?} NaN at {i}: x={xi} t={ti} ({o:?})"
            );
            if moderate && documented {
                assert!(
                    g[i].is_finite(),
                    "{b:?} infinite gradient at {i}: x={xi} t={ti} ({o:?})"
                );
            }
            let Some(Truth {
                wl,
                wg,
                kl,
                kg,
                hard,
            }) = oracle_at[i]
            else {
                continue;
            };
            assert!(
                oracle::within_opts(g[i], wg, kg, hard, &o, xi as f64, ti as f64),
                "{b:?} grad at {i}: {} vs {wg:e} ({o:?}, x={xi}, t={ti})",
                g[i]
            );
            if xi.is_infinite() {
                // The limit: +inf where the loss grows with |x|, else 0.
                let want = if wl > 0.0 { f32::INFINITY } else { 0.0 };
                assert_eq!(
                    l[i], want,
                    "{b:?} loss at {i}: limit ({o:?}, x={xi}, t={ti})"
                );
            } else {
                assert!(
                    oracle::within_opts(l[i], wl, kl, hard, &o, xi as f64, ti as f64),
                    "{b:?} loss at {i}: {} vs {wl:e} ({o:?}, x={xi}, t={ti})",
                    l[i]
                );
            }
        }
        // Position independence: the batch without its first row, and its last row alone,
        // give the same values (a row is one element when nothing is per class or per row).
        // Equal as floats: the sign of a zero gradient may differ between the hard-target
        // path and the general one, which is not a position dependence.
        let has_classes = spec.classes.is_some()
            || matches!(spec.alpha, Some(AlphaSpec::PerClass(_)))
            || spec.class_weights.is_some()
            || spec.pos_weight.is_some();
        let unit = match (has_classes, spec.sample_weights) {
            (true, _) => classes,
            (false, Some(_)) => n,
            (false, None) => 1,
        };
        if n > 0 {
            let rows = n / unit;
            for (r0, what) in [
                (1, "without the first row"),
                (rows - 1, "the last row alone"),
            ] {
                if r0 >= rows {
                    continue;
                }
                let a = r0 * unit;
                let fr = match spec.sample_weights {
                    Some(sw) => fb.sample_weights(&sw[r0..]),
                    None => fb,
                };
                let (mut l1, mut g1) = (vec![0f32; n - a], vec![0f32; n - a]);
                fr.loss_elementwise(&x[a..], &t[a..], &mut l1)
                    .expect("valid");
                fr.loss_and_grad(&x[a..], &t[a..], &mut g1, Reduction::Sum)
                    .expect("valid");
                assert_eq!(&l[a..], &l1[..], "{b:?}: {what}, another loss");
                assert_eq!(&g[a..], &g1[..], "{b:?}: {what}, another gradient");
            }
        }
        // A zero factor: a value of 0 and a gradient of zeros whatever the element values
        // are (infinite ones included, with weights beyond the documented range), on every
        // backend and whatever the input's own reduction is.
        check_zero_factor(&fb, &x, &t, entry, b);
        if b == chosen {
            (l_chosen, g_chosen) = (l.clone(), g.clone());
        }
    }

    // The returned value and the gradient written: the reduction of the element values.
    // A factor of 0 (`Scale(0.0)`) makes every term 0, infinite ones included.
    let times = |factor: f64, v: f64| if factor == 0.0 { 0.0 } else { factor * v };
    let sum: f64 = l_chosen.iter().map(|&v| v as f64).sum();
    let positives: f64 = t.iter().map(|&v| v as f64).sum();
    let factor = match reduction {
        Reduction::Sum => 1.0,
        Reduction::Mean => 1.0 / n.max(1) as f64,
        Reduction::PerPositive => 1.0 / positives.max(1.0),
        // Not generated by `ReductionIn` (the sigmoid targets predate it); for `Focal`,
        // `W` is the sum over elements of `w_c s_r` (0: a factor of 0).
        Reduction::WeightedMean => {
            let w: f64 = (0..n)
                .map(|i| {
                    spec.class_weights.map_or(1.0, |w| w[i % classes] as f64)
                        * spec.sample_weights.map_or(1.0, |s| s[i / classes] as f64)
                })
                .sum();
            if w > 0.0 { 1.0 / w } else { 0.0 }
        }
        Reduction::Scale(s) => s as f64,
    };
    match entry {
        Entry::Loss | Entry::LossAndGrad | Entry::Accumulate => assert!(
            close(value, times(factor, sum), 1.0),
            "reduced value {value} vs {:e} ({reduction:?}, {entry:?}, chosen {chosen:?}, x {x:?}, t {t:?}, elements {l_chosen:?}, spec gamma {} classes {classes})",
            times(factor, sum),
            spec.gamma
        ),
        Entry::Partial => {
            let p = part.expect("a Partial");
            let s = p.loss_sum();
            assert!(
                s == sum || (s - sum).abs() <= 1e-12 * sum,
                "loss_sum {s:e} vs {sum:e}"
            );
            assert_eq!(p.elements(), n as u64, "elements");
            assert!(
                (p.positives() - positives).abs() <= 1e-12 * positives,
                "positives {} vs {positives}",
                p.positives()
            );
        }
        Entry::Elementwise => {}
    }
    // The crate multiplies the derivatives by the factor rounded to f32 (as documented).
    let gfactor = match entry {
        Entry::Partial => scale_of(reduction) as f64,
        Entry::Loss | Entry::Elementwise => 0.0, // no gradient
        _ => factor as f32 as f64,
    };
    if entry == Entry::Loss || skip {
        assert_eq!(
            bits(&sentinel),
            bits(&out),
            "{entry:?} wrote into a gradient it has not"
        );
    } else {
        assert_eq!(
            out.len(),
            n,
            "a valid call with an output of another length"
        );
    }
    let written = if entry == Entry::Loss || skip { 0 } else { n };
    for i in 0..written {
        let (before, now) = (sentinel[i], out[i]);
        let gs = times(gfactor, g_chosen[i] as f64);
        let want = match entry {
            Entry::Loss => before as f64,
            Entry::Elementwise => l_chosen[i] as f64,
            Entry::LossAndGrad => gs,
            Entry::Accumulate => before as f64 + gs,
            Entry::Partial => match input.grad_mode % 3 {
                0 => before as f64 + gs,
                1 => gs,
                _ => before as f64,
            },
        };
        assert!(
            !now.is_nan(),
            "{entry:?} output {i} is NaN (factor {gfactor})"
        );
        assert!(
            output_ok(now, want, gs),
            "{entry:?} output {i}: {now} vs {want:e} (before {before}, factor {gfactor})"
        );
    }

    // partial: the batch split at a row boundary, merged, gives the whole call's values.
    if entry == Entry::Partial && (n == 0 || skip) {
        check_merge(&[part.expect("a Partial"), Partial::EMPTY]);
    }
    if entry == Entry::Partial && n > 0 && !skip {
        let rows = n / classes;
        let k = (rows / 2 + input.split as usize) % (rows + 1);
        let cut = k * classes;
        let s = scale_of(reduction);
        let mut whole = vec![0f32; n];
        let pw = f
            .partial(&x, &t, Grad::Write(&mut whole, s))
            .expect("valid");
        let mut split = vec![0f32; n];
        let (g0, g1) = split.split_at_mut(cut);
        let (f0, f1) = match spec.sample_weights {
            Some(sw) => (f.sample_weights(&sw[..k]), f.sample_weights(&sw[k..])),
            None => (f, f),
        };
        let a = f0
            .partial(&x[..cut], &t[..cut], Grad::Write(g0, s))
            .expect("valid");
        let b = f1
            .partial(&x[cut..], &t[cut..], Grad::Write(g1, s))
            .expect("valid");
        assert_eq!(whole, split, "split at row {k}: another gradient");
        let m = a.merge(b);
        assert_eq!(m.elements(), pw.elements());
        check_merge(&[a, b, m, pw, part.expect("a Partial"), Partial::EMPTY]);
        for r in [
            Reduction::Sum,
            Reduction::Mean,
            Reduction::PerPositive,
            reduction,
        ] {
            let (u, v) = (m.reduce(r).expect("valid"), pw.reduce(r).expect("valid"));
            assert!(
                u.to_bits() == v.to_bits() || close(u, v as f64, 1.0),
                "split at row {k}: {u} vs {v} ({r:?})"
            );
        }
    }
}

/// A zero factor, on one backend: `loss` and `loss_and_grad` with `Scale(+-0)` return 0,
/// and the latter writes zeros; `loss_and_grad_accumulate` and `Grad::Accumulate(.., 0)`
/// leave the gradient as it was; `Grad::Write(.., 0)` writes zeros (never `0 * inf = NaN`,
/// whatever the element losses and gradients).
fn check_zero_factor(f: &Focal<'_>, x: &[f32], t: &[f32], entry: Entry, b: Backend) {
    let before: Vec<f32> = (0..x.len()).map(|i| i as f32 * 0.5 - 3.0).collect();
    let zeros = |g: &[f32]| g.iter().all(|&v| v == 0.0);
    let same = |g: &[f32]| g.iter().zip(&before).all(|(v, w)| v == w);
    for s in [0.0f32, -0.0] {
        let mut g = before.clone();
        match entry {
            Entry::LossAndGrad => {
                let v = f.loss_and_grad(x, t, &mut g, Reduction::Scale(s));
                assert_eq!(v, Ok(0.0), "{b:?} Scale({s}): the value");
                assert!(
                    zeros(&g),
                    "{b:?} Scale({s}): gradient {g:?}, x {x:?} t {t:?}"
                );
            }
            Entry::Accumulate => {
                let v = f.loss_and_grad_accumulate(x, t, &mut g, Reduction::Scale(s));
                assert_eq!(v, Ok(0.0), "{b:?} Scale({s}): the value");
                assert!(
                    same(&g),
                    "{b:?} Scale({s}): accumulated {g:?}, x {x:?} t {t:?}"
                );
            }
            Entry::Partial => {
                let p = f.partial(x, t, Grad::Write(&mut g, s)).expect("valid");
                assert!(
                    zeros(&g),
                    "{b:?} Write(.., {s}): gradient {g:?}, x {x:?} t {t:?}"
                );
                assert_eq!(
                    p.reduce(Reduction::Scale(s)),
                    Ok(0.0),
                    "{b:?} reduce Scale({s})"
                );
                let mut g = before.clone();
                f.partial(x, t, Grad::Accumulate(&mut g, s)).expect("valid");
                assert!(
                    same(&g),
                    "{b:?} Accumulate(.., {s}): {g:?}, x {x:?} t {t:?}"
                );
            }
            Entry::Loss => {
                let v = f.loss(x, t, Reduction::Scale(s));
                assert_eq!(v, Ok(0.0), "{b:?} Scale({s}): the value, x {x:?} t {t:?}");
            }
            Entry::Elementwise => {}
        }
    }
}

/// `merge` on some partials and on the merges of their pairs: commutative bit for bit for
/// every pair (`a.merge(b) == b.merge(a)`, and the bits of the loss sum and positives),
/// counts that add (saturating at `u64::MAX`), `Partial::EMPTY` the identity; and merging
/// one of `ps` with itself, 70 times over, doubles the loss sum and positives exactly (or
/// keeps them infinite) and never panics or wraps the count.
///
/// (A non-commutative merge shows only where the high words' sum is inexact and both low
/// words are nonzero; the loss sum of one chunk has a low word only when its losses span
/// more than about 2^29, while a merge's low word is the rounding error of its high words.)
fn check_merge(ps: &[Partial]) {
    let bits3 = |p: Partial| {
        (
            p.loss_sum().to_bits(),
            p.positives().to_bits(),
            p.elements(),
        )
    };
    let mut all = ps.to_vec();
    for (i, &a) in ps.iter().enumerate() {
        all.extend(ps[i + 1..].iter().map(|&b| a.merge(b)));
    }
    for (i, &a) in all.iter().enumerate() {
        for &b in &all[i..] {
            let (ab, ba) = (a.merge(b), b.merge(a));
            assert!(
                ab == ba && bits3(ab) == bits3(ba),
                "merge is not commutative: {a:?} . {b:?} = {ab:?}, reversed {ba:?}"
            );
            assert_eq!(
                ab.elements(),
                a.elements().saturating_add(b.elements()),
                "merged count: {a:?} . {b:?}"
            );
        }
        let e = a.merge(Partial::EMPTY);
        assert_eq!(
            bits3(e),
            bits3(a),
            "EMPTY is not the identity: {a:?} -> {e:?}"
        );
    }
    for &a in ps {
        let mut q = a;
        for k in 1..=70 {
            let m = q.merge(q);
            assert!(
                m.elements() >= q.elements()
                    && m.elements() == q.elements().saturating_add(q.elements()),
                "self-merge {k} of {a:?}: count {} -> {}",
                q.elements(),
                m.elements()
            );
            assert_eq!(
                (m.loss_sum(), m.positives()),
                (2.0 * q.loss_sum(), 2.0 * q.positives()),
                "self-merge {k} of {a:?}: {q:?} -> {m:?}"
            );
            q = m;
        }
    }
}

/// Input of the `merge` target: chunks of one batch (shared gamma and modulator), each made
/// into a `Partial` (chunks `partial` rejects are left out).
#[derive(Arbitrary, Debug)]
pub struct MergeInput {
    pub gamma: GammaIn,
    pub modulator: u8,
    pub chunks: Vec<Vec<(Logit, TargetIn)>>,
}

/// `Partial::merge` on many partials: [`check_merge`] on (up to 12 of) them; merging all of
/// them in either order, and the single `partial` of their concatenation, give the same
/// count, loss sums within `2^-50` relative (the documented bounds: associative to within
/// `2^-104` per merge, a chunk's sum within `2^-51 + (n 2^-53)^2`) and positives (plain f64
/// sums) within `n 2^-52`.
///
/// The `partial` target merges two chunks of one batch, whose loss sums rarely have the low
/// words a non-commutative merge needs (losses spanning more than 2^29 in each chunk); here
/// every chunk of a few random logits can.
pub fn check_merges(input: &MergeInput) {
    let f = Focal::new(gamma_of(input.gamma)).modulator(modulator(input.modulator));
    let data: Vec<(Vec<f32>, Vec<f32>)> = input
        .chunks
        .iter()
        .take(64)
        .map(|c| {
            c.iter()
                .take(64)
                .map(|(x, t)| (x.value(), t.value()))
                .unzip()
        })
        .collect();
    let mut parts = Vec::new();
    let (mut xs, mut ts) = (Vec::new(), Vec::new());
    for (x, t) in &data {
        if let Ok(p) = f.partial(x, t, Grad::Skip) {
            parts.push(p);
            xs.extend_from_slice(x);
            ts.extend_from_slice(t);
        }
    }
    check_merge(&parts[..parts.len().min(12)]);
    let forward = parts.iter().fold(Partial::EMPTY, |m, &p| m.merge(p));
    let backward = parts.iter().rev().fold(Partial::EMPTY, |m, &p| p.merge(m));
    let whole = match f.partial(&xs, &ts, Grad::Skip) {
        Ok(p) => p,
        // An invalid gamma rejects every chunk, and the empty batch.
        Err(_) if parts.is_empty() => return,
        Err(e) => panic!("valid chunks rejected together: {e:?}"),
    };
    let near = |u: f64, v: f64, rel: f64| u == v || (u - v).abs() <= rel * u.abs().max(v.abs());
    let n = xs.len() as f64;
    for (what, p) in [("backward", backward), ("one call", whole)] {
        assert_eq!(p.elements(), forward.elements(), "{what}: count");
        assert!(
            near(p.loss_sum(), forward.loss_sum(), (2f64).powi(-50))
                && near(p.positives(), forward.positives(), n * (2f64).powi(-52)),
            "{what}: {p:?} vs merged forward {forward:?}"
        );
    }
}

fn gamma_of(g: GammaIn) -> f32 {
    match g {
        GammaIn::Common(k) => [0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0, 0.25][k as usize % 8],
        GammaIn::Range(v) => v as f32 / u16::MAX as f32 * 5.0,
        GammaIn::Any(g) => g,
        GammaIn::High(v) => 4.0 + v as f32 / u16::MAX as f32,
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

/// A class count: small, or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum CountIn {
    Small(u16),
    Any(u64),
}

/// `beta`: a common value, or any bits.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum BetaIn {
    Common(u8),
    Any(f64),
}

#[derive(Arbitrary, Debug)]
pub struct CbInput {
    pub counts: Vec<CountIn>,
    pub beta: BetaIn,
    pub out_len_delta: i8,
}

/// `class_balanced_weights`: the predicted error (and `out` untouched), or weights that are
/// finite, positive, within 1 ULP of an f64 evaluation of the formula, all 1 at `beta = 0`,
/// not increasing in the count, and summing to C.
pub fn check_class_balanced(input: &CbInput) {
    let counts: Vec<u64> = input
        .counts
        .iter()
        .take(256)
        .map(|c| match *c {
            CountIn::Small(n) => n as u64,
            CountIn::Any(n) => n,
        })
        .collect();
    let beta = match input.beta {
        BetaIn::Common(k) => [
            0.0,
            0.9,
            0.99,
            0.999,
            0.9999,
            0.99999,
            1.0 - f64::EPSILON / 2.0,
            0.5,
            1.0,
        ][k as usize % 9],
        BetaIn::Any(b) => b,
    };
    let olen = resize(&counts, input.out_len_delta, 0).len();
    let mut out = vec![-1f32; olen];
    let got = class_balanced_weights(&counts, beta, &mut out);
    let want = if olen != counts.len() {
        Some(Error::LengthMismatch {
            what: "out",
            expected: counts.len(),
            found: olen,
        })
    } else if counts.is_empty() {
        Some(Error::ZeroClasses)
    } else if !(0.0..1.0).contains(&beta) {
        Some(Error::InvalidParameter {
            name: "beta",
            index: None,
            value: beta,
            expected: "in [0, 1)",
        })
    } else {
        counts
            .iter()
            .position(|&n| n == 0)
            .map(|index| Error::ZeroCount { index })
    };
    match want {
        Some(w) => {
            assert_eq!(dbg(w), dbg(got.expect_err("expected an error")));
            assert!(out.iter().all(|&v| v == -1.0), "out written on error");
        }
        None => {
            got.expect("valid input rejected");
            let raw: Vec<f64> = counts
                .iter()
                .map(|&n| -(1.0 - beta) / (n as f64 * (-(1.0 - beta)).ln_1p()).exp_m1())
                .collect();
            let total: f64 = raw.iter().sum();
            let c = counts.len() as f64;
            for (i, (&w, &r)) in out.iter().zip(&raw).enumerate() {
                let want = r * c / total;
                assert!(w.is_finite() && w > 0.0, "weight {i} = {w}");
                assert!(
                    oracle::ulps(w, want) <= 1.0,
                    "weight {i}: {w} vs {want} (beta {beta}, count {})",
                    counts[i]
                );
                if beta == 0.0 {
                    assert_eq!(w, 1.0, "beta = 0: weight {i} = {w}");
                }
            }
            let mut order: Vec<usize> = (0..counts.len()).collect();
            order.sort_by_key(|&i| counts[i]);
            for w in order.windows(2) {
                assert!(
                    out[w[0]] >= out[w[1]],
                    "weights increase with the count: {} -> {}, {} -> {}",
                    counts[w[0]],
                    out[w[0]],
                    counts[w[1]],
                    out[w[1]]
                );
            }
            let sum: f64 = out.iter().map(|&v| v as f64).sum();
            assert!((sum - c).abs() <= 1e-6 * c, "sum {sum} vs {c}");
        }
    }
}
