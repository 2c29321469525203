//! The fixed chunk grid of a batch, and the one place where chunks are run: in order on the
//! calling thread ([`Serial`]), or on a `rayon` pool (`crate::par::Rayon`, with the feature).
//!
//! A batch of `units` units (rows, or images of the `[N, C, S]` layout) of `size` elements
//! each is cut into chunks of `per = max(1, CHUNK / size)` whole units: chunk `k` holds units
//! `[k per, min((k + 1) per, units))`. The cut depends on the shape alone, never on the number
//! of threads; each chunk's sums start from zero and are folded left to right in chunk order,
//! whoever computed them. Every entry point runs this way, so a parallel call returns the
//! bits of the sequential one for any pool and any scheduling (elements' values never depend
//! on their position, see the passes).
//!
//! An `[N, C, S]` batch whose images hold more than [`WINDOW`] logits is cut finer, into
//! windows of positions of each image ([`Windows`]), so that one large image (a segmentation
//! map) is shared among threads too. A window's gradient is not one slice of the batch's
//! (each class plane of the image holds a piece of it), so the parallel executor hands each
//! window its planes ([`WinOut::Split`]) and the sequential one the whole image.

use core::ops::Range;

use crate::sigmoid::pass::Out;
use crate::softmax::pass::Split;

/// Elements per chunk (at most; at least one unit): `2^16`, 256 KB of `f32` logits, so that
/// a chunk's logits, targets and gradient stay in a core's L2 cache, and the per-chunk cost
/// (setting up a pass, a task of the pool) is below 0.1% of its work.
pub(crate) const CHUNK: usize = 1 << 16;

/// The chunks of a batch: see the module documentation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    /// Units in the batch.
    units: usize,
    /// Elements per unit.
    size: usize,
    /// Units per chunk.
    per: usize,
}

impl Grid {
    pub(crate) fn new(units: usize, size: usize) -> Grid {
        Grid {
            units,
            size,
            per: (CHUNK / size.max(1)).max(1),
        }
    }

    /// The number of chunks (0 for an empty batch).
    pub(crate) fn count(&self) -> usize {
        self.units.div_ceil(self.per)
    }

    /// The units of chunk `k`.
    pub(crate) fn units(&self, k: usize) -> Range<usize> {
        let a = k * self.per;
        a..(a + self.per).min(self.units)
    }

    /// The elements of chunk `k`.
    pub(crate) fn elems(&self, k: usize) -> Range<usize> {
        self.span(k, self.size)
    }

    /// The items of chunk `k` in a slice of `n` items per unit (its elements for `n =
    /// size`, its rows of a per-row output, ...).
    pub(crate) fn span(&self, k: usize, n: usize) -> Range<usize> {
        let u = self.units(k);
        u.start * n..u.end * n
    }
}

/// Images of more than this many logits are cut into windows ([`Windows`]): `2^18`, 1 MB of
/// `f32` logits, four chunks' worth, so that a window's fixed cost (a pass's set-up, a task)
/// stays small beside its work, and a 16M-logit batch still has some 64 of them.
pub(crate) const WINDOW: usize = 1 << 18;

/// The windows of an `[N, C, S]` batch whose images exceed [`WINDOW`] logits: each image's
/// positions `0..S` cut into runs of `width` (the last may be shorter), `width` a multiple of
/// 64 (a whole number of every backend's column blocks, so that the blocks are those of the
/// whole image) with at least `WINDOW` logits. Window `k` is window `k % per` of image
/// `k / per`; they are folded in that order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Windows {
    pub(crate) images: usize,
    pub(crate) classes: usize,
    pub(crate) spatial: usize,
    pub(crate) width: usize,
}

impl Windows {
    /// The windows of `images` images of `classes x spatial` logits, if they are cut.
    pub(crate) fn of(images: usize, classes: usize, spatial: usize) -> Option<Windows> {
        let size = classes.checked_mul(spatial)?;
        if spatial <= 1 || size <= WINDOW {
            return None;
        }
        let width = WINDOW.div_ceil(classes).next_multiple_of(64);
        Some(Windows {
            images,
            classes,
            spatial,
            width,
        })
    }

    /// Windows per image.
    pub(crate) fn per(&self) -> usize {
        self.spatial.div_ceil(self.width)
    }

    /// Image and positions of window `k`.
    pub(crate) fn window(&self, k: usize) -> (usize, Range<usize>) {
        let (i, j) = (k / self.per(), k % self.per());
        (i, j * self.width..((j + 1) * self.width).min(self.spatial))
    }

