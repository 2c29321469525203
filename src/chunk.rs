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

use core::ops::Range;

use crate::sigmoid::pass::Out;

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
}
