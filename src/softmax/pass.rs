//! The loops that feed the softmax core, written once over [`Lane`], in two shapes:
//!
//! - [`rows`], for class-last `[rows, C]` batches with more classes than the column kernels
//!   take ([`Lane::LAST_COLS`]; every batch on the scalar backend): each row is
//!   scanned with its classes in the lanes (max; `exp`, the sum `T`; the gradient), and the
//!   per-row work (`ln S`, the label's modulator, the factors of the gradient) is done for a
//!   block of rows at once, one row per lane ([`finish`]).
//! - [`columns`], for the `[N, C, S]` layout (positions in the lanes: every operation is
//!   lane-wise, nothing is reduced across lanes), and [`columns_last`], the same blocks for
//!   class-last batches with few classes (at most [`Lane::LAST_COLS`]), each block of rows
//!   first transposed into a stack buffer (as `f32`: one copy per backend for every element
//!   type).
//!
//! Rows of two classes take the column kernels in every layout and on every backend, and
//! there [`column_pair`]: each class's term is the sigmoid core's at its margin over the other
//! (see [`pair_term`]), with no row sums. Lane-wise throughout, so the identities below hold
//! for them by construction.
//!
//! # The same bits in both shapes
//! A row's result must not depend on its layout. Everything but the sums over classes is
//! lane-wise, so only their order matters. Both shapes add a row's class values in `f64`
//! (exact widening, one rounding per addition) into `LANES` partial sums, class `c` into the
//! partial sum of the lane it has in the row kernel's chunks ([`group`]: `c mod LANES` but for
//! the overlapping last chunk of a row) in class order, and combine the partial sums in the
//! same fixed tree ([`Lane::wide_tree`]): [`rows`] has the partial sums in the lanes of one
//! [`Lane::Wide`], and [`columns`] and [`columns_last`] keep `LANES` of them per position.
//! Each backend has its own `LANES`, so the identity holds per backend (backends differ in
//! the last bits anyway).
//!
//! # Index labels and distributions
//! With index labels and no label smoothing only the label's class has a weight: the pass
//! takes the fast path (the label's term once per row, in [`finish`]; every other gradient is
//! `e_j * coef`). Distributions (and smoothed index labels) take the dense path (every class's
//! term, two more passes over the row). Both evaluate the same expressions, so one-hot `f32`
//! rows give the bits of their index labels.

use super::kernel::{Consts, Row, pair_term, term};
use crate::backend::lane::{Lane, Two};
use crate::backend::{Isa, Kernel, MAX_COL_LANES as COL_LANES, MAX_LANES, Part, select};
use crate::float::{Dst, Elem, Half, Src};
use crate::label::sealed::Labels;
use crate::sigmoid::pass::{Body, Out, Sink};
use crate::sum::Dd;
use core::marker::PhantomData;

/// Rows of at most this many classes go through the column kernels in blocks of
/// [`Lane::Cols`] (more classes: blocks of [`Two`] vectors, or the row kernel for class-last
/// batches of more than [`Lane::LAST_COLS`]); also the largest class count whose
/// transposition loops have a fixed length.
pub(crate) const SMALL_C: usize = 16;
/// The row kernel finishes `BLOCK_LOGITS / C` rows at once (at most `LANES`), so that a block
/// of rows stays in the level-1/2 cache between its scan and its gradient.
const BLOCK_LOGITS: usize = 8192;
const NEG_INF: f32 = f32::NEG_INFINITY;
const MAX: f32 = f32::MAX;

/// A validated batch and its parameters.
#[derive(Clone, Copy)]
pub(crate) struct Job<'a> {
    /// The logits (the pass reads them as their own type, see [`run`]).
    pub x: Src<'a>,
    pub labels: Labels<'a>,
    pub classes: usize,
    /// Positions per image (`S` of `[N, C, S]`); 1 for class-last.
    pub spatial: usize,
    pub gamma: f32,
    pub alpha: f32,
    pub eps: f32,
    pub class_weights: Option<&'a [f32]>,
    pub sample_weights: Option<&'a [f32]>,
    pub ignore: Option<i64>,
    /// The formats of half-precision logits and outputs (read as `u16` bits; see
    /// [`Half`]); meaningless for `f32` ones.
    pub hx: Half,
    pub hg: Half,
    /// The whole batch (not only the chunk this job may be) holds at least [`LARGE`] logits:
    /// more than the caches keep (see [`pass`]).
    pub large: bool,
    /// The positions `pos.0..pos.1` of each image: `0..S` but in the job of a window of one
    /// image ([`Job::window`]).
    pub pos: (usize, usize),
}

impl<'a> Job<'a> {
    /// The job of the units `u`: rows of a class-last batch, images of an `[N, C, S]` one.
    pub(crate) fn units(&self, u: core::ops::Range<usize>) -> Job<'a> {
        let (c, sp) = (self.classes, self.spatial);
        let e = u.start * c * sp..u.end * c * sp;
        let r = u.start * sp..u.end * sp;
        Job {
            x: self.x.slice(e.clone()),
            labels: self
                .labels
                .slice(if matches!(self.labels, Labels::Dense(_)) {
                    e
                } else {
                    r.clone()
                }),
            sample_weights: self.sample_weights.map(|w| &w[r]),
            ..*self
        }
    }

    /// The job of positions `p.start..p.end` of image `img` (an `[N, C, S]` batch): the
    /// image's logits, labels and weights, its positions from `p.start` to `p.end` computed.
    pub(crate) fn window(&self, img: usize, p: core::ops::Range<usize>) -> Job<'a> {
        debug_assert!(self.pos == (0, self.spatial) && p.start < p.end && p.end <= self.spatial);
        Job {
            pos: (p.start, p.end),
            ..self.units(img..img + 1)
        }
    }

    /// Whether every class's term is needed (distributions, label smoothing).
    fn dense(&self) -> bool {
        matches!(self.labels, Labels::Dense(_)) || self.eps > 0.0
    }

    /// Class `c`'s weight.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn w(&self, c: usize) -> f32 {
        self.class_weights.map_or(1.0, |w| w[c])
    }
}

/// What a pass returns: the loss sum, and whether a counted row had a NaN logit (`bad`; the
/// column kernels also set it for a row that has both `+inf` and `-inf`, see [`scan`]:
/// the caller confirms it by finding the first NaN logit of the batch).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sums {
    pub loss: Dd,
    pub bad: bool,
}

impl Sums {
    pub(crate) const ZERO: Sums = Sums {
        loss: Dd::ZERO,
        bad: false,
    };
}

/// `0, 1, 2, ...`: lane indices.
const IOTA: [f32; MAX_LANES] = {
    let mut a = [0f32; MAX_LANES];
    let mut i = 0;
    while i < MAX_LANES {
        a[i] = i as f32;
        i += 1;
    }
    a
};

/// [`Lane::wide_tree`]'s order (`v[j] += v[j + h]` for `h = LANES/2, ..., 1`) over `LANES`
/// wide partial sums, position by position.
///
/// Only the first `min(cn, LANES)` partial sums (rounded up to a power of two) can be non-zero
/// (fewer classes than lanes), and adding a zero changes nothing: the tree starts at the level
/// that reaches them.
#[cfg_attr(not(opt_level_0), inline(always))]
fn tree_wide<L: Lane>(acc: &mut [L::Wide; MAX_LANES], cn: usize) -> L::Wide {
    tree_of::<L>(acc, cn.min(L::LANES).next_power_of_two())
}

/// The levels of [`tree_wide`] that sum the first `n` partial sums (`n` a power of two).
#[cfg_attr(not(opt_level_0), inline(always))]
fn tree_of<L: Lane>(acc: &mut [L::Wide; MAX_LANES], n: usize) -> L::Wide {
    let mut h = n / 2;
    while h >= 1 {
        for j in 0..h {
            acc[j] = L::wide_sum(acc[j], acc[j + h]);
        }
        h /= 2;
    }
    acc[0]
}

/// `(T, S, T_lo, S_lo)` of rows (one a lane) from their sums over the non-top classes and
/// their numbers of top classes: `T = sum + (ties - 1)` and `S = 1 + T` in `f64`, each
/// rounded once to `f32`, and what the roundings dropped (exact differences in `f64`; see
/// [`Row::new`]); outside `live`, 0, 1, 0 and 0. Both kernels, so that a row has the same
/// bits in every layout.
#[cfg_attr(not(opt_level_0), inline(always))]
fn row_sums<L: Lane>(sum: L::Wide, ties: L, live: L::Mask) -> [L; 4] {
    let t64 = L::wide_add(sum, ties - L::splat(1.0));
    let s64 = L::wide_add(t64, L::splat(1.0));
    let (t, s) = (L::wide_round(t64), L::wide_round(s64));
    let t_lo = L::wide_round(L::wide_add(t64, -t));
    let s_lo = L::wide_round(L::wide_add(s64, -s));
    let (zero, one) = (L::splat(0.0), L::splat(1.0));
    [
        L::select(live, t, zero),
        L::select(live, s, one),
        L::select(live, t_lo, zero),
        L::select(live, s_lo, zero),
    ]
}

/// Per-row values of a block of rows (or positions), one row per lane.
struct Block {
    /// The row is counted (not ignored, not padding).
    live: [bool; MAX_LANES],
    /// Label class (index labels), -1 when not counted.
    y: [f32; MAX_LANES],
    /// The same as an index (0 when not counted), converted once.
    yi: [u32; MAX_LANES],
    /// `s_r alpha`.
    sa: [f32; MAX_LANES],
    /// `min(s_r alpha w_y, MAX)`: the label's weight (fast path).
    k: [f32; MAX_LANES],
    /// Largest logit, and `d_y`.
    m: [f32; MAX_LANES],
    dy: [f32; MAX_LANES],
    t: [f32; MAX_LANES],
    s: [f32; MAX_LANES],
    /// What the rounding of `T` and `S` dropped.
    t_lo: [f32; MAX_LANES],
    s_lo: [f32; MAX_LANES],
    single: [bool; MAX_LANES],
    /// Every `z - m` of the row is at least [`EXP_NORMAL_MIN`] (see [`chunk`]).
    normal: [bool; MAX_LANES],
    /// Outputs of [`finish`]: the row's loss, `ln S` (and the corrections of [`Row`]),
    /// `factor / S`, and for the fast path `coef = min(K g factor / S, MAX)` and
    /// `t2 = min(factor K g, MAX) q`.
    loss: [f32; MAX_LANES],
    ln_s: [f32; MAX_LANES],
    ln_s_lo: [f32; MAX_LANES],
    tc: [f32; MAX_LANES],
    sc: [f32; MAX_LANES],
    fs: [f32; MAX_LANES],
    coef: [f32; MAX_LANES],
    t2: [f32; MAX_LANES],
}

impl Block {
    fn new() -> Self {
        Block {
            live: [false; MAX_LANES],
            y: [-1.0; MAX_LANES],
            yi: [0; MAX_LANES],
            sa: [0.0; MAX_LANES],
            k: [0.0; MAX_LANES],
            m: [0.0; MAX_LANES],
            dy: [0.0; MAX_LANES],
            t: [0.0; MAX_LANES],
            s: [1.0; MAX_LANES],
            t_lo: [0.0; MAX_LANES],
            s_lo: [0.0; MAX_LANES],
            single: [true; MAX_LANES],
            normal: [false; MAX_LANES],
            loss: [0.0; MAX_LANES],
            ln_s: [0.0; MAX_LANES],
            ln_s_lo: [0.0; MAX_LANES],
            tc: [0.0; MAX_LANES],
            sc: [0.0; MAX_LANES],
            fs: [0.0; MAX_LANES],
            coef: [0.0; MAX_LANES],
            t2: [0.0; MAX_LANES],
        }
    }

