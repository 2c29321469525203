//! The x86-64 backends, chosen at run time: AVX-512F ([`avx512`], 16 lanes in one register)
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
//! bounds; unaligned access is what `loadu`/`storeu` are for. Under Miri (which cannot run
//! CPUID) `cpufeatures` reports the features enabled at compile time.

use crate::sum::{self, Dd};

pub(crate) mod avx2;
pub(crate) mod avx512;

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
