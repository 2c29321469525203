//! The backends: the [`Lane`](lane::Lane) trait the numeric core is written against, one
//! file per instruction set that only instantiates it, and the one place that chooses
//! ([`Backend::isa`]) and runs ([`select`]) one.
//!
//! Adding a backend (SVE, RISC-V V, WASM SIMD128) is one file (a `Lane` type, its `LANES`
//! and a `run`), one variant of [`Isa`] and one arm in [`select`] and [`Backend::isa`]: the
//! matches are exhaustive, so a missing arm does not compile.

pub(crate) mod lane;
pub(crate) mod portable;
pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) mod x86;

use crate::error::Error;
use crate::sigmoid::pass::Body;

/// Which instantiation of the numeric core runs a call.
///
/// All compute the same formulas, within the same error bounds (the test suite runs every
/// backend the host has against the same oracle and against each other); they differ in the
/// last bits (the scalar path uses `libm`'s `expf`/`log1pf`/`logf`, the vector paths the
/// crate's own polynomials) and in speed. Results never depend on an element's position.
///
/// # Example
/// ```
/// use focal_loss::{Backend, Focal, Reduction};
/// let (x, t) = ([0.25f32; 19], [1.0f32; 19]);
/// let a = Focal::new(2.0).backend(Backend::Scalar).loss(&x, &t, Reduction::Sum)?;
/// let b = Focal::new(2.0).backend(Backend::Auto).loss(&x, &t, Reduction::Sum)?;
/// assert!((a - b).abs() <= 4.0 * f32::EPSILON * a);
/// println!("Auto runs on {:?}", Backend::Auto.resolve()?);
/// # Ok::<(), focal_loss::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// The widest backend this CPU has, chosen at run time (once, then cached):
    /// `Avx512`, else `Avx2`, else `Portable` where the build has vector registers for it
    /// (SSE2, NEON, wasm `simd128`), else `Scalar` (e.g. wasm without `simd128`, Cortex-M).
    #[default]
    Auto,
    /// One element at a time, `libm` for `exp` and `ln`.
    Scalar,
    /// Eight lanes through `wide`, compiled for the build's baseline instruction set
    /// (SSE2 on x86-64 by default, NEON on aarch64, AVX2 with `-C target-cpu=native`,
    /// `simd128` on wasm32 built with it). Unavailable (and compiled out) where the build
    /// has no vector registers (wasm without `simd128`, Cortex-M): there `wide` computes
    /// its lanes one by one, 1.6x slower than `Scalar` on the sigmoid family and 2.7x on the
    /// softmax family (wasm under Node), and its code took 2.6 MB of a Cortex-M4F firmware.
    Portable,
    /// Sixteen lanes as two 256-bit AVX2 registers with FMA, F16C and POPCNT (x86-64,
    /// detected at run time; every AVX2 CPU has the other three, but a virtual machine may
    /// hide one, and then `Auto` takes `Portable`).
    Avx2,
    /// Sixteen lanes in one 512-bit register: AVX-512F with AVX-512DQ (every AVX-512 CPU
    /// but the Xeon Phi) and POPCNT (x86-64, detected at run time).
    Avx512,
}

impl Backend {
    /// The concrete backend this value runs on: `Auto` resolved for this CPU, or `self`.
    ///
    /// # Errors
    /// [`Error::BackendUnavailable`] if `self` needs an instruction set this CPU lacks.
    ///
    /// # Example
    /// ```
    /// use focal_loss::Backend;
    /// let b = Backend::Auto.resolve()?;
    /// assert_ne!(b, Backend::Auto);
    /// assert!(b.is_available());
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn resolve(self) -> Result<Backend, Error> {
        self.isa().map(Isa::backend)
    }

    /// The instruction set this value runs on, with the proof that this CPU has it: `Auto`
    /// resolved to the widest one, or `self`.
    pub(crate) fn isa(self) -> Result<Isa, Error> {
        let unavailable = Err(Error::BackendUnavailable {
            backend: self.name(),
        });
        match self {
            Backend::Auto => Ok(Isa::best()),
            Backend::Scalar => Ok(Isa::Scalar),
            Backend::Portable => portable::detect().map_or(unavailable, |t| Ok(Isa::Portable(t))),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => x86::avx2::detect().map_or(unavailable, |t| Ok(Isa::Avx2(t))),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => x86::avx512::detect().map_or(unavailable, |t| Ok(Isa::Avx512(t))),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx2 | Backend::Avx512 => unavailable,
        }
    }

