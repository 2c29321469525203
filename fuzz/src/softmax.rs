//! Property checks of the softmax family ([`SoftmaxFocal`]), shared by the `softmax_*` fuzz
//! targets (one per entry point: `loss`, `loss_and_grad`, `loss_and_grad_accumulate`,
//! `loss_per_row`, `partial`).
//!
//! [`SmInput`] describes a batch: the number of classes `C` (2-20 most often; the lane-count
//! boundaries 1-257; up to 300), rows, the `[N, C, S]` layout (`S` positions per image), the
//! label type (`u8`, `u16`, `u32`, `i32`, `i64` indices or `f32` distributions), `gamma` (0,
//! 1/2, 1, 2, ..., `[0, 5]`, `[4, 5]`, any `f32`), alpha, label smoothing, class and sample
//! weights (zero and `f32::MAX` ones included, [`Stress`] forcing them on whole options), the
//! `ignore_index` (and the logits of ignored rows: NaN, `+inf`), the reduction and the
//! backend. Each row's logits come from a generator ([`RowIn`]: a dominant class with a
//! margin up to 200, the label far below the rest, ties at the maximum, `-inf` and `+inf`
//! classes, values near `+-1e4`, a fine grid near 0, one value repeated, explicit values), so
//! that a few bytes make a whole row; [`Poke`]s write NaN, infinities or any value over single
//! logits. At most [`MAX_LOGITS`] logits, so that 100 000 executions take well under a minute.
//!
//! The input either is valid, or it is not, and then the call must return exactly the error
//! that the documented validation predicts ([`expected_error`]: parameters, classes, lengths,
//! the backend, `LabelOutOfRange { row, label, classes }`, `TargetOutOfRange`, `NanLogit` of
//! the first NaN of a counted row in the call's layout), and an accumulating call (and
//! `Grad::Skip`) must leave its gradient untouched, bit for bit.
//!
//! For a valid input every target checks:
//! - the call returns `Ok`, with no NaN in its value or outputs, and writes every element it
//!   writes (the outputs are NaN-filled before a writing call);
//! - on `Backend::Scalar`, class-last, every counted row's loss (`loss_per_row`) and gradient
//!   (`loss_and_grad(.., Sum)`) agree with the f64 oracle ([`oracle_row`]: the formulas of
//!   `tests/common/softmax.rs`'s `row`, with `G_{-j}` summed without cancellation at any `C`)
//!   within the suite's tolerance table (`allowed(gamma, weighted)` ULP of the result's scale
//!   beyond twice the conditioning, plus the subnormal allowance `8 C 2^-149 max(K, 1)`:
//!   `excess_ulps` of `tests/common/softmax.rs`, unchanged), where every `s_r alpha w_c` is
//!   finite in f32 and, for gradients, 0 or in `[2^-40, 2^40]`, and `gamma <= 5` (see
//!   [`Domain`]). The oracle takes the weights `K_c` as the crate forms them in f32 (`s_r
//!   alpha`, `min(s_r alpha w_c, MAX)`, `y'_c` and their product each rounded: perturbations
//!   of the weights, which also makes a subnormal `K_c`, whose rounding is absolute, exact);
//!   a truth beyond `f32::MAX` must give `+-inf`, and an infinite loss where the f32 `z_c - m`
//!   overflowed (`-f32::MAX - f32::MAX`) passes;
//! - ignored rows have loss and gradient exactly `+0.0`, even when their logits are NaN;
//!   rows whose every weight `s_r alpha w_c y'_c` is exactly 0 (in real arithmetic) have loss
//!   and gradient 0;
//! - the input's backend (every backend over a run: the input chooses it) agrees with
//!   `Scalar` within twice the tolerance (each is within it of the truth);
//! - on the input's backend, the `[N, C, S]` call gives the bits of the class-last call on the
//!   transposed rows (losses per row, gradient, reduced value);
//! - index labels give the bits of one-hot `f32` labels (losses per row, value, and the
//!   gradient up to the sign of zeros, see [`check_index_labels`]) on the rows not ignored,
//!   which also give the bits they have in the whole batch (position independence), and the
//!   bits of the same labels as `i64` (`softmax_loss`).
//!
//! And each target checks its own entry point on the input's backend, layout, label type and
//! reduction:
//! - `softmax_loss`: the value is the reduction of its per-row losses (1 ULP), the bits of
//!   `loss_and_grad`'s value and of the class-last call; `i64` labels give its bits;
//! - `softmax_grad`: the value as above; the gradient is the class-last call's (bits), `+0.0`
//!   on ignored rows and for a zero factor, and within the tolerance (+2 ULP for the factor's
//!   two products; the subnormal allowance times `max(|f|, 1)`, for the absolute roundings
//!   before the factor multiplies) of the oracle times the factor `f` rounded to f32 (for
//!   factors 0 or in `[2^-40, 2^40]`); `f32` distributions rounded to `bf16` and to `f16`
//!   give, as those types, the bits of their `f32` values (loss and gradient);
//! - `softmax_accumulate`: the value is `loss_and_grad`'s, the gradient `g0 + loss_and_grad`
//!   bit for bit;
//! - `softmax_per_row`: the per-row losses are the class-last call's bits, and their sum is
//!   `loss(.., Sum)` within 1 ULP;
//! - `softmax_partial` (`Grad::Write`, `Accumulate` or `Skip`, with the factor of the
//!   reduction for the batch's counts): the counts (rows not ignored, positives, `W`) are the
//!   batch's; the partial reduces to the bits of `loss_and_grad` (`_accumulate`) and writes
//!   its gradient's bits; the batch in chunks of whole images, merged in alternating order,
//!   gives the same gradient bits, counts, loss sum (within `2^-49`) and reduced value (the
//!   same bits when the sums agree; otherwise, the documented exception of a sum near a
//!   rounding boundary, within 1 ULP).
//!
//! # Defects found
//! The targets found three defects of `SoftmaxFocal`, every backend alike (fixed in f80a895
//! and 2a02f10; `tests/softmax_errors.rs` has them as
//! `zero_weight_times_overflowing_weights`, `weighted_mean_over_tiny_weights` and
//! `negative_factor_times_huge_weight`):
//! 1. `s_r alpha` overflowing f32 turned a zero class weight into `K = min(inf 0, MAX) = MAX`:
//!    `SoftmaxFocal::new(2.0).alpha(f32::MAX).class_weights(&[0.0, 1.0]).sample_weights(&[2.0])`
//!    `.loss(&[0.0, 0.0], &[0u8], Sum)` was `5.9e37`, gradient `[-1.0e38, 1.0e38]`; the weight
//!    of the row is 0, so are its loss and gradient.
//! 2. `WeightedMean` with `W < 1 / f32::MAX` rounded the gradient factor `1 / W` to `inf`:
//!    `SoftmaxFocal::new(2.0).sample_weights(&[1e-39])` on `[1.0, 0.0, -1.0]`, label `0u8`,
//!    `loss_and_grad(.., WeightedMean)` wrote `[-1.1e38, 1.3e38, 4.6e37]` (one-hot `f32`
//!    labels: `[2.3e38, -1.3e38, -2.6e38]`) where a sample weight of 1 gives the truth,
//!    `[-0.0983, 0.0719, 0.0264]`.
//! 3. A negative factor whose product with `K g` overflowed gave NaN gradients (only the
//!    positive side was clamped to `f32::MAX`: `-inf q` with `q = 0`, `0 (-inf)`):
//!    `SoftmaxFocal::new(0.0).sample_weights(&[4.0])` on `[0.0, -inf]`, label `0u8`,
//!    `loss_and_grad(.., Scale(-1e38))` wrote `[NaN, NaN]` (truth: `[0, 0]`).
//!
//! The sign of zeros: index and one-hot labels give `-0.0` and `+0.0` for some zero gradient
//! elements under a negative factor (see [`check_index_labels`]); compared as values there.

use arbitrary::Arbitrary;
use focal_loss::half::{bf16, f16};
use focal_loss::{Backend, Error, Float, Grad, Label, Partial, Reduction, SoftmaxFocal};

use crate::oracle::softmax::{SM_SUB_ABS, allowed, excess_ulps};
use crate::oracle::{ulp, ulps};
use crate::{EpsIn, Force, GammaIn, Logit, Stress, WeightIn, dbg, gamma_of};

/// The most logits a batch has: a valid input runs about twenty calls and the oracle (under
/// ASan and coverage instrumentation), and 100 000 executions must take well under a minute.
const MAX_LOGITS: usize = 512;
/// The oracle's values are checked for `gamma <= ORACLE_GAMMA` (the table was measured for
/// `[0, 5]`; beyond, the values are checked for NaN, identities and backend agreement).
pub const ORACLE_GAMMA: f32 = 5.0;

/// The entry point a softmax fuzz target exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmEntry {
    Loss,
    Grad,
    Accumulate,
    PerRow,
    Partial,
}

/// The number of classes from two bytes: `v % 4` 0, 1: small (2-20); 2: the lane-count
/// boundaries (1-257); 3: large (21-300); `v >> 2` picks one.
fn classes_of(v: u16) -> usize {
    const LANES: [usize; 26] = [
        1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 127, 128, 129, 255,
        256, 257,
    ];
    let k = (v >> 2) as usize;
    match v % 4 {
        0 | 1 => 2 + k % 19,
        2 => LANES[k % LANES.len()],
        _ => 21 + k % 280,
    }
}

/// One row's logits, made from a few bytes (`seed`s feed a small generator, mixed with the
/// row's index so that a repeated generator gives different rows).
#[derive(Arbitrary, Debug, Clone)]
pub enum RowIn {
    /// Uniform in `[-s, s]`, `s` in {1, 3, 10, 30, 100, 0.01}.
    Random { seed: u16, scale: u8 },
    /// One class (the label's, or any) above the rest (`[-3, 3]`) by a margin up to 200.
    Dominant {
        seed: u16,
        margin: u8,
        on_label: bool,
    },
    /// The label's class far below the rest (down to `-3e38`).
    LabelLow { seed: u16, depth: u8 },
    /// One to four classes (and the label's) tied at one value.
    Ties {
        seed: u16,
        count: u8,
        value: i8,
        with_label: bool,
    },
    /// Masked classes (`-inf`), the label's too if `label_too` (then the loss is `+inf`).
    Masked {
        seed: u16,
        mask: u32,
        label_too: bool,
    },
    /// `+inf` classes (and `-inf` ones).
    PlusInf { seed: u16, mask: u32, minus: bool },
    /// Values near `+-1e4` (the differences to the maximum round).
    Large { seed: u16, spread: u8, neg: bool },
    /// A fine grid near 0: `start / 2^20 + k step / 2^24`.
    Fine { start: i16, step: i16 },
    /// Every class the same value (`-inf`: a uniform row; NaN; `+inf`).
    Same(Logit),
    /// Log-uniform magnitudes `10^[-3, 2]`, random signs.
    Spread { seed: u16 },
    /// `0.5 +- w`, `w` in {1e-3, 1e-6, 2^-20}.
    NearUniform { seed: u16, width: u8 },
    /// The values, repeated.
    Explicit(Vec<Logit>),
}

