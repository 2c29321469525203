//! Parallel forms of the entry points (cargo feature `rayon`): the same results, bit for bit,
//! on every core of the current `rayon` pool.
//!
//! | sequential | parallel |
//! |---|---|
//! | [`Focal::loss`] | [`Focal::par_loss`] |
//! | [`Focal::loss_and_grad`] | [`Focal::par_loss_and_grad`] |
//! | [`Focal::loss_and_grad_accumulate`] | [`Focal::par_loss_and_grad_accumulate`] |
//! | [`Focal::loss_elementwise`] | [`Focal::par_loss_elementwise`] |
//! | [`Focal::partial`] | [`Focal::par_partial`] |
//! | [`SoftmaxFocal::loss`] | [`SoftmaxFocal::par_loss`] |
//! | [`SoftmaxFocal::loss_and_grad`] | [`SoftmaxFocal::par_loss_and_grad`] |
//! | [`SoftmaxFocal::loss_and_grad_accumulate`] | [`SoftmaxFocal::par_loss_and_grad_accumulate`] |
//! | [`SoftmaxFocal::loss_per_row`] | [`SoftmaxFocal::par_loss_per_row`] |
//! | [`SoftmaxFocal::partial`] | [`SoftmaxFocal::par_partial`] |
//!
//! **Determinism.** Every call, sequential or parallel, cuts its batch into the same chunks: whole
//! units (rows; images of the `[N, C, S]` layout) of at most `2^16` elements, at least one unit,
//! and images of more than `2^18` logits into windows of positions (each a whole number of column
//! blocks), the cut depending on the shape alone. Each chunk's sums start from zero, and the
//! chunks' sums are folded left to right in chunk order on the calling thread, whichever thread
//! computed them. An element's loss and gradient do not depend on its position. So for any pool
//! size and any scheduling, a parallel call returns the sequential call's bits: the reduced loss,
//! every gradient and every per-element value (tests/par.rs checks pools of 1, 2, 3 and 8 threads,
//! every reduction, both families). `PerPositive`'s positives are counted in a first parallel pass
//! over the targets (chunked and folded the same way), then the gradient pass runs with the factor;
//! the softmax family counts its labels that way too.
//!
//! **Threads.** The calls run on the pool they are called from ([`rayon::ThreadPool::install`]
//! chooses one; else rayon's global pool). A batch of one chunk (at most `2^16` elements, or
//! one unit) runs on the calling thread, as does any call on a pool of one thread. An
//! `[N, C, S]` image of more than `2^18` logits (a segmentation map) is shared by the
//! threads: each window's gradient is a piece of every class plane of the image, and each
//! task gets its pieces (`Vec`s of `C` slices, allocated per call) where the sequential
//! call writes the image's planes in place.
//!
//! **Floating-point environment.** The bits are the same where every thread computes in the
//! same floating-point mode. A caller that sets flush-to-zero or denormals-are-zero on its
//! own thread (some runtimes do) and not on the pool's threads gets chunks computed in two
//! modes: results whose intermediates are subnormal (a softmax row whose logits span more
//! than about 87, a sigmoid element near `|x| = 87`) may then differ from the sequential
//! call's. The crate never changes the mode.
//!
//! **Errors** are the sequential call's: the same variant and the first bad index in index
//! order; an accumulate call that returns an error has written nothing.

extern crate alloc;

use alloc::vec;
use core::ops::Range;

use crate::chunk::{Exec, Grid, Serial, WinOut, Windows};
use crate::error::Error;
use crate::float::{Dst, Float};
use crate::label::Label;
use crate::reduce::{Partial, Reduction};
use crate::sigmoid::pass::Out;
use crate::sigmoid::{Focal, Grad};
use crate::softmax::SoftmaxFocal;
use crate::softmax::pass::Split;
use crate::target::Target;

/// The chunks of a call on the current `rayon` pool.
pub(crate) struct Rayon;