    /// Fills the labels and weights of rows `r0..r0 + n` (lane `i` is row `r0 + i`).
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn labels(&mut self, job: &Job<'_>, r0: usize, n: usize) {
        *self = Block::new();
        let mut cls = [-1f32; MAX_LANES];
        let dense = !job.labels.classes_f32(r0, &mut cls[..n], job.ignore);
        let mut sa = [job.alpha; MAX_LANES];
        if let Some(s) = job.sample_weights {
            for (a, &s) in sa.iter_mut().zip(&s[r0..r0 + n]) {
                // Clamped, as every product of weights: `inf * 0` (a zero class weight)
                // would be NaN.
                *a = (s * job.alpha).min(MAX);
            }
        }
        for i in 0..n {
            if dense {
                self.live[i] = true;
                self.sa[i] = sa[i];
            } else if cls[i] >= 0.0 {
                let y = cls[i] as usize;
                self.live[i] = true;
                self.y[i] = y as f32;
                self.yi[i] = y as u32;
                self.sa[i] = sa[i];
                self.k[i] = (sa[i] * job.w(y)).min(MAX);
            }
        }
    }
}

/// A lane mask from booleans.
#[cfg_attr(not(opt_level_0), inline(always))]
fn mask<L: Lane>(b: &[bool; MAX_LANES]) -> L::Mask {
    let mut a = [0f32; MAX_LANES];
    for (a, &b) in a.iter_mut().zip(b) {
        *a = if b { 1.0 } else { 0.0 };
    }
    L::load_or(&a, 0.0).eq(L::splat(1.0))
}

#[cfg_attr(not(opt_level_0), inline(always))]
fn lanes<L: Lane>(a: &[f32; MAX_LANES]) -> L {
    L::load_or(a, 0.0)
}

/// The per-row work of a block, one row per lane: `ln S`, `factor / S`, and for the fast path
/// the label's term, the row's loss and the factors of its gradient.
#[cfg_attr(not(opt_level_0), inline(always))]
fn finish<L: Lane>(b: &mut Block, c: &Consts<L>, factor: f32, dense: bool) {
    let s = lanes::<L>(&b.s);
    let row = Row::new(lanes(&b.t), s, lanes(&b.t_lo), lanes(&b.s_lo));
    let f = L::splat(factor);
    let fs = f / s;
    row.ln_s.store(&mut b.ln_s);
    row.ln_s_lo.store(&mut b.ln_s_lo);
    row.tc.store(&mut b.tc);
    row.sc.store(&mut b.sc);
    fs.store(&mut b.fs);
    if dense {
        return;
    }
    let dy = lanes::<L>(&b.dy);
    let k = lanes::<L>(&b.k);
    let (loss, kg, q) = term(dy, dy.softmax_exp(), k, &row, c);
    let live = mask::<L>(&b.live);
    let zero = L::splat(0.0);
    L::select(live, loss, zero).store(&mut b.loss);
    clamp(kg * fs).store(&mut b.coef);
    (clamp(f * kg) * q).store(&mut b.t2);
}

/// `g[off..off + LANES] = body` for every chunk `j` of a row (at offset `off`, its old
/// values `old`): the full chunks in a loop over `chunks_exact_mut`, and the overlapping last
/// one loaded before them, so that it reads the values the others read (its overlapping lanes
/// compute, and store, the same bits) and no load waits for a store it partly overlaps.
///
/// A macro, not a function taking a closure: the body is expanded in place. A closure too
/// large for LLVM to inline stays a function of its own, outside the backend's
/// `#[target_feature]` function, where every vector operation becomes a call (the dense
/// path's gradient ran 10-19x slower so).
macro_rules! rewrite {
    ($l:ty, $g:ty, $grad:expr, $cn:expr, $h:expr, |$j:pat_param, $off:ident, $old:pat_param| $body:expr) => {{
        let (grad, cn, h) = (&mut *$grad, $cn, $h);
        let lanes = <$l>::LANES;
        let full = cn / lanes;
        // The last chunk overlaps the one before when `cn` is not a multiple of `LANES`: its
        // values are loaded before that one is rewritten, so that every lane of it computes
        // what the chunk before wrote there (a plain store, not a masked one).
        let tail = if full * lanes < cn {
            let old: $l = <$g>::load(&grad[cn - lanes..], 0.0, h);
            Some((cn - lanes, old))
        } else {
            None
        };
        for (j, gc) in grad[..full * lanes].chunks_exact_mut(lanes).enumerate() {
            let $off = j * lanes;
            let old: $l = <$g>::load(gc, 0.0, h);
            let ($j, $old) = (j, old);
            let v: $l = $body;
            <$g>::store(v, gc, h);
        }
        if let Some((off, old)) = tail {
            let $off = off;
            let ($j, $old) = (full, old);
            let v: $l = $body;
            <$g>::store(v, &mut grad[$off..], h);
        }
    }};
}

/// `$body` with `$n` bound to the block length `$np`, in two copies: one where `$np` is the
/// constant `$full` (a whole block, the usual case), one for the rest. Inlined with a
/// constant length, the column kernels' loads, stores and slices of a block lose their
/// length tests and padded fallbacks: 15-18% of the time at C = 3, 8 and 19 (`prof_softmax`).
macro_rules! with_len {
    ($np:expr, $full:expr, |$n:ident| $body:expr) => {
        if $np == $full {
            let $n = $full;
            $body
        } else {
            let $n = $np;
            $body
        }
    };
}

/// `f::<C>(args)` for the class count `cn` in `1..=SMALL_C`.
macro_rules! dispatch_c {
    ($cn:expr, $f:ident, $($a:expr),*) => {
        match $cn {
            1 => $f::<1>($($a),*),
            2 => $f::<2>($($a),*),
            3 => $f::<3>($($a),*),
            4 => $f::<4>($($a),*),
            5 => $f::<5>($($a),*),
            6 => $f::<6>($($a),*),
            7 => $f::<7>($($a),*),
            8 => $f::<8>($($a),*),
            9 => $f::<9>($($a),*),
            10 => $f::<10>($($a),*),
            11 => $f::<11>($($a),*),
            12 => $f::<12>($($a),*),
            13 => $f::<13>($($a),*),
            14 => $f::<14>($($a),*),
            15 => $f::<15>($($a),*),
            _ => $f::<16>($($a),*),
        }
    };
}

/// `v` clamped to `[-MAX, MAX]`: a product with the reduction's factor (negative for a
/// negative `Scale`) that overflows stays finite, so that a later product by 0 (`e = 0` of a
/// masked class, `q = 0` of a certain one) gives 0, not `inf * 0`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn clamp<L: Lane>(v: L) -> L {
    v.max(L::splat(-MAX)).min(L::splat(MAX))
}

/// A column block's gradient: class `cl` of position `p` at `g[cl stride + p]` (`Flat`), or
/// at `planes[cl][at + p]` (`Split`: a window of an image whose class planes were cut among
/// threads, see [`Split`]).
enum Gv<'g, 'p, G> {
    Flat(&'g mut [G], usize),
    Split(&'g mut [&'p mut [G]], usize),
}

impl<'p, G> Gv<'_, 'p, G> {
    /// The `np` positions of class `cl`.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn class(&mut self, cl: usize, np: usize) -> &mut [G] {
        match self {
            Gv::Flat(g, stride) => &mut g[cl * *stride..cl * *stride + np],
            Gv::Split(planes, at) => &mut planes[cl][*at..*at + np],
        }
    }

    /// The same view, reborrowed.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn rb(&mut self) -> Gv<'_, 'p, G> {
        match self {
            Gv::Flat(g, stride) => Gv::Flat(g, *stride),
            Gv::Split(planes, at) => Gv::Split(planes, *at),
        }
    }
}

/// One class's gradient values `v` of a column block into `gc`: written (`Mode::Write`, 0
/// outside `live`) or added to what is there (`Mode::Add`, unchanged outside `live`).
#[cfg_attr(not(opt_level_0), inline(always))]
fn put<L: Lane, G: Elem>(gc: &mut [G], v: L, live: L::Mask, mode: Mode, h: Half) {
    let out = match mode {
        Mode::Write => L::select(live, v, L::splat(0.0)),
        _ => {
            let old: L = G::load(gc, 0.0, h);
            L::select(live, old + v, old)
        }
    };
    G::store(out, gc, h);
}

/// How a pass writes its gradient (`factor` is already part of the values).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Write,
    Add,
}

/// One pass of `job` on lanes `L`, with the gradient factor `factor`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn pass<'o, L: Body, X: Elem, G: Elem>(
    job: &Job<'_>,
    x: &[X],
    sink: &mut Sink<'o, G>,
    factor: f32,
    split: Option<&mut [&'o mut [G]]>,
) -> Sums {
    let c = Consts::<L>::new(job.gamma);
    // (Rows of two classes take the column kernels on every backend: [`column_pair`].)
    let by_row =
        job.spatial == 1 && job.classes != 2 && (L::LANES == 1 || job.classes > L::LAST_COLS);
    // A half-precision gradient cannot hold the fast path's `e` until its last pass: a
    // stack buffer does, for large batches (below, zeroing it would cost more than computing
    // `e` again). So it does for the `f32` gradient of large `[N, C, S]` images, whose `C`
    // planes are as many streams from memory: there storing `e` into the gradient and reading
    // it back cost more than the buffer ([`NCHW_STAGE_MIN`]).
    let stage = (!G::IS_F32 || (job.spatial != 1 && x.len() >= NCHW_STAGE_MIN))
        && matches!(sink, Sink::Write(..))
        && !job.dense()
        && job.classes != 2
        && x.len() >= STAGE_MIN
        // (the transposed class-last blocks have an f32 gradient block of their own)
        && (job.spatial != 1 || by_row);
    // The dense path keeps each class's `e`, `K g` and `q` from its loss pass for its
    // gradient pass in the same buffer (vector backends: the scalar one runs on
    // microcontrollers, whose stacks are small).
    let keep = job.dense()
        && job.classes != 2
        && L::LANES > 1
        && matches!(sink, Sink::Write(..) | Sink::Add(..));
    // The column kernel's fast path takes several vectors per block ([`Lane::Cols`]):
    // independent dependency chains (its per-row work is long and serial).
    let pairs = L::PAIRS && !job.dense();
    // Class-last batches larger than the caches, of 5 to [`SMALL_C`] classes, take blocks of
    // one [`Two`] (2 KB of `f32` logits at most) instead of `Cols`: a block reads its rows
    // at once before its math and writes their gradient at once after it, and on AVX-512
    // (`Cols` of four vectors, 64 rows: up to 4 KB each way) each such burst from memory
    // stalls the block. (The other vector backends' `Cols` is `Two<L>` already.)
    // `prof_softmax`, 16M logits, gamma 2, ns per logit: C = 8 1.62-1.73 -> 1.40-1.49,
    // C = 12 1.59-1.69 -> 1.21-1.25, C = 16 1.76-1.86 -> 1.20-1.25; in the caches (64K, 1M)
    // `Cols` stays as fast or faster (C = 5 and 6 by 5-7%), and below 5 classes it is faster
    // at every size (C = 3 at 16M 1.53 against 1.63-1.80). The same bits either way:
    // everything but the sums over a row's classes is lane-wise.
    let halve = job.large && job.spatial == 1 && job.classes >= 5;
    // `[N, C, S]` maps of more than 16 classes: blocks of `Cols` (on AVX-512 64 positions,
    // four cache lines of each class's plane a block) but for a half-precision gradient and
    // for batches in the caches with more than 30 classes, which take one [`Two`].
    // `prof_softmax`, one image, gamma 2, `Two` / `Cols`, ns per logit: 64K C = 19
    // 0.80-0.83 / 0.78-0.79, C = 24 0.80-0.83 / 0.75-0.76, C = 30 even, C = 50 0.68 /
    // 0.69-0.71, C = 100 even; 16M C = 19 1.85-1.89 / 1.70-1.72, C = 24 1.66-1.69 /
    // 1.41-1.43, C = 50 1.63-1.67 / 1.36-1.37; `bf16` logits and gradient, C = 19, 64K even,
    // 16M 1.29-1.32 / 1.43-1.45.
    let map_two = !G::IS_F32 || (!job.large && job.classes > 30);
    // Each kernel a function of its own (see [`Part`]); a copy with the buffer and one
    // without, each knowing its buffer's length (the C = 2 column kernel ran 35% slower with
    // one copy that tests it, and the bf16 row kernel 40% slower with the length unknown).
    // `$last_pairs` says whether the copy can be asked for pairs of class-last blocks: not
    // the buffer's copy (pairs are never dense, and class-last blocks stage nothing), so that
    // its pairs of class-last blocks are not compiled. Both copies take pairs of `[N, C, S]`
    // blocks (the buffer's for a staged gradient). `$split` says whether the copy can be asked
    // for a window's split gradient (the buffer's only: [`columns`]' copies for it are
    // compiled once per backend and type, blocks of `Cols`, or of one vector on the dense
    // path; any block gives the same bits).
    macro_rules! kernels {
        ($buf:expr, $last_pairs:expr, $split:expr) => {{
            let run = Run {
                job,
                x,
                sink,
                factor,
                c: &c,
                buf: $buf,
                split,
            };
            if $split && run.split.is_some() {
                if pairs {
                    L::part(Columns::<_, _, _, L::Cols, _, true>(run, PhantomData))
                } else {
                    L::part(Columns::<_, _, _, L, _, true>(run, PhantomData))
                }
            } else if by_row {
                L::part(Rows(run))
            } else if job.spatial == 1 && $last_pairs && pairs && job.classes <= SMALL_C && !halve {
                last::<L, L::Cols, X, G, _>(run)
            } else if job.spatial == 1 && $last_pairs && pairs {
                // (17 to [`Lane::LAST_COLS`] classes, and 5 to 16 in large batches: one
                // [`Two`] a block.)
                last::<L, Two<L>, X, G, _>(run)
            } else if job.spatial == 1 {
                debug_assert!(!pairs);
                last::<L, L, X, G, _>(run)
            } else if pairs && (job.classes <= SMALL_C || !map_two) {
                L::part(Columns::<_, _, _, L::Cols, _, false>(run, PhantomData))
            } else if pairs {
                // (Where `Cols` is `Two<L>`, this is the copy above.)
                L::part(Columns::<_, _, _, Two<L>, _, false>(run, PhantomData))
            } else {
                debug_assert!(!pairs);
                L::part(Columns::<_, _, _, L, _, false>(run, PhantomData))
            }
        }};
    }
    if stage || keep || split.is_some() {
        kernels!(&mut [0f32; BLOCK_LOGITS], false, true)
    } else {
        kernels!(&mut [0f32; 0], true, false)
    }
}