/// One row's label: a class, the ignore index, a two-class mixture, a dense distribution,
/// or a value out of range. Index label types take a class from each (`Soft` its first
/// class, `Dense` its seed), `f32` labels a distribution (`Ignore`: all zeros).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum LabelIn {
    Class(u16),
    Ignore,
    Soft { a: u16, b: u16, frac: u16 },
    Dense { kind: u8, seed: u16 },
    Out(OutIn),
}

/// A label out of range: an edge (-1, C, 255, 65536, i32/i64 extremes, ...) or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum OutIn {
    Edge(u8),
    Any(i64),
}

/// The ignore index: the usual one for the type (-100, or the type's maximum for unsigned
/// types, as segmentation maps use 255), none, a real class, or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum IgnoreSel {
    Default,
    Off,
    Class(u8),
    MinusOne,
    Any(i64),
}

/// Alpha: unset, `[0, 4)`, a power of two, special (0, -0, huge, non-finite, negative), bits.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum AlphaSel {
    Unset,
    Nice(u16),
    Pow2(i8),
    Special(u8),
    Bits(u32),
}

impl AlphaSel {
    fn get(self) -> Option<f32> {
        match self {
            AlphaSel::Unset => None,
            AlphaSel::Nice(v) => Some(v as f32 / 16384.0),
            AlphaSel::Pow2(k) => Some((2f32).powi((k as i32).clamp(-70, 70))),
            AlphaSel::Special(k) => Some(
                [
                    0.25,
                    0.5,
                    1.0,
                    0.0,
                    -0.0,
                    2.0,
                    1e-45,
                    f32::MAX,
                    f32::MIN_POSITIVE,
                    1.152_921_5e18,
                    f32::INFINITY,
                    f32::NAN,
                    -1.0,
                    -1e-45,
                ][k as usize % 14],
            ),
            AlphaSel::Bits(b) => Some(f32::from_bits(b)),
        }
    }
}

/// The reduction from one byte: `v % 5` Sum, Mean, PerPositive, WeightedMean, or `Scale` of
/// a special factor (`v / 5`: zeros, extremes of both signs, non-finite, ...); `any`, when
/// the input has it, replaces the special factor (any bits).
fn reduction_of(v: u8, any: Option<f32>) -> Reduction {
    const SPECIAL: [f32; 15] = [
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
        1_073_741_824.0,
        -1_073_741_824.0,
        9.313_226e-10,
        -1e30,
        -3.0,
    ];
    match v % 5 {
        0 => Reduction::Sum,
        1 => Reduction::Mean,
        2 => Reduction::PerPositive,
        3 => Reduction::WeightedMean,
        _ => Reduction::Scale(any.unwrap_or(SPECIAL[(v / 5) as usize % SPECIAL.len()])),
    }
}

/// The number of classes stated with `.classes(..)`: for index labels none, for `f32`
/// labels `C` (unless class weights imply it) (`Auto`); always `C`; never; another number;
/// 0; more than 2^24.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum StatedSel {
    Auto,
    Nominal,
    Omit,
    Other(u16),
    Zero,
    Huge(bool),
}

/// A value written over one logit of the batch (class-last index `at % n`).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Poke {
    pub at: u16,
    pub val: PokeVal,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum PokeVal {
    Nan,
    NegInf,
    PosInf,
    Max,
    Min,
    Value(Logit),
}

/// Wrong lengths and parameters: each `i8` beyond `+-64` adds (drops) one element of that
/// slice; `spatial % 8` 7 sets `spatial(0)`, 6 a spatial size whose product with `C`
/// overflows.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Fault {
    pub logits: i8,
    pub labels: i8,
    pub grad: i8,
    pub out: i8,
    pub samples: i8,
    pub class_w: i8,
    pub spatial: u8,
}

fn delta(v: i8) -> isize {
    if v > 64 {
        1
    } else if v < -64 {
        -1
    } else {
        0
    }
}

/// A softmax fuzz input. `arbitrary` fills the fields in this order (the ones the input's
/// bytes do not reach get their defaults: 0, the first variant, none, empty). libFuzzer's
/// inputs stay near 40 bytes in the first 100 000 executions (an enum takes 4 bytes of tag,
/// a vector a byte per element), so the shape, the label type, the backend and the
/// reduction are single bytes, first, and the options that make an input invalid come late.
#[derive(Arbitrary, Debug)]
pub struct SmInput {
    /// See [`classes_of`].
    pub classes: u16,
    /// Rows (`1 + rows % 40` class-last; images `1 + rows % 4` with `S > 1`; 255: none).
    pub rows: u8,
    /// `S = 1` below 160, else `2 + (spatial - 160) % 23`.
    pub spatial: u8,
    /// The label type: i64, u8, u16, u32, i32, f32 (`kind % 6`).
    pub kind: u8,
    /// Auto, Scalar, Portable, Avx2, Avx512 (`backend % 5`).
    pub backend: u8,
    /// See [`reduction_of`].
    pub reduction: u8,
    /// For `partial`: Write, Accumulate, Skip (`% 3`).
    pub grad_mode: u8,
    pub gamma: GammaIn,
    pub logits: Vec<RowIn>,
    pub labels: Vec<LabelIn>,
    /// Forces every class weight, sample weight or alpha to 0 or `f32::MAX` (one input in four).
    pub stress: Stress,
    pub alpha: AlphaSel,
    pub eps: Option<EpsIn>,
    pub ignore: IgnoreSel,
    pub class_weights: Option<Vec<WeightIn>>,
    pub sample_weights: Option<Vec<WeightIn>>,
    /// The logits of ignored rows: kept, NaN, `+inf`, `-1e30` (`% 4`).
    pub ignored_logits: u8,
    /// For `partial`: images per chunk, `1 + chunk % N`.
    pub chunk: u8,
    pub pokes: Vec<Poke>,
    pub stated: StatedSel,
    /// Any factor for `Reduction::Scale`.
    pub scale: Option<f32>,
    pub fault: Option<Fault>,
}

/// splitmix64: the rows' values from their seeds.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.unit()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

impl RowIn {
    /// The row's logits `z` (`C` of them), row `r`, label class `y` (if any).
    fn fill(&self, z: &mut [f32], y: Option<usize>, r: usize) {
        let c = z.len();
        let rng = |s: u16| {
            Rng::new(((s as u64) << 20) ^ (r as u64).wrapping_mul(0x1000_0001) ^ ((c as u64) << 44))
        };
        let base = |g: &mut Rng, z: &mut [f32]| {
            for v in z.iter_mut() {
                *v = g.range(-3.0, 3.0) as f32;
            }
        };
        match self {
            RowIn::Random { seed, scale } => {
                let mut g = rng(*seed);
                let s = [1.0, 3.0, 10.0, 30.0, 100.0, 0.01][*scale as usize % 6];
                for v in z.iter_mut() {
                    *v = g.range(-s, s) as f32;
                }
            }
            RowIn::Dominant {
                seed,
                margin,
                on_label,
            } => {
                let mut g = rng(*seed);
                base(&mut g, z);
                let m = if *margin < 128 {
                    [1.0, 5.0, 17.0, 40.0, 90.0, 200.0, 88.7, 103.9, 16.6, 0.5]
                        [*margin as usize % 10]
                        + g.unit()
                } else {
                    (*margin - 128) as f64 * 200.0 / 127.0
                };
                let top = match (on_label, y) {
                    (true, Some(y)) => y,
                    _ => g.below(c),
                };
                z[top] = m as f32;
            }
            RowIn::LabelLow { seed, depth } => {
                let mut g = rng(*seed);
                base(&mut g, z);
                let d = [
                    20.0, 50.0, 88.0, 104.0, 150.0, 200.0, 1000.0, 1e4, 1e30, 3e38,
                ][*depth as usize % 10];
                let at = y.unwrap_or_else(|| g.below(c));
                z[at] = (-d + g.range(-1.0, 1.0)) as f32;
            }
            RowIn::Ties {
                seed,
                count,
                value,
                with_label,
            } => {
                let mut g = rng(*seed);
                base(&mut g, z);
                let m = (3.5 + *value as f64 / 16.0) as f32;
                for _ in 0..1 + *count as usize % 4 {
                    z[g.below(c)] = m;
                }
                if let (true, Some(y)) = (with_label, y) {
                    z[y] = m;
                }
            }
            RowIn::Masked {
                seed,
                mask,
                label_too,
            } => {
                let mut g = rng(*seed);
                base(&mut g, z);
                for (k, v) in z.iter_mut().enumerate() {
                    if (mask >> (k % 32)) & 1 == 1 && (*label_too || Some(k) != y) {
                        *v = f32::NEG_INFINITY;
                    }
                }
            }
            RowIn::PlusInf { seed, mask, minus } => {
                let mut g = rng(*seed);
                base(&mut g, z);
                for (k, v) in z.iter_mut().enumerate() {
                    let b = k % 16;
                    if (mask >> b) & 1 == 1 {
                        *v = f32::INFINITY;
                    } else if *minus && (mask >> (16 + b)) & 1 == 1 {
                        *v = f32::NEG_INFINITY;
                    }
                }
            }
            RowIn::Large { seed, spread, neg } => {
                let mut g = rng(*seed);
                let s = [1e-3, 1.0, 30.0, 300.0, 3000.0][*spread as usize % 5];
                let c0 = if *neg { -1e4 } else { 1e4 };
                for v in z.iter_mut() {
                    *v = (c0 + g.range(-s, s)) as f32;
                }
            }
            RowIn::Fine { start, step } => {
                let (a, h) = (*start as f32 / 1_048_576.0, *step as f32 / 16_777_216.0);
                for (k, v) in z.iter_mut().enumerate() {
                    *v = h.mul_add(k as f32, a);
                }
            }
            RowIn::Same(l) => z.fill(l.value()),
            RowIn::Spread { seed } => {
                let mut g = rng(*seed);
                for v in z.iter_mut() {
                    let m = (10f64).powf(g.range(-3.0, 2.0));
                    *v = if g.below(2) == 0 { m } else { -m } as f32;
                }
            }
            RowIn::NearUniform { seed, width } => {
                let mut g = rng(*seed);
                let w = [1e-3, 1e-6, 9.5367431640625e-7][*width as usize % 3];
                for v in z.iter_mut() {
                    *v = (0.5 + g.range(-w, w)) as f32;
                }
            }
            RowIn::Explicit(v) => {
                for (k, z) in z.iter_mut().enumerate() {
                    *z = if v.is_empty() {
                        0.0
                    } else {
                        v[k % v.len()].value()
                    };
                }
            }
        }
    }
}

