//! The x86-64 backends, chosen at run time: AVX-512F + DQ ([`avx512`], 16 lanes in one register)
//! and AVX2 + FMA ([`avx2`], 16 lanes in two registers), and what they share. With the two
//! backend files, the only `unsafe` code of the crate.
//!
//! # Safety
//! Each backend's vector type is private to its file, and the file's one entry point,
//! `run`, takes a `Token` that only that file's `detect` makes, after `cpufeatures` has
//! checked (CPUID, and XGETBV for the operating system's support of the registers) that the
//! CPU has the instruction set. So a value of a vector type exists only on a CPU that can
//! execute its intrinsics: every `unsafe` block that calls a non-memory intrinsic relies on
//! that and says so as `// SAFETY: invariant`. Memory intrinsics (`loadu`, `storeu`) take
//! pointers from references to arrays of exactly the register's size, so every access is in
//! bounds; unaligned access is what `loadu`/`storeu` are for. The one exception, the tile
//! transposition (`transpose_rows`, `untranspose_rows`, AVX-512 and AVX2), reads and writes
//! rows at offsets into slices whose lengths it checks first (`tiles`): on AVX-512, 9 to 30
//! classes masking each row's access to its own elements, 2, 4 and 8 classes whole vectors of
//! `16 / C` rows inside the checked length; on AVX2, 2 to 16 classes in 128-bit quarters (4
//! rows are `C` quarters) on the row side and whole vectors of 8 rows of one class on the
//! other, inside it; a unit test checks both on every class count and block length the
//! kernels use, and that they write nothing where they decline. Under Miri (which cannot run
//! CPUID) `cpufeatures` reports the features enabled at compile time.

use crate::sum::{self, Dd};

/// A backend file's entry: `LANES`, the detection `Token` (made only by `detect`, after
/// `cpufeatures` has found the instruction set), `run` (work on the file's vector type,
/// compiled with the instruction set enabled), the vector type's [`Body`](crate::sigmoid::pass::Body) compiled the same
/// way, and a `Sum2` per `f64` lane for its accumulators (through [`crate::sum::two_sum`] on a
/// small `Add`/`Sub` wrapper of the `f64` register). One macro, so that the two files state
/// only what differs.
macro_rules! entry {
    (
        vector: $vt:ident,
        what: $what:literal,
        enable: $enable:literal,
        detect: [$($feat:tt),+],
        extra: $extra:expr,
        f64: $f64t:ident($reg:ty, $add:ident, $sub:ident),
        sum2: $sum2:ident
    ) => {
        /// Sixteen lanes.
        pub(crate) const LANES: usize = 16;

        cpufeatures::new!(cpu, $($feat),+);

        #[doc = concat!("Proof that this CPU and its operating system support ", $what, ": only [`detect`] makes one.")]
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct Token(());

        /// A [`Token`] if this CPU has the instruction set (detected once, then cached).
        pub(crate) fn detect() -> Option<Token> {
            (cpu::get() && $extra).then_some(Token(()))
        }

        #[doc = concat!("`k` on `", stringify!($vt), "`, compiled with the instruction set enabled.")]
        pub(crate) fn run<K: crate::backend::Kernel>(_: Token, k: K) -> K::Output {
            // SAFETY: the token proves that the CPU supports the instruction set.
            unsafe { run_tf(k) }
        }

        #[target_feature(enable = $enable)]
        fn run_tf<K: crate::backend::Kernel>(k: K) -> K::Output {
            crate::backend::frame_first();
            k.run::<$vt>()
        }

        #[target_feature(enable = $enable)]
        #[inline(never)]
        fn part_tf<P: crate::backend::Part<$vt>>(p: P) -> P::Output {
            crate::backend::frame_first();
            p.run()
        }

        impl crate::sigmoid::pass::Body for $vt {
            #[inline(always)]
            fn part<P: crate::backend::Part<$vt>>(p: P) -> P::Output {
                // SAFETY: invariant (a part of work on the vector type is made only by work
                // on it, which `run` runs after the check).
                unsafe { part_tf(p) }
            }
        }

        /// `f64` lanes of one register, for [`crate::sum::two_sum`].
        #[derive(Clone, Copy)]
        struct $f64t($reg);

        impl core::ops::Add for $f64t {
            type Output = $f64t;
            #[inline(always)]
            fn add(self, o: $f64t) -> $f64t {
                // SAFETY: invariant.
                $f64t(unsafe { $add(self.0, o.0) })
            }
        }

        impl core::ops::Sub for $f64t {
            type Output = $f64t;
            #[inline(always)]
            fn sub(self, o: $f64t) -> $f64t {
                // SAFETY: invariant.
                $f64t(unsafe { $sub(self.0, o.0) })
            }
        }

        /// Sum2 per lane, as `sum::Dd::add_f64`: `hi += l` and its exact rounding error into
        /// `lo` (an infinite sum makes `lo` NaN, which `total` drops).
        #[inline(always)]
        fn $sum2(hi: &mut $reg, lo: &mut $reg, l: $reg) {
            let (s, e) = crate::sum::two_sum($f64t(*hi), $f64t(l));
            *hi = s.0;
            *lo = ($f64t(*lo) + e).0;
        }
    };
}