/// The arguments of a kernel of [`pass`], its buffer's length `N` known to its copy.
struct Run<'r, 'j, 's, 'o, L: Lane, X, G, const N: usize> {
    job: &'r Job<'j>,
    x: &'r [X],
    sink: &'r mut Sink<'o, G>,
    factor: f32,
    c: &'r Consts<L>,
    buf: &'s mut [f32; N],
    /// The gradient of a window as its class planes (see [`Split`]); the sink then gives
    /// only the mode.
    split: Option<&'r mut [&'o mut [G]]>,
}

/// [`rows`], as a function of its own.
struct Rows<'r, 'j, 's, 'o, L: Lane, X, G, const N: usize>(Run<'r, 'j, 's, 'o, L, X, G, N>);

impl<L: Lane, X: Elem, G: Elem, const N: usize> Part<L> for Rows<'_, '_, '_, '_, L, X, G, N> {
    type Output = Sums;
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn run(self) -> Sums {
        let r = self.0;
        rows::<L, X, G>(r.job, r.x, r.sink, r.factor, r.c, &mut r.buf[..])
    }
}

/// [`columns`] with fast-path blocks of `B`, as a function of its own; `S`: the gradient is
/// a window's class planes ([`Split`]), not the image's slice.
struct Columns<'r, 'j, 's, 'o, L: Lane, X, G, B, const N: usize, const S: bool>(
    Run<'r, 'j, 's, 'o, L, X, G, N>,
    PhantomData<B>,
);

impl<L: Lane, B: Lane<Acc = L::Acc>, X: Elem, G: Elem, const N: usize, const S: bool> Part<L>
    for Columns<'_, '_, '_, '_, L, X, G, B, N, S>
{
    type Output = Sums;
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn run(self) -> Sums {
        let r = self.0;
        let k = (r.factor, r.c, r.split);
        columns::<L, B, X, G, S>(r.job, r.x, r.sink, k, &mut r.buf[..])
    }
}

/// [`columns_last`] with fast-path blocks of `B`, as a function of its own: one per
/// backend, `B` and buffer length, whatever the element types.
struct Last<'r, 'j, 'o, L: Lane, B, const N: usize> {
    job: &'r Job<'j>,
    x: Src<'r>,
    out: (Mode, Option<Dst<'o>>, Option<Dst<'o>>),
    factor: f32,
    c: &'r Consts<L>,
    buf: &'r mut [f32; N],
    pairs: PhantomData<B>,
}

impl<L: Lane, B: Lane<Acc = L::Acc>, const N: usize> Part<L> for Last<'_, '_, '_, L, B, N> {
    type Output = Sums;
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn run(self) -> Sums {
        columns_last::<L, B>(
            self.job,
            self.x,
            self.out,
            self.factor,
            self.c,
            &mut self.buf[..],
        )
    }
}

/// `run` through [`Last`]: the logits and outputs as [`Src`] and [`Dst`].
#[cfg_attr(not(opt_level_0), inline(always))]
fn last<L: Body, B: Lane<Acc = L::Acc>, X: Elem, G: Elem, const N: usize>(
    run: Run<'_, '_, '_, '_, L, X, G, N>,
) -> Sums {
    let job = run.job;
    let (mode, grad, per_row) = parts(run.sink);
    L::part(Last::<L, B, N> {
        job,
        x: X::src(run.x, job.hx),
        out: (
            mode,
            grad.map(|g| G::dst(g, job.hg)),
            per_row.map(|o| G::dst(o, job.hg)),
        ),
        factor: run.factor,
        c: run.c,
        buf: run.buf,
        pairs: PhantomData,
    })
}

/// Batches of at least this many logits (8 MB of `f32`) are [`Job::large`]: 2M logits of
/// 5 to 16 classes ran faster in blocks of one [`Two`] (see [`pass`]; C = 8 1.29-1.38 ->
/// 1.19-1.24 ns per logit), 1M did not (C = 8 1.03-1.10 against 1.06-1.07).
pub(crate) const LARGE: usize = 1 << 21;

/// Batches of at least this many logits stage the fast path's `e` on the stack when the
/// gradient is half-precision (see [`pass`]).
const STAGE_MIN: usize = 16384;
/// `[N, C, S]` chunks (whole images) of at least this many logits stage `e` for an `f32`
/// gradient too (see [`pass`]). Measured, `prof_softmax`, C = 19, one image, gamma 2, AVX-512,
/// min of 15 rounds over three alternations: 16M logits 1.90-1.94 -> 1.75-1.78 ns per logit,
/// 4M 1.72-1.83 -> 1.59-1.63; in cache it cost 1.5-3.5% (64K, 1M), hence the threshold.
const NCHW_STAGE_MIN: usize = 1 << 20;

/// Splits the sink into its mode, its gradient slice and its per-row output.
#[allow(clippy::type_complexity)]
fn parts<'s, G>(sink: &'s mut Sink<'_, G>) -> (Mode, Option<&'s mut [G]>, Option<&'s mut [G]>) {
    match sink {
        Sink::None => (Mode::None, None, None),
        Sink::Write(g, _) => (Mode::Write, Some(&mut **g), None),
        Sink::Add(g, _) => (Mode::Add, Some(&mut **g), None),
        Sink::Elementwise(o) => (Mode::None, None, Some(&mut **o)),
    }
}

/// Where chunk `j` of a row of `cn >= LANES` classes starts: `j LANES`, except the last of a
/// row whose length is not a multiple of `LANES`, which ends with the row (it overlaps the one
/// before; only its lanes `>= LANES - cn mod LANES` are *fresh*, see [`fresh`]).
#[cfg_attr(not(opt_level_0), inline(always))]
fn offset<L: Lane>(j: usize, cn: usize) -> usize {
    offset_in(j, cn, L::LANES)
}

/// [`offset`] for chunks of `gl` lanes.
#[cfg_attr(not(opt_level_0), inline(always))]
fn offset_in(j: usize, cn: usize, gl: usize) -> usize {
    (j * gl).min(cn - gl)
}

/// The number of chunks of a row of `cn >= LANES` classes.
#[cfg_attr(not(opt_level_0), inline(always))]
fn n_chunks<L: Lane>(cn: usize) -> usize {
    cn.div_ceil(L::LANES)
}

/// The lanes of chunk `j` that no earlier chunk covered (`None`: all of them).
#[cfg_attr(not(opt_level_0), inline(always))]
fn fresh<L: Lane>(j: usize, cn: usize) -> Option<L::Mask> {
    let rem = cn % L::LANES;
    if rem == 0 || j + 1 < n_chunks::<L>(cn) {
        None
    } else {
        let iota = L::load_or(&IOTA, 0.0);
        Some(iota.ge(L::splat((L::LANES - rem) as f32)))
    }
}

/// The partial sum (of `LANES`) that class `c` of `cn` goes to, in both kernels: the lane it
/// has in its chunk ([`offset`]). The column kernel follows the row kernel's chunks, so that
/// both add the same values in the same order.
#[cfg_attr(not(opt_level_0), inline(always))]
fn group<L: Lane>(c: usize, cn: usize) -> usize {
    group_in(c, cn, L::LANES)
}

/// [`group`] for a row kernel of `gl` lanes.
#[cfg_attr(not(opt_level_0), inline(always))]
fn group_in(c: usize, cn: usize, gl: usize) -> usize {
    if cn >= gl {
        c - offset_in(c / gl, cn, gl)
    } else {
        c
    }
}

/// `sel(m, a, b)` where `m` is `None` for "every lane".
#[cfg_attr(not(opt_level_0), inline(always))]
fn keep<L: Lane>(m: Option<L::Mask>, a: L, b: L) -> L {
    match m {
        None => a,
        Some(m) => L::select(m, a, b),
    }
}

/// A row's largest logit `m`, whether every `z_k - m` is in the domain of
/// [`Lane::softmax_exp_normal`] (`>= -87`: see [`chunk`]), and, for a row where it is not,
/// whether the row has a NaN (class-last, `cn >= LANES`).
///
/// A row in that domain is not tested for NaN here: a NaN logit there gives a NaN `e`
/// (`softmax_exp_normal` propagates it) in a lane that is not top (`NaN != m`), so its `T` is NaN,
/// which [`rows`] tests once per block. `exp` clamps its argument and may lose a NaN, so the
/// other rows (and a NaN `m`, for which the domain test fails) are scanned once more.
#[cfg_attr(not(opt_level_0), inline(always))]
fn row_max<L: Lane, X: Elem>(z: &[X], h: Half) -> (f32, bool, bool) {
    let mut mv = L::splat(NEG_INF);
    let mut lo = L::splat(f32::INFINITY);
    let (full, tail) = chunks::<L, X>(z);
    let all = || full.chunks_exact(L::LANES).chain(tail.map(|(c, _)| c));
    for c in all() {
        let v: L = X::load(c, NEG_INF, h);
        mv = mv.max(v);
        lo = lo.min(v);
    }
    let m = mv.reduce_max();
    if exp_normal_ok(lo, L::splat(m)) {
        return (m, false, true);
    }
    // The lanes that held no NaN.
    let mut ok = mv.eq(mv);
    for c in all() {
        let v: L = X::load(c, NEG_INF, h);
        ok = ok & v.eq(v);
    }
    (m, !L::all(ok), false)
}

/// A row of `cn >= LANES` classes as its chunks in their order ([`offset`] and [`fresh`] of
/// `j = 0, 1, ...`): the full chunks (`z[..LANES floor(cn / LANES)]`, for a loop without
/// per-chunk tests), and the overlapping last one with its fresh lanes if `cn` is not a
/// multiple of `LANES`.
#[allow(clippy::type_complexity)]
#[cfg_attr(not(opt_level_0), inline(always))]
fn chunks<L: Lane, X>(z: &[X]) -> (&[X], Option<(&[X], L::Mask)>) {
    let cn = z.len();
    let full = cn / L::LANES;
    let tail = fresh::<L>(full, cn).map(|fr| (&z[cn - L::LANES..], fr));
    (&z[..full * L::LANES], tail)
}