    /// The number of windows.
    pub(crate) fn count(&self) -> usize {
        self.images * self.per()
    }
}

/// What a window's pass writes into: the output as for a whole image (the image's gradient,
/// or the window's per-position losses), or its gradient as the image's class planes cut at
/// the window (written, or added to when the flag is set).
pub(crate) enum WinOut<'a, 'b> {
    Out(Out<'a>),
    #[cfg_attr(not(feature = "rayon"), allow(dead_code))]
    Split(Split<'a, 'b>, bool),
}

/// How the chunks of a call run.
pub(crate) trait Exec: Sync {
    /// `f(k, out_k)` for every chunk `k` of `grid`, `out_k` the chunk's part of `out` (which
    /// holds `per_unit` items per unit: [`Grid::span`]), folded left to right in chunk order:
    /// `merge(... merge(merge(zero, s_0), s_1) ...)`.
    fn fold<S, F, M>(&self, grid: &Grid, out: (Out<'_>, usize), zero: S, f: F, merge: M) -> S
    where
        S: Copy + Send,
        F: Fn(usize, Out<'_>) -> S + Sync,
        M: Fn(S, S) -> S;

    /// `f(i, p, out_k)` for every window `k` of `win` (image `i`, positions `p`), folded left
    /// to right in window order as [`fold`](Self::fold) folds chunks. `out` holds the whole
    /// batch (a gradient, or one item per position).
    fn fold_windows<S, F, M>(&self, win: &Windows, out: Out<'_>, zero: S, f: F, merge: M) -> S
    where
        S: Copy + Send,
        F: Fn(usize, Range<usize>, WinOut<'_, '_>) -> S + Sync,
        M: Fn(S, S) -> S;
}

/// One chunk after the other, on the calling thread.
pub(crate) struct Serial;

impl Exec for Serial {
    fn fold<S, F, M>(&self, grid: &Grid, out: (Out<'_>, usize), zero: S, f: F, merge: M) -> S
    where
        S: Copy + Send,
        F: Fn(usize, Out<'_>) -> S + Sync,
        M: Fn(S, S) -> S,
    {
        let (mut out, per_unit) = out;
        let mut acc = zero;
        for k in 0..grid.count() {
            acc = merge(acc, f(k, out.slice(grid.span(k, per_unit))));
        }
        acc
    }

    fn fold_windows<S, F, M>(&self, win: &Windows, out: Out<'_>, zero: S, f: F, merge: M) -> S
    where
        S: Copy + Send,
        F: Fn(usize, Range<usize>, WinOut<'_, '_>) -> S + Sync,
        M: Fn(S, S) -> S,
    {
        let mut out = out;
        let (sp, size) = (win.spatial, win.classes * win.spatial);
        let mut acc = zero;
        for k in 0..win.count() {
            let (i, p) = win.window(k);
            let o = match out {
                Out::Elementwise(_) => out.slice(i * sp + p.start..i * sp + p.end),
                _ => out.slice(i * size..(i + 1) * size),
            };
            acc = merge(acc, f(i, p, WinOut::Out(o)));
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_the_batch_in_whole_units() {
        for (units, size) in [(0, 5), (1, 1), (3, 1 << 20), (100_000, 7), (1 << 16, 1)] {
            let g = Grid::new(units, size);
            let mut next = 0;
            for k in 0..g.count() {
                let u = g.units(k);
                assert_eq!(u.start, next);
                assert!(!u.is_empty() && u.len() * size <= CHUNK.max(size));
                assert_eq!(g.elems(k), u.start * size..u.end * size);
                next = u.end;
            }
            assert_eq!(next, units);
        }
    }

    #[test]
    fn windows_cover_each_image_in_whole_blocks() {
        assert!(Windows::of(3, 19, WINDOW / 19).is_none());
        assert!(Windows::of(3, 1, WINDOW).is_none());
        assert!(Windows::of(3, WINDOW + 1, 1).is_none());
        for (n, c, sp) in [
            (1, 19, 55_189),
            (2, 4, WINDOW),
            (1, 5000, 130),
            (3, 2, WINDOW / 2 + 1),
        ] {
            let w = Windows::of(n, c, sp).unwrap();
            assert!(w.width.is_multiple_of(64) && w.width * c >= WINDOW);
            let mut next = (0, 0);
            for k in 0..w.count() {
                let (i, p) = w.window(k);
                assert_eq!((i, p.start), next);
                assert!(!p.is_empty());
                next = if p.end == sp { (i + 1, 0) } else { (i, p.end) };
            }
            assert_eq!(next, (n, 0));
        }
    }
}
