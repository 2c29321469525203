//! The loop that feeds the core, written once over [`Lane`]: every backend instantiates it
//! once, as [`Body::body`], for `f32` targets; byte targets and half-precision data are
//! widened into stack buffers block by block and go through the same function, except the
//! runs of hard targets without a gradient or writing one, which one loop per pair of element
//! types reads from the caller's slices (see [`typed_t`]).
//!
//! The batch is one flat stream of `L::LANES`-element vectors, whatever the number of classes:
//! the per-class parameters of a vector that starts at class `c0` are read from a stack copy
//! extended periodically (`buf[j] = param[j % C]`, so `buf[c0..c0 + LANES]` is contiguous),
//! or, for more than [`PERIODIC_MAX`] classes, from the slice itself, with the rare vector that
//! wraps to the next row gathered lane by lane. The last vector is padded with weight 0, so an
//! element's value never depends on its position. Validation (NaN logits, targets outside
//! `[0, 1]`) is folded into the same pass as one mask per vector.
//!
//! The common cases have loops of their own. Runs of full vectors whose targets are all 0 or 1
//! and logits all below `2^64` in magnitude (without label smoothing, gamma up to `2^20`)
//! go through [`kernel::hard`] alone, with one copy of the loop per kind of output. Runs of
//! other full vectors whose logits are below `2^64` and targets in `[0, 1]` (soft targets,
//! label smoothing) go through [`kernel::soft`]. On the vector backends both loops take two
//! vectors at a time, from an even vector, as one [`Two`]; the scalar one takes one. Each loop
//! stops at the first vector (or pair) it does not take, and the other one goes on from there;
//! a vector that neither takes (the padded last one, huge or non-finite logits, invalid
//! targets; on the vector backends also an odd one, the last full one of an odd count, and the
//! partner of a vector that does not qualify) goes through the general path for itself. All
//! paths give the same bits for the same element (tests check it over every scale of `x`).

use super::kernel::{self, Consts, Weights};
use crate::backend::lane::{Lane, Two, TwoMask};
use crate::backend::{Isa, Kernel, MAX_LANES, Part, select};
use crate::float::{Dst, Elem, Half, Src};
use crate::sum::Dd;
use crate::target::Target;
use crate::target::sealed::Slice;
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
    /// The modulator convention: [`kernel::LINEAR`], [`kernel::GEOMETRIC`] or
    /// [`kernel::SEPARABLE`] (a run-time value: the hard-target loop does not depend on it,
    /// and is compiled once for all three).
    pub modulator: u8,
    /// Every soft-target weight `W = w s alpha_t` and every `pos_weight t` is below 2 (no
    /// sample weights, class and positive weights at most 1.5): no lane can ask for the soft
    /// path's rescaling by its weights, whose test is then skipped
    /// ([`kernel::Consts::rescale_w`]). `false` is always safe.
    pub light: bool,
}

impl<'a, T> Job<'a, T> {
    /// The job of the rows `r` (of `classes` elements each): their logits (when `f32`),
    /// targets and sample weights.
    pub(crate) fn rows(&self, r: core::ops::Range<usize>) -> Job<'a, T> {
        let c = self.classes;
        let e = r.start * c..r.end * c;
        Job {
            x: self.x.get(e.clone()).unwrap_or(&[]),
            t: &self.t[e],
            sample_weights: self.sample_weights.map(|w| &w[r]),
            ..*self
        }
    }

    /// The same job with the targets `t` (the same values, as another type).
    pub(crate) fn with_targets<U>(&self, t: &'a [U]) -> Job<'a, U> {
        Job {
            x: self.x,
            t,
            classes: self.classes,
            gamma: self.gamma,
            eps: self.eps,
            alpha: self.alpha,
            class_weights: self.class_weights,
            pos_weight: self.pos_weight,
            sample_weights: self.sample_weights,
            count_positives: self.count_positives,
            modulator: self.modulator,
            light: self.light,
        }
    }
}

/// Where a pass writes, besides its sums (the internal form of [`Grad`](crate::Grad) and of
/// the entry points' output slices).
pub(crate) enum Sink<'o, G = f32> {
    None,
    /// `grad = s * dl/dx`.
    Write(&'o mut [G], f32),
    /// `grad += s * dl/dx`.
    Add(&'o mut [G], f32),
    /// `out = l`.
    Elementwise(&'o mut [G]),
}

/// Where a call writes, in the caller's element type: the form of [`Sink`] the entry points
/// build (a pass converts it block by block, see [`pass`]).
pub(crate) enum Out<'o> {
    None,
    /// `grad = s * dl/dx`.
    Write(Dst<'o>, f32),
    /// `grad += s * dl/dx`.
    Add(Dst<'o>, f32),
    /// `out = l`.
    Elementwise(Dst<'o>),
}

impl<'o> Out<'o> {
    /// The output with the gradient factor `scale`. A zero factor gives a zero gradient,
    /// even where a term overflowed: `Write` fills zeros and `Add` leaves the gradient alone
    /// (both then write nothing more), not `0 * inf`.
    pub(crate) fn with_factor(self, scale: f32) -> Out<'o> {
        match self {
            Out::Write(mut g, _) if scale == 0.0 => {
                g.fill_zero();
                Out::None
            }
            Out::Add(..) if scale == 0.0 => Out::None,
            Out::Write(g, _) => Out::Write(g, scale),
            Out::Add(g, _) => Out::Add(g, scale),
            other => other,
        }
    }

    /// The length of the output slice, if any.
    pub(crate) fn len(&self) -> Option<usize> {
        match self {
            Out::None => None,
            Out::Write(d, _) | Out::Add(d, _) | Out::Elementwise(d) => Some(d.len()),
        }
    }

    /// The elements `r` of the output, reborrowed (`None` stays `None`).
    pub(crate) fn slice(&mut self, r: core::ops::Range<usize>) -> Out<'_> {
        match self {
            Out::None => Out::None,
            Out::Write(d, s) => Out::Write(d.slice(r), *s),
            Out::Add(d, s) => Out::Add(d.slice(r), *s),
            Out::Elementwise(d) => Out::Elementwise(d.slice(r)),
        }
    }

    /// The output before element `mid` and from `mid` on.
    #[cfg_attr(not(feature = "rayon"), allow(dead_code))]
    pub(crate) fn split_at(self, mid: usize) -> (Out<'o>, Out<'o>) {
        match self {
            Out::None => (Out::None, Out::None),
            Out::Write(d, s) => {
                let (a, b) = d.split_at(mid);
                (Out::Write(a, s), Out::Write(b, s))
            }
            Out::Add(d, s) => {
                let (a, b) = d.split_at(mid);
                (Out::Add(a, s), Out::Add(b, s))
            }
            Out::Elementwise(d) => {
                let (a, b) = d.split_at(mid);
                (Out::Elementwise(a), Out::Elementwise(b))
            }
        }
    }

    /// The same output as a [`Sink`], when it is `f32`.
    pub(crate) fn as_sink(&mut self) -> Option<Sink<'_>> {
        Some(match self {
            Out::None => Sink::None,
            Out::Write(Dst::F32(g), s) => Sink::Write(g, *s),
            Out::Add(Dst::F32(g), s) => Sink::Add(g, *s),
            Out::Elementwise(Dst::F32(o)) => Sink::Elementwise(o),
            _ => return None,
        })
    }
}

/// What a pass returns: the loss sum, the raw target sum, and whether any input was invalid
/// (the outputs are then meaningless and the caller reports the first bad element).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sums {
    pub loss: Dd,
    pub positives: f64,
    pub bad: bool,
}