/// The least `d = z - m` for which [`Lane::softmax_exp_normal`] gives the bits of
/// [`Lane::softmax_exp`].
const EXP_NORMAL_MIN: f32 = -87.0;

/// Whether every `z - m` of a row (or, lane-wise, of a block of positions) whose least logit
/// is `lo` and largest `m` lies in the domain of [`Lane::softmax_exp_normal`]: `z - m` rounds
/// monotonically, so the least is `lo - m`. False where `m` or `lo` is infinite (`NaN` or
/// `-inf`), which keeps the rows whose `z - m` needs `exp`'s care (and their top lanes the
/// select of [`exp_d`]).
#[cfg_attr(not(opt_level_0), inline(always))]
fn exp_normal_ok<L: Lane>(lo: L, m: L) -> bool {
    L::all((lo - m).ge(L::splat(EXP_NORMAL_MIN)))
}

/// The chunk at the start of `z`: `(top, d, e)` (every lane, fresh or not). `normal`: the
/// row's `d` are all at least [`EXP_NORMAL_MIN`] (from [`row_max`]), so `e` may come from the
/// cheaper [`Lane::softmax_exp_normal`], with the same bits.
#[cfg_attr(not(opt_level_0), inline(always))]
fn chunk<L: Lane, X: Elem>(z: &[X], ms: L, h: Half, normal: bool) -> (L::Mask, L, L) {
    exp_d(X::load(z, NEG_INF, h), ms, normal)
}

/// `(top, d, e)` of logits `v` against their row's (or position's) largest `m`, in both
/// kernels: the top lanes (`v = m`), `d = v - m` (exactly 0 on the top lanes) and `e = e^d`.
/// `normal` (from [`exp_normal_ok`]): every `d` is in the domain of
/// [`Lane::softmax_exp_normal`] and `m` is finite, so that `v - m` of a top lane is already
/// `+0` and needs no select (an infinite `m` gives `inf - inf = NaN` there).
#[cfg_attr(not(opt_level_0), inline(always))]
fn exp_d<L: Lane>(v: L, m: L, normal: bool) -> (L::Mask, L, L) {
    let top = v.eq(m);
    if normal {
        let d = v - m;
        (top, d, d.softmax_exp_normal())
    } else {
        let d = L::select(top, L::splat(0.0), v - m);
        (top, d, d.softmax_exp())
    }
}

/// A row's sums over its non-top classes, lane by lane (see [`Lane::wide_tree`]), and its
/// number of top classes, storing `e` into `store`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn row_sum<L: Lane, X: Elem>(
    z: &[X],
    m: f32,
    store: Option<&mut [f32]>,
    h: Half,
    normal: bool,
) -> (L::Wide, f32) {
    let cn = z.len();
    let ms = L::splat(m);
    let mut acc = L::wide_zero();
    let mut ties = 0u32;
    let (full, tail) = chunks::<L, X>(z);
    match store {
        Some(g) => {
            let g = &mut g[..cn];
            let gf = g[..full.len()].chunks_exact_mut(L::LANES);
            for (c, gc) in full.chunks_exact(L::LANES).zip(gf) {
                row_sum_chunk::<L, X>(c, None, ms, h, normal, &mut acc, &mut ties).store(gc);
            }
            if let Some((c, fr)) = tail {
                let e = row_sum_chunk::<L, X>(c, Some(fr), ms, h, normal, &mut acc, &mut ties);
                // Every lane: those before the fresh ones get the values they have.
                e.store(&mut g[cn - L::LANES..]);
            }
        }
        None => {
            for c in full.chunks_exact(L::LANES) {
                row_sum_chunk::<L, X>(c, None, ms, h, normal, &mut acc, &mut ties);
            }
            if let Some((c, fr)) = tail {
                row_sum_chunk::<L, X>(c, Some(fr), ms, h, normal, &mut acc, &mut ties);
            }
        }
    }
    (acc, ties as f32)
}

/// One chunk of [`row_sum`]: adds its fresh non-top `e` to `acc` and counts its fresh top
/// lanes in `ties`; returns `e`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn row_sum_chunk<L: Lane, X: Elem>(
    c: &[X],
    fr: Option<L::Mask>,
    ms: L,
    h: Half,
    normal: bool,
    acc: &mut L::Wide,
    ties: &mut u32,
) -> L {
    let (top, _, e) = chunk::<L, X>(c, ms, h, normal);
    let summed = match fr {
        None => !top,
        Some(f) => f & !top,
    };
    *acc = L::wide_add_where(*acc, e, summed);
    *ties += L::count(match fr {
        None => top,
        Some(f) => top & f,
    });
    e
}

/// The class-last row kernel.
#[cfg_attr(not(opt_level_0), inline(always))]
fn rows<L: Lane, X: Elem, G: Elem>(
    job: &Job<'_>,
    x: &[X],
    sink: &mut Sink<'_, G>,
    factor: f32,
    c: &Consts<L>,
    stage: &mut [f32],
) -> Sums {
    let cn = job.classes;
    let n_rows = x.len() / cn;
    let dense = job.dense();
    let (mode, mut grad, mut per_row) = parts(sink);
    let bsz = (BLOCK_LOGITS / cn).clamp(1, L::LANES);
    let mut loss = L::acc_zero();
    let mut bad = false;
    let mut b = Block::new();
    // The rows' sums before their trees, and their numbers of top classes (a row not live in
    // a block keeps another block's, whose lane [`row_sums`] discards).
    let mut accs = [L::wide_zero(); MAX_LANES];
    let mut ties = [0f32; MAX_LANES];
    let mut r0 = 0;
    while r0 < n_rows {
        let n = bsz.min(n_rows - r0);
        b.labels(job, r0, n);
        // Pass 1 of the next row before pass 2 of this one, and the rows' sums after the
        // block's pass 2: one row's reductions (the maximum's tree, the sum's tree,
        // `row_sums`), serial chains of some 100 cycles, then overlap another row's vector
        // work instead of holding it up, and the next row's loads (from memory, in a large
        // batch) overlap this row's `exp`s.
        if let (Mode::Write, Some(g)) = (mode, grad.as_deref_mut()) {
            for i in (0..n).filter(|&i| !b.live[i]) {
                let r = r0 + i;
                g[r * cn..(r + 1) * cn].fill(G::put(0.0, job.hg));
            }
        }
        for i in 0..=n {
            // Pass 1 of row `i`, then pass 2 of row `i - 1`.
            if i < n && b.live[i] {
                let r = r0 + i;
                let (m, nan, normal) = row_max::<L, X>(&x[r * cn..(r + 1) * cn], job.hx);
                bad |= nan;
                b.m[i] = m;
                b.normal[i] = normal;
            }
            let Some(i) = i.checked_sub(1) else {
                continue;
            };
            if !b.live[i] {
                continue;
            }
            let r = r0 + i;
            let z = &x[r * cn..(r + 1) * cn];
            let m = b.m[i];
            // The fast path keeps `e` in an `f32` gradient for its last pass (it computes
            // it again for a half-precision one).
            let store = match (mode, dense) {
                (Mode::Write, false) => match grad.as_deref_mut().and_then(G::as_f32_mut) {
                    Some(g) => Some(&mut g[r * cn..(r + 1) * cn]),
                    // All rows of the block, or none (`stage` holds BLOCK_LOGITS).
                    None => stage.get_mut(i * cn..(i + 1) * cn),
                },
                _ => None,
            };
            (accs[i], ties[i]) = row_sum::<L, X>(z, m, store, job.hx, b.normal[i]);
            if !dense {
                let zy = z[b.yi[i] as usize].get(job.hx);
                b.dy[i] = if zy == m { 0.0 } else { zy - m };
            }
        }
        // The block's trees, and `T` and `S`, one row a lane.
        let live = mask::<L>(&b.live);
        let [t, s, t_lo, s_lo] = row_sums::<L>(L::wide_trees(&accs), lanes::<L>(&ties), live);
        // A NaN logit of a row that [`row_max`] did not scan (see there).
        bad |= !L::all(t.eq(t));
        t.store(&mut b.t);
        s.store(&mut b.s);
        t_lo.store(&mut b.t_lo);
        s_lo.store(&mut b.s_lo);
        for ((s, &t), &live) in b.single.iter_mut().zip(&ties).zip(&b.live).take(n) {
            *s = !live || t == 1.0;
        }
        finish::<L>(&mut b, c, factor, dense);
        if dense {
            for i in 0..n {
                if b.live[i] {
                    let r = r0 + i;
                    let g = grad.as_deref_mut().map(|g| &mut g[r * cn..(r + 1) * cn]);
                    let dr = (r, &b, i);
                    b.loss[i] = dense_row::<L, X, G>(job, x, dr, mode, g, factor, c, stage);
                }
            }
        }
        L::acc_add(&mut loss, lanes::<L>(&b.loss));
        if let Some(o) = per_row.as_deref_mut() {
            narrow(&b.loss[..n], &mut o[r0..r0 + n], job.hg);
        }
        if !dense && mode != Mode::None {
            let g = grad.as_deref_mut().unwrap_or(&mut []);
            for i in 0..n {
                if b.live[i] {
                    let r = r0 + i;
                    let z = &x[r * cn..(r + 1) * cn];
                    let e = stage.get(i * cn..(i + 1) * cn);
                    let h = (job.hx, job.hg);
                    fast_row_grad::<L, X, G>(z, &mut g[r * cn..(r + 1) * cn], e, &b, i, mode, h);
                }
            }
        }
        r0 += n;
    }
    Sums {
        loss: L::acc_total(loss).0,
        bad,
    }
}

/// The fast path's gradient of row `r` (lane `i` of the block): `e_j coef`, and
/// `0 - t2` for the label's class.
#[cfg_attr(not(opt_level_0), inline(always))]
fn fast_row_grad<L: Lane, X: Elem, G: Elem>(
    z: &[X],
    g: &mut [G],
    staged: Option<&[f32]>,
    b: &Block,
    i: usize,
    mode: Mode,
    (hx, hg): (Half, Half),
) {
    let cn = z.len();
    let y = b.yi[i] as usize;
    let coef = L::splat(b.coef[i]);
    let label = 0.0 - b.t2[i];
    let ms = L::splat(b.m[i]);
    let normal = b.normal[i];
    match mode {
        // `e` was kept by `row_sum` in an `f32` gradient.
        Mode::Write if G::IS_F32 => {
            rewrite!(L, G, g, cn, hg, |_, _off, e| e * coef);
            g[y] = G::put(label, hg);
        }
        Mode::Write => {
            match staged {
                Some(e) => rewrite!(L, G, g, cn, hg, |_, off, _| L::load_or(&e[off..], 0.0)
                    * coef),
                None => rewrite!(L, G, g, cn, hg, |_, off, _| chunk::<L, X>(
                    &z[off..],
                    ms,
                    hx,
                    normal
                )
                .2 * coef),
            }
            g[y] = G::put(label, hg);
        }
        Mode::Add => {
            let g_y = g[y].get(hg);
            rewrite!(L, G, g, cn, hg, |_, off, old| {
                let (_, _, e) = chunk::<L, X>(&z[off..], ms, hx, normal);
                old + e * coef
            });
            g[y] = G::put(g_y + label, hg);
        }
        Mode::None => {}
    }
}

/// `dst[i] = src[i]` rounded once to `G` (per-row losses).
#[cfg_attr(not(opt_level_0), inline(always))]
fn narrow<G: Elem>(src: &[f32], dst: &mut [G], h: Half) {
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = G::put(v, h);
    }
}