impl Exec for Rayon {
    fn fold<S, F, M>(&self, grid: &Grid, out: (Out<'_>, usize), zero: S, f: F, merge: M) -> S
    where
        S: Copy + Send,
        F: Fn(usize, Out<'_>) -> S + Sync,
        M: Fn(S, S) -> S,
    {
        let n = grid.count();
        if n <= 1 || rayon::current_num_threads() <= 1 {
            return Serial.fold(grid, out, zero, f, merge);
        }
        let mut parts = vec![zero; n];
        split(grid, 0..n, out, &mut parts, &f);
        parts.into_iter().fold(zero, merge)
    }

    fn fold_windows<S, F, M>(&self, win: &Windows, out: Out<'_>, zero: S, f: F, merge: M) -> S
    where
        S: Copy + Send,
        F: Fn(usize, Range<usize>, WinOut<'_, '_>) -> S + Sync,
        M: Fn(S, S) -> S,
    {
        if rayon::current_num_threads() <= 1 {
            return Serial.fold_windows(win, out, zero, f, merge);
        }
        Rayon::windows(win, out, &f).into_iter().fold(zero, merge)
    }
}

impl Rayon {
    /// `f(i, p, out_k)` for every window as [`Exec::fold_windows`], one `rayon` task each.
    fn windows<S, F>(win: &Windows, out: Out<'_>, f: &F) -> alloc::vec::Vec<S>
    where
        S: Send,
        F: Fn(usize, Range<usize>, WinOut<'_, '_>) -> S + Sync,
    {
        use alloc::vec::Vec;
        use rayon::prelude::*;
        let n = win.count();
        let at = |k: usize| win.window(k);
        // Each window's class planes: plane `cl` of image `i`, cut at the windows.
        fn planes<'g, T>(g: &'g mut [T], win: &Windows) -> Vec<Vec<&'g mut [T]>> {
            let mut per_window: Vec<Vec<&mut [T]>> = (0..win.count()).map(|_| Vec::new()).collect();
            for (i, image) in g.chunks_mut(win.classes * win.spatial).enumerate() {
                for plane in image.chunks_mut(win.spatial) {
                    let mut rest = plane;
                    for j in 0..win.per() {
                        let (_, p) = win.window(i * win.per() + j);
                        let (a, b) = core::mem::take(&mut rest).split_at_mut(p.len());
                        per_window[i * win.per() + j].push(a);
                        rest = b;
                    }
                }
            }
            per_window
        }
        macro_rules! split {
            ($g:expr, $kind:ident, $add:expr) => {
                planes($g, win)
                    .into_par_iter()
                    .enumerate()
                    .map(|(k, mut v)| {
                        let (i, p) = at(k);
                        f(i, p, WinOut::Split(Split::$kind(&mut v[..]), $add))
                    })
                    .collect()
            };
        }
        match out {
            Out::None => (0..n)
                .into_par_iter()
                .map(|k| {
                    let (i, p) = at(k);
                    f(i, p, WinOut::Out(Out::None))
                })
                .collect(),
            Out::Elementwise(d) => {
                // One item per position: each window's is a slice of its own.
                let mut rest = d;
                let mut outs = Vec::with_capacity(n);
                for k in 0..n {
                    let (_, p) = at(k);
                    let (a, b) = rest.split_at(p.len());
                    outs.push(a);
                    rest = b;
                }
                outs.into_par_iter()
                    .enumerate()
                    .map(|(k, d)| {
                        let (i, p) = at(k);
                        f(i, p, WinOut::Out(Out::Elementwise(d)))
                    })
                    .collect()
            }
            Out::Write(Dst::F32(g), _) => split!(g, F32, false),
            Out::Write(Dst::Bf16(g), _) => split!(g, Bf16, false),
            Out::Write(Dst::F16(g), _) => split!(g, F16, false),
            Out::Add(Dst::F32(g), _) => split!(g, F32, true),
            Out::Add(Dst::Bf16(g), _) => split!(g, Bf16, true),
            Out::Add(Dst::F16(g), _) => split!(g, F16, true),
        }
    }
}

/// `parts[k - ks.start] = f(k, out_k)` for the chunks `ks`, halving the range (and `out`, at
/// a chunk boundary) into two `rayon` tasks until one chunk is left.
fn split<S, F>(grid: &Grid, ks: Range<usize>, out: (Out<'_>, usize), parts: &mut [S], f: &F)
where
    S: Send,
    F: Fn(usize, Out<'_>) -> S + Sync,
{
    let (out, per_unit) = out;
    if ks.len() == 1 {
        parts[0] = f(ks.start, out);
        return;
    }
    let mid = ks.start + ks.len() / 2;
    let cut = grid.span(mid, per_unit).start - grid.span(ks.start, per_unit).start;
    let (a, b) = out.split_at(cut);
    let (pa, pb) = parts.split_at_mut(mid - ks.start);
    rayon::join(
        || split(grid, ks.start..mid, (a, per_unit), pa, f),
        || split(grid, mid..ks.end, (b, per_unit), pb, f),
    );
}

impl Focal<'_> {
    /// [`loss`](Self::loss) on every core of the current `rayon` pool, with the same bits
    /// (see [`crate::par`]).
    ///
    /// # Errors
    /// Those of [`loss`](Self::loss).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let x: Vec<f32> = (0..200_000).map(|i| (i % 97) as f32 / 10.0 - 4.0).collect();
    /// let t: Vec<u8> = (0..200_000).map(|i| (i % 13 == 0) as u8).collect();
    /// let f = Focal::new(2.0).alpha(0.25).classes(50);
    /// let par = f.par_loss(&x, &t, Reduction::PerPositive)?;
    /// assert_eq!(par, f.loss(&x, &t, Reduction::PerPositive)?);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn par_loss<X: Float, T: Target>(
        &self,
        logits: &[X],
        targets: &[T],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        self.loss_on(&Rayon, logits, targets, reduction)
    }

    /// [`loss_and_grad`](Self::loss_and_grad) on every core of the current `rayon` pool,
    /// with the same bits: the returned loss and every gradient element (see
    /// [`crate::par`]).
    ///
    /// # Errors
    /// Those of [`loss_and_grad`](Self::loss_and_grad) (`grad` is then unspecified).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let n = 100_000 * 8;
    /// let x: Vec<f32> = (0..n).map(|i| (i % 89) as f32 / 8.0 - 5.0).collect();
    /// let t: Vec<f32> = (0..n).map(|i| (i % 11 == 0) as u8 as f32).collect();
    /// let f = Focal::new(2.0).alpha(0.25).classes(8);
    /// let (mut g1, mut g2) = (vec![0f32; n], vec![0f32; n]);
    /// let seq = f.loss_and_grad(&x, &t, &mut g1, Reduction::Mean)?;
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    /// let par = pool.install(|| f.par_loss_and_grad(&x, &t, &mut g2, Reduction::Mean))?;
    /// assert_eq!((seq.to_bits(), &g1), (par.to_bits(), &g2));
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn par_loss_and_grad<X: Float, T: Target, G: Float>(
        &self,
        logits: &[X],
        targets: &[T],
        grad: &mut [G],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        self.whole(&Rayon, logits, targets, grad, reduction, false)
    }

    /// [`loss_and_grad_accumulate`](Self::loss_and_grad_accumulate) on every core of the
    /// current `rayon` pool, with the same bits (see [`crate::par`]).
    ///
    /// # Errors
    /// Those of [`loss_and_grad_accumulate`](Self::loss_and_grad_accumulate); a call that
    /// returns an error has not changed `grad` (every chunk is checked before any is written).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Reduction};
    /// let x = vec![0.5f32; 300_000];
    /// let t = vec![1u8; 300_000];
    /// let mut g = vec![1f32; 300_000];
    /// let f = Focal::new(2.0);
    /// f.par_loss_and_grad_accumulate(&x, &t, &mut g, Reduction::Sum)?;
    /// assert!(g.iter().all(|&v| v < 1.0));
    /// let mut bad = x.clone();
    /// bad[250_000] = f32::NAN;
    /// let before = g.clone();
    /// let e = f.par_loss_and_grad_accumulate(&bad, &t, &mut g, Reduction::Sum);
    /// assert_eq!(e, Err(focal_loss::Error::NanLogit { index: 250_000, row: 0, class: 250_000 }));
    /// assert_eq!(g, before);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn par_loss_and_grad_accumulate<X: Float, T: Target, G: Float>(
        &self,
        logits: &[X],
        targets: &[T],
        grad: &mut [G],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        self.whole(&Rayon, logits, targets, grad, reduction, true)
    }

    /// [`loss_elementwise`](Self::loss_elementwise) on every core of the current `rayon`
    /// pool, with the same bits (see [`crate::par`]).
    ///
    /// # Errors
    /// Those of [`loss_elementwise`](Self::loss_elementwise).
    ///
    /// # Example
    /// ```
    /// use focal_loss::Focal;
    /// let x: Vec<f32> = (0..150_000).map(|i| (i % 7) as f32 - 3.0).collect();
    /// let t: Vec<f32> = (0..150_000).map(|i| (i % 3) as f32 / 2.0).collect();
    /// let (mut a, mut b) = (vec![0f32; x.len()], vec![0f32; x.len()]);
    /// let f = Focal::new(1.5);
    /// f.loss_elementwise(&x, &t, &mut a)?;
    /// f.par_loss_elementwise(&x, &t, &mut b)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn par_loss_elementwise<X: Float, T: Target, G: Float>(
        &self,
        logits: &[X],
        targets: &[T],
        out: &mut [G],
    ) -> Result<(), Error> {
        self.elementwise_on(&Rayon, logits, targets, out)
    }

    /// [`partial`](Self::partial) on every core of the current `rayon` pool, with the same
    /// bits (see [`crate::par`]): a worker's share of a distributed batch, on all its cores.
    ///
    /// # Errors
    /// Those of [`partial`](Self::partial).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, Grad, Reduction};
    /// let x: Vec<f32> = (0..140_000).map(|i| (i % 5) as f32 - 2.0).collect();
    /// let t: Vec<u8> = (0..140_000).map(|i| (i % 4 == 0) as u8).collect();
    /// let f = Focal::new(2.0).classes(70);
    /// let p = f.par_partial(&x, &t, Grad::Skip)?;
    /// assert_eq!(p, f.partial(&x, &t, Grad::Skip)?);
    /// assert_eq!(p.reduce(Reduction::Sum)?, f.loss(&x, &t, Reduction::Sum)?);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn par_partial<X: Float, T: Target>(
        &self,
        logits: &[X],
        targets: &[T],
        grad: Grad<'_, X>,
    ) -> Result<Partial, Error> {
        self.partial_on(&Rayon, logits, targets, grad)
    }
}

impl SoftmaxFocal<'_> {
    /// [`loss`](Self::loss) on every core of the current `rayon` pool, with the same bits
    /// (see [`crate::par`]).
    ///
    /// # Errors
    /// Those of [`loss`](Self::loss).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let (rows, c) = (20_000, 50);
    /// let x: Vec<f32> = (0..rows * c).map(|i| (i % 31) as f32 / 4.0 - 3.0).collect();
    /// let y: Vec<i64> = (0..rows as i64).map(|r| r % 50).collect();
    /// let f = SoftmaxFocal::new(2.0);
    /// assert_eq!(f.par_loss(&x, &y, Reduction::Mean)?, f.loss(&x, &y, Reduction::Mean)?);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn par_loss<X: Float, T: Label>(
        &self,
        logits: &[X],
        labels: &[T],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        self.reduced_on(&Rayon, logits, labels, Out::None, reduction)
    }

    /// [`loss_and_grad`](Self::loss_and_grad) on every core of the current `rayon` pool,
    /// with the same bits: the returned loss and every gradient element (see
    /// [`crate::par`]). An `[N, C, S]` batch is cut at images, and images of more than
    /// `2^18` logits into windows of positions.
    ///
    /// # Errors
    /// Those of [`loss_and_grad`](Self::loss_and_grad).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// // Four 19-class segmentation maps of 64 x 64 pixels, the last class ignored.
    /// let (n, c, s) = (4, 19, 64 * 64);
    /// let x: Vec<f32> = (0..n * c * s).map(|i| (i % 23) as f32 / 5.0 - 2.0).collect();
    /// let y: Vec<u8> = (0..n * s).map(|i| (i % 20) as u8).collect();
    /// let f = SoftmaxFocal::new(2.0).classes(c).spatial(s).ignore_index(19);
    /// let (mut g1, mut g2) = (vec![0f32; x.len()], vec![0f32; x.len()]);
    /// let seq = f.loss_and_grad(&x, &y, &mut g1, Reduction::Mean)?;
    /// let par = f.par_loss_and_grad(&x, &y, &mut g2, Reduction::Mean)?;
    /// assert_eq!((seq.to_bits(), &g1), (par.to_bits(), &g2));
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn par_loss_and_grad<X: Float, T: Label, G: Float>(
        &self,
        logits: &[X],
        labels: &[T],
        grad: &mut [G],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        let out = Out::Write(G::dst(grad), 1.0);
        self.reduced_on(&Rayon, logits, labels, out, reduction)
    }

    /// [`loss_and_grad_accumulate`](Self::loss_and_grad_accumulate) on every core of the
    /// current `rayon` pool, with the same bits (see [`crate::par`]).
    ///
    /// # Errors
    /// Those of [`loss_and_grad_accumulate`](Self::loss_and_grad_accumulate); a call that
    /// returns an error has not changed `grad`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal};
    /// let (rows, c) = (10_000, 10);
    /// let x = vec![0.25f32; rows * c];
    /// let y: Vec<u32> = (0..rows as u32).map(|r| r % 10).collect();
    /// let (mut a, mut b) = (vec![0.5f32; x.len()], vec![0.5f32; x.len()]);
    /// let f = SoftmaxFocal::new(2.0);
    /// f.loss_and_grad_accumulate(&x, &y, &mut a, Reduction::Sum)?;
    /// f.par_loss_and_grad_accumulate(&x, &y, &mut b, Reduction::Sum)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn par_loss_and_grad_accumulate<X: Float, T: Label, G: Float>(
        &self,
        logits: &[X],
        labels: &[T],
        grad: &mut [G],
        reduction: Reduction,
    ) -> Result<f32, Error> {
        let out = Out::Add(G::dst(grad), 1.0);
        self.reduced_on(&Rayon, logits, labels, out, reduction)
    }

    /// [`loss_per_row`](Self::loss_per_row) on every core of the current `rayon` pool, with
    /// the same bits (see [`crate::par`]).
    ///
    /// # Errors
    /// Those of [`loss_per_row`](Self::loss_per_row).
    ///
    /// # Example
    /// ```
    /// use focal_loss::SoftmaxFocal;
    /// let (rows, c) = (30_000, 5);
    /// let x: Vec<f32> = (0..rows * c).map(|i| (i % 9) as f32 - 4.0).collect();
    /// let y: Vec<u8> = (0..rows).map(|r| (r % 5) as u8).collect();
    /// let (mut a, mut b) = (vec![0f32; rows], vec![0f32; rows]);
    /// let f = SoftmaxFocal::new(1.0);
    /// f.loss_per_row(&x, &y, &mut a)?;
    /// f.par_loss_per_row(&x, &y, &mut b)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn par_loss_per_row<X: Float, T: Label, G: Float>(
        &self,
        logits: &[X],
        labels: &[T],
        out: &mut [G],
    ) -> Result<(), Error> {
        self.per_row_on(&Rayon, logits, labels, out)
    }

    /// [`partial`](Self::partial) on every core of the current `rayon` pool, with the same
    /// bits (see [`crate::par`]).
    ///
    /// # Errors
    /// Those of [`partial`](Self::partial).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Grad, SoftmaxFocal};
    /// let (rows, c) = (40_000, 4);
    /// let x: Vec<f32> = (0..rows * c).map(|i| (i % 6) as f32 - 2.5).collect();
    /// let y: Vec<u16> = (0..rows as u16).map(|r| r % 4).collect();
    /// let f = SoftmaxFocal::new(2.0);
    /// assert_eq!(f.par_partial(&x, &y, Grad::Skip)?, f.partial(&x, &y, Grad::Skip)?);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn par_partial<X: Float, T: Label>(
        &self,
        logits: &[X],
        labels: &[T],
        grad: Grad<'_, X>,
    ) -> Result<Partial, Error> {
        self.partial_on(&Rayon, logits, labels, grad)
    }
}