pub(crate) mod avx2;
pub(crate) mod avx512;

/// Whether the CPU has F16C (`vcvtph2ps`/`vcvtps2ph`, CPUID leaf 1, ECX bit 29), which
/// `cpufeatures` does not list; asked once, then cached. Every CPU with AVX2 has it (it came
/// a generation earlier), so requiring it for the AVX2 backend excludes no real CPU. Under
/// Miri, which cannot run CPUID, the compile-time setting.
fn f16c() -> bool {
    #[cfg(miri)]
    {
        cfg!(target_feature = "f16c")
    }
    #[cfg(not(miri))]
    {
        use core::sync::atomic::{AtomicU8, Ordering};
        static KNOWN: AtomicU8 = AtomicU8::new(0);
        match KNOWN.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                // SAFETY: CPUID exists on every x86-64 CPU (`unsafe` on older toolchains only).
                #[allow(unused_unsafe)]
                let ecx = unsafe { core::arch::x86_64::__cpuid(1) }.ecx;
                let has = ecx & (1 << 29) != 0;
                KNOWN.store(1 + has as u8, Ordering::Relaxed);
                has
            }
        }
    }
}

/// Writes the first `min(dst.len(), 16)` of the 16 words of `h` (both backends' half-precision
/// stores).
#[inline(always)]
fn store_u16x16(h: core::arch::x86_64::__m256i, dst: &mut [u16]) {
    if let Some(d) = dst.first_chunk_mut::<16>() {
        // SAFETY: invariant; writes the 32 bytes of the array `d`.
        unsafe { core::arch::x86_64::_mm256_storeu_si256(d.as_mut_ptr().cast(), h) };
    } else {
        let mut a = [0u16; 16];
        // SAFETY: invariant; writes the 32 bytes of `a`.
        unsafe { core::arch::x86_64::_mm256_storeu_si256(a.as_mut_ptr().cast(), h) };
        let n = dst.len().min(16);
        dst[..n].copy_from_slice(&a[..n]);
    }
}

/// Pads a short slice into a full array (the last vector of a batch).
#[inline(always)]
fn padded<const N: usize>(src: &[f32], fill: f32) -> [f32; N] {
    let mut a = [fill; N];
    let n = src.len().min(N);
    a[..n].copy_from_slice(&src[..n]);
    a
}

/// Sums per-lane double-word accumulators (see [`sum::total`]) and target sums.
fn total(hi: &[f64], lo: &[f64], t: &[f64]) -> (Dd, f64) {
    (sum::total(hi, lo), t.iter().sum())
}