/// The label weights `K_c` of the chunk of row `r` at classes `off..off + LANES` (dense
/// path; 0 on the lanes outside `fr`).
#[cfg_attr(not(opt_level_0), inline(always))]
fn dense_k<L: Lane>(
    job: &Job<'_>,
    r: usize,
    off: usize,
    fr: Option<L::Mask>,
    sa: f32,
    y: f32,
) -> L {
    let cn = job.classes;
    let keep_ = L::splat(1.0 - job.eps);
    let eps_c = L::splat(job.eps / cn as f32);
    let yl = match job.labels {
        Labels::Dense(lab) => lab.load::<L>(r * cn + off, 0.0),
        _ => {
            let iota = L::load_or(&IOTA, 0.0);
            let one_hot = (iota + L::splat(off as f32)).eq(L::splat(y));
            L::select(one_hot, L::splat(1.0), L::splat(0.0))
        }
    };
    let w = match job.class_weights {
        Some(w) => L::load_or(&w[off..], 0.0),
        None => L::splat(1.0),
    };
    let kw = (L::splat(sa) * w).min(L::splat(MAX));
    keep(fr, kw * yl.mul_add(keep_, eps_c), L::splat(0.0))
}

/// The dense path of row `r` (lane `i`): every class's term, the row's loss, and its gradient.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(opt_level_0), inline(always))]
fn dense_row<L: Lane, X: Elem, G: Elem>(
    job: &Job<'_>,
    x: &[X],
    (r, b, i): (usize, &Block, usize),
    mode: Mode,
    g: Option<&mut [G]>,
    factor: f32,
    c: &Consts<L>,
    cache: &mut [f32],
) -> f32 {
    let cn = job.classes;
    let z = &x[r * cn..(r + 1) * cn];
    let zero = L::splat(0.0);
    let ms = L::splat(b.m[i]);
    let row = Row {
        t: L::splat(b.t[i]),
        s: L::splat(b.s[i]),
        ln_s: L::splat(b.ln_s[i]),
        ln_s_lo: L::splat(b.ln_s_lo[i]),
        tc: L::splat(b.tc[i]),
        sc: L::splat(b.sc[i]),
    };
    let ln = L::LANES;
    let kn = n_chunks::<L>(cn) * ln;
    // `e`, `K g` and `q` of each chunk kept for the gradient's pass (else computed again).
    let kept = mode != Mode::None && 3 * kn <= cache.len();
    let (mut al, mut ax, mut am) = (L::wide_zero(), L::wide_zero(), L::wide_zero());
    for j in 0..n_chunks::<L>(cn) {
        let off = offset::<L>(j, cn);
        let fr = fresh::<L>(j, cn);
        let (top, d, e) = chunk::<L, X>(&z[off..], ms, job.hx, b.normal[i]);
        // Every lane's term (the gradient's pass needs the overlapping last chunk's lanes
        // too); the sums take the lanes of `fr` only. (A lane outside `fr` with `K = 0`
        // would give a loss and `K g` of +0, what the selects below give: `g` is finite.)
        let k = dense_k::<L>(job, r, off, None, b.sa[i], b.y[i]);
        let (l, kg, q) = term(d, e, k, &row, c);
        if kept {
            e.store(&mut cache[j * ln..]);
            kg.store(&mut cache[kn + j * ln..]);
            q.store(&mut cache[2 * kn + j * ln..]);
        }
        let (l, kg) = (keep(fr, l, zero), keep(fr, kg, zero));
        al = L::wide_add(al, l);
        ax = L::wide_add(ax, L::select(top, zero, kg));
        am = L::wide_add(am, L::select(top, kg, zero));
    }
    let loss = L::wide_tree(al) as f32;
    if mode == Mode::None {
        return loss;
    }
    let gx = L::wide_tree(ax);
    let gm = L::wide_tree(am);
    let big_g = L::splat(((gx + gm) as f32).min(MAX));
    let g_x = L::splat((gx as f32).min(MAX));
    let single = b.single[i];
    let fs = L::splat(b.fs[i]);
    let f = L::splat(factor);
    let g = g.unwrap_or(&mut []);
    // Every lane of every chunk (the overlapping lanes of the last compute the same values).
    rewrite!(L, G, g, cn, job.hg, |j, off, old| {
        let (top, e, kg, q) = if kept {
            let v: L = X::load(&z[off..], NEG_INF, job.hx);
            let at = |part: usize| L::load_or(&cache[part * kn + j * ln..], 0.0);
            (v.eq(ms), at(0), at(1), at(2))
        } else {
            let (top, d, e) = chunk::<L, X>(&z[off..], ms, job.hx, b.normal[i]);
            let k = dense_k::<L>(job, r, off, None, b.sa[i], b.y[i]);
            let (_, kg, q) = term(d, e, k, &row, c);
            (top, e, kg, q)
        };
        let sole = if single { top } else { top & !top };
        let v = dense_grad(sole, e, kg, q, big_g, g_x, fs, f);
        match mode {
            Mode::Write => v,
            _ => old + v,
        }
    });
    loss
}

/// `dl/dz_j = e_j min(G_{-j} factor / S, MAX) - min(factor K_j g_j, MAX) q_j`, with
/// `G_{-j} = G_x` (the non-top classes' sum) for the one top class of a row without ties,
/// `G - K_j g_j` otherwise (`sole`: the lanes of such a class).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(opt_level_0), inline(always))]
fn dense_grad<L: Lane>(sole: L::Mask, e: L, kg: L, q: L, big_g: L, g_x: L, fs: L, f: L) -> L {
    let rest = L::select(sole, g_x, big_g - kg);
    let coef = clamp(rest * fs);
    e * coef - clamp(f * kg) * q
}