impl Sums {
    pub(crate) const ZERO: Sums = Sums {
        loss: Dd::ZERO,
        positives: 0.0,
        bad: false,
    };
}

/// The per-class weights of one class, in the order of [`Weights`]: `a_pos`, `a_neg`,
/// `w_pos`, `w`, and the hard-target products `min(w a_pos w_pos, MAX)`, `min(w a_neg, MAX)`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn class_weights(a_pos: f32, a_neg: f32, w_pos: f32, w: f32) -> [f32; 6] {
    [
        a_pos,
        a_neg,
        w_pos,
        w,
        (w * a_pos * w_pos).min(f32::MAX),
        (w * a_neg).min(f32::MAX),
    ]
}

/// The per-class parameters of a call as the loop reads them, for the vector that starts at
/// class `c0`.
// The periodic copy lives on the stack on purpose (no allocation).
#[allow(clippy::large_enum_variant)]
pub(crate) enum ClassParams<'a> {
    /// No per-class parameter: the same weights in every lane.
    Uniform([f32; 6]),
    /// Up to [`PERIODIC_MAX`] classes: `buf[k][j]` is weight `k` of class `j % C`, so that
    /// `buf[k][c0..c0 + LANES]` is contiguous.
    Periodic([[f32; PERIODIC_MAX + MAX_LANES]; 6]),
    /// More classes: read from the slices, the products formed per vector (the same f32
    /// operations as [`class_weights`], so the values do not depend on the variant).
    Direct {
        alpha: Option<&'a [f32]>,
        a_dflt: f32,
        a_neg_one: bool,
        w: Option<&'a [f32]>,
        w_pos: Option<&'a [f32]>,
        classes: usize,
    },
}

impl<'a> ClassParams<'a> {
    fn new<T>(job: &Job<'a, T>) -> Self {
        let c = job.classes;
        let (alpha, a_dflt) = match job.alpha {
            Alpha::None => (None, 1.0),
            Alpha::Scalar(a) => (None, a),
            Alpha::PerClass(a) => (Some(a), 1.0),
        };
        // Without alpha both terms get 1; with it, the negative term gets 1 - alpha.
        let a_neg_one = matches!(job.alpha, Alpha::None);
        let at = |p: Option<&[f32]>, j: usize, dflt: f32| p.map_or(dflt, |p| p[j % c]);
        let one_class = |j: usize| {
            let a_pos = at(alpha, j, a_dflt);
            let a_neg = if a_neg_one { 1.0 } else { 1.0 - a_pos };
            class_weights(
                a_pos,
                a_neg,
                at(job.pos_weight, j, 1.0),
                at(job.class_weights, j, 1.0),
            )
        };
        if alpha.is_none() && job.class_weights.is_none() && job.pos_weight.is_none() {
            ClassParams::Uniform(one_class(0))
        } else if c <= PERIODIC_MAX {
            let mut buf = [[0.0; PERIODIC_MAX + MAX_LANES]; 6];
            for j in 0..c + MAX_LANES {
                for (b, v) in buf.iter_mut().zip(one_class(j)) {
                    b[j] = v;
                }
            }
            ClassParams::Periodic(buf)
        } else {
            ClassParams::Direct {
                alpha,
                a_dflt,
                a_neg_one,
                w: job.class_weights,
                w_pos: job.pos_weight,
                classes: c,
            }
        }
    }

    /// The hard-target weights `(h_pos, h_neg)` alone (see [`Weights`]).
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn hard<L: Lane>(&self, c0: usize) -> (L, L) {
        match self {
            ClassParams::Uniform(v) => (L::splat(v[4]), L::splat(v[5])),
            ClassParams::Periodic(b) => (
                L::load_or(&b[4][c0..c0 + L::LANES], 0.0),
                L::load_or(&b[5][c0..c0 + L::LANES], 0.0),
            ),
            ClassParams::Direct { .. } => {
                let w = self.get::<L>(c0);
                (w.h_pos, w.h_neg)
            }
        }
    }

    #[cfg_attr(not(opt_level_0), inline(always))]
    fn get<L: Lane>(&self, c0: usize) -> Weights<L> {
        match self {
            ClassParams::Uniform(v) => Weights {
                a_pos: L::splat(v[0]),
                a_neg: L::splat(v[1]),
                w_pos: L::splat(v[2]),
                w: L::splat(v[3]),
                h_pos: L::splat(v[4]),
                h_neg: L::splat(v[5]),
            },
            ClassParams::Periodic(b) => Weights {
                a_pos: L::load_or(&b[0][c0..c0 + L::LANES], 0.0),
                a_neg: L::load_or(&b[1][c0..c0 + L::LANES], 0.0),
                w_pos: L::load_or(&b[2][c0..c0 + L::LANES], 0.0),
                w: L::load_or(&b[3][c0..c0 + L::LANES], 0.0),
                h_pos: L::load_or(&b[4][c0..c0 + L::LANES], 0.0),
                h_neg: L::load_or(&b[5][c0..c0 + L::LANES], 0.0),
            },
            ClassParams::Direct {
                alpha,
                a_dflt,
                a_neg_one,
                w,
                w_pos,
                classes,
            } => {
                let one = L::splat(1.0);
                let a_pos = load_class::<L>(*alpha, *a_dflt, c0, *classes);
                let a_neg = if *a_neg_one { one } else { one - a_pos };
                let w_pos = load_class::<L>(*w_pos, 1.0, c0, *classes);
                let w = load_class::<L>(*w, 1.0, c0, *classes);
                let fmax = L::splat(f32::MAX);
                Weights {
                    a_pos,
                    a_neg,
                    w_pos,
                    w,
                    h_pos: (w * a_pos * w_pos).min(fmax),
                    h_neg: (w * a_neg).min(fmax),
                }
            }
        }
    }
}