    /// Whether this CPU can run the backend (`Auto` and `Scalar` always can; `Portable`
    /// wherever the build has vector registers for it: every x86-64 and aarch64 build, wasm
    /// with `simd128`).
    ///
    /// # Example
    /// ```
    /// use focal_loss::Backend;
    /// assert!(Backend::Auto.is_available() && Backend::Scalar.is_available());
    /// ```
    pub fn is_available(self) -> bool {
        self.isa().is_ok()
    }

    /// A short name: `"auto"`, `"scalar"`, `"portable"`, `"avx2"`, `"avx512"`.
    ///
    /// # Example
    /// ```
    /// assert_eq!(focal_loss::Backend::Avx512.name(), "avx512");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Scalar => "scalar",
            Backend::Portable => "portable",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
        }
    }

    /// Every concrete backend this CPU can run, widest last.
    ///
    /// # Example
    /// ```
    /// use focal_loss::Backend;
    /// assert!(Backend::available().any(|b| b == Backend::Scalar));
    /// ```
    pub fn available() -> impl Iterator<Item = Backend> {
        [
            Backend::Scalar,
            Backend::Portable,
            Backend::Avx2,
            Backend::Avx512,
        ]
        .into_iter()
        .filter(|b| b.is_available())
    }
}

/// A concrete instruction set that this CPU has: the x86 variants carry the token of their
/// detection, so a value of this type is the proof that [`select`] may run on it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Isa {
    Scalar,
    /// Only where `wide` has vector registers (its token is uninhabited elsewhere, see
    /// `portable::Token`).
    Portable(portable::Token),
    #[cfg(target_arch = "x86_64")]
    Avx2(x86::avx2::Token),
    #[cfg(target_arch = "x86_64")]
    Avx512(x86::avx512::Token),
}

impl Isa {
    /// The widest instruction set of this CPU: AVX-512F + DQ, else AVX2 + FMA, else `Portable`
    /// if `wide` has vector registers in this build, else `Scalar`.
    fn best() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(t) = x86::avx512::detect() {
                return Isa::Avx512(t);
            }
            if let Some(t) = x86::avx2::detect() {
                return Isa::Avx2(t);
            }
        }
        portable::detect().map_or(Isa::Scalar, Isa::Portable)
    }

    /// The public name of this instruction set.
    fn backend(self) -> Backend {
        match self {
            Isa::Scalar => Backend::Scalar,
            Isa::Portable(_) => Backend::Portable,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(_) => Backend::Avx2,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512(_) => Backend::Avx512,
        }
    }
}

/// Work written once over the lane type (a loss family's pass, a validating scan), which
/// [`select`] runs on a chosen instruction set.
pub(crate) trait Kernel {
    type Output;
    /// The work on lanes `L`.
    fn run<L: Body>(self) -> Self::Output;
}

/// A piece of a kernel's work on lanes `L` that its backend compiles as a function of its
/// own ([`Body::part`]), with the backend's instruction set enabled.
///
/// Why: a kernel inlined whole into one function per backend and element type grows so large
/// that LLVM's loop passes, whose cost grows with the function's size for every loop in it,
/// took most of the crate's release build (12 minutes on a Zen 3 core, 85% of it in the
/// softmax pass, which inlined six copies of its kernels into one function). Each piece handed
/// to `part` is one whole-call loop (the row kernel, the column kernel), so the one call it
/// adds per batch costs nothing measurable.
pub(crate) trait Part<L> {
    type Output;
    /// The work.
    fn run(self) -> Self::Output;
}

/// Makes the calling function's first block use its stack frame, so that the compiler sets
/// the frame up (and probes it) before anything else runs. Called first in every function
/// that runs a kernel or a part of one (`run` of each backend, [`Body::part`], the x86
/// `part_tf`): their frames hold the kernels' stack buffers (the softmax pass's 32 KB, the
/// class-last column blocks' up to 90 KB on AVX-512).
///
/// Why: on x86-64 LLVM probes a frame larger than 32 KB (`probe-stack=inline-asm`, Rust's
/// default) with a loop that counts in `r11` without checking whether `r11` holds a live
/// value, and its shrink-wrapping may put the frame's set-up after code that does (the
/// RISC-V back end's twin, llvm/llvm-project issue 198699). It happened here: a release
/// build (rustc 1.95, LLVM 22) of the softmax pass on the portable backend kept a `false`
/// of the dispatch in `r11` across the probe loop, which replaced it with the low byte of a
/// stack address, and a C = 3 map ran the row kernel and panicked. With the frame used in
/// the first block, shrink-wrapping has nowhere to move the set-up: it comes first, where
/// no register but the arguments is live. `.ci/probes.sh` checks every release test
/// binary's functions of this crate for a probe loop after other code.
#[inline(always)]
pub(crate) fn frame_first() {
    let mut slot = 0u8;
    core::hint::black_box(&mut slot);
}