/// The column kernel on `[N, C, S]` logits (`S > 1`): blocks of `LANES` positions of one
/// image, classes in sequence, the logits read and the gradient written in their own
/// element types, converted in registers.
#[cfg_attr(not(opt_level_0), inline(always))]
fn columns<'o, L: Lane, B: Lane<Acc = L::Acc>, X: Elem, G: Elem, const S: bool>(
    job: &Job<'_>,
    x: &[X],
    sink: &mut Sink<'o, G>,
    (factor, c, mut split): (f32, &Consts<L>, Option<&mut [&'o mut [G]]>),
    stage: &mut [f32],
) -> Sums {
    let (mode, mut grad, mut per_row) = parts(sink);
    let cn = job.classes;
    let sp = job.spatial;
    debug_assert!(sp > 1);
    // Positions `p0..p1` of each image (all of them, or a window's: then one image).
    let (p0, p1) = job.pos;
    let mut k = ColumnState::<L, B>::new(job);
    for n in 0..x.len() / (cn * sp) {
        let mut s0 = p0;
        while s0 < p1 {
            let np = k.ln.min(p1 - s0);
            // The row of the labels and weights, and of a per-row output (the window's).
            let r0 = n * sp + s0;
            let o0 = n * (p1 - p0) + s0 - p0;
            let base = n * cn * sp + s0;
            // (`S` a constant, so that the kernels see which view it is.)
            let g = if S {
                split
                    .as_deref_mut()
                    .map(|planes| Gv::Split(planes, s0 - p0))
            } else {
                grad.as_deref_mut().map(|g| Gv::Flat(&mut g[base..], sp))
            };
            let lab = match job.labels {
                Labels::Dense(l) => Some(l.slice(base..l.len())),
                _ => None,
            };
            let out = k.block(
                job,
                (&x[base..], sp, np, lab),
                r0,
                g,
                stage,
                mode,
                factor,
                c,
            );
            if let Some(o) = per_row.as_deref_mut() {
                narrow(&out[..np], &mut o[o0..o0 + np], job.hg);
            }
            s0 += np;
        }
    }
    k.sums()
}

/// The column kernel on class-last rows of at most [`Lane::LAST_COLS`] classes: blocks of `LANES`
/// rows transposed into stack buffers (class `c` of row `r0 + p` at `c LANES + p`), the
/// logits widened before and the gradient narrowed after, so that one copy per backend
/// serves every element type (the copies per type took a third of the crate's build time).
#[cfg_attr(not(opt_level_0), inline(always))]
fn columns_last<L: Lane, B: Lane<Acc = L::Acc>>(
    job: &Job<'_>,
    x: Src<'_>,
    (mode, mut grad, mut per_row): (Mode, Option<Dst<'_>>, Option<Dst<'_>>),
    factor: f32,
    c: &Consts<L>,
    stage: &mut [f32],
) -> Sums {
    let cn = job.classes;
    // Blocks of at most 16 classes take up to `COL_LANES` rows, larger ones (to
    // [`Lane::LAST_COLS`]) blocks of `Two<L>` or `L`: the buffers hold each.
    const { assert!(L::LAST_COLS * 2 * L::LANES <= SMALL_C * COL_LANES) };
    const { assert!(B::LANES <= COL_LANES) };
    debug_assert!(job.spatial == 1 && cn <= L::LAST_COLS);
    let mut k = ColumnState::<L, B>::new(job);
    let ln = k.ln;
    debug_assert!(cn * ln <= SMALL_C * COL_LANES);
    let mut xb = [0f32; SMALL_C * COL_LANES];
    let mut lb = [0f32; SMALL_C * COL_LANES];
    let mut gb = [0f32; SMALL_C * COL_LANES];
    // Half-precision rows widened (and gradients narrowed) here, around the transposition.
    let mut wb = [0f32; SMALL_C * COL_LANES];
    let rows = x.len() / cn;
    let mut r0 = 0;
    while r0 < rows {
        let np = ln.min(rows - r0);
        let span = r0 * cn..(r0 + np) * cn;
        transpose::<L>(
            widened_src::<L>(x.slice(span.clone()), &mut wb),
            &mut xb,
            cn,
            ln,
        );
        let lab = match job.labels {
            Labels::Dense(l) => {
                // (`wb` is free again: the logits are in `xb`.)
                let l = widened_src::<L>(l.slice(span.clone()), &mut wb);
                transpose::<L>(l, &mut lb, cn, ln);
                Some(Src::F32(&lb[..]))
            }
            _ => None,
        };
        if let (Mode::Add, Some(g)) = (mode, grad.as_ref()) {
            let g = widened_src::<L>(g.src().slice(span.clone()), &mut wb);
            transpose::<L>(g, &mut gb, cn, ln);
        }
        let g = if mode == Mode::None {
            None
        } else {
            Some(Gv::Flat(&mut gb[..], ln))
        };
        // (`stage` holds no `e` for an `f32` gradient: it is the dense path's buffer.)
        let cb = (&xb[..], ln, np, lab);
        let out = k.block::<f32, f32>(job, cb, r0, g, stage, mode, factor, c);
        if let (Mode::Write | Mode::Add, Some(g)) = (mode, grad.as_mut()) {
            match g.slice(span) {
                Dst::F32(g) => untranspose::<L>(&gb, g, cn, ln),
                mut g => {
                    let n = g.len();
                    untranspose::<L>(&gb, &mut wb[..n], cn, ln);
                    g.narrow::<L>(&wb[..n]);
                }
            }
        }
        if let Some(o) = per_row.as_mut() {
            match o.slice(r0..r0 + np) {
                Dst::F32(o) => o.copy_from_slice(&out[..np]),
                Dst::Bf16(o) => narrow(&out[..np], o, Half::Bf16),
                Dst::F16(o) => narrow(&out[..np], o, Half::F16),
            }
        }
        r0 += np;
    }
    k.sums()
}

/// What a column kernel carries from block to block: the partial sums and per-row values
/// each block reuses, the batch's loss and NaN flag.
struct ColumnState<L: Lane, B: Lane> {
    /// Distributions (the dense path). Never with fast-path blocks wider than `L` ([`pass`]
    /// sends the dense path to `B = L` only): a constant `false` in the other copy, whose
    /// dense branch is not compiled.
    dense: bool,
    /// Positions per block.
    ln: usize,
    /// The fast path's constants.
    cb: Consts<B>,
    /// The fast path's partial sums.
    acc: [B::Wide; MAX_LANES],
    /// The dense path's partial sums (its scan's, the losses', the gradient's two): made
    /// once, each block clears the entries it uses.
    sums: [[L::Wide; MAX_LANES]; 4],
    loss: L::Acc,
    bad: bool,
    b: Block,
}

impl<L: Lane, B: Lane<Acc = L::Acc>> ColumnState<L, B> {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn new(job: &Job<'_>) -> Self {
        let dense = B::LANES == L::LANES && job.dense();
        debug_assert!(dense == job.dense());
        ColumnState {
            dense,
            ln: if dense { L::LANES } else { B::LANES },
            cb: Consts::<B>::new(job.gamma),
            acc: [B::wide_zero(); MAX_LANES],
            sums: [[L::wide_zero(); MAX_LANES]; 4],
            loss: L::acc_zero(),
            bad: false,
            b: Block::new(),
        }
    }

    /// One block of `np` positions, rows `r0..r0 + np`: class `cl` of position `p` at
    /// `xs[cl cs + p]`, likewise its distribution in `lab` and its gradient in `g`. Returns
    /// the block's losses.
    #[allow(clippy::too_many_arguments)]
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn block<X: Elem, G: Elem>(
        &mut self,
        job: &Job<'_>,
        (xs, cs, np, lab): (&[X], usize, usize, Option<Src<'_>>),
        r0: usize,
        g: Option<Gv<'_, '_, G>>,
        stage: &mut [f32],
        mode: Mode,
        factor: f32,
        c: &Consts<L>,
    ) -> [f32; COL_LANES] {
        let mut out = [0f32; COL_LANES];
        if job.classes == 2 {
            // Rows of two classes: [`column_pair`] on both paths.
            let nan = if self.dense {
                let b = &mut self.b;
                b.labels(job, r0, np);
                let (live, yv, sa) = (mask::<L>(&b.live), lanes::<L>(&b.y), lanes::<L>(&b.sa));
                let k0 = dense_weight::<L>(job, (lab, cs, np), 0, (live, yv, sa));
                let k1 = dense_weight::<L>(job, (lab, cs, np), 1, (live, yv, sa));
                let w = PairWeights::Both { k0, k1 };
                let at = (xs, cs, np);
                let (l, nan) = column_pair::<L, X, G>(job, at, live, w, g, mode, factor, c);
                L::acc_add(&mut self.loss, l);
                l.store(&mut out);
                nan
            } else {
                let (live, y, k) = index_lanes::<B>(job, r0, np);
                let w = PairWeights::Label { y, k };
                let cb = &self.cb;
                let (l, nan) = with_len!(np, B::LANES, |n| {
                    column_pair::<B, X, G>(job, (xs, cs, n), live, w, g, mode, factor, cb)
                });
                B::acc_add(&mut self.loss, l);
                l.store(&mut out);
                nan
            };
            self.bad |= nan;
            return out;
        }
        if self.dense {
            let b = &mut self.b;
            b.labels(job, r0, np);
            let cb = (xs, cs, np, lab);
            self.bad |=
                column_block::<L, X, G>(job, cb, b, g, stage, mode, factor, c, &mut self.sums);
            let l = lanes::<L>(&b.loss);
            L::acc_add(&mut self.loss, l);
            l.store(&mut out);
        } else {
            let labs = index_lanes::<B>(job, r0, np);
            let fast = (&self.cb, L::LANES);
            let acc = &mut self.acc;
            let (l, nan) = with_len!(np, B::LANES, |n| {
                column_fast::<B, X, G>(job, (xs, cs, n), labs, g, stage, mode, factor, fast, acc)
            });
            self.bad |= nan;
            B::acc_add(&mut self.loss, l);
            l.store(&mut out);
        }
        out
    }

    #[cfg_attr(not(opt_level_0), inline(always))]
    fn sums(self) -> Sums {
        Sums {
            loss: L::acc_total(self.loss).0,
            bad: self.bad,
        }
    }
}

/// `src` as `f32`: the slice itself, or widened into `buf` (at most its length).
#[cfg_attr(not(opt_level_0), inline(always))]
fn widened_src<'b, L: Lane>(src: Src<'b>, buf: &'b mut [f32; SMALL_C * COL_LANES]) -> &'b [f32] {
    match src.as_f32() {
        Some(v) => v,
        None => {
            let n = src.len();
            src.widen::<L>(&mut buf[..n]);
            &buf[..n]
        }
    }
}

/// Rows of `cn` classes (`src`, row-major) into `dst[c ln + p]`: a whole block of up to
/// [`SMALL_C`] classes in a loop per class count, whose fixed inner length the compiler
/// unrolls, unless the backend has a faster way ([`Lane::transpose_rows`]); the last, partial
/// block of a batch (and more classes) in one loop for every count.
#[cfg_attr(not(opt_level_0), inline(always))]
fn transpose<L: Lane>(src: &[f32], dst: &mut [f32; SMALL_C * COL_LANES], cn: usize, ln: usize) {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn fixed<const C: usize>(src: &[f32], dst: &mut [f32; SMALL_C * COL_LANES], ln: usize) -> bool {
        if src.len() != C * ln || ln > COL_LANES {
            return false;
        }
        // Plain indices (every bound provable), which the compiler turns into vector loads
        // and shuffles.
        let src = &src[..C * ln];
        for p in 0..ln {
            for c in 0..C {
                dst[c * ln + p] = src[p * C + c];
            }
        }
        true
    }
    if L::transpose_rows(src, dst, cn, ln)
        || (cn <= SMALL_C && dispatch_c!(cn, fixed, src, dst, ln))
    {
        return;
    }
    for (p, row) in src.chunks_exact(cn).enumerate().take(ln) {
        for (c, &v) in row.iter().enumerate() {
            dst[(c * ln + p) % (SMALL_C * COL_LANES)] = v;
        }
    }
}

/// The inverse of [`transpose`].
#[cfg_attr(not(opt_level_0), inline(always))]
fn untranspose<L: Lane>(src: &[f32; SMALL_C * COL_LANES], dst: &mut [f32], cn: usize, ln: usize) {
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn fixed<const C: usize>(src: &[f32; SMALL_C * COL_LANES], dst: &mut [f32], ln: usize) -> bool {
        if dst.len() != C * ln || ln > COL_LANES {
            return false;
        }
        let dst = &mut dst[..C * ln];
        for p in 0..ln {
            for c in 0..C {
                dst[p * C + c] = src[c * ln + p];
            }
        }
        true
    }
    if L::untranspose_rows(src, dst, cn, ln)
        || (cn <= SMALL_C && dispatch_c!(cn, fixed, src, dst, ln))
    {
        return;
    }
    for (p, row) in dst.chunks_exact_mut(cn).enumerate().take(ln) {
        for (c, v) in row.iter_mut().enumerate() {
            *v = src[(c * ln + p) % (SMALL_C * COL_LANES)];
        }
    }
}

/// A block's two scans, lane-wise: the largest logit `m` of each position, whether a live
/// one may have a NaN (or has both `+inf` and `-inf`), `T` and `S` (rounded once from their
/// `f64` sums, and what the rounding dropped), the number of top classes, `d_y` (0 outside
/// `live`) and `e^(d_y)`.
struct Scan<L: Lane> {
    mv: L,
    /// Every `d` of the block is at least [`EXP_NORMAL_MIN`].
    normal: bool,
    nan: bool,
    t: L,
    s: L,
    t_lo: L,
    s_lo: L,
    ties: L,
    dy: L,
    /// `e^(d_y)` (1 outside `live`): the label's `e` from pass 2, the bits of `exp(d_y)`.
    ey: L,
}

/// Pass 1 (the largest logit) and pass 2 (`T`, the ties, `d_y`) of a block of `np` positions
/// whose class `cl` is at `xs[cl cs..]`, the labels `yv` (index labels; -1 for none). `e` is
/// stored for the gradient's pass: at `stage[cl LANES..]` when `staged`, else in the gradient
/// itself when `store_e` (an `f32` gradient being written). `T` is summed in the order of a
/// row kernel of `gl` lanes ([`group_in`], [`tree_wide`]): the column kernel may run on
/// blocks of several vectors ([`Lane::Cols`]) and still give a row the row kernel's bits.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(opt_level_0), inline(always))]
fn scan<L: Lane, X: Elem, G: Elem>(
    job: &Job<'_>,
    (xs, cs, np): (&[X], usize, usize),
    live: L::Mask,
    yv: L,
    mut grad: Option<Gv<'_, '_, G>>,
    stage: &mut [f32],
    (staged, store_e, gl): (bool, bool, usize),
    acc: &mut [L::Wide; MAX_LANES],
) -> Scan<L> {
    let cn = job.classes;
    let zero = L::splat(0.0);
    let one = L::splat(1.0);
    // (A block of live lanes only, the usual one, needs no select. The test lives in a
    // function, not in the closure: a closure not inlined would run outside the backend's
    // instruction set.)
    let all_live = L::all(live);
    let load = |cl: usize| live_plane::<L, X>(xs, cl * cs, np, (live, all_live), job.hx);
    // Pass 1: the largest logit of each position, and the lane-wise sum of the logits: NaN
    // where a logit is NaN, and also where `+inf` meets `-inf` (given, or reached by
    // overflow). Such a lane is flagged as if it held a NaN: the caller looks for the first
    // NaN logit of the batch before it reports one ([`Sums::bad`]), and its `m` or least
    // logit is infinite, which rules out `exp_normal` anyway. (Accumulating `v != v` masks
    // instead took as long as the rest of this loop on AVX-512, whose compiler packed the
    // four masks of a `Cols` block into one vector register at every class.)
    let mut mv = L::splat(NEG_INF);
    let mut lo = L::splat(f32::INFINITY);
    let mut sum = zero;
    for cl in 0..cn {
        let v = load(cl);
        sum = sum + v;
        mv = mv.max(v);
        lo = lo.min(v);
    }
    let nan = !sum.eq(sum);
    // Every `d` of the block in the domain of `exp_normal` (as in [`row_max`]).
    let normal = !L::any(nan) && exp_normal_ok(lo, mv);
    // Pass 2: T, the ties, d_y, and e stored for the fast path's gradient. With at most `gl`
    // classes each partial sum takes one class, and the tree's first level (`j + (j + h)`,
    // `h` half of `cn`'s power of two) is added as the classes come: classes `j` and `j + h`
    // one after the other into partial sum `j`, set, not added, and nothing to clear (a
    // class `j + h >= cn` is a zero that the tree added: `w + 0 = w` for `w >= +0` or NaN),
    // so that no partial sum is written and read back for that level: the bits of the whole
    // tree. Otherwise only the partial sums that the tree reads are cleared: all of them are
    // kilobytes per block.
    let direct = cn <= gl;
    if !direct {
        for a in &mut acc[..cn.min(gl).next_power_of_two()] {
            *a = L::wide_zero();
        }
    }
    let mut ties = zero;
    // The label's `d` and `e` (0 and 1 outside `live`, where `yv` is -1), taken as pass 2
    // forms them: one `exp` a row less than `exp(d_y)`, whose bits `exp_normal` gives in its
    // domain.
    let (mut dy, mut ey) = (zero, one);
    let ln = L::LANES;
    // One class `cl`: its (top, e) into the sums as `$add` does, the ties, d_y, e stored.
    macro_rules! class {
        ($cl:expr, $e:ident, $sum:ident, $add:stmt) => {{
            let cl = $cl;
            let v = load(cl);
            let (top, d, e) = exp_d(v, mv, normal);
            // The non-top `e` into the sums (`e >= +0`, never `-0`: `widen_where` gives the
            // bits of the addition to `+0`).
            let ($e, $sum) = (e, !top);
            $add
            ties = ties + L::select(top, one, zero);
            let is_y = yv.eq(L::splat(cl as f32));
            dy = L::select(is_y, d, dy);
            ey = L::select(is_y, e, ey);
            if staged {
                e.store(&mut stage[cl * ln..cl * ln + np]);
            } else if let (true, Some(g)) = (store_e, grad.as_mut()) {
                G::store(e, g.class(cl, np), job.hg);
            }
        }};
    }
    let tree_n = if direct {
        let h = cn.next_power_of_two() / 2;
        for (j, a) in acc.iter_mut().enumerate().take(h.max(1)) {
            class!(j, e, sum, *a = L::widen_where(e, sum));
            if h > 0 && j + h < cn {
                class!(j + h, e, sum, *a = L::wide_add_where(*a, e, sum));
            }
        }
        h.max(1)
    } else {
        for cl in 0..cn {
            let j = group_in(cl, cn, gl);
            class!(cl, e, sum, acc[j] = L::wide_add_where(acc[j], e, sum));
        }
        cn.min(gl).next_power_of_two()
    };
    let [t, s, t_lo, s_lo] = row_sums::<L>(tree_of::<L>(acc, tree_n), ties, live);
    Scan {
        mv,
        normal,
        nan: L::any(nan & live),
        t,
        s,
        t_lo,
        s_lo,
        ties,
        dy,
        ey,
    }
}

/// Index labels of rows `r0..r0 + n` as lanes (lane `i` is row `r0 + i`): which are counted,
/// the class (-1 where not counted), and the label's weight `K = min(s_r alpha w_y, MAX)` (0
/// where not counted): the values [`Block::labels`] gives, in registers.
#[cfg_attr(not(opt_level_0), inline(always))]
fn index_lanes<L: Lane>(job: &Job<'_>, r0: usize, n: usize) -> (L::Mask, L, L) {
    let mut y = [-1f32; COL_LANES];
    job.labels.classes_f32(r0, &mut y[..n], job.ignore);
    let yv = L::load_or(&y, -1.0);
    let live = yv.ge(L::splat(0.0));
    let max = L::splat(MAX);
    let mut sa = L::splat(job.alpha);
    if let Some(s) = job.sample_weights {
        sa = (L::load_or(&s[r0..r0 + n], 0.0) * sa).min(max);
    }
    let k = match job.class_weights {
        None => sa,
        Some(w) => {
            let mut wy = [0f32; COL_LANES];
            for (o, &c) in wy.iter_mut().zip(&y[..n]) {
                if c >= 0.0 {
                    *o = w[c as usize];
                }
            }
            (sa * L::load_or(&wy, 0.0)).min(max)
        }
    };
    (live, yv, L::select(live, k, L::splat(0.0)))
}

/// One block of `np` positions on the fast path (index labels, no smoothing), every per-row
/// value in registers: logits at `xs[c cs + p]`, the gradient likewise in `grad`, the labels
/// from [`index_lanes`]. Returns the block's losses (0 outside `live`) and whether a counted
/// position has a NaN logit.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(opt_level_0), inline(always))]
fn column_fast<L: Lane, X: Elem, G: Elem>(
    job: &Job<'_>,
    (xs, cs, np): (&[X], usize, usize),
    (live, yv, k): (L::Mask, L, L),
    grad: Option<Gv<'_, '_, G>>,
    stage: &mut [f32],
    mode: Mode,
    factor: f32,
    (c, gl): (&Consts<L>, usize),
    acc: &mut [L::Wide; MAX_LANES],
) -> (L, bool) {
    let cn = job.classes;
    let zero = L::splat(0.0);
    let ln = L::LANES;
    let staged = stage.len() >= cn * ln;
    let store_e = mode == Mode::Write && (G::IS_F32 || staged);
    let mut grad = grad;
    let sc = scan::<L, X, G>(
        job,
        (xs, cs, np),
        live,
        yv,
        grad.as_mut().map(Gv::rb),
        stage,
        (staged, store_e, gl),
        acc,
    );
    // The per-row work ([`finish`]'s, lane by lane).
    let row = Row::new(sc.t, sc.s, sc.t_lo, sc.s_lo);
    let f = L::splat(factor);
    let (loss, kg, q) = term(sc.dy, sc.ey, k, &row, c);
    let loss = L::select(live, loss, zero);
    if mode != Mode::None {
        let mut g = grad.unwrap_or(Gv::Flat(&mut [], 0));
        let coef = clamp(kg * (f / sc.s));
        let label = zero - clamp(f * kg) * q;
        let mv = sc.mv;
        for cl in 0..cn {
            let gc = g.class(cl, np);
            let is_y = yv.eq(L::splat(cl as f32));
            let v = match mode {
                Mode::Write if staged => L::load_or(&stage[cl * ln..cl * ln + np], 0.0) * coef,
                Mode::Write if store_e => G::load::<L>(gc, 0.0, job.hg) * coef,
                _ => {
                    let x = plane::<L, X>(xs, cl * cs, np, live, job.hx);
                    exp_d(x, mv, sc.normal).2 * coef
                }
            };
            put::<L, G>(gc, L::select(is_y, label, v), live, mode, job.hg);
        }
    }
    (loss, sc.nan)
}

/// One block of `np` positions on the dense path: logits at `xs[c cs + p]`, distributions
/// likewise in `lab`, the gradient likewise in `grad`. Returns whether a counted position has
/// a NaN logit.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(opt_level_0), inline(always))]
fn column_block<L: Lane, X: Elem, G: Elem>(
    job: &Job<'_>,
    (xs, cs, np, lab): (&[X], usize, usize, Option<Src<'_>>),
    b: &mut Block,
    grad: Option<Gv<'_, '_, G>>,
    stage: &mut [f32],
    mode: Mode,
    factor: f32,
    c: &Consts<L>,
    sums: &mut [[L::Wide; MAX_LANES]; 4],
) -> bool {
    let live = mask::<L>(&b.live);
    let yv = lanes::<L>(&b.y);
    let scan_of = (false, false, L::LANES);
    let [acc, dense @ ..] = sums;
    let sc = scan::<L, X, G>(job, (xs, cs, np), live, yv, None, &mut [], scan_of, acc);
    sc.t.store(&mut b.t);
    sc.s.store(&mut b.s);
    sc.t_lo.store(&mut b.t_lo);
    sc.s_lo.store(&mut b.s_lo);
    let mut tl = [0f32; MAX_LANES];
    sc.ties.store(&mut tl);
    for (s, &t) in b.single.iter_mut().zip(&tl) {
        *s = t == 1.0;
    }
    sc.mv.store(&mut b.m);
    sc.dy.store(&mut b.dy);
    finish::<L>(b, c, factor, true);
    let cd = (xs, cs, np, lab);
    column_dense::<L, X, G>(job, cd, b, grad, mode, factor, c, stage, dense);
    sc.nan
}

/// [`plane`], without its select where every lane is live (`all`).
#[cfg_attr(not(opt_level_0), inline(always))]
fn live_plane<L: Lane, X: Elem>(
    xs: &[X],
    off: usize,
    np: usize,
    (live, all): (L::Mask, bool),
    h: Half,
) -> L {
    if all {
        X::load(&xs[off..off + np], 0.0, h)
    } else {
        plane::<L, X>(xs, off, np, live, h)
    }
}

/// The logits of one class at `xs[off..off + np]`, 0 outside `live`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn plane<L: Lane, X: Elem>(xs: &[X], off: usize, np: usize, live: L::Mask, h: Half) -> L {
    L::select(live, X::load(&xs[off..off + np], 0.0, h), L::splat(0.0))
}

/// The dense path of a column block: every class's term, the losses and the gradient.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(opt_level_0), inline(always))]
fn column_dense<L: Lane, X: Elem, G: Elem>(
    job: &Job<'_>,
    (xs, cs, np, lab): (&[X], usize, usize, Option<Src<'_>>),
    b: &mut Block,
    grad: Option<Gv<'_, '_, G>>,
    mode: Mode,
    factor: f32,
    c: &Consts<L>,
    cache: &mut [f32],
    [al, ax, am]: &mut [[L::Wide; MAX_LANES]; 3],
) {
    let cn = job.classes;
    let zero = L::splat(0.0);
    let live = mask::<L>(&b.live);
    let yv = lanes::<L>(&b.y);
    let sa = lanes::<L>(&b.sa);
    let mv = lanes::<L>(&b.m);
    let row = Row {
        t: lanes::<L>(&b.t),
        s: lanes::<L>(&b.s),
        ln_s: lanes::<L>(&b.ln_s),
        ln_s_lo: lanes::<L>(&b.ln_s_lo),
        tc: lanes::<L>(&b.tc),
        sc: lanes::<L>(&b.sc),
    };
    // A method, not a closure: a closure this large is not inlined, and outside the
    // backend's `#[target_feature]` function every vector operation became a call (dense
    // blocks ran 40x slower than index labels).
    let cols = DenseColumns {
        job,
        xs,
        cs,
        np,
        lab,
        live,
        yv,
        sa,
        mv,
        row,
        c,
    };
    // (Class `cl` goes to partial sum `group(cl, cn) < min(cn, LANES)`; the trees read up to
    // the next power of two.)
    for sums in [&mut *al, &mut *ax, &mut *am] {
        for a in &mut sums[..cn.min(L::LANES).next_power_of_two()] {
            *a = L::wide_zero();
        }
    }
    // Each class's `e`, `K g` and `q` kept for the gradient's pass (else computed again).
    let ln = L::LANES;
    let kn = cn * ln;
    let kept = mode != Mode::None && 3 * kn <= cache.len();
    for cl in 0..cn {
        let (top, e, l, kg, q) = cols.class(cl);
        if kept {
            e.store(&mut cache[cl * ln..]);
            kg.store(&mut cache[kn + cl * ln..]);
            q.store(&mut cache[2 * kn + cl * ln..]);
        }
        let j = group::<L>(cl, cn);
        al[j] = L::wide_add(al[j], l);
        ax[j] = L::wide_add(ax[j], L::select(top, zero, kg));
        am[j] = L::wide_add(am[j], L::select(top, kg, zero));
    }
    let mut a = [0f64; MAX_LANES];
    L::wide_store(tree_wide::<L>(al, cn), &mut a);
    for (p, (l, &a)) in b.loss.iter_mut().zip(&a).enumerate() {
        *l = if p < np && b.live[p] { a as f32 } else { 0.0 };
    }
    if mode == Mode::None {
        return;
    }
    let mut gx = [0f64; MAX_LANES];
    L::wide_store(tree_wide::<L>(ax, cn), &mut gx);
    let mut gm = [0f64; MAX_LANES];
    L::wide_store(tree_wide::<L>(am, cn), &mut gm);
    let (mut big_g, mut g_x) = ([0f32; MAX_LANES], [0f32; MAX_LANES]);
    for p in 0..L::LANES {
        big_g[p] = ((gx[p] + gm[p]) as f32).min(MAX);
        g_x[p] = (gx[p] as f32).min(MAX);
    }
    let (big_g, g_x) = (lanes::<L>(&big_g), lanes::<L>(&g_x));
    let single = mask::<L>(&b.single);
    let fs = lanes::<L>(&b.fs);
    let f = L::splat(factor);
    let mut g = grad.unwrap_or(Gv::Flat(&mut [], 0));
    for cl in 0..cn {
        let (top, e, kg, q) = if kept {
            let v = plane::<L, X>(xs, cl * cs, np, live, job.hx);
            let at = |part: usize| L::load_or(&cache[part * kn + cl * ln..], 0.0);
            (v.eq(mv), at(0), at(1), at(2))
        } else {
            let (top, e, _, kg, q) = cols.class(cl);
            (top, e, kg, q)
        };
        let v = dense_grad(top & single, e, kg, q, big_g, g_x, fs, f);
        put::<L, G>(g.class(cl, np), v, live, mode, job.hg);
    }
}

/// What [`column_dense`] computes each class's term from.
struct DenseColumns<'j, 'c, L: Lane, X> {
    job: &'j Job<'j>,
    xs: &'j [X],
    cs: usize,
    np: usize,
    lab: Option<Src<'j>>,
    live: L::Mask,
    yv: L,
    sa: L,
    mv: L,
    row: Row<L>,
    c: &'c Consts<L>,
}

impl<L: Lane, X: Elem> DenseColumns<'_, '_, L, X> {
    /// Class `cl` of the block: whether it is the top, `e`, the loss term, `K g` and `q`.
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn class(&self, cl: usize) -> (L::Mask, L, L, L, L) {
        let zero = L::splat(0.0);
        let (cs, np) = (self.cs, self.np);
        let v = plane::<L, X>(self.xs, cl * cs, np, self.live, self.job.hx);
        let top = v.eq(self.mv);
        let d = L::select(top, zero, v - self.mv);
        let k = dense_weight(
            self.job,
            (self.lab, cs, np),
            cl,
            (self.live, self.yv, self.sa),
        );
        let e = d.softmax_exp();
        let (l, kg, q) = term(d, e, k, &self.row, self.c);
        (top, e, l, kg, q)
    }
}

/// The weight `K_c = s_r alpha w_c y'_c` of class `cl` on the dense path (0 outside `live`),
/// `y'_c` smoothed from the distribution `lab` (laid out as the logits) or, for smoothed index
/// labels, from the classes `yv`; `sa = min(s_r alpha, MAX)`.
#[cfg_attr(not(opt_level_0), inline(always))]
fn dense_weight<L: Lane>(
    job: &Job<'_>,
    (lab, cs, np): (Option<Src<'_>>, usize, usize),
    cl: usize,
    (live, yv, sa): (L::Mask, L, L),
) -> L {
    let (zero, one) = (L::splat(0.0), L::splat(1.0));
    let yl = match lab {
        Some(l) => l.slice(cl * cs..cl * cs + np).load::<L>(0, 0.0),
        None => L::select(yv.eq(L::splat(cl as f32)), one, zero),
    };
    let keep = L::splat(1.0 - job.eps);
    let eps_c = L::splat(job.eps / job.classes as f32);
    let kw = (sa * L::splat(job.w(cl))).min(L::splat(MAX));
    L::select(live, kw * yl.mul_add(keep, eps_c), zero)
}

/// The weights of a block of rows of two classes: the label's class and its weight (index
/// labels, the fast path), or the weight of each class (the dense path).
#[derive(Clone, Copy)]
enum PairWeights<L> {
    Label { y: L, k: L },
    Both { k0: L, k1: L },
}

/// A block of `np` rows of two classes on either path: logits at `xs[c cs + p]`, the gradient
/// likewise in `grad`. Returns the rows' losses (0 outside `live`) and whether a counted row
/// has a NaN logit.
///
/// Each class's term is [`pair_term`] at its margin `x_c = z_c - z_o` (`x_0 = -x_1`, both 0 on
/// a tie), and `dl/dz_c = g_o - g_c` with `g_c` the magnitude it returns (the derivative of
/// term `c` is `-g_c` at `z_c` and `+g_c` at `z_o`). The fast path computes the label's term
/// only and writes `0 - g_y` and `g_y - 0`: the dense path's expressions with the other
/// term's exact `+0`, so that one-hot distributions give the bits of their index labels.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(opt_level_0), inline(always))]
fn column_pair<L: Lane, X: Elem, G: Elem>(
    job: &Job<'_>,
    (xs, cs, np): (&[X], usize, usize),
    live: L::Mask,
    weights: PairWeights<L>,
    grad: Option<Gv<'_, '_, G>>,
    mode: Mode,
    factor: f32,
    c: &Consts<L>,
) -> (L, bool) {
    let zero = L::splat(0.0);
    let all_live = L::all(live);
    let z0 = live_plane::<L, X>(xs, 0, np, (live, all_live), job.hx);
    let z1 = live_plane::<L, X>(xs, cs, np, (live, all_live), job.hx);
    let nan = L::any(live & !(z0.eq(z0) & z1.eq(z1)));
    let tie = z0.eq(z1);
    let x1 = L::select(tie, zero, z1 - z0);
    let x0 = L::select(tie, zero, z0 - z1);
    // `u_c`: dl/dz_c before the reduction's factor.
    let (loss, u0, u1) = match weights {
        PairWeights::Label { y, k } => {
            let one = y.eq(L::splat(1.0));
            let (l, g) = pair_term(L::select(one, x1, x0), k, c);
            let (uy, uo) = (zero - g, g - zero);
            (l, L::select(one, uo, uy), L::select(one, uy, uo))
        }
        PairWeights::Both { k0, k1 } => {
            let (l0, g0) = pair_term(x0, k0, c);
            let (l1, g1) = pair_term(x1, k1, c);
            (l0 + l1, g1 - g0, g0 - g1)
        }
    };
    if mode != Mode::None {
        let mut g = grad.unwrap_or(Gv::Flat(&mut [], 0));
        let f = L::splat(factor);
        for (cl, u) in [(0, u0), (1, u1)] {
            put::<L, G>(g.class(cl, np), clamp(f * u), live, mode, job.hg);
        }
    }
    (L::select(live, loss, zero), nan)
}

/// [`pass`] on logits of type `X` and outputs of type `G`, as work for [`select`].
struct Pass<'r, 'd, 'o, 's, X, G> {
    job: &'r Job<'d>,
    x: &'d [X],
    sink: Sink<'o, G>,
    factor: f32,
    split: Option<&'s mut [&'o mut [G]]>,
}

impl<X: Elem, G: Elem> Kernel for Pass<'_, '_, '_, '_, X, G> {
    type Output = Sums;
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn run<L: Body>(mut self) -> Sums {
        pass::<L, X, G>(self.job, self.x, &mut self.sink, self.factor, self.split)
    }
}

/// One pass of `job` on `isa`, writing `out` (its gradient values already multiplied by
/// `factor`): the element types resolved here, so that each pair of logit and output types
/// is compiled once, in this crate.
pub(crate) fn run(isa: Isa, job: &Job<'_>, out: &mut Out<'_>, factor: f32) -> Sums {
    let with = |hx| Job { hx, ..*job };
    match job.x {
        Src::F32(x) => typed::<f32>(isa, job, x, out, factor),
        // bf16 and f16 share a copy: their bits, and the format as `hx`.
        Src::Bf16(x) => typed::<u16>(isa, &with(Half::Bf16), x, out, factor),
        Src::F16(x) => typed::<u16>(isa, &with(Half::F16), x, out, factor),
    }
}

/// [`run`] on logits `x`, for each output type (half-precision ones as bits, the format as
/// `hg`).
fn typed<X: Elem>(isa: Isa, job: &Job<'_>, x: &[X], out: &mut Out<'_>, factor: f32) -> Sums {
    let (sink, hg): (Sink<'_, u16>, Half) = match out {
        Out::None => return go::<X, f32>(isa, job, x, Sink::None, factor, None),
        Out::Write(Dst::F32(g), s) => return go(isa, job, x, Sink::Write(g, *s), factor, None),
        Out::Add(Dst::F32(g), s) => return go(isa, job, x, Sink::Add(g, *s), factor, None),
        Out::Elementwise(Dst::F32(o)) => {
            return go(isa, job, x, Sink::Elementwise(o), factor, None);
        }
        Out::Write(Dst::Bf16(g), s) => (Sink::Write(g, *s), Half::Bf16),
        Out::Add(Dst::Bf16(g), s) => (Sink::Add(g, *s), Half::Bf16),
        Out::Elementwise(Dst::Bf16(o)) => (Sink::Elementwise(o), Half::Bf16),
        Out::Write(Dst::F16(g), s) => (Sink::Write(g, *s), Half::F16),
        Out::Add(Dst::F16(g), s) => (Sink::Add(g, *s), Half::F16),
        Out::Elementwise(Dst::F16(o)) => (Sink::Elementwise(o), Half::F16),
    };
    go::<X, u16>(isa, &Job { hg, ..*job }, x, sink, factor, None)
}

/// The gradient of a window of one `[N, C, S]` image ([`Job::window`]) as the image's class
/// planes cut at the window: class `cl`'s values of the window's positions in `planes[cl]`,
/// by element type (half-precision ones as bits). What `crate::par` gives each task when it
/// cuts a large image among threads: the planes of two windows are disjoint slices, where
/// the spans of the image that hold them interleave.
#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
pub(crate) enum Split<'a, 'b> {
    F32(&'a mut [&'b mut [f32]]),
    Bf16(&'a mut [&'b mut [u16]]),
    F16(&'a mut [&'b mut [u16]]),
}