/// `param[c0..c0 + LANES]` (wrapping to the next row), or `dflt` in every lane.
#[cfg_attr(not(opt_level_0), inline(always))]
fn load_class<L: Lane>(param: Option<&[f32]>, dflt: f32, c0: usize, classes: usize) -> L {
    match param {
        None => L::splat(dflt),
        Some(p) if c0 + L::LANES <= classes => L::load_or(&p[c0..c0 + L::LANES], 0.0),
        Some(p) => {
            // The vector wraps to the next row.
            let mut tmp = [0.0; MAX_LANES];
            for (k, v) in tmp.iter_mut().enumerate().take(L::LANES) {
                *v = p[(c0 + k) % classes];
            }
            L::load_or(&tmp[..L::LANES], 0.0)
        }
    }
}

/// `src` as a vector of f32, padded with 0.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn load_targets<L: Lane, T: Target>(src: &[T]) -> L {
    T::slice(src).load::<L>(0..src.len().min(L::LANES))
}

/// Per-lane validity of the padded last vector.
static ONES: [f32; MAX_LANES] = [1.0; MAX_LANES];

/// Where a pass is, between calls of [`Body::body`]: the accumulators, the validity so far, and
/// the class offset and row of the next element.
pub(crate) struct State<L: Lane> {
    acc: L::Acc,
    ok: L::Mask,
    c0: usize,
    row: usize,
}

/// Targets given as bytes (and half-precision data) are widened into stack buffers of this many
/// `f32` on the vector backends: an even multiple of every backend's `LANES`, so that the
/// vectors, and the pairs of the fast loops, are the same as with `f32` targets. Each block
/// is one call of the compiled [`Body::body`]: 2048 rather than 512 took byte targets from
/// 0.66 to 0.63 ns per element and bf16 data from 0.78 to 0.75 (AVX-512, 64K, gamma 2).
const BLOCK: usize = 2048;
/// The scalar backend's blocks (it runs on microcontrollers: three buffers of 2 KB, not 8).
const SCALAR_BLOCK: usize = 512;
const _: () = assert!(BLOCK.is_multiple_of(2 * MAX_LANES));
const _: () = assert!(SCALAR_BLOCK.is_multiple_of(2 * MAX_LANES));

/// A backend's compiled copy of [`body`] ([`Body::body`]: one function per backend, shared by
/// every target type, through [`Body::part`]) and of the other [`Part`]s of its kernels.
pub(crate) trait Body: Lane {
    /// [`body`] for this lane type, as the [`Part`] [`Whole`]: compiled once per backend, with
    /// its instruction set.
    #[inline(always)]
    fn body(
        job: &Job<'_, f32>,
        params: &ClassParams<'_>,
        sink: &mut Sink<'_>,
        st: &mut State<Self>,
    ) {
        Self::part(Whole {
            job,
            params,
            sink,
            st,
        })
    }

    /// `p.run()`, compiled as a function of its own (the x86 backends compile it with their
    /// instruction set enabled): see [`Part`].
    #[inline(never)]
    fn part<P: Part<Self>>(p: P) -> P::Output {
        crate::backend::frame_first();
        p.run()
    }
}

/// The arguments of one [`body`] call, as a [`Part`] for [`Body::part`].
pub(crate) struct Whole<'r, 'j, 'p, 's, L: Lane> {
    job: &'r Job<'j, f32>,
    params: &'r ClassParams<'p>,
    sink: &'r mut Sink<'s>,
    st: &'r mut State<L>,
}

impl<L: Lane> Part<L> for Whole<'_, '_, '_, '_, L> {
    type Output = ();
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn run(self) {
        body(self.job, self.params, self.sink, self.st)
    }
}

/// The loss sum, target sum and validity of `job` (logits `x`, targets `t`), with `out`
/// written for every element: [`Body::body`] on the whole job when everything is `f32`, or
/// block by block ([`BLOCK`] elements, so that the blocks' vectors and pairs are the whole
/// job's) on the logits and targets widened to `f32` in stack buffers and the outputs
/// narrowed from one, the state carried from block to block: the same bits either way.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn pass<L: Body>(
    job: &Job<'_, ()>,
    x: Src<'_>,
    t: Slice<'_>,
    out: &mut Out<'_>,
) -> Sums {
    let params = ClassParams::new(job);
    let zero = L::splat(0.0);
    let mut st = State::<L> {
        acc: L::acc_zero(),
        ok: zero.eq(zero), // all lanes true
        c0: 0,
        row: 0,
    };
    let whole = match (x.as_f32(), t) {
        (Some(xf), Slice::F32(tf)) => Some((xf, tf)),
        _ => None,
    };
    if let (Some((xf, tf)), Some(mut sink)) = (whole, out.as_sink()) {
        let mut j = job.with_targets(tf);
        j.x = xf;
        L::body(&j, &params, &mut sink, &mut st);
    } else if L::LANES > 1 {
        blocks::<L, BLOCK>(job, &params, x, t, out, &mut st);
    } else {
        blocks::<L, SCALAR_BLOCK>(job, &params, x, t, out, &mut st);
    }
    let (loss, positives) = L::acc_total(st.acc);
    Sums {
        loss,
        positives,
        bad: !L::all(st.ok),
    }
}