/// A label slice of one of the six types.
#[derive(Clone, Debug)]
pub enum Labels {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
}

/// `$body` with `$y` bound to the label slice, whatever its type.
macro_rules! with_labels {
    ($l:expr, |$y:ident| $body:expr) => {
        match $l {
            Labels::U8(v) => {
                let $y: &[u8] = v;
                $body
            }
            Labels::U16(v) => {
                let $y: &[u16] = v;
                $body
            }
            Labels::U32(v) => {
                let $y: &[u32] = v;
                $body
            }
            Labels::I32(v) => {
                let $y: &[i32] = v;
                $body
            }
            Labels::I64(v) => {
                let $y: &[i64] = v;
                $body
            }
            Labels::F32(v) => {
                let $y: &[f32] = v;
                $body
            }
        }
    };
}

impl Labels {
    /// Index labels of type `kind` (0..5: i64, u8, u16, u32, i32) from `raw` (cast with `as`).
    fn index(kind: usize, raw: &[i64]) -> Labels {
        match kind {
            1 => Labels::U8(raw.iter().map(|&v| v as u8).collect()),
            2 => Labels::U16(raw.iter().map(|&v| v as u16).collect()),
            3 => Labels::U32(raw.iter().map(|&v| v as u32).collect()),
            4 => Labels::I32(raw.iter().map(|&v| v as i32).collect()),
            _ => Labels::I64(raw.to_vec()),
        }
    }

    fn is_dense(&self) -> bool {
        matches!(self, Labels::F32(_))
    }

    fn len(&self) -> usize {
        with_labels!(self, |y| y.len())
    }

    /// The class index of label `i` as the crate reads it (`i64`).
    fn class(&self, i: usize) -> i64 {
        match self {
            Labels::U8(v) => v[i] as i64,
            Labels::U16(v) => v[i] as i64,
            Labels::U32(v) => v[i] as i64,
            Labels::I32(v) => v[i] as i64,
            Labels::I64(v) => v[i],
            Labels::F32(_) => i64::MIN,
        }
    }

    /// Labels `a..b`.
    fn slice(&self, a: usize, b: usize) -> Labels {
        match self {
            Labels::U8(v) => Labels::U8(v[a..b].to_vec()),
            Labels::U16(v) => Labels::U16(v[a..b].to_vec()),
            Labels::U32(v) => Labels::U32(v[a..b].to_vec()),
            Labels::I32(v) => Labels::I32(v[a..b].to_vec()),
            Labels::I64(v) => Labels::I64(v[a..b].to_vec()),
            Labels::F32(v) => Labels::F32(v[a..b].to_vec()),
        }
    }

    /// One element more (a copy of the first, or 0) or one less.
    fn resize(&mut self, d: isize) {
        fn r<T: Copy + Default>(v: &mut Vec<T>, d: isize) {
            if d > 0 {
                v.push(v.first().copied().unwrap_or_default());
            } else if d < 0 {
                v.pop();
            }
        }
        match self {
            Labels::U8(v) => r(v, d),
            Labels::U16(v) => r(v, d),
            Labels::U32(v) => r(v, d),
            Labels::I32(v) => r(v, d),
            Labels::I64(v) => r(v, d),
            Labels::F32(v) => r(v, d),
        }
    }
}

/// How `partial` is asked for the gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Write,
    Accumulate,
    Skip,
}

/// A batch and its options, as plain data.
pub struct Case {
    c: usize,
    /// Positions per image (1: class-last).
    sp: usize,
    n_img: usize,
    rows: usize,
    gamma: f32,
    alpha: Option<f32>,
    eps: Option<f32>,
    cw: Option<Vec<f32>>,
    sw: Option<Vec<f32>>,
    ignore: Option<i64>,
    stated: Option<usize>,
    backend: Backend,
    reduction: Reduction,
    mode: Mode,
    chunk: usize,
    /// Class-last logits `[rows, C]` (row `r = n S + p`).
    xr: Vec<f32>,
    /// Class-last labels: `[rows]` indices, or `[rows, C]` distributions.
    lab_cl: Labels,
    /// The call's logits and labels (`[N, C, S]` when `S > 1`), with the faults applied.
    x_call: Vec<f32>,
    lab_call: Labels,
    cw_call: Option<Vec<f32>>,
    sw_call: Option<Vec<f32>>,
    spatial_call: usize,
    grad_len: usize,
    out_len: usize,
    /// A fault changed a length or a parameter.
    faulty: bool,
}

fn weights(w: &Option<Vec<WeightIn>>, len: usize) -> Option<Vec<f32>> {
    match w {
        Some(v) if !v.is_empty() => Some((0..len).map(|i| v[i % v.len()].value()).collect()),
        _ => None,
    }
}

/// Row-major `[rows, C]` values (row `r = n S + p`) as `[N, C, S]`.
fn to_nchw(v: &[f32], n_img: usize, c: usize, sp: usize) -> Vec<f32> {
    let mut o = vec![0f32; v.len()];
    for i in 0..n_img {
        for p in 0..sp {
            let r = i * sp + p;
            for k in 0..c {
                o[(i * c + k) * sp + p] = v[r * c + k];
            }
        }
    }
    o
}

/// The inverse of [`to_nchw`].
fn from_nchw(v: &[f32], n_img: usize, c: usize, sp: usize) -> Vec<f32> {
    let mut o = vec![0f32; v.len()];
    for i in 0..n_img {
        for p in 0..sp {
            let r = i * sp + p;
            for k in 0..c {
                o[r * c + k] = v[(i * c + k) * sp + p];
            }
        }
    }
    o
}

/// A distribution row for `f32` labels.
fn dense_row(l: LabelIn, y: &mut [f32], r: usize) {
    let c = y.len();
    y.fill(0.0);
    match l {
        LabelIn::Class(v) => y[v as usize % c] = 1.0,
        LabelIn::Ignore => {}
        LabelIn::Soft { a, b, frac } => {
            let f = frac as f32 / 65535.0;
            y[a as usize % c] += f;
            let j = b as usize % c;
            y[j] = (y[j] + (1.0 - f)).min(1.0);
        }
        LabelIn::Dense { kind, seed } => {
            let mut g = Rng::new(((seed as u64) << 24) ^ r as u64);
            match kind % 6 {
                0 => y.fill(1.0 / c as f32),
                1 => y.fill(1.0),
                2 => y.iter_mut().for_each(|v| *v = g.unit() as f32),
                3 => y.iter_mut().for_each(|v| {
                    *v = [1e-45, 1e-40, f32::MIN_POSITIVE, 9.313_226e-10, 0.0, 1.0][g.below(6)]
                }),
                4 => {
                    let k = 1 + g.below(3);
                    let mut left = 1.0f64;
                    for j in 0..k {
                        let v = if j + 1 == k { left } else { left * g.unit() };
                        left -= v;
                        let at = g.below(c);
                        y[at] = (y[at] + v as f32).min(1.0);
                    }
                }
                _ => {
                    y.fill(-0.0);
                    y[seed as usize % c] = 1.0;
                }
            }
        }
        LabelIn::Out(o) => {
            y[0] = 1.0;
            const BAD: [f32; 8] = [
                1.000_000_1,
                -1e-45,
                f32::NAN,
                2.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                -1.0,
                1e30,
            ];
            let (at, bad) = match o {
                OutIn::Edge(k) => (k as usize % c, BAD[k as usize % 8]),
                OutIn::Any(v) => ((v as u64 % c as u64) as usize, f32::from_bits(v as u32)),
            };
            y[at] = bad;
        }
    }
}

fn out_value(o: OutIn, c: usize) -> i64 {
    let c = c as i64;
    match o {
        OutIn::Edge(k) => [
            -1,
            c,
            c + 1,
            255,
            256,
            65535,
            65536,
            i32::MAX as i64,
            i32::MIN as i64,
            u32::MAX as i64,
            i64::MIN,
            i64::MAX,
            -100,
            1 << 24,
        ][k as usize % 14],
        OutIn::Any(v) => v,
    }
}

