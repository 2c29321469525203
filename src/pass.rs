//! The loop that feeds the core, written once over [`Lane`]: every backend instantiates it.
//!
//! The batch is one flat stream of `L::LANES`-element vectors, whatever the number of classes:
//! the per-class parameters of a vector that starts at class `c0` are read from a stack copy
//! extended periodically (`buf[j] = param[j % C]`, so `buf[c0..c0 + LANES]` is contiguous),
//! or, for more than [`PERIODIC_MAX`] classes, from the slice itself, with the rare vector that
//! wraps to the next row gathered lane by lane. The last vector is padded with weight 0, so an
//! element's value never depends on its position. Validation (NaN logits, targets outside
//! `[0, 1]`) is folded into the same pass as one mask per vector.

use crate::kernel::{self, Consts, Weights};
use crate::lane::Lane;
use crate::sum::Dd;
use crate::target::Target;

/// The widest vector of any backend.
pub(crate) const MAX_LANES: usize = 16;
/// Up to this many classes, per-class parameters go through a periodic stack buffer.
const PERIODIC_MAX: usize = 256;

/// Alpha balancing: none, one value, or one per class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Alpha<'a> {
    None,
    Scalar(f32),
    PerClass(&'a [f32]),
}

/// A validated batch and its parameters.
#[derive(Clone, Copy)]
pub(crate) struct Job<'a, T> {
    pub x: &'a [f32],
    pub t: &'a [T],
    pub classes: usize,
    pub gamma: f32,
    pub eps: f32,
    pub alpha: Alpha<'a>,
    pub class_weights: Option<&'a [f32]>,
    pub pos_weight: Option<&'a [f32]>,
    pub sample_weights: Option<&'a [f32]>,
    /// Sum the targets (for `PerPositive` and [`Partial`](crate::Partial)); else 0.
    pub count_positives: bool,
}