/// [`pass`] on data not all `f32`, the state `st` carried on. In turn: the run of hard targets
/// from where it is, without a gradient or writing one, through [`hard_run`] on the caller's
/// slices (see [`typed_t`]); then one block of (at most) `N` elements (see [`BLOCK`]), the
/// logits and targets widened into stack buffers, the outputs narrowed from one. A run stops
/// at a pair of vectors, a block ends `N` elements after it starts or at the end: every block
/// starts at an even vector, as [`body`] requires.
#[cfg_attr(not(opt_level_0), inline(always))]
fn blocks<L: Body, const N: usize>(
    job: &Job<'_, ()>,
    params: &ClassParams<'_>,
    x: Src<'_>,
    t: Slice<'_>,
    out: &mut Out<'_>,
    st: &mut State<L>,
) {
    let typed = job.eps == 0.0 && job.gamma <= kernel::FAST_GAMMA_MAX;
    let (mut bx, mut bt, mut bg) = ([0f32; N], [0f32; N], [0f32; N]);
    let n = x.len();
    let mut s = 0;
    while s < n {
        s = match x {
            _ if !typed => s,
            Src::F32(v) => typed_t::<L, f32>(job, params, v, Half::Bf16, t, out, st, s),
            Src::Bf16(v) => typed_t::<L, u16>(job, params, v, Half::Bf16, t, out, st, s),
            Src::F16(v) => typed_t::<L, u16>(job, params, v, Half::F16, t, out, st, s),
        };
        if s >= n {
            break;
        }
        let e = (s + N).min(n);
        let len = e - s;
        let xb = match x {
            Src::F32(v) => &v[s..e],
            _ => {
                x.slice(s..e).widen::<L>(&mut bx[..len]);
                &bx[..len]
            }
        };
        let tb = match t {
            Slice::F32(v) => &v[s..e],
            _ => {
                t.widen::<L>(s..e, &mut bt[..len]);
                &bt[..len]
            }
        };
        let mut block = job.with_targets(tb);
        block.x = xb;
        let g = &mut bg[..len];
        match out {
            Out::None => L::body(&block, params, &mut Sink::None, st),
            Out::Write(Dst::F32(d), f) => {
                L::body(&block, params, &mut Sink::Write(&mut d[s..e], *f), st)
            }
            Out::Add(Dst::F32(d), f) => {
                L::body(&block, params, &mut Sink::Add(&mut d[s..e], *f), st)
            }
            Out::Elementwise(Dst::F32(d)) => {
                L::body(&block, params, &mut Sink::Elementwise(&mut d[s..e]), st)
            }
            Out::Write(d, f) => {
                L::body(&block, params, &mut Sink::Write(g, *f), st);
                d.slice(s..e).narrow::<L>(g);
            }
            Out::Add(d, f) => {
                d.slice(s..e).widen::<L>(g);
                L::body(&block, params, &mut Sink::Add(g, *f), st);
                d.slice(s..e).narrow::<L>(g);
            }
            Out::Elementwise(d) => {
                L::body(&block, params, &mut Sink::Elementwise(g), st);
                d.slice(s..e).narrow::<L>(g);
            }
        }
        s = e;
    }
}

/// [`hard_run`] from `i` on the caller's slices (logits `x` of type `X`, half-precision bits in
/// the format `hx`; targets `t` and a gradient of any element types, converted in registers),
/// when `out` is [`Out::None`] or [`Out::Write`], the state `st` carried on; returns where it
/// stopped (`i` for other outputs). The same operations as in a block, on the same values:
/// the same bits.
#[cfg_attr(not(opt_level_0), inline(always))]
#[allow(clippy::too_many_arguments)]
fn typed_t<L: Body, X: Elem>(
    job: &Job<'_, ()>,
    params: &ClassParams<'_>,
    x: &[X],
    hx: Half,
    t: Slice<'_>,
    out: &mut Out<'_>,
    st: &mut State<L>,
    i: usize,
) -> usize {
    let ht = match t {
        Slice::F16(_) => Half::F16,
        _ => Half::Bf16,
    };
    match t {
        Slice::F32(t) => typed_g::<L, X, f32>(job, params, Data { x, t, hx, ht }, out, st, i),
        Slice::U8(t) => typed_g::<L, X, u8>(job, params, Data { x, t, hx, ht }, out, st, i),
        Slice::Bf16(t) | Slice::F16(t) => {
            typed_g::<L, X, u16>(job, params, Data { x, t, hx, ht }, out, st, i)
        }
    }
}

/// [`typed_t`] with the targets' type fixed.
#[cfg_attr(not(opt_level_0), inline(always))]
fn typed_g<L: Body, X: Elem, U: TargetElem>(
    job: &Job<'_, ()>,
    params: &ClassParams<'_>,
    data: Data<'_, X, U>,
    out: &mut Out<'_>,
    st: &mut State<L>,
    i: usize,
) -> usize {
    let g = match out {
        Out::None => TypedOut::None,
        Out::Write(Dst::F32(g), f) => TypedOut::Write(g, *f),
        // (Asked once per run: the CPU's conversion in a loop of its own, not a test per
        // vector. Sigmoid only: in the softmax passes it gained nothing measurable.)
        Out::Write(Dst::Bf16(g), f) if L::bf16_native() => TypedOut::WriteBf16Native(g, *f),
        Out::Write(Dst::Bf16(g), f) => TypedOut::WriteHalf(g, *f, Half::Bf16),
        Out::Write(Dst::F16(g), f) => TypedOut::WriteHalf(g, *f, Half::F16),
        _ => return i,
    };
    L::part(Hard {
        job,
        params,
        data,
        g,
        st,
        i,
    })
}