/// [`run`] for a window whose gradient is `split`, written (`add` false) or added to: the
/// same kernels, so that each value has the bits [`run`] gives it on the whole image.
#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
pub(crate) fn run_split(isa: Isa, job: &Job<'_>, split: Split<'_, '_>, add: bool, f: f32) -> Sums {
    let with = |hx| Job { hx, ..*job };
    match job.x {
        Src::F32(x) => typed_split::<f32>(isa, job, x, split, add, f),
        Src::Bf16(x) => typed_split::<u16>(isa, &with(Half::Bf16), x, split, add, f),
        Src::F16(x) => typed_split::<u16>(isa, &with(Half::F16), x, split, add, f),
    }
}

/// [`run_split`] on logits `x`.
fn typed_split<X: Elem>(
    isa: Isa,
    job: &Job<'_>,
    x: &[X],
    split: Split<'_, '_>,
    add: bool,
    f: f32,
) -> Sums {
    // The sink gives the mode; the planes are where the kernel writes.
    fn sink<'o, G>(add: bool, f: f32) -> Sink<'o, G> {
        if add {
            Sink::Add(&mut [], f)
        } else {
            Sink::Write(&mut [], f)
        }
    }
    let half = |hg| Job { hg, ..*job };
    match split {
        Split::F32(p) => go::<X, f32>(isa, job, x, sink(add, f), f, Some(p)),
        Split::Bf16(p) => go::<X, u16>(isa, &half(Half::Bf16), x, sink(add, f), f, Some(p)),
        Split::F16(p) => go::<X, u16>(isa, &half(Half::F16), x, sink(add, f), f, Some(p)),
    }
}