/// The output a pass writes besides its sums.
pub(crate) enum Sink<'o> {
    None,
    /// `grad = s * dl/dx`.
    Write(&'o mut [f32], f32),
    /// `grad += s * dl/dx`.
    Add(&'o mut [f32], f32),
    /// `out = l`.
    Elementwise(&'o mut [f32]),
}

/// What a pass returns: the loss sum, the raw target sum, and whether any input was invalid
/// (the outputs are then meaningless and the caller reports the first bad element).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sums {
    pub loss: Dd,
    pub positives: f64,
    pub bad: bool,
}

/// One per-class parameter as the loop reads it.
// The periodic copy lives on the stack on purpose (no allocation); a call holds three.
#[allow(clippy::large_enum_variant)]
enum Source<'a> {
    /// The same value in every lane.
    Splat(f32),
    /// `buf[c0..c0 + LANES]`, `buf[j] = param[j % C]`.
    Periodic([f32; PERIODIC_MAX + MAX_LANES]),
    /// `param[c0..c0 + LANES]`, wrapping to `param[0..]` at the end of a row.
    Direct(&'a [f32]),
}

impl<'a> Source<'a> {
    fn new(param: Option<&'a [f32]>, dflt: f32, classes: usize) -> Self {
        match param {
            None => Source::Splat(dflt),
            Some(p) if classes <= PERIODIC_MAX => {
                let mut buf = [0.0; PERIODIC_MAX + MAX_LANES];
                for (j, b) in buf.iter_mut().enumerate().take(classes + MAX_LANES) {
                    *b = p[j % classes];
                }
                Source::Periodic(buf)
            }
            Some(p) => Source::Direct(p),
        }
    }

    #[inline(always)]
    fn get<L: Lane>(&self, c0: usize) -> L {
        match self {
            Source::Splat(v) => L::splat(*v),
            Source::Periodic(buf) => L::load_or(&buf[c0..c0 + L::LANES], 0.0),
            Source::Direct(p) => {
                if c0 + L::LANES <= p.len() {
                    L::load_or(&p[c0..c0 + L::LANES], 0.0)
                } else {
                    let mut tmp = [0.0; MAX_LANES];
                    for (k, v) in tmp.iter_mut().enumerate().take(L::LANES) {
                        *v = p[(c0 + k) % p.len()];
                    }
                    L::load_or(&tmp[..L::LANES], 0.0)
                }
            }
        }
    }
}

/// `src` as a vector of f32, padded with 0.
#[inline(always)]
pub(crate) fn load_targets<L: Lane, T: Target>(src: &[T]) -> L {
    match T::as_f32(src) {
        Some(f) => L::load_or(f, 0.0),
        None => {
            let mut a = [0f32; MAX_LANES];
            T::widen(src, &mut a[..L::LANES]);
            L::load_or(&a[..L::LANES], 0.0)
        }
    }
}

/// Per-lane validity of the padded last vector.
static ONES: [f32; MAX_LANES] = [1.0; MAX_LANES];

/// The loss sum, target sum and validity of `job`, with `sink` written for every element.
#[inline(always)]
pub(crate) fn pass<L: Lane, const MOD: u8, T: Target>(
    job: &Job<'_, T>,
    sink: &mut Sink<'_>,
) -> Sums {
    let k = Consts::<L>::new(job.gamma, job.eps);
    let c = job.classes;
    let n = job.x.len();
    let alpha = match job.alpha {
        Alpha::PerClass(a) => Some(a),
        _ => None,
    };
    let a_dflt = match job.alpha {
        Alpha::Scalar(a) => a,
        _ => 1.0,
    };
    let a_pos = Source::new(alpha, a_dflt, c);
    // Without alpha both terms get 1; with it, the negative term gets 1 - alpha.
    let a_neg_one = matches!(job.alpha, Alpha::None);
    let w_class = Source::new(job.class_weights, 1.0, c);
    let w_pos = Source::new(job.pos_weight, 1.0, c);
    let zero = L::splat(0.0);
    let one = L::splat(1.0);

    let mut acc = L::acc_zero();
    let mut ok = L::splat(0.0).eq(zero); // all lanes true
    // A full vector advances the class offset by LANES mod C and the row by LANES / C.
    let (step, row_step) = (L::LANES % c, L::LANES / c);
    let (mut i, mut c0, mut row) = (0, 0, 0);
    while i < n {
        let end = (i + L::LANES).min(n);
        let valid = end - i;
        let x = L::load_or(&job.x[i..end], 0.0);
        let t = load_targets::<L, T>(&job.t[i..end]);

        let ap = a_pos.get::<L>(c0);
        let mut w = w_class.get::<L>(c0);
        if let Some(sw) = job.sample_weights {
            w = w * if c0 + valid <= c {
                L::splat(sw[row])
            } else {
                let mut tmp = [0.0; MAX_LANES];
                for (j, v) in tmp.iter_mut().enumerate().take(valid) {
                    *v = sw[row + (c0 + j) / c];
                }
                L::load_or(&tmp[..L::LANES], 0.0)
            };
        }
        if valid < L::LANES {
            // Padding lanes get weight exactly 0 (a select: even an overflowed weight
            // product is not multiplied by 0).
            let live = L::load_or(&ONES[..valid], 0.0).eq(one);
            w = L::select(live, w, zero);
        }
        let wt = Weights {
            a_pos: ap,
            a_neg: if a_neg_one { one } else { one - ap },
            w_pos: w_pos.get::<L>(c0),
            w,
        };
        let (l, g, valid_lanes) = kernel::element::<L, MOD>(x, t, &wt, &k);
        ok = ok & valid_lanes;
        L::acc_add(&mut acc, l);
        if job.count_positives {
            L::acc_add_t(&mut acc, t);
        }
        match sink {
            Sink::None => {}
            Sink::Write(out, s) => (g * L::splat(*s)).store(&mut out[i..end]),
            Sink::Add(out, s) => {
                let dst = &mut out[i..end];
                (L::load_or(dst, 0.0) + g * L::splat(*s)).store(dst);
            }
            Sink::Elementwise(out) => l.store(&mut out[i..end]),
        }
        i = end;
        c0 += step;
        row += row_step;
        if c0 >= c {
            c0 -= c;
            row += 1;
        }
    }
    let (loss, positives) = L::acc_total(acc);
    Sums {
        loss,
        positives,
        bad: !L::all(ok),
    }
}

/// Validation and the target sum alone, for calls that must know them before writing (a
/// gradient accumulated into, or scaled by the number of positives).
#[inline(always)]
pub(crate) fn scan<L: Lane, T: Target>(x: &[f32], t: &[T]) -> Sums {
    let zero = L::splat(0.0);
    let one = L::splat(1.0);
    let mut acc = L::acc_zero();
    let mut ok = zero.eq(zero);
    for (xs, ts) in x.chunks(L::LANES).zip(t.chunks(L::LANES)) {
        let xv = L::load_or(xs, 0.0);
        let tv = load_targets::<L, T>(ts);
        ok = ok & xv.eq(xv) & tv.ge(zero) & tv.le(one);
        L::acc_add_t(&mut acc, tv);
    }
    let (loss, positives) = L::acc_total(acc);
    Sums {
        loss,
        positives,
        bad: !L::all(ok),
    }
}