/// The output of [`typed_t`]: none, or `g = factor * dl/dx` into a slice of `f32` or of
/// half-precision bits in the given format, or of `bf16` bits with the CPU's conversion
/// ([`Lane::store_bf16_native`]; the same bits).
enum TypedOut<'o> {
    None,
    Write(&'o mut [f32], f32),
    WriteHalf(&'o mut [u16], f32, Half),
    WriteBf16Native(&'o mut [u16], f32),
}

/// The arguments of one [`typed_t`], as a [`Part`] for [`Body::part`]: one compiled
/// loop per backend and combination of element types.
struct Hard<'r, 'j, 'p, 'd, 'o, L: Lane, X, U> {
    job: &'r Job<'j, ()>,
    params: &'r ClassParams<'p>,
    data: Data<'d, X, U>,
    g: TypedOut<'o>,
    st: &'r mut State<L>,
    i: usize,
}

impl<L: Lane, X: Elem, U: TargetElem> Part<L> for Hard<'_, '_, '_, '_, '_, L, X, U> {
    type Output = usize;
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn run(self) -> usize {
        let Hard {
            job,
            params,
            data,
            g,
            st,
            i,
        } = self;
        let k = Consts::<L>::new(job.gamma, job.eps, !job.light);
        let at = (&mut st.c0, &mut st.row);
        match g {
            TypedOut::None => hard_run(job, data, params, &k, i, at, &mut st.acc, Discard),
            TypedOut::Write(g, f) => {
                let out = WriteGrad(g, L::splat(f), Half::Bf16);
                hard_run(job, data, params, &k, i, at, &mut st.acc, out)
            }
            TypedOut::WriteHalf(g, f, h) => {
                let out = WriteGrad(g, L::splat(f), h);
                hard_run(job, data, params, &k, i, at, &mut st.acc, out)
            }
            TypedOut::WriteBf16Native(g, f) => {
                let out = WriteBf16Native(g, L::splat(f));
                hard_run(job, data, params, &k, i, at, &mut st.acc, out)
            }
        }
    }
}

/// The elements of `job` (the whole batch, or a block of it that starts at a multiple of
/// [`BLOCK`]), from the state `st` on, with `sink` written for every element.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn body<L: Lane>(
    job: &Job<'_, f32>,
    params: &ClassParams<'_>,
    sink: &mut Sink<'_>,
    st: &mut State<L>,
) {
    let k = Consts::<L>::new(job.gamma, job.eps, !job.light);
    let c = job.classes;
    let n = job.x.len();
    let zero = L::splat(0.0);
    let one = L::splat(1.0);

    let (mut acc, mut ok) = (st.acc, st.ok);
    // A full vector advances the class offset by LANES mod C and the row by LANES / C.
    let stride = Stride::new::<L>(c);
    let (mut c0, mut row) = (st.c0, st.row);
    // Without label smoothing and for gamma up to 2^20, runs of full vectors whose logits are
    // all below 2^64 in magnitude and targets all 0 or 1 take a loop of their own (one copy
    // per kind of output) with the hard-target formula alone: the function the general path
    // calls for such a vector, so the values are the same, in a short loop body that keeps
    // its constants in registers.
    let fast = k.may_be_hard && job.gamma <= kernel::FAST_GAMMA_MAX;
    // Any other run of full vectors whose logits are below 2^64 and targets in [0, 1] takes a
    // loop of its own too, through the function the general path calls for it.
    let soft = !k.may_be_hard || job.gamma <= kernel::FAST_GAMMA_MAX;
    let mut i = 0;
    while i < n {
        let start = i;
        if fast {
            let (at, data) = ((&mut c0, &mut row), Data::of(job));
            i = match sink {
                Sink::None => hard_run(job, data, params, &k, i, at, &mut acc, Discard),
                Sink::Write(out, s) => {
                    let out = WriteGrad(out, L::splat(*s), Half::Bf16);
                    hard_run(job, data, params, &k, i, at, &mut acc, out)
                }
                Sink::Add(out, s) => {
                    let out = AddGrad(out, L::splat(*s));
                    hard_run(job, data, params, &k, i, at, &mut acc, out)
                }
                Sink::Elementwise(out) => {
                    hard_run(job, data, params, &k, i, at, &mut acc, WriteLoss(out))
                }
            };
            if i >= n {
                break;
            }
        }
        if soft {
            let at = (&mut c0, &mut row);
            i = soft_run(job, params, &k, i, at, &mut acc, sink, fast);
            if i >= n {
                break;
            }
        }
        if i != start {
            // A loop took vectors: the next ones may be for the other loop (a soft-target run
            // stops at a vector, or a pair of vectors, of hard targets).
            continue;
        }
        // One vector through the general path.
        let end = (i + L::LANES).min(n);
        let valid = end - i;
        let x = L::load_or(&job.x[i..end], 0.0);
        let t = load_targets::<L, f32>(&job.t[i..end]);
        let mut wt = params.get::<L>(c0);
        if let Some(s) = row_weights::<L, f32>(job, (c0, row), valid) {
            scale_weights(&mut wt, s);
        }
        if valid < L::LANES {
            // Padding lanes get weight exactly 0 (a select: even an overflowed weight
            // product is not multiplied by 0).
            let live = L::load_or(&ONES[..valid], 0.0).eq(one);
            wt.w = L::select(live, wt.w, zero);
            wt.h_pos = L::select(live, wt.h_pos, zero);
            wt.h_neg = L::select(live, wt.h_neg, zero);
        }
        let (l, g, valid_lanes) = match job.modulator {
            kernel::LINEAR => kernel::element::<L, { kernel::LINEAR }>(x, t, &wt, &k),
            kernel::GEOMETRIC => kernel::element::<L, { kernel::GEOMETRIC }>(x, t, &wt, &k),
            _ => kernel::element::<L, { kernel::SEPARABLE }>(x, t, &wt, &k),
        };
        ok = ok & valid_lanes;
        add_sums::<L>(&mut acc, l, t, job.count_positives);
        emit(sink, i..end, l, g);
        i = end;
        (c0, row) = stride.next((c0, row));
    }
    *st = State { acc, ok, c0, row };
}

/// How a full vector moves the class offset and the row: by `LANES mod C` classes and
/// `LANES / C` rows, one row more where the offset wraps.
#[derive(Clone, Copy)]
struct Stride {
    classes: usize,
    step: usize,
    rows: usize,
}

impl Stride {
    fn new<L: Lane>(classes: usize) -> Self {
        Stride {
            classes,
            step: L::LANES % classes,
            rows: L::LANES / classes,
        }
    }

    /// The class offset and row of the vector after the one at `(c0, row)`.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn next(self, (c0, row): (usize, usize)) -> (usize, usize) {
        if c0 + self.step >= self.classes {
            (c0 + self.step - self.classes, row + self.rows + 1)
        } else {
            (c0 + self.step, row + self.rows)
        }
    }
}

/// `l` and `g` for the elements `range` (a vector, or the padded last one) written to `sink`,
/// through the same [`Emit`] implementation the loops use.
#[cfg_attr(not(opt_level_0), inline(always))]
fn emit<L: Lane>(sink: &mut Sink<'_>, range: core::ops::Range<usize>, l: L, g: L) {
    match sink {
        Sink::None => Discard.emit(range, l, g),
        Sink::Write(out, s) => WriteGrad(out, L::splat(*s), Half::Bf16).emit(range, l, g),
        Sink::Add(out, s) => AddGrad(out, L::splat(*s)).emit(range, l, g),
        Sink::Elementwise(out) => WriteLoss(out).emit(range, l, g),
    }
}