impl Case {
    /// The batch `input` describes.
    pub fn new(input: &SmInput) -> Case {
        let c = classes_of(input.classes);
        let mut sp = if input.spatial < 160 {
            1
        } else {
            2 + (input.spatial - 160) as usize % 23
        };
        let mut n_img = match (input.rows, sp) {
            (255, _) => 0,
            (v, 1) => 1 + v as usize % 40,
            (v, _) => 1 + v as usize % 4,
        };
        while n_img * sp * c > MAX_LOGITS {
            if n_img > 1 {
                n_img -= 1;
            } else {
                sp = (MAX_LOGITS / c).max(1);
            }
        }
        let rows = n_img * sp;
        let n = rows * c;
        let kind = input.kind as usize % 6;
        let dense = kind == 5;

        let [f_cw, _, f_sw, f_alpha] = input.stress.forces();
        let alpha = match f_alpha {
            Force::Keep => input.alpha.get(),
            Force::Zero => Some(0.0),
            Force::Max => Some(f32::MAX),
        };
        let cw = f_cw.apply(weights(&input.class_weights, c), c);
        let sw = f_sw.apply(weights(&input.sample_weights, rows), rows);
        let ignore = match input.ignore {
            IgnoreSel::Default => Some(match kind {
                1 => 255,
                2 => 65535,
                3 => u32::MAX as i64,
                _ => -100,
            }),
            IgnoreSel::Off => None,
            IgnoreSel::Class(v) => Some((v as usize % c) as i64),
            IgnoreSel::MinusOne => Some(-1),
            IgnoreSel::Any(v) => Some(v),
        };
        let label_in = |r: usize| match input.labels.len() {
            0 => LabelIn::Class(0),
            k => input.labels[r % k],
        };

        // Labels, class-last.
        let (lab_cl, row_label): (Labels, Vec<Option<usize>>) = if dense {
            let mut y = vec![0f32; n];
            let mut at = Vec::with_capacity(rows);
            for r in 0..rows {
                let row = &mut y[r * c..(r + 1) * c];
                dense_row(label_in(r), row, r);
                let best = row.iter().enumerate().filter(|(_, v)| **v > 0.0).fold(
                    None,
                    |b: Option<(usize, f32)>, (k, &v)| match b {
                        Some((_, bv)) if bv >= v => b,
                        _ => Some((k, v)),
                    },
                );
                at.push(best.map(|b| b.0));
            }
            (Labels::F32(y), at)
        } else {
            let ignore_raw = ignore.unwrap_or(-100);
            let raw: Vec<i64> = (0..rows)
                .map(|r| match label_in(r) {
                    LabelIn::Class(v) => (v as usize % c) as i64,
                    LabelIn::Ignore => ignore_raw,
                    LabelIn::Soft { a, .. } => (a as usize % c) as i64,
                    LabelIn::Dense { seed, .. } => (seed as usize % c) as i64,
                    LabelIn::Out(o) => out_value(o, c),
                })
                .collect();
            let l = Labels::index(kind, &raw);
            let at = (0..rows)
                .map(|r| {
                    let v = l.class(r);
                    (0..c as i64).contains(&v).then_some(v as usize)
                })
                .collect();
            (l, at)
        };

        // Logits, class-last.
        let mut xr = vec![0f32; n];
        let default_row = RowIn::Random { seed: 0, scale: 0 };
        for r in 0..rows {
            let g = match input.logits.len() {
                0 => &default_row,
                k => &input.logits[r % k],
            };
            g.fill(&mut xr[r * c..(r + 1) * c], row_label[r], r);
        }
        if n > 0 {
            for p in input.pokes.iter().take(8) {
                xr[p.at as usize % n] = match p.val {
                    PokeVal::Nan => f32::NAN,
                    PokeVal::NegInf => f32::NEG_INFINITY,
                    PokeVal::PosInf => f32::INFINITY,
                    PokeVal::Max => f32::MAX,
                    PokeVal::Min => f32::MIN,
                    PokeVal::Value(l) => l.value(),
                };
            }
        }
        if !dense && !input.ignored_logits.is_multiple_of(4) {
            let v = [0.0, f32::NAN, f32::INFINITY, -1e30][input.ignored_logits as usize % 4];
            for r in 0..rows {
                if Some(lab_cl.class(r)) == ignore {
                    xr[r * c..(r + 1) * c].fill(v);
                }
            }
        }

        let stated = match input.stated {
            StatedSel::Auto if dense && cw.is_none() => Some(c),
            StatedSel::Auto | StatedSel::Omit => None,
            StatedSel::Nominal => Some(c),
            StatedSel::Other(v) => Some(v as usize),
            StatedSel::Zero => Some(0),
            StatedSel::Huge(false) => Some((1 << 24) + 1),
            StatedSel::Huge(true) => Some(usize::MAX),
        };

        // The call's buffers.
        let mut x_call = if sp > 1 {
            to_nchw(&xr, n_img, c, sp)
        } else {
            xr.clone()
        };
        let mut lab_call = match &lab_cl {
            Labels::F32(y) if sp > 1 => Labels::F32(to_nchw(y, n_img, c, sp)),
            l => l.clone(),
        };
        let (mut cw_call, mut sw_call) = (cw.clone(), sw.clone());
        let (mut spatial_call, mut grad_len, mut out_len) = (sp, n, rows);
        let mut faulty = false;
        if let Some(f) = input.fault {
            let resize = |v: &mut Vec<f32>, d: isize| {
                if d > 0 {
                    v.push(0.5);
                } else if d < 0 {
                    v.pop();
                }
            };
            resize(&mut x_call, delta(f.logits));
            lab_call.resize(delta(f.labels));
            if let Some(w) = cw_call.as_mut() {
                resize(w, delta(f.class_w));
            }
            if let Some(w) = sw_call.as_mut() {
                resize(w, delta(f.samples));
            }
            grad_len = grad_len.saturating_add_signed(delta(f.grad));
            out_len = out_len.saturating_add_signed(delta(f.out));
            spatial_call = match f.spatial % 8 {
                7 => 0,
                6 => usize::MAX / 2 + 1,
                _ => sp,
            };
            faulty = x_call.len() != n
                || lab_call.len() != lab_cl.len()
                || cw_call.as_ref().map(Vec::len) != cw.as_ref().map(Vec::len)
                || sw_call.as_ref().map(Vec::len) != sw.as_ref().map(Vec::len)
                || grad_len != n
                || out_len != rows
                || spatial_call != sp;
        }

        Case {
            c,
            sp,
            n_img,
            rows,
            gamma: gamma_of(input.gamma),
            alpha,
            eps: input.eps.map(EpsIn::value),
            cw,
            sw,
            ignore,
            stated,
            backend: [
                Backend::Auto,
                Backend::Scalar,
                Backend::Portable,
                Backend::Avx2,
                Backend::Avx512,
            ][input.backend as usize % 5],
            reduction: reduction_of(input.reduction, input.scale),
            mode: [Mode::Write, Mode::Accumulate, Mode::Skip][input.grad_mode as usize % 3],
            chunk: input.chunk as usize,
            xr,
            lab_cl,
            x_call,
            lab_call,
            cw_call,
            sw_call,
            spatial_call,
            grad_len,
            out_len,
            faulty,
        }
    }

    /// The builder with every option of the case, class and sample weights `cw`, `sw`.
    fn focal<'a>(
        &self,
        cw: Option<&'a [f32]>,
        sw: Option<&'a [f32]>,
        spatial: usize,
        backend: Backend,
    ) -> SoftmaxFocal<'a> {
        let mut f = SoftmaxFocal::new(self.gamma)
            .spatial(spatial)
            .backend(backend);
        if let Some(a) = self.alpha {
            f = f.alpha(a);
        }
        if let Some(e) = self.eps {
            f = f.label_smoothing(e);
        }
        if let Some(i) = self.ignore {
            f = f.ignore_index(i);
        }
        if let Some(c) = self.stated {
            f = f.classes(c);
        }
        if let Some(w) = cw {
            f = f.class_weights(w);
        }
        if let Some(s) = sw {
            f = f.sample_weights(s);
        }
        f
    }

    /// The builder of the call (its faults applied).
    fn call_focal(&self) -> SoftmaxFocal<'_> {
        self.focal(
            self.cw_call.as_deref(),
            self.sw_call.as_deref(),
            self.spatial_call,
            self.backend,
        )
    }

    /// The builder of the class-last calls on `backend`.
    fn cl_focal(&self, backend: Backend) -> SoftmaxFocal<'_> {
        self.focal(self.cw.as_deref(), self.sw.as_deref(), 1, backend)
    }

    /// The builder of the `[N, C, S]` calls on `backend`.
    fn nchw_focal(&self, backend: Backend) -> SoftmaxFocal<'_> {
        self.focal(self.cw.as_deref(), self.sw.as_deref(), self.sp, backend)
    }

    fn eps_val(&self) -> f32 {
        self.eps.unwrap_or(0.0)
    }

    /// Whether row `r` (class-last order) is counted (not ignored).
    fn live(&self, r: usize) -> bool {
        self.lab_cl.is_dense() || Some(self.lab_cl.class(r)) != self.ignore
    }

    /// A short description for failure messages.
    fn describe(&self) -> String {
        format!(
            "C {} S {} N {} rows {} gamma {:e} alpha {:?} eps {:?} class_weights {:?} \
             sample_weights {:?} ignore {:?} classes {:?} backend {:?} reduction {:?} \
             logits (class-last) {:?} labels (class-last) {:?}",
            self.c,
            self.sp,
            self.n_img,
            self.rows,
            self.gamma,
            self.alpha,
            self.eps,
            self.cw,
            self.sw,
            self.ignore,
            self.stated,
            self.backend,
            self.reduction,
            self.xr,
            self.lab_cl
        )
    }
}