/// The one dispatch point: `k` on the instruction set `isa`.
#[cfg_attr(not(opt_level_0), inline(always))]
pub(crate) fn select<K: Kernel>(isa: Isa, k: K) -> K::Output {
    match isa {
        Isa::Scalar => scalar::run(k),
        Isa::Portable(t) => portable::run(t, k),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(t) => x86::avx2::run(t, k),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512(t) => x86::avx512::run(t, k),
    }
}

/// The widest vector of any backend, in `f32` lanes (for the stack buffers of the passes).
pub(crate) const MAX_LANES: usize = {
    let m = max(scalar::LANES, portable::LANES);
    #[cfg(target_arch = "x86_64")]
    let m = max(m, max(x86::avx2::LANES, x86::avx512::LANES));
    m
};

/// The widest block of any backend's column kernels ([`Lane::Cols`](lane::Lane::Cols)), in
/// `f32` lanes.
pub(crate) const MAX_COL_LANES: usize = {
    let m = max(
        <<f32 as lane::Lane>::Cols as lane::Lane>::LANES,
        <<portable::F8 as lane::Lane>::Cols as lane::Lane>::LANES,
    );
    #[cfg(target_arch = "x86_64")]
    let m = max(m, max(x86::avx2::COL_LANES, x86::avx512::COL_LANES));
    m
};

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::lane::{Lane, Two};

    /// Compares the bits of [`Lane::exp_normal`] and [`Lane::exp`] over its domain `[-87, -0]`
    /// on the backend it runs on, for its lane type `L` and for `Two<L>` (the column kernel's
    /// blocks), and those of [`Lane::softmax_exp_normal`] and [`Lane::softmax_exp`], which
    /// must also be those of [`crate::math::exp_table`] on the scalar lane where
    /// [`Lane::LOOKUP16_FAST`] (else those of [`Lane::exp`]): every `step`-th `f32` by bit
    /// pattern (the same count per binade), `grid` points evenly spaced in value (most of the
    /// domain's width, where the bit patterns are sparse), and every `f32` within 2^16
    /// patterns of either end. Returns `(checked in [-87, -1], differing)`.
    struct ExpNormalBits {
        step: usize,
        grid: u32,
    }

    impl ExpNormalBits {
        fn check<L: Lane>(&self) -> (u64, u64) {
            const NEG_ZERO: u32 = 0x8000_0000;
            let end = (-87.0f32).to_bits();
            let ends = (NEG_ZERO..NEG_ZERO + (1 << 16)).chain(end - (1 << 16)..=end);
            let spread = (NEG_ZERO..=end).step_by(self.step);
            let grid = (0..=self.grid).map(|i| (-87.0 * i as f64 / self.grid as f64) as f32);
            let xs = ends.chain(spread).map(f32::from_bits).chain(grid);
            let mut buf = [0f32; 2 * MAX_LANES];
            let (mut wide, mut bad, mut k) = (0u64, 0u64, 0usize);
            let mut compare = |buf: &[f32]| {
                let x = L::load_or(buf, -1.0);
                let (mut a, mut b) = ([0f32; 2 * MAX_LANES], [0f32; 2 * MAX_LANES]);
                let (mut sa, mut sb) = ([0f32; 2 * MAX_LANES], [0f32; 2 * MAX_LANES]);
                x.exp().store(&mut a);
                x.exp_normal().store(&mut b);
                x.softmax_exp().store(&mut sa);
                x.softmax_exp_normal().store(&mut sb);
                for (i, &v) in buf.iter().enumerate() {
                    let want = if L::LOOKUP16_FAST {
                        crate::math::exp_table(v)
                    } else {
                        a[i]
                    };
                    bad += (a[i].to_bits() != b[i].to_bits()) as u64;
                    bad += (sa[i].to_bits() != sb[i].to_bits()) as u64;
                    bad += (sa[i].to_bits() != want.to_bits()) as u64;
                    wide += (v <= -1.0) as u64;
                }
            };
            for x in xs {
                buf[k] = x;
                k += 1;
                if k == L::LANES {
                    compare(&buf[..k]);
                    k = 0;
                }
            }
            compare(&buf[..k]);
            (wide, bad)
        }
    }

    impl Kernel for ExpNormalBits {
        type Output = [(u64, u64); 2];
        fn run<L: Body>(self) -> [(u64, u64); 2] {
            [self.check::<L>(), self.check::<Two<L>>()]
        }
    }

    /// A xorshift64 generator from `state` (not 0): the tests' reproducible random bits.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// [`Lane::wide_add_where`] and [`Lane::widen_where`] against the select and the plain
    /// widening they stand for, bit for bit: random sums and values (subnormal to large, some
    /// `-0`), every lane kept or not at random. Returns the lanes compared.
    struct WideWhere;

    impl WideWhere {
        fn check<L: Lane>() -> usize {
            let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
            let mut compared = 0;
            for _ in 0..4000 {
                let (mut v, mut coin, mut acc) = (
                    [0f32; 2 * MAX_LANES],
                    [0f32; 2 * MAX_LANES],
                    [0f64; 2 * MAX_LANES],
                );
                for ((v, c), a) in v.iter_mut().zip(&mut coin).zip(&mut acc) {
                    let r = next();
                    *v = match r % 8 {
                        0 => -0.0,
                        1 => f32::from_bits((r >> 8) as u32 & 0x007f_ffff),
                        _ => f32::from_bits((r >> 8) as u32 & 0x7f7f_ffff),
                    };
                    *c = (r >> 40 & 1) as f32;
                    *a = f64::from_bits(((1023 + (r >> 44) % 81) << 52) | (r >> 12 & 0xf_ffff))
                        - 1e12;
                }
                let (x, keep) = (
                    L::load_or(&v, 0.0),
                    L::load_or(&coin, 0.0).eq(L::splat(1.0)),
                );
                let zero = L::splat(0.0);
                let a = L::wide_load(&acc);
                let (mut got, mut want) = ([0f64; 2 * MAX_LANES], [0f64; 2 * MAX_LANES]);
                L::wide_store(L::wide_add_where(a, x, keep), &mut got);
                L::wide_store(L::wide_add(a, L::select(keep, x, zero)), &mut want);
                let (mut got_w, mut want_w) = ([0f64; 2 * MAX_LANES], [0f64; 2 * MAX_LANES]);
                L::wide_store(L::widen_where(x, keep), &mut got_w);
                L::wide_store(L::widen(L::select(keep, x, zero)), &mut want_w);
                for j in 0..L::LANES {
                    assert_eq!(got[j].to_bits(), want[j].to_bits(), "{} lane {j}", L::LANES);
                    assert_eq!(
                        got_w[j].to_bits(),
                        want_w[j].to_bits(),
                        "{} lane {j}",
                        L::LANES
                    );
                    compared += 1;
                }
            }
            compared
        }
    }

    impl Kernel for WideWhere {
        type Output = usize;
        fn run<L: Body>(self) -> usize {
            Self::check::<L>() + Self::check::<Two<L>>()
        }
    }

    #[test]
    fn masked_widenings_have_the_bits_of_a_select() {
        for backend in Backend::available() {
            let compared = select(backend.isa().unwrap(), WideWhere);
            assert!(compared >= 4000 * 3, "{}: {compared}", backend.name());
        }
    }

    /// [`Lane::transpose_rows`] and [`Lane::untranspose_rows`] on every class count to 32 and
    /// block length to 64 rows (whole and partial tiles), and slices one element short or
    /// long: where taken, the transposition and nothing else written; where not, nothing
    /// written. Returns the number of shapes taken.
    struct Transposes;

    impl Kernel for Transposes {
        type Output = usize;
        fn run<L: Body>(self) -> usize {
            const SENTINEL: f32 = -7.25;
            const MAX: usize = 32 * 64 + 1;
            let mut taken = 0;
            for cn in 1..=32usize {
                for ln in [1usize, 8, 16, 24, 32, 48, 64] {
                    let n = cn * ln;
                    let mut rows = [0f32; MAX];
                    for (i, v) in rows[..n].iter_mut().enumerate() {
                        *v = i as f32 + 0.5;
                    }
                    // (the exact transposition, followed by one element more)
                    let mut cols = [SENTINEL; MAX];
                    for p in 0..ln {
                        for c in 0..cn {
                            cols[c * ln + p] = rows[p * cn + c];
                        }
                    }
                    for (len, extra) in [(n, 1), (n, 0), (n - 1, 1)] {
                        let mut dst = [SENTINEL; MAX];
                        let dst = &mut dst[..n + extra];
                        let whole = len == n;
                        if L::transpose_rows(&rows[..len], dst, cn, ln) {
                            assert!(whole, "{} took {len} of {cn} x {ln}", L::LANES);
                            assert_eq!(dst[..n], cols[..n], "C {cn} ln {ln}");
                            assert!(dst[n..].iter().all(|&v| v == SENTINEL));
                            taken += 1;
                        } else {
                            assert!(dst.iter().all(|&v| v == SENTINEL), "C {cn} ln {ln}");
                        }
                        let mut back = [SENTINEL; MAX];
                        let back = &mut back[..len];
                        if L::untranspose_rows(&cols[..n + extra], back, cn, ln) {
                            assert!(whole, "{} took {len} of {cn} x {ln} back", L::LANES);
                            assert_eq!(back[..], rows[..n], "C {cn} ln {ln} back");
                            taken += 1;
                        } else {
                            assert!(back.iter().all(|&v| v == SENTINEL), "C {cn} ln {ln}");
                        }
                    }
                }
            }
            taken
        }
    }

    /// [`Lane::wide_trees`] against the tree [`Lane::wide_tree`] documents, written out on
    /// `f64`s: rows of sums whose magnitudes span 2^-60 to 2^60 with both signs, so that a
    /// different order of the additions changes bits. Returns the rows compared.
    struct WideTrees;

    impl Kernel for WideTrees {
        type Output = usize;
        fn run<L: Body>(self) -> usize {
            let mut next = xorshift(0x2545_f491_4f6c_dd1d);
            let mut compared = 0;
            for _ in 0..2000 {
                let mut rows = [[0f64; MAX_LANES]; MAX_LANES];
                let mut accs = [L::wide_zero(); MAX_LANES];
                for (row, acc) in rows.iter_mut().zip(&mut accs) {
                    for v in row.iter_mut() {
                        let r = next();
                        let mag = f64::from_bits(((1023 + (r % 121) as i64 - 60) as u64) << 52);
                        let frac = 1.0 + (r >> 11) as f64 / (1u64 << 53) as f64;
                        *v = if r & 1 == 0 { mag * frac } else { -mag * frac };
                    }
                    *acc = L::wide_load(row);
                }
                let mut got = [0f64; MAX_LANES];
                L::wide_store(L::wide_trees(&accs), &mut got);
                for (j, row) in rows.iter().enumerate().take(L::LANES) {
                    let mut v = *row;
                    let mut h = L::LANES / 2;
                    while h >= 1 {
                        for i in 0..h {
                            v[i] += v[i + h];
                        }
                        h /= 2;
                    }
                    assert_eq!(got[j].to_bits(), v[0].to_bits(), "{} row {j}", L::LANES);
                    assert_eq!(L::wide_tree(accs[j]).to_bits(), v[0].to_bits());
                    compared += 1;
                }
            }
            compared
        }
    }

    #[test]
    fn wide_trees_add_in_the_order_of_wide_tree() {
        for backend in Backend::available() {
            let compared = select(backend.isa().unwrap(), WideTrees);
            assert!(compared >= 2000, "{}: {compared}", backend.name());
        }
    }

    #[test]
    fn transposes_are_exact_and_write_nothing_when_not_taken() {
        for backend in Backend::available() {
            let taken = select(backend.isa().unwrap(), Transposes);
            // AVX-512: 2, 4, 8 and 9 to 30 classes, four block lengths (multiples of 16),
            // two slices each, both ways; AVX2: 2 to 16 classes, six block lengths
            // (multiples of 8); the other backends have no faster way.
            let want = match backend {
                Backend::Avx512 => 25 * 4 * 2 * 2,
                Backend::Avx2 => 15 * 6 * 2 * 2,
                _ => 0,
            };
            assert_eq!(taken, want, "{}", backend.name());
        }
    }

    #[test]
    fn exp_normal_has_the_bits_of_exp_on_its_domain() {
        // Native optimised builds check about 20M arguments per lane type; the emulated and
        // unoptimised ones (qemu, wasm, AddressSanitizer) about 2M.
        let (step, grid) = if cfg!(all(target_arch = "x86_64", not(opt_level_0))) {
            (61, 1 << 22)
        } else {
            (997, 1 << 20)
        };
        for backend in Backend::available() {
            for (half, (wide, bad)) in select(backend.isa().unwrap(), ExpNormalBits { step, grid })
                .into_iter()
                .enumerate()
            {
                let name = [backend.name(), "two"][half];
                assert!(wide > grid as u64, "{name}: {wide} arguments in [-87, -1]");
                assert_eq!(bad, 0, "{} ({name}): {bad} differ", backend.name());
            }
        }
    }
}