/// A [`Sink`] with its kind fixed at compile time: the loops take one (one copy of a loop
/// per kind of output, so that its body has no branch on it); [`emit`] makes one per vector.
trait Emit<L: Lane> {
    /// The loss `l` and gradient `g` of the elements `range` (at most `L::LANES` of them).
    fn emit(&mut self, range: core::ops::Range<usize>, l: L, g: L);
}

/// [`Sink::None`].
struct Discard;
/// [`Sink::Write`], the factor splat, into a slice of `f32` or of half-precision bits in the
/// format of the third field (each value rounded once).
struct WriteGrad<'o, L, G = f32>(&'o mut [G], L, Half);
/// [`WriteGrad`] of `bf16` bits through [`Lane::store_bf16_native`] (only made where
/// [`Lane::bf16_native`] holds).
struct WriteBf16Native<'o, L>(&'o mut [u16], L);
/// [`Sink::Add`], the factor splat.
struct AddGrad<'o, L>(&'o mut [f32], L);
/// [`Sink::Elementwise`].
struct WriteLoss<'o>(&'o mut [f32]);

impl<L: Lane> Emit<L> for Discard {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn emit(&mut self, _: core::ops::Range<usize>, _: L, _: L) {}
}

impl<L: Lane, G: Elem> Emit<L> for WriteGrad<'_, L, G> {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn emit(&mut self, range: core::ops::Range<usize>, _: L, g: L) {
        G::store(g * self.1, &mut self.0[range], self.2);
    }
}

impl<L: Lane> Emit<L> for WriteBf16Native<'_, L> {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn emit(&mut self, range: core::ops::Range<usize>, _: L, g: L) {
        (g * self.1).store_bf16_native(&mut self.0[range]);
    }
}

impl<L: Lane> Emit<L> for AddGrad<'_, L> {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn emit(&mut self, range: core::ops::Range<usize>, _: L, g: L) {
        let dst = &mut self.0[range];
        (L::load_or(dst, 0.0) + g * self.1).store(dst);
    }
}

impl<L: Lane> Emit<L> for WriteLoss<'_> {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn emit(&mut self, range: core::ops::Range<usize>, l: L, _: L) {
        l.store(&mut self.0[range]);
    }
}

/// The sample weight of each of the first `valid` lanes of the vector at class `c0` of row
/// `row` (the others 0), or `None` without sample weights. Lane `j` is in row
/// `row + (c0 + j) / C`: one row, or two (lanes from `C - c0` on in the next) for at least
/// `L::LANES` classes, consecutive rows for one class, else gathered lane by lane.
#[cfg_attr(not(opt_level_0), inline(always))]
fn row_weights<L: Lane, T>(job: &Job<'_, T>, (c0, row): (usize, usize), valid: usize) -> Option<L> {
    let sw = job.sample_weights?;
    let c = job.classes;
    Some(if c0 + valid <= c {
        L::splat(sw[row])
    } else if c >= L::LANES {
        let first = L::load_or(&IOTA[..L::LANES], 0.0).lt(L::splat((c - c0) as f32));
        L::select(first, L::splat(sw[row]), L::splat(sw[row + 1]))
    } else if c == 1 {
        L::load_or(&sw[row..row + valid], 0.0)
    } else {
        let mut tmp = [0.0; MAX_LANES];
        let (mut r, mut cj) = (row, c0);
        for v in tmp.iter_mut().take(valid) {
            *v = sw[r];
            cj += 1;
            if cj == c {
                (r, cj) = (r + 1, 0);
            }
        }
        L::load_or(&tmp[..L::LANES], 0.0)
    })
}

/// The hard-target weights times the sample weights `s`: clamped to MAX, not inf, so that a
/// zero cross-entropy still gives 0.
#[cfg_attr(not(opt_level_0), inline(always))]
fn scale_hard<L: Lane>((h_pos, h_neg): (L, L), s: L) -> (L, L) {
    let fmax = L::splat(f32::MAX);
    ((h_pos * s).min(fmax), (h_neg * s).min(fmax))
}

/// `wt` times the sample weights `s`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn scale_weights<L: Lane>(wt: &mut Weights<L>, s: L) {
    // Clamped as the hard-target weights: a class weight and a sample weight near MAX give
    // MAX, not inf, which a zero alpha would turn into NaN.
    wt.w = (wt.w * s).min(L::splat(f32::MAX));
    (wt.h_pos, wt.h_neg) = scale_hard((wt.h_pos, wt.h_neg), s);
}

/// The hard-target weights `(h_pos, h_neg)` of the full vector at class `c0` of row `row`,
/// with the sample weights (see [`row_weights`]).
#[cfg_attr(not(opt_level_0), inline(always))]
fn hard_weights<L: Lane, T>(
    job: &Job<'_, T>,
    params: &ClassParams<'_>,
    at: (usize, usize),
) -> (L, L) {
    let h = params.hard::<L>(at.0);
    match row_weights::<L, T>(job, at, L::LANES) {
        None => h,
        Some(s) => scale_hard(h, s),
    }
}

/// `0, 1, ..., MAX_LANES - 1`: lane indices.
static IOTA: [f32; MAX_LANES] = {
    let mut a = [0.0; MAX_LANES];
    let mut i = 0;
    while i < MAX_LANES {
        a[i] = i as f32;
        i += 1;
    }
    a
};

/// Adds the losses `l` to the loss sum, and the targets `t` to the target sum when
/// `count_positives`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn add_sums<V: Lane>(acc: &mut V::Acc, l: V, t: V, count_positives: bool) {
    V::acc_add(acc, l);
    if count_positives {
        V::acc_add_t(acc, t);
    }
}

/// The logits and targets the fast loops read: the `f32` ones of a [`Job`] (or of a block of
/// it), or the caller's slices themselves, of any element types, converted in registers
/// (half-precision bits in the formats `hx`, `ht`).
#[derive(Clone, Copy)]
struct Data<'d, X, U> {
    x: &'d [X],
    t: &'d [U],
    hx: Half,
    ht: Half,
}