/// The error the documented validation predicts for the call, in the crate's order
/// (the reduction's factor; gamma, alpha, smoothing, spatial; the classes and the lengths;
/// the backend; the labels; the first NaN logit of a counted row), or the number of classes
/// of a valid call. `scale`: the factor checked for finiteness and the name its error carries
/// (`Reduction::Scale`, `Grad::Write` or `Grad::Accumulate`); `out`: the output slice and its length.
fn expected_error(
    case: &Case,
    scale: Option<(&'static str, f32)>,
    out: Option<(&'static str, usize, bool)>,
) -> Result<usize, String> {
    let param = |name: &'static str, index: Option<usize>, value: f64, expected: &'static str| {
        Err(dbg(Error::InvalidParameter {
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
    let g = case.gamma;
    if !(g.is_finite() && g >= 0.0) {
        return param("gamma", None, g as f64, "finite and >= 0");
    }
    let a = case.alpha.unwrap_or(1.0);
    if !(a.is_finite() && a >= 0.0) {
        return param("alpha", None, a as f64, "finite and >= 0");
    }
    let eps = case.eps_val();
    if !(0.0..1.0).contains(&eps) {
        return param("label_smoothing", None, eps as f64, "in [0, 1)");
    }
    let sp = case.spatial_call;
    if sp == 0 {
        return param("spatial", None, 0.0, ">= 1");
    }
    let bad_weight = |name: &'static str, w: &[f32]| {
        w.iter()
            .position(|v| !(v.is_finite() && *v >= 0.0))
            .map_or(Ok(()), |i| {
                param(name, Some(i), w[i] as f64, "finite and >= 0").map(|_| ())
            })
    };
    let mut classes = case.stated;
    if classes == Some(0) {
        return Err(dbg(Error::ZeroClasses));
    }
    if let Some(w) = &case.cw_call {
        if w.is_empty() {
            return Err(dbg(Error::ZeroClasses));
        }
        if let Some(c) = classes
            && c != w.len()
        {
            return Err(dbg(Error::ClassCountMismatch {
                what: "class_weights",
                expected: c,
                found: w.len(),
            }));
        }
        classes = Some(w.len());
        bad_weight("class_weights", w)?;
    }
    let n = case.x_call.len();
    let lab = &case.lab_call;
    let dense = lab.is_dense();
    let c = match (classes, dense) {
        (Some(c), _) => c,
        (None, true) => return Err(dbg(Error::UnknownClasses)),
        (None, false) if lab.len() == 0 => n.max(1),
        (None, false) => {
            if n == 0 || !n.is_multiple_of(lab.len()) {
                return Err(dbg(Error::LengthMismatch {
                    what: "labels",
                    expected: n / lab.len(),
                    found: lab.len(),
                }));
            }
            n / lab.len()
        }
    };
    if c > 1 << 24 {
        return param("classes", None, c as f64, "at most 2^24");
    }
    let Some(image) = c.checked_mul(sp) else {
        return param("spatial", None, sp as f64, "C S <= usize::MAX");
    };
    if !n.is_multiple_of(image) {
        return Err(dbg(Error::NotMultipleOfClasses {
            len: n,
            classes: image,
        }));
    }
    let rows = n / c;
    let len = |what: &'static str, expected: usize, found: usize| {
        if expected == found {
            Ok(())
        } else {
            Err(dbg(Error::LengthMismatch {
                what,
                expected,
                found,
            }))
        }
    };
    len("labels", if dense { n } else { rows }, lab.len())?;
    if let Some(w) = &case.sw_call {
        len("sample_weights", rows, w.len())?;
        bad_weight("sample_weights", w)?;
    }
    if let Some((what, found, grad)) = out {
        len(what, if grad { n } else { rows }, found)?;
    }
    if let Err(e) = case.backend.resolve() {
        return Err(dbg(e));
    }
    match lab {
        Labels::F32(y) => {
            if let Some(i) = y.iter().position(|v| !(0.0..=1.0).contains(v)) {
                return Err(dbg(Error::TargetOutOfRange {
                    index: i,
                    row: (i / image) * sp + i % sp,
                    class: (i % image) / sp,
                    value: y[i],
                }));
            }
        }
        _ => {
            for r in 0..rows {
                let v = lab.class(r);
                if Some(v) != case.ignore && !(0..c as i64).contains(&v) {
                    return Err(dbg(Error::LabelOutOfRange {
                        row: r,
                        label: v,
                        classes: c,
                    }));
                }
            }
        }
    }
    for (i, v) in case.x_call.iter().enumerate() {
        let row = (i / image) * sp + i % sp;
        if v.is_nan() && (dense || Some(lab.class(row)) != case.ignore) {
            return Err(dbg(Error::NanLogit {
                index: i,
                row,
                class: (i % image) / sp,
            }));
        }
    }
    Ok(c)
}

/// One row's loss and gradient in f64 (the formulas of `tests/common/softmax.rs`'s `row`,
/// `G_{-j}` as a prefix and a suffix sum of non-negative terms: no cancellation at any `C`).
#[derive(Clone, Debug)]
pub struct RowOut {
    pub loss: f64,
    pub grad: Vec<f64>,
    /// `|p_j G_{-j}| + |K_j g_j q_j|`: the scale of the subtraction that forms `grad[j]`.
    pub scale: Vec<f64>,
}

/// The oracle: row `z` with weights `k` at exponent `gamma`; with `round`, `z_c - m` rounded
/// to f32 first (the perturbation the crate's inputs force).
pub fn oracle_row(z: &[f32], k: &[f64], gamma: f64, round: bool) -> RowOut {
    let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let dif = |v: f32| {
        if v == m {
            0.0
        } else if round {
            (v - m) as f64
        } else {
            v as f64 - m as f64
        }
    };
    let n = z.len();
    let (mut ties, mut t) = (0.0, 0.0);
    for &v in z {
        match dif(v) {
            0.0 => ties += 1.0,
            d => t += d.exp(),
        }
    }
    t += ties - 1.0;
    let s = 1.0 + t;
    let ln_s = t.ln_1p();
    let mut lsum = 0.0;
    // (p, q, K g) per class.
    let mut pqk = Vec::with_capacity(n);
    for (c, &v) in z.iter().enumerate() {
        let d = dif(v);
        let (p, q, l, rl) = if d == 0.0 {
            let rl = if t > 0.0 { ln_s / t } else { 1.0 };
            (1.0 / s, t / s, ln_s, rl)
        } else {
            let e = d.exp();
            let p = e / s;
            let q = 1.0 - p;
            let l = ln_s - d;
            let rl = if p == 0.0 { 0.0 } else { p / q * l };
            (p, q, l, rl)
        };
        let mm = if gamma == 0.0 { 1.0 } else { q.powf(gamma) };
        let g = mm * (1.0 + gamma * rl);
        if k[c] != 0.0 {
            lsum += k[c] * mm * l;
        }
        pqk.push((p, q, k[c] * g));
    }
    // `scale` holds the suffix sums first.
    let mut grad = vec![0.0; n];
    let mut scale = vec![0.0; n];
    let mut acc = 0.0;
    for c in (0..n).rev() {
        scale[c] = acc;
        acc += pqk[c].2;
    }
    let mut prefix = 0.0;
    for j in 0..n {
        let (p, q, kg) = pqk[j];
        let rest = prefix + scale[j];
        prefix += kg;
        let a = p * rest;
        let b = kg * q;
        grad[j] = a - b;
        scale[j] = a.abs() + b.abs();
    }
    RowOut {
        loss: lsum,
        grad,
        scale,
    }
}

/// Whether the f32 rounding of `z_c - m` is exact for every class (then the rounded oracle is
/// the exact one).
fn exact_differences(z: &[f32]) -> bool {
    let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    z.iter()
        .all(|&v| v == m || ((v - m) as f64) == v as f64 - m as f64)
}

/// `excess_ulps` of the test suite, with the f32 range's ends: a truth (exact or with the
/// rounded `z_c - m`) that `got` equals passes (an infinite loss where the rounded difference
/// overflowed), and a truth beyond `f32::MAX` (less half an ULP) must give `+-inf`.
fn excess(got: f32, exact: f64, rounded: f64, scale: f64, kmax: f64, classes: usize) -> f64 {
    if got.is_nan() {
        return f64::INFINITY;
    }
    let g = got as f64;
    if g == exact || g == rounded {
        return 0.0;
    }
    if !exact.is_finite() || !rounded.is_finite() || !scale.is_finite() {
        return f64::INFINITY;
    }
    if exact.abs() >= OVERFLOW * (1.0 - (2f64).powi(-22)) {
        let overflowed = got.is_infinite() && (got > 0.0) == (exact > 0.0);
        if overflowed {
            return 0.0;
        }
    }
    if got.is_infinite() {
        return f64::INFINITY;
    }
    excess_ulps(got, exact, rounded, scale, kmax, classes)
}

/// Whether two backends' values of one output agree: each within `tol` ULP of the oracle's
/// scale beyond twice the conditioning, so within twice that of each other (without an
/// oracle, `2 tol` ULP of the larger).
fn agree(a: f32, b: f32, o: Option<(f64, f64, f64)>, tol: f64, kmax: f64, classes: usize) -> bool {
    if a.to_bits() == b.to_bits() || a == b {
        return true;
    }
    if a.is_nan() || b.is_nan() {
        return false;
    }
    if a.is_infinite() || b.is_infinite() {
        // An overflow: the other is at the top of the range, of the same sign.
        return (a > 0.0) == (b > 0.0) && a.abs().min(b.abs()) >= f32::MAX * 0.5;
    }
    let diff = (a as f64 - b as f64).abs();
    let sub = 2.0 * SM_SUB_ABS * kmax.max(1.0) * classes as f64 * (2f64).powi(-149);
    match o {
        Some((e, r, s)) if e.is_finite() && r.is_finite() && s.is_finite() => {
            diff <= 2.0 * tol * ulp(s.abs().max(f32::MIN_POSITIVE as f64))
                + 4.0 * (e - r).abs()
                + sub
        }
        _ => diff <= 2.0 * tol * ulp((a.abs().max(b.abs())) as f64) + sub,
    }
}

/// `y` rounded to `T`, as `T` labels against their `f32` values: the same loss and gradient
/// bits.
fn same_as_widened<T: Label + Float>(
    f: &SoftmaxFocal<'_>,
    x: &[f32],
    y: &[f32],
    red: Reduction,
    case: &Case,
) {
    let yt: Vec<T> = y.iter().map(|&v| T::from_f32(v)).collect();
    let yw: Vec<f32> = yt.iter().map(|v| v.to_f32()).collect();
    let (mut gt, mut gw) = (vec![0f32; x.len()], vec![0f32; x.len()]);
    let a = f.loss_and_grad(x, &yt, &mut gt, red).map(f32::to_bits);
    let b = f.loss_and_grad(x, &yw, &mut gw, red).map(f32::to_bits);
    assert_eq!(
        a,
        b,
        "{} labels vs their f32 values: {}",
        core::any::type_name::<T>(),
        case.describe()
    );
    assert!(
        bits(&gt) == bits(&gw),
        "{} labels' gradient vs their f32 values': {}",
        core::any::type_name::<T>(),
        case.describe()
    );
}

/// The bits of a slice.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| v.to_bits()).collect()
}

/// The bits of a slice, `-0.0` as `+0.0`.
fn zbits(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|&v| if v == 0.0 { 0 } else { v.to_bits() })
        .collect()
}

/// The f64 value a reduction gives for a loss sum `sum` and the counts of a call.
fn reduced(sum: f64, r: Reduction, p: &Partial) -> f64 {
    match r {
        Reduction::WeightedMean if p.weight() <= 0.0 => 0.0,
        // `-0.0` too.
        Reduction::Scale(0.0) => 0.0,
        _ => sum * factor(r, p),
    }
}

/// The factor of a reduction for the counts of a call (the gradient's, before its rounding
/// to f32).
fn factor(r: Reduction, p: &Partial) -> f64 {
    match r {
        Reduction::Sum => 1.0,
        Reduction::Mean => 1.0 / p.elements().max(1) as f64,
        Reduction::PerPositive => 1.0 / p.positives().max(1.0),
        Reduction::WeightedMean if p.weight() > 0.0 => 1.0 / p.weight(),
        Reduction::WeightedMean => 0.0,
        Reduction::Scale(s) => s as f64,
    }
}

/// `2^128 - 2^103`, the midpoint between `f32::MAX` and `2^128`: a value at or beyond it
/// rounds to infinity (ties to even: `MAX`'s significand is odd).
const OVERFLOW: f64 = 340_282_356_779_733_661_637_539_395_458_142_568_448.0;

/// `got` is the f32 rounding of `want` within 1 ULP: an infinite `want`, or one at or beyond
/// [`OVERFLOW`], gives `+-inf` (within `2^-48` of [`OVERFLOW`], where an f64 sum may fall on
/// either side, `+-MAX` too).
///
/// (`tests/common`'s `ulps` puts the boundary at `MAX (1 + 2^-25) = OVERFLOW - 2^79`, and so
/// expects `inf` for the truths in `[OVERFLOW - 2^79, OVERFLOW)`, which round to `MAX`: three
/// rows of loss `MAX` under `Scale(1/3 as f32)` reduce to exactly `MAX (1 + 2^-25)`.)
fn close1(got: f32, want: f64) -> bool {
    if want.is_nan() {
        return false;
    }
    let same_sign = (got > 0.0) == (want > 0.0);
    if want.abs() >= OVERFLOW * (1.0 - (2f64).powi(-48)) {
        let near = want.abs() < OVERFLOW * (1.0 + (2f64).powi(-48));
        return same_sign && (got.is_infinite() || (near && got.abs() == f32::MAX));
    }
    if got.is_infinite() {
        return false;
    }
    ulps(got, want) <= 1.0
}

/// The per-row truth of the case: the crate's weights `K_c` of each counted row (f32-rounded
/// factors, as the crate forms them), the oracle's exact and rounded values, and where they
/// are checked.
struct Truth {
    /// `(exact, rounded)` per row (`None`: ignored, or no oracle).
    rows: Vec<Option<(RowOut, RowOut)>>,
    kmax: Vec<f64>,
    dom: Vec<Domain>,
    /// Every `s_r alpha w_c y'_c` of the row is exactly 0 (real arithmetic).
    zero: Vec<bool>,
    tol: f64,
}

/// Where a row's values are checked against the oracle.
#[derive(Clone, Copy, Default)]
struct Domain {
    /// The loss: every `s_r alpha` and `s_r alpha w_c` finite in f32 (no clamped weight).
    loss: bool,
    /// The gradient: also every nonzero `s_r alpha w_c` in `[2^-40, 2^40]` (no clamped
    /// `K g`, no intermediate outside the normal range but the subnormal allowance's).
    grad: bool,
}

fn truth(case: &Case) -> Truth {
    let (c, rows) = (case.c, case.rows);
    let eps = case.eps_val();
    let alpha = case.alpha.unwrap_or(1.0);
    let dense = case.lab_cl.is_dense() || eps > 0.0;
    let keep = 1.0 - eps;
    let eps_c = eps / c as f32;
    let weighted = case.cw.is_some()
        || case.sw.is_some()
        || alpha != 1.0
        || eps > 0.0
        || case.lab_cl.is_dense();
    let gamma = case.gamma as f64;
    let mut t = Truth {
        rows: Vec::with_capacity(rows),
        kmax: vec![0.0; rows],
        dom: vec![Domain::default(); rows],
        zero: vec![false; rows],
        tol: allowed(gamma, weighted),
    };
    let w = |k: usize| case.cw.as_ref().map_or(1.0, |w| w[k]);
    for r in 0..rows {
        if !case.live(r) {
            t.rows.push(None);
            continue;
        }
        let s = case.sw.as_ref().map_or(1.0, |s| s[r]);
        // `s_r alpha` and `s_r alpha w_c` as the crate forms them, each clamped to `MAX`; the
        // oracle's domain is the rows where neither overflows.
        let sa = (s * alpha).min(f32::MAX);
        // The raw label of class k.
        let yl = |k: usize| match &case.lab_cl {
            Labels::F32(y) => y[r * c + k],
            l => (l.class(r) == k as i64) as u8 as f32,
        };
        let mut k = vec![0f64; c];
        let (mut in_range, mut moderate, mut zero) = ((s * alpha).is_finite(), true, true);
        for (j, kj) in k.iter_mut().enumerate() {
            let prod = sa * w(j);
            in_range &= prod.is_finite();
            moderate &= prod == 0.0 || (9.094_947e-13..=1.099_511_6e12).contains(&prod);
            let kw = prod.min(f32::MAX);
            let y = yl(j);
            // `K` as the crate forms it, rounded to f32 (a perturbation of the weights, like
            // the rounding of `s_r alpha` and of `s_r alpha w_c`: the oracle takes `K` as given,
            // which also covers a subnormal `K`, whose rounding is absolute).
            *kj = if dense {
                (kw * y.mul_add(keep, eps_c)) as f64
            } else if y == 1.0 {
                kw as f64
            } else {
                0.0
            };
            let real = s as f64
                * alpha as f64
                * w(j) as f64
                * (y as f64 * (1.0 - eps as f64) + eps as f64 / c as f64);
            zero &= real == 0.0;
        }
        t.zero[r] = zero;
        t.kmax[r] = k.iter().fold(0f64, |a, &b| a.max(b));
        let z = &case.xr[r * c..(r + 1) * c];
        t.dom[r] = Domain {
            loss: in_range && case.gamma <= ORACLE_GAMMA,
            grad: in_range && moderate && case.gamma <= ORACLE_GAMMA,
        };
        if gamma.is_finite() && gamma >= 0.0 && !z.iter().any(|v| v.is_nan()) {
            let ex = oracle_row(z, &k, gamma, false);
            let ro = if exact_differences(z) {
                ex.clone()
            } else {
                oracle_row(z, &k, gamma, true)
            };
            t.rows.push(Some((ex, ro)));
        } else {
            t.rows.push(None);
        }
    }
    t
}

/// Outputs of one backend, class-last, `Reduction::Sum`.
struct Outs {
    per_row: Vec<f32>,
    grad: Vec<f32>,
    value: f32,
}

/// Runs one entry point on `input` and checks every property; panics on a violation.
pub fn check(input: &SmInput, entry: SmEntry) {
    let case = Case::new(input);
    let f = case.call_focal();
    let red = case.reduction;
    let n_call = case.x_call.len();

    // The factor of a partial call: that of the reduction for the whole call's counts.
    // (`partial` needs the counts first.)
    let pre = (entry == SmEntry::Partial)
        .then(|| with_labels!(&case.lab_call, |y| f.partial(&case.x_call, y, Grad::Skip)).ok())
        .flatten();
    let s_partial = match red {
        Reduction::Scale(s) => s,
        _ => pre.as_ref().map_or(1.0, |p| factor(red, p) as f32),
    };
    let named = |s: Option<f32>| s.map(|s| ("Reduction::Scale", s));
    let (scale, out) = match entry {
        SmEntry::Loss => (named(scale_of(red)), None),
        SmEntry::Grad | SmEntry::Accumulate => {
            (named(scale_of(red)), Some(("grad", case.grad_len, true)))
        }
        SmEntry::PerRow => (None, Some(("out", case.out_len, false))),
        SmEntry::Partial => match case.mode {
            Mode::Skip => (None, None),
            Mode::Write => (
                Some(("Grad::Write", s_partial)),
                Some(("grad", case.grad_len, true)),
            ),
            Mode::Accumulate => (
                Some(("Grad::Accumulate", s_partial)),
                Some(("grad", case.grad_len, true)),
            ),
        },
    };
    let want = expected_error(&case, scale, out);

    // The call. Writing calls get NaN-filled outputs (every element must be written),
    // accumulating ones (and `Grad::Skip`) a pattern that must stay where nothing is added.
    let g0: Vec<f32> = (0..case.grad_len.max(case.out_len))
        .map(|i| ((i % 7) as f32 - 3.0) * 0.5)
        .collect();
    let accumulating = match entry {
        SmEntry::Accumulate => true,
        SmEntry::Partial => case.mode != Mode::Write,
        _ => false,
    };
    let mut buf: Vec<f32> = match entry {
        SmEntry::Loss => Vec::new(),
        SmEntry::PerRow => vec![f32::NAN; case.out_len],
        _ if accumulating => g0[..case.grad_len].to_vec(),
        _ => vec![f32::NAN; case.grad_len],
    };
    let before = buf.clone();
    let got: Result<(f32, Option<Partial>), Error> =
        with_labels!(&case.lab_call, |y| match entry {
            SmEntry::Loss => f.loss(&case.x_call, y, red).map(|v| (v, None)),
            SmEntry::Grad => f
                .loss_and_grad(&case.x_call, y, &mut buf, red)
                .map(|v| (v, None)),
            SmEntry::Accumulate => f
                .loss_and_grad_accumulate(&case.x_call, y, &mut buf, red)
                .map(|v| (v, None)),
            SmEntry::PerRow => f
                .loss_per_row(&case.x_call, y, &mut buf)
                .map(|()| (0.0, None)),
            SmEntry::Partial => {
                let g = match case.mode {
                    Mode::Write => Grad::Write(&mut buf, s_partial),
                    Mode::Accumulate => Grad::Accumulate(&mut buf, s_partial),
                    Mode::Skip => Grad::Skip,
                };
                f.partial(&case.x_call, y, g).map(|p| (0.0, Some(p)))
            }
        });
    let c = match (want, got) {
        (Err(w), Err(e)) => {
            assert_eq!(w, dbg(e), "wrong error: {}", case.describe());
            if accumulating {
                assert_eq!(
                    bits(&before),
                    bits(&buf),
                    "a call that failed ({w}) changed the gradient it accumulates into"
                );
            }
            return;
        }
        (Err(w), Ok(_)) => panic!("expected {w}, got Ok: {}", case.describe()),
        (Ok(_), Err(e)) => panic!("valid input rejected: {e:?}: {}", case.describe()),
        (Ok(c), Ok(v)) => (c, v),
    };
    let (c, (value, part)) = c;
    assert!(!value.is_nan(), "{entry:?}: NaN value: {}", case.describe());
    assert!(
        buf.iter().all(|v| !v.is_nan()),
        "{entry:?}: NaN (or unwritten) output {buf:?}: {}",
        case.describe()
    );
    if entry == SmEntry::Partial && case.mode == Mode::Skip {
        assert_eq!(bits(&before), bits(&buf), "Grad::Skip wrote");
    }
    // Beyond here, the batch is the one the case describes.
    if case.faulty || c != case.c || n_call == 0 {
        if n_call == 0 {
            assert_eq!(value, 0.0, "an empty batch: value {value}");
            if let Some(p) = part {
                assert_eq!((p.elements(), p.loss_sum()), (0, 0.0));
            }
        }
        return;
    }

    let tr = truth(&case);
    let chosen = case.backend.resolve().expect("valid");
    let outs = check_backends(&case, &tr, chosen);
    check_index_labels(&case, chosen, &outs);

    let counts = pre.unwrap_or_else(|| {
        with_labels!(&case.lab_call, |y| f.partial(&case.x_call, y, Grad::Skip)).expect("valid")
    });
    check_counts(&case, &counts);
    let sum_rows: f64 = outs.per_row.iter().map(|&v| v as f64).sum();
    let want_value = reduced(sum_rows, red, &counts);
    let is_nchw = case.sp > 1;
    let to_cl = |g: &[f32]| {
        if is_nchw {
            from_nchw(g, case.n_img, case.c, case.sp)
        } else {
            g.to_vec()
        }
    };
    // The same reduction's call, class-last and in the call's layout: value and gradient.
    let lag = |layout_cl: bool| {
        let (fb, x, y) = if layout_cl {
            (case.cl_focal(case.backend), &case.xr, &case.lab_cl)
        } else {
            (f, &case.x_call, &case.lab_call)
        };
        let mut g = vec![f32::NAN; x.len()];
        let v = with_labels!(y, |y| fb.loss_and_grad(x, y, &mut g, red)).expect("valid");
        (v, g)
    };

    match entry {
        SmEntry::Loss | SmEntry::Grad | SmEntry::Accumulate => {
            assert!(
                close1(value, want_value),
                "{entry:?}: value {value} vs {want_value:e} (the reduction of the rows' losses {:?}, {counts:?}): {}",
                outs.per_row,
                case.describe()
            );
            let (v_lag, g_lag) = match entry {
                // The call itself.
                SmEntry::Grad => (value, buf.clone()),
                _ => lag(false),
            };
            assert_eq!(
                value.to_bits(),
                v_lag.to_bits(),
                "{entry:?}: value {value} vs loss_and_grad's {v_lag}: {}",
                case.describe()
            );
            if is_nchw {
                let (v_cl, g_cl) = lag(true);
                assert_eq!(
                    value.to_bits(),
                    v_cl.to_bits(),
                    "[N, C, S] value {value} vs class-last {v_cl}: {}",
                    case.describe()
                );
                assert_eq!(
                    bits(&to_cl(&g_lag)),
                    bits(&g_cl),
                    "[N, C, S] gradient vs class-last ({red:?}): {}",
                    case.describe()
                );
            }
            if entry == SmEntry::Loss && !matches!(&case.lab_call, Labels::F32(_) | Labels::I64(_))
            {
                let y64: Vec<i64> = (0..case.rows).map(|r| case.lab_call.class(r)).collect();
                let v64 = f.loss(&case.x_call, &y64, red).expect("valid");
                assert_eq!(
                    value.to_bits(),
                    v64.to_bits(),
                    "the same labels as i64: {v64} vs {value}: {}",
                    case.describe()
                );
            }
            if entry == SmEntry::Grad {
                check_reduced_grad(&case, &tr, &to_cl(&buf), red, &counts);
                if let Labels::F32(y) = &case.lab_call {
                    // Half-precision distributions are their exact f32 values, bit for bit.
                    same_as_widened::<bf16>(&f, &case.x_call, y, red, &case);
                    same_as_widened::<f16>(&f, &case.x_call, y, red, &case);
                }
            }
            if entry == SmEntry::Accumulate {
                for i in 0..buf.len() {
                    assert_eq!(
                        buf[i].to_bits(),
                        (g0[i] + g_lag[i]).to_bits(),
                        "accumulate [{i}]: {} vs {} + {}: {}",
                        buf[i],
                        g0[i],
                        g_lag[i],
                        case.describe()
                    );
                }
            }
        }
        SmEntry::PerRow => {
            assert_eq!(
                bits(&buf),
                bits(&outs.per_row),
                "loss_per_row on the call's layout and backend vs class-last: {}",
                case.describe()
            );
            let v = with_labels!(&case.lab_call, |y| f.loss(&case.x_call, y, Reduction::Sum))
                .expect("valid");
            assert!(
                close1(v, sum_rows),
                "loss(Sum) {v} vs the sum of the rows {sum_rows:e}: {}",
                case.describe()
            );
        }
        SmEntry::Partial => {
            let p = part.expect("a Partial");
            check_partial(&case, f, p, &counts, &buf, &g0, s_partial);
        }
    }
}

fn scale_of(r: Reduction) -> Option<f32> {
    match r {
        Reduction::Scale(s) => Some(s),
        _ => None,
    }
}

/// The counts of a call (`partial(.., Skip)`): the rows not ignored, the raw labels' sum
/// (rows for index labels), `W`.
fn check_counts(case: &Case, p: &Partial) {
    let c = case.c;
    let w = |k: usize| case.cw.as_ref().map_or(1.0, |w| w[k] as f64);
    let s = |r: usize| case.sw.as_ref().map_or(1.0, |s| s[r] as f64);
    let (mut el, mut pos, mut wt) = (0u64, 0f64, 0f64);
    for r in 0..case.rows {
        match &case.lab_cl {
            Labels::F32(y) => {
                el += 1;
                pos += (0..c).map(|k| y[r * c + k] as f64).sum::<f64>();
                wt += s(r) * (0..c).map(|k| y[r * c + k] as f64 * w(k)).sum::<f64>();
            }
            l if case.live(r) => {
                el += 1;
                pos += 1.0;
                wt += s(r) * w(l.class(r) as usize);
            }
            _ => {}
        }
    }
    let near = |a: f64, b: f64| a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs());
    assert!(
        p.elements() == el && near(p.positives(), pos) && near(p.weight(), wt),
        "counts {p:?} vs elements {el}, positives {pos}, weight {wt}: {}",
        case.describe()
    );
}

/// `Scalar` and the input's backend `chosen`, class-last (and `[N, C, S]` on `chosen`: the
/// same bits): no NaN; `Scalar` against the oracle; ignored and all-zero-weight rows exactly
/// 0; `chosen` within twice the tolerance of `Scalar`. Returns the outputs of `chosen`.
fn check_backends(case: &Case, tr: &Truth, chosen: Backend) -> Outs {
    let (c, rows, n) = (case.c, case.rows, case.rows * case.c);
    let mut reference: Option<Outs> = None;
    let mut mine = None;
    // `Scalar` and the input's backend (the input chooses it, so a run compares every
    // available backend with `Scalar`; all four on every input would halve the executions).
    for b in Backend::available().filter(|&b| b == Backend::Scalar || b == chosen) {
        let fb = case.cl_focal(b);
        let mut per_row = vec![f32::NAN; rows];
        let mut grad = vec![f32::NAN; n];
        with_labels!(&case.lab_cl, |y| fb.loss_per_row(&case.xr, y, &mut per_row)).expect("valid");
        let value = with_labels!(&case.lab_cl, |y| fb.loss_and_grad(
            &case.xr,
            y,
            &mut grad,
            Reduction::Sum
        ))
        .expect("valid");
        let at = |what: &str, r: usize, j: usize| {
            format!(
                "{b:?} {what} row {r} class {j}: logits {:?} label {}: {}",
                &case.xr[r * c..(r + 1) * c],
                match &case.lab_cl {
                    Labels::F32(y) => format!("{:?}", &y[r * c..(r + 1) * c]),
                    l => format!("{}", l.class(r)),
                },
                case.describe()
            )
        };
        assert!(!value.is_nan(), "{b:?}: NaN value: {}", case.describe());
        let sum: f64 = per_row.iter().map(|&v| v as f64).sum();
        assert!(
            close1(value, sum),
            "{b:?}: loss_and_grad(Sum) {value} vs the sum of loss_per_row {sum:e}: {}",
            case.describe()
        );
        for r in 0..rows {
            let (l, g) = (per_row[r], &grad[r * c..(r + 1) * c]);
            assert!(!l.is_nan(), "{}", at("NaN loss", r, 0));
            for (j, v) in g.iter().enumerate() {
                assert!(!v.is_nan(), "{}", at("NaN gradient", r, j));
            }
            if !case.live(r) {
                assert_eq!(l.to_bits(), 0, "{}", at("ignored row: loss", r, 0));
                assert!(
                    g.iter().all(|v| v.to_bits() == 0),
                    "{}: {g:?}",
                    at("ignored row: gradient", r, 0)
                );
                continue;
            }
            if tr.zero[r] {
                assert_eq!(l, 0.0, "{}", at("all weights 0: loss", r, 0));
                assert!(
                    g.iter().all(|&v| v == 0.0),
                    "{}: {g:?}",
                    at("all weights 0: gradient", r, 0)
                );
            }
            let Some((ex, ro)) = &tr.rows[r] else {
                continue;
            };
            let (dom, kmax) = (tr.dom[r], tr.kmax[r]);
            if b == Backend::Scalar {
                if dom.loss {
                    let e = excess(l, ex.loss, ro.loss, ex.loss, kmax, c);
                    assert!(
                        e <= tr.tol,
                        "{}: loss {l:e} vs oracle {:e} (rounded {:e}): {e} ULP > {}",
                        at("oracle", r, 0),
                        ex.loss,
                        ro.loss,
                        tr.tol
                    );
                }
                if dom.grad {
                    for (j, &v) in g.iter().enumerate() {
                        let e = excess(v, ex.grad[j], ro.grad[j], ex.scale[j], kmax, c);
                        assert!(
                            e <= tr.tol && v.is_finite(),
                            "{}: gradient {v:e} vs oracle {:e} (rounded {:e}, scale {:e}): {e} ULP > {}",
                            at("oracle", r, j),
                            ex.grad[j],
                            ro.grad[j],
                            ex.scale[j],
                            tr.tol
                        );
                    }
                }
            } else if let Some(s) = &reference {
                let sl = s.per_row[r];
                assert!(
                    agree(l, sl, Some((ex.loss, ro.loss, ex.loss)), tr.tol, kmax, c),
                    "{}: loss {l:e} vs Scalar {sl:e} (oracle {:e})",
                    at("backends", r, 0),
                    ex.loss
                );
                for (j, &v) in g.iter().enumerate() {
                    let sv = s.grad[r * c + j];
                    assert!(
                        agree(
                            v,
                            sv,
                            Some((ex.grad[j], ro.grad[j], ex.scale[j])),
                            tr.tol,
                            kmax,
                            c
                        ),
                        "{}: gradient {v:e} vs Scalar {sv:e} (oracle {:e}, scale {:e})",
                        at("backends", r, j),
                        ex.grad[j],
                        ex.scale[j]
                    );
                }
            }
        }
        // The [N, C, S] layout: the bits of the class-last call (on the input's backend; the
        // input chooses it, so a run covers them all).
        if case.sp > 1 && b == chosen {
            let ft = case.nchw_focal(b);
            let xt = to_nchw(&case.xr, case.n_img, c, case.sp);
            let lt = match &case.lab_cl {
                Labels::F32(y) => Labels::F32(to_nchw(y, case.n_img, c, case.sp)),
                l => l.clone(),
            };
            let mut pr_t = vec![f32::NAN; rows];
            let mut g_t = vec![f32::NAN; n];
            with_labels!(&lt, |y| ft.loss_per_row(&xt, y, &mut pr_t)).expect("valid");
            let v_t = with_labels!(&lt, |y| ft.loss_and_grad(&xt, y, &mut g_t, Reduction::Sum))
                .expect("valid");
            assert_eq!(
                bits(&pr_t),
                bits(&per_row),
                "{b:?}: [N, C, S] losses {pr_t:?} vs class-last {per_row:?}: {}",
                case.describe()
            );
            let g_back = from_nchw(&g_t, case.n_img, c, case.sp);
            for i in 0..n {
                assert_eq!(
                    g_back[i].to_bits(),
                    grad[i].to_bits(),
                    "{}: [N, C, S] gradient {} vs class-last {}",
                    at("layouts", i / c, i % c),
                    g_back[i],
                    grad[i]
                );
            }
            assert_eq!(
                v_t.to_bits(),
                value.to_bits(),
                "{b:?}: [N, C, S] value {v_t} vs class-last {value}: {}",
                case.describe()
            );
        }
        let o = Outs {
            per_row,
            grad,
            value,
        };
        if b == chosen {
            mine = Some(Outs {
                per_row: o.per_row.clone(),
                grad: o.grad.clone(),
                value: o.value,
            });
        }
        if b == Backend::Scalar {
            reference = Some(o);
        }
    }
    mine.expect("the chosen backend is available")
}

/// Index labels (class-last, the chosen backend): on the rows not ignored, the bits of
/// one-hot `f32` labels (losses per row; value and gradient of the case's reduction, the
/// gradient up to the sign of zeros), and the bits those rows have in the whole batch
/// (`Sum`).
///
/// The sign of zeros: with a negative factor, a class whose term is 0 gets `-0.0` from the
/// index path (`e coef`, `coef <= -0`) and `+0.0` from the dense path (`e coef - (f K g) q =
/// -0 - -0`); `-0.0 == 0.0`, so no value differs, but the documented "same bits" do not hold
/// for these zeros.
fn check_index_labels(case: &Case, chosen: Backend, outs: &Outs) {
    if case.lab_cl.is_dense() {
        return;
    }
    let c = case.c;
    let kept: Vec<usize> = (0..case.rows).filter(|&r| case.live(r)).collect();
    let x: Vec<f32> = kept
        .iter()
        .flat_map(|&r| case.xr[r * c..(r + 1) * c].iter().copied())
        .collect();
    let sw: Option<Vec<f32>> = case
        .sw
        .as_ref()
        .map(|s| kept.iter().map(|&r| s[r]).collect());
    let idx: Vec<i64> = kept.iter().map(|&r| case.lab_cl.class(r)).collect();
    let y = match &case.lab_cl {
        Labels::U8(_) => Labels::index(1, &idx),
        Labels::U16(_) => Labels::index(2, &idx),
        Labels::U32(_) => Labels::index(3, &idx),
        Labels::I32(_) => Labels::index(4, &idx),
        _ => Labels::index(0, &idx),
    };
    let mut one_hot = vec![0f32; x.len()];
    for (i, &v) in idx.iter().enumerate() {
        one_hot[i * c + v as usize] = 1.0;
    }
    let f = case
        .focal(case.cw.as_deref(), sw.as_deref(), 1, chosen)
        .classes(c);
    let red = case.reduction;
    let (mut pa, mut pb) = (vec![f32::NAN; kept.len()], vec![f32::NAN; kept.len()]);
    with_labels!(&y, |y| f.loss_per_row(&x, y, &mut pa)).expect("valid");
    f.loss_per_row(&x, &one_hot, &mut pb).expect("valid");
    let what = || format!("{chosen:?} rows {kept:?}: {}", case.describe());
    assert_eq!(
        bits(&pa),
        bits(&pb),
        "index vs one-hot labels: losses {pa:?} vs {pb:?}: {}",
        what()
    );
    let (mut ga, mut gb) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
    let va = with_labels!(&y, |y| f.loss_and_grad(&x, y, &mut ga, red));
    let vb = f.loss_and_grad(&x, &one_hot, &mut gb, red);
    match (va, vb) {
        (Ok(a), Ok(b)) => {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "index vs one-hot labels: value {a} vs {b} ({red:?}): {}",
                what()
            );
            // Up to the sign of zeros: with a negative factor, a class whose term is 0 (no
            // weight, or `e^(z - m) = 0`) gets `-0.0` from the index path (`e coef` with
            // `coef <= -0`) and `+0.0` from the dense path (`e coef - (f K g) q` =
            // `-0 - -0`).
            assert_eq!(
                zbits(&ga),
                zbits(&gb),
                "index vs one-hot labels: gradient {ga:?} vs {gb:?} ({red:?}): {}",
                what()
            );
        }
        (a, b) => assert_eq!(
            format!("{a:?}"),
            format!("{b:?}"),
            "index vs one-hot labels ({red:?}): {}",
            what()
        ),
    }
    // Position independence: the kept rows alone have the bits they have in the batch.
    let mut g = vec![f32::NAN; x.len()];
    with_labels!(&y, |y| f.loss_and_grad(&x, y, &mut g, Reduction::Sum)).expect("valid");
    for (i, &r) in kept.iter().enumerate() {
        assert_eq!(
            pa[i].to_bits(),
            outs.per_row[r].to_bits(),
            "row {r} alone (with the other kept rows) vs in the batch: loss {} vs {}: {}",
            pa[i],
            outs.per_row[r],
            what()
        );
        assert_eq!(
            bits(&g[i * c..(i + 1) * c]),
            bits(&outs.grad[r * c..(r + 1) * c]),
            "row {r} without the ignored rows vs in the batch: gradient: {}",
            what()
        );
    }
}