#[inline(never)]
fn go<'o, X: Elem, G: Elem>(
    isa: Isa,
    job: &Job<'_>,
    x: &[X],
    sink: Sink<'o, G>,
    factor: f32,
    split: Option<&mut [&'o mut [G]]>,
) -> Sums {
    select(
        isa,
        Pass {
            job,
            x,
            sink,
            factor,
            split,
        },
    )
}

/// The number of counted rows among index labels (those not `ignore`), or `None` if a
/// counted label lies outside `[0, classes)`: the unweighted reductions' count and the
/// labels' validation, branch-free and compiled with the backend's instruction set, so that
/// it vectorizes (64-bit compares need SSE4.2 or AVX2 on x86). As a scalar loop with an early
/// return it ran at about 1 ns a row, 9% of a `C = 2` pass. `None` for distributions.
pub(crate) fn tally(
    isa: Isa,
    labels: Labels<'_>,
    classes: usize,
    ignore: Option<i64>,
) -> Option<u64> {
    select(
        isa,
        Tally {
            labels,
            classes,
            ignore,
        },
    )
}

/// [`tally`] as work for [`select`].
struct Tally<'d> {
    labels: Labels<'d>,
    classes: usize,
    ignore: Option<i64>,
}

impl Kernel for Tally<'_> {
    type Output = Option<u64>;
    #[cfg_attr(not(opt_level_0), inline(always))]
    fn run<L: Body>(self) -> Option<u64> {
        #[cfg_attr(not(opt_level_0), inline(always))]
        fn typed<T: Copy + Into<i64>>(s: &[T], c: u64, ignore: Option<i64>) -> Option<u64> {
            let mut bad = false;
            // (Negative labels wrap to at least 2^63.)
            let Some(ig) = ignore else {
                // Every row counts: only the range test is left, in a loop of its own.
                for &v in s {
                    let v: i64 = v.into();
                    bad |= v as u64 >= c;
                }
                return (!bad).then_some(s.len() as u64);
            };
            let mut counted = 0u64;
            for &v in s {
                let v: i64 = v.into();
                let live = v != ig;
                counted += live as u64;
                bad |= live & (v as u64 >= c);
            }
            (!bad).then_some(counted)
        }
        let (c, ig) = (self.classes as u64, self.ignore);
        match self.labels {
            Labels::U8(s) => typed(s, c, ig),
            Labels::U16(s) => typed(s, c, ig),
            Labels::U32(s) => typed(s, c, ig),
            Labels::I32(s) => typed(s, c, ig),
            Labels::I64(s) => typed(s, c, ig),
            Labels::Dense(_) => None,
        }
    }
}