impl<'d> Data<'d, f32, f32> {
    /// The logits and targets of `job`.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn of(job: &Job<'d, f32>) -> Self {
        Data {
            x: job.x,
            t: job.t,
            hx: Half::Bf16,
            ht: Half::Bf16,
        }
    }
}

impl<X: Elem, U: TargetElem> Data<'_, X, U> {
    /// The logits and targets of the `V::LANES` elements at `i` (all in range).
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn load<V: Lane>(&self, i: usize) -> (V, V) {
        let r = i..i + V::LANES;
        let x = X::load::<V>(&self.x[r.clone()], 0.0, self.hx);
        (x, U::load::<V>(&self.t[r], self.ht))
    }
}

/// How the fast loops read a full vector of targets of one element type (`u16`:
/// half-precision bits in the format `h`), exactly.
pub(crate) trait TargetElem: Copy + Sync {
    fn load<L: Lane>(src: &[Self], h: Half) -> L;
}

impl TargetElem for f32 {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn load<L: Lane>(src: &[f32], _: Half) -> L {
        L::load_or(src, 0.0)
    }
}

impl TargetElem for u8 {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn load<L: Lane>(src: &[u8], _: Half) -> L {
        L::load_u8(src)
    }
}

impl TargetElem for u16 {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn load<L: Lane>(src: &[u16], h: Half) -> L {
        <u16 as Elem>::load(src, 0.0, h)
    }
}

/// Whether the fast loops take vectors two at a time from `i`: on the vector backends, from
/// an even vector (counted from the start of the batch, or of a block of it, which is even
/// too), so that which vectors are summed together depends only on the data, not on where a
/// run or a block starts. A vector those loops leave (an odd one, the last one) takes the
/// general path, which gives the same bits.
#[cfg_attr(not(opt_level_0), inline(always))]
fn pair_at<L: Lane>(i: usize, n: usize) -> bool {
    (i / L::LANES).is_multiple_of(2) && i + 2 * L::LANES <= n
}

/// The full vectors from `i` on whose logits are all below [`kernel::FAST_X_MAX`] in magnitude
/// and targets all 0 or 1, through [`kernel::hard`], each written to `out`; returns where it
/// stopped (the first other vector, or the last full one; on the vector backends, which take
/// pairs of vectors (see [`pair_at`]), the first of the first other pair). Advances the class
/// offset and the row `at`.
#[cfg_attr(not(opt_level_0), inline(always))]
#[allow(clippy::too_many_arguments)]
fn hard_run<L: Lane, T, X: Elem, U: TargetElem>(
    job: &Job<'_, T>,
    data: Data<'_, X, U>,
    params: &ClassParams<'_>,
    k: &Consts<L>,
    mut i: usize,
    at: (&mut usize, &mut usize),
    acc: &mut L::Acc,
    mut out: impl Emit<L>,
) -> usize {
    let (n, c) = (data.x.len(), job.classes);
    let stride = Stride::new::<L>(c);
    let (mut c0, mut row) = (*at.0, *at.1);
    let mut acc_ = *acc;
    if L::PAIRS {
        // Two vectors per iteration as one `Two`: their operations interleave, and one
        // accumulation serves both.
        let k2 = k.two();
        while pair_at::<L>(i, n) {
            let (x, t) = data.load::<Two<L>>(i);
            let (fast, y) = Two::all_hard(x, t, kernel::FAST_X_MAX);
            if !fast {
                break;
            }
            let (i1, at1) = (i + L::LANES, stride.next((c0, row)));
            let (h_pos0, h_neg0) = hard_weights(job, params, (c0, row));
            let (h_pos1, h_neg1) = hard_weights(job, params, at1);
            let h = (Two(h_pos0, h_pos1), Two(h_neg0, h_neg1));
            let (l, g) = kernel::hard(x, y, h.0, h.1, &k2);
            add_sums::<Two<L>>(&mut acc_, l, t, job.count_positives);
            out.emit(i..i1, l.0, g.0);
            out.emit(i1..i1 + L::LANES, l.1, g.1);
            i = i1 + L::LANES;
            (c0, row) = stride.next(at1);
        }
    } else {
        while i + L::LANES <= n {
            let (x, t) = data.load::<L>(i);
            let (fast, y) = L::all_hard(x, t, kernel::FAST_X_MAX);
            if !fast {
                break;
            }
            let (h_pos, h_neg) = hard_weights(job, params, (c0, row));
            let (l, g) = kernel::hard(x, y, h_pos, h_neg, k);
            add_sums::<L>(&mut acc_, l, t, job.count_positives);
            out.emit(i..i + L::LANES, l, g);
            i += L::LANES;
            (c0, row) = stride.next((c0, row));
        }
    }
    (*at.0, *at.1) = (c0, row);
    *acc = acc_;
    i
}

/// The weights of the full vector at class `c0` of row `row`, with the sample weights.
#[cfg_attr(not(opt_level_0), inline(always))]
fn vector_weights<L: Lane, T>(
    job: &Job<'_, T>,
    params: &ClassParams<'_>,
    at: (usize, usize),
) -> Weights<L> {
    let mut wt = params.get::<L>(at.0);
    if let Some(s) = row_weights::<L, T>(job, at, L::LANES) {
        scale_weights(&mut wt, s);
    }
    wt
}

/// One step of [`soft_run`] on `V` (a vector, or a pair of them as [`Two`]): the loss and
/// gradient of `x`, `t`, or `None` when the step does not qualify (a logit beyond
/// [`kernel::FAST_X_MAX`], a target outside `[0, 1]`, or hard targets that `all_hard` gives
/// to [`hard_run`]: for a pair, both vectors' targets all 0 or 1).
#[cfg_attr(not(opt_level_0), inline(always))]
fn soft_step<V: Lane>(
    x: V,
    t: V,
    wt: impl FnOnce() -> Weights<V>,
    k: &Consts<V>,
    modulator: u8,
    all_hard: impl FnOnce(V::Mask) -> bool,
) -> Option<(V, V)> {
    let (zero, one) = (V::splat(0.0), V::splat(1.0));
    if !V::all(x.abs().lt(V::splat(kernel::FAST_X_MAX)) & t.ge(zero) & t.le(one)) {
        return None;
    }
    let y = t.eq(one);
    let hard = y | t.eq(zero);
    let any_hard = k.may_be_hard && V::any(hard);
    if any_hard && all_hard(hard) {
        return None;
    }
    let wt = wt();
    let (l, g) = kernel::soft(x, t, &wt, k, modulator);
    if !any_hard {
        return Some((l, g));
    }
    let (lh, gh) = kernel::hard(x, y, wt.h_pos, wt.h_neg, k);
    Some((V::select(hard, lh, l), V::select(hard, gh, g)))
}