/// The gradient of a reduction (class-last order) against the oracle times the factor (as
/// the crate rounds it to f32), within the tolerance and 2 ULP for the factor's products;
/// ignored rows `+0.0`; a zero factor gives zeros.
fn check_reduced_grad(case: &Case, tr: &Truth, g: &[f32], red: Reduction, counts: &Partial) {
    let c = case.c;
    let fa = factor(red, counts) as f32;
    let fd = fa as f64;
    // The factor's own range: its products with the weights stay normal and finite.
    let moderate = fa == 0.0 || (9.094_947e-13..=1.099_511_6e12).contains(&fa.abs());
    for r in 0..case.rows {
        let row = &g[r * c..(r + 1) * c];
        if !case.live(r) || fa == 0.0 {
            assert!(
                row.iter().all(|v| v.to_bits() == 0),
                "row {r}: gradient {row:?} of an ignored row or a zero factor ({fa}): {}",
                case.describe()
            );
            continue;
        }
        let Some((ex, ro)) = &tr.rows[r] else {
            continue;
        };
        if !(tr.dom[r].grad && moderate) {
            continue;
        }
        for (j, &v) in row.iter().enumerate() {
            let e = excess(
                v,
                fd * ex.grad[j],
                fd * ro.grad[j],
                fd.abs() * ex.scale[j],
                // The subnormal allowance of the unscaled values (absolute roundings of `K g`
                // and of `e^(z - m)` before the factor multiplies), scaled.
                fd.abs().max(1.0) * tr.kmax[r].max(1.0),
                c,
            );
            assert!(
                e <= tr.tol + 2.0 && v.is_finite(),
                "row {r} class {j}: gradient {v:e} of {red:?} (factor {fa:e}) vs oracle {:e} (scale {:e}): {e} ULP > {}: {}",
                fd * ex.grad[j],
                fd * ex.scale[j],
                tr.tol + 2.0,
                case.describe()
            );
        }
    }
}