/// The full vectors from `i` on whose logits are all below [`kernel::FAST_X_MAX`] in magnitude
/// and targets all in `[0, 1]`, through [`kernel::soft`] (and, without label smoothing, the
/// lanes with targets 0 or 1 through [`kernel::hard`], as on the general path), each written to
/// `sink`; returns where it stopped (the first other vector, the first one whose targets are
/// all 0 or 1 when `hard_run` takes those, or the last full one; on the vector backends, which
/// take pairs of vectors (see [`pair_at`]), the first of the first other pair). Advances the
/// class offset and the row `at`. Without label smoothing, requires
/// `gamma <= FAST_GAMMA_MAX`.
#[cfg_attr(not(opt_level_0), inline(always))]
#[allow(clippy::too_many_arguments)]
fn soft_run<L: Lane>(
    job: &Job<'_, f32>,
    params: &ClassParams<'_>,
    k: &Consts<L>,
    mut i: usize,
    at: (&mut usize, &mut usize),
    acc: &mut L::Acc,
    sink: &mut Sink<'_>,
    hard_run_too: bool,
) -> usize {
    let (n, c) = (job.x.len(), job.classes);
    let stride = Stride::new::<L>(c);
    let (mut c0, mut row) = (*at.0, *at.1);
    let mut acc_ = *acc;
    if L::PAIRS {
        let k2 = k.two();
        while pair_at::<L>(i, n) {
            let (x, t) = Data::of(job).load::<Two<L>>(i);
            let (i1, at1) = (i + L::LANES, stride.next((c0, row)));
            let wt = || {
                let (w0, w1) = (
                    vector_weights(job, params, (c0, row)),
                    vector_weights(job, params, at1),
                );
                Weights::two(&w0, &w1)
            };
            // A pair with one vector of hard targets stays here (its hard lanes take the
            // hard formula all the same); only a pair of them is for `hard_run`.
            let all_hard = |h: TwoMask<L::Mask>| hard_run_too && Two::<L>::all(h);
            let Some((l, g)) = soft_step(x, t, wt, &k2, job.modulator, all_hard) else {
                break;
            };
            add_sums::<Two<L>>(&mut acc_, l, t, job.count_positives);
            emit(sink, i..i1, l.0, g.0);
            emit(sink, i1..i1 + L::LANES, l.1, g.1);
            i = i1 + L::LANES;
            (c0, row) = stride.next(at1);
        }
    } else {
        while i + L::LANES <= n {
            let (x, t) = Data::of(job).load::<L>(i);
            let wt = || vector_weights(job, params, (c0, row));
            let all_hard = |h: L::Mask| hard_run_too && L::all(h);
            let Some((l, g)) = soft_step(x, t, wt, k, job.modulator, all_hard) else {
                break;
            };
            add_sums::<L>(&mut acc_, l, t, job.count_positives);
            emit(sink, i..i + L::LANES, l, g);
            i += L::LANES;
            (c0, row) = stride.next((c0, row));
        }
    }
    (*at.0, *at.1) = (c0, row);
    *acc = acc_;
    i
}

/// Validation and the target sum alone, for calls that must know them before writing (a
/// gradient accumulated into, or scaled by the number of positives). `x` is the logits, or
/// empty to validate and sum the targets alone (when only the sum must come first: the pass
/// checks the logits itself).
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn scan<L: Lane>(x: Src<'_>, t: Slice<'_>) -> Sums {
    let zero = L::splat(0.0);
    let one = L::splat(1.0);
    let mut acc = L::acc_zero();
    let mut ok = zero.eq(zero);
    let n = t.len();
    let mut i = 0;
    while i < n {
        let e = (i + L::LANES).min(n);
        let tv = t.load::<L>(i..e);
        ok = ok & tv.ge(zero) & tv.le(one);
        if x.len() != 0 {
            let xv = x.slice(i..e).load::<L>(0, 0.0);
            ok = ok & xv.eq(xv);
        }
        L::acc_add_t(&mut acc, tv);
        i = e;
    }
    let (loss, positives) = L::acc_total(acc);
    Sums {
        loss,
        positives,
        bad: !L::all(ok),
    }
}

/// [`pass`] as work for [`select`].
struct Pass<'r, 'd, 'o> {
    job: &'r Job<'d, ()>,
    x: Src<'d>,
    t: Slice<'d>,
    out: &'r mut Out<'o>,
}

impl Kernel for Pass<'_, '_, '_> {
    type Output = Sums;
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn run<L: Body>(self) -> Sums {
        pass::<L>(self.job, self.x, self.t, self.out)
    }
}

/// [`scan`] as work for [`select`].
struct Scan<'d> {
    x: Src<'d>,
    t: Slice<'d>,
}

impl Kernel for Scan<'_> {
    type Output = Sums;
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn run<L: Body>(self) -> Sums {
        scan::<L>(self.x, self.t)
    }
}

/// One pass of `job` (logits `x`) on `isa`, writing `out`: compiled here, once, not in the
/// crates that call the generic entry points.
pub(crate) fn run<T: Target>(isa: Isa, job: &Job<'_, T>, x: Src<'_>, out: &mut Out<'_>) -> Sums {
    run_any(isa, &job.with_targets(&[]), x, T::slice(job.t), out)
}

#[inline(never)]
fn run_any(isa: Isa, job: &Job<'_, ()>, x: Src<'_>, t: Slice<'_>, out: &mut Out<'_>) -> Sums {
    select(isa, Pass { job, x, t, out })
}

/// Validation and target sum on `isa` (`x` empty: the targets alone, see [`scan`]).
pub(crate) fn run_scan<T: Target>(isa: Isa, x: Src<'_>, t: &[T]) -> Sums {
    scan_any(isa, x, T::slice(t))
}

#[inline(never)]
fn scan_any(isa: Isa, x: Src<'_>, t: Slice<'_>) -> Sums {
    select(isa, Scan { x, t })
}