/// `partial`: the counts, the whole call's value and gradient (`loss_and_grad` /
/// `loss_and_grad_accumulate` with the same factor), and the batch in chunks of whole images
/// merged (in alternating order): the same gradient bits, counts, and reduced value.
fn check_partial(
    case: &Case,
    f: SoftmaxFocal<'_>,
    p: Partial,
    counts: &Partial,
    buf: &[f32],
    g0: &[f32],
    s: f32,
) {
    let red = case.reduction;
    let (c, sp, n) = (case.c, case.sp, case.x_call.len());
    assert_eq!(
        (
            p.elements(),
            p.positives().to_bits(),
            p.weight().to_bits(),
            p.loss_sum().to_bits()
        ),
        (
            counts.elements(),
            counts.positives().to_bits(),
            counts.weight().to_bits(),
            counts.loss_sum().to_bits()
        ),
        "partial with {:?} vs Grad::Skip: {}",
        case.mode,
        case.describe()
    );
    // The whole call with the same factor.
    let valid_red = !matches!(red, Reduction::Scale(v) if !v.is_finite());
    if valid_red {
        let mut g = match case.mode {
            Mode::Write => vec![f32::NAN; n],
            _ => g0[..n].to_vec(),
        };
        let v = with_labels!(&case.lab_call, |y| match case.mode {
            Mode::Write => f.loss_and_grad(&case.x_call, y, &mut g, red),
            Mode::Accumulate => f.loss_and_grad_accumulate(&case.x_call, y, &mut g, red),
            Mode::Skip => f.loss(&case.x_call, y, red),
        })
        .expect("valid");
        let r = p.reduce(red).expect("valid");
        assert_eq!(
            r.to_bits(),
            v.to_bits(),
            "partial reduced {r} vs the whole call {v} ({red:?}): {}",
            case.describe()
        );
        assert_eq!(
            bits(buf),
            bits(&g),
            "partial ({:?}, factor {s}) vs the whole call's gradient ({red:?}): {}",
            case.mode,
            case.describe()
        );
    }
    // Chunks of whole images.
    let img = c * sp;
    let per = 1 + case.chunk % case.n_img.max(1);
    let mut g = match case.mode {
        Mode::Write => vec![f32::NAN; n],
        _ => g0[..n].to_vec(),
    };
    let mut merged = Partial::EMPTY;
    let mut a = 0;
    let mut k = 0;
    while a < case.n_img {
        let b = (a + per).min(case.n_img);
        let x = &case.x_call[a * img..b * img];
        let y = if case.lab_call.is_dense() {
            case.lab_call.slice(a * img, b * img)
        } else {
            case.lab_call.slice(a * sp, b * sp)
        };
        let sw: Option<Vec<f32>> = case.sw.as_ref().map(|w| w[a * sp..b * sp].to_vec());
        let fc = case.focal(case.cw.as_deref(), sw.as_deref(), sp, case.backend);
        let gs = &mut g[a * img..b * img];
        let grad = match case.mode {
            Mode::Write => Grad::Write(gs, s),
            Mode::Accumulate => Grad::Accumulate(gs, s),
            Mode::Skip => Grad::Skip,
        };
        let q = with_labels!(&y, |y| fc.partial(x, y, grad)).expect("a valid chunk");
        merged = if k % 2 == 0 {
            merged.merge(q)
        } else {
            q.merge(merged)
        };
        a = b;
        k += 1;
    }
    assert_eq!(
        bits(&g),
        bits(buf),
        "chunks of {per} images ({:?}, factor {s}): another gradient: {}",
        case.mode,
        case.describe()
    );
    let near = |u: f64, v: f64, rel: f64| u == v || (u - v).abs() <= rel * u.abs().max(v.abs());
    assert!(
        merged.elements() == p.elements()
            && near(merged.positives(), p.positives(), 1e-12)
            && near(merged.weight(), p.weight(), 1e-12)
            && (near(merged.loss_sum(), p.loss_sum(), (2f64).powi(-49))
                || (merged.loss_sum().is_infinite() && merged.loss_sum() == p.loss_sum())),
        "chunks of {per} images merged {merged:?} vs the whole {p:?}: {}",
        case.describe()
    );
    if valid_red {
        let (u, v) = (
            merged.reduce(red).expect("valid"),
            p.reduce(red).expect("valid"),
        );
        // Bit for bit when the sums agree; else (the documented exception: a sum within
        // about 2^-50 of an f32 rounding boundary) within 1 ULP.
        let same_sums = merged.loss_sum() == p.loss_sum()
            && merged.positives() == p.positives()
            && merged.weight() == p.weight();
        assert!(
            u.to_bits() == v.to_bits() || (!same_sums && close1(u, v as f64)),
            "chunks of {per} images: reduced {u} vs the whole {v} ({red:?}): {}",
            case.describe()
        );
    }
}
