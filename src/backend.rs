//! Which instantiation of the core runs a call, and the run-time choice of the widest one.

use crate::error::Error;
use crate::pass::{self, Job, Sink, Sums};
use crate::simd;
use crate::target::Target;
use crate::target::sealed::Slice;

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
    /// `Avx512`, else `Avx2`, else `Portable`.
    #[default]
    Auto,
    /// One element at a time, `libm` for `exp` and `ln`.
    Scalar,
    /// Eight lanes through `wide`, compiled for the build's baseline instruction set
    /// (SSE2 on x86-64 by default, NEON on aarch64, AVX2 with `-C target-cpu=native`).
    Portable,
    /// Sixteen lanes as two 256-bit AVX2 registers with FMA (x86-64, detected at run time).
    Avx2,
    /// Sixteen lanes in one 512-bit AVX-512F register (x86-64, detected at run time).
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
        match self {
            Backend::Auto => Ok(best()),
            b if b.is_available() => Ok(b),
            b => Err(Error::BackendUnavailable { backend: b.name() }),
        }
    }

    /// Whether this CPU can run the backend (`Auto`, `Scalar` and `Portable` always can).
    ///
    /// # Example
    /// ```
    /// use focal_loss::Backend;
    /// assert!(Backend::Scalar.is_available() && Backend::Portable.is_available());
    /// ```
    pub fn is_available(self) -> bool {
        match self {
            Backend::Auto | Backend::Scalar | Backend::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => crate::x86::has_avx2(),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => crate::x86::has_avx512(),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx2 | Backend::Avx512 => false,
        }
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

fn best() -> Backend {
    if Backend::Avx512.is_available() {
        Backend::Avx512
    } else if Backend::Avx2.is_available() {
        Backend::Avx2
    } else {
        Backend::Portable
    }
}

/// One pass of `job` on a resolved, available backend.
pub(crate) fn pass<T: Target>(backend: Backend, job: &Job<'_, T>, sink: &mut Sink<'_>) -> Sums {
    match T::slice(job.t) {
        Slice::F32(t) => pass_f32(backend, &job.with_targets(t), sink),
        Slice::U8(t) => pass_u8(backend, &job.with_targets(t), sink),
    }
}

// The passes are compiled here, once per target type, not in the crates that call the
// generic entry points.
#[inline(never)]
fn pass_f32(backend: Backend, job: &Job<'_, f32>, sink: &mut Sink<'_>) -> Sums {
    pass_any(backend, job, sink)
}

#[inline(never)]
fn pass_u8(backend: Backend, job: &Job<'_, u8>, sink: &mut Sink<'_>) -> Sums {
    pass_any(backend, job, sink)
}

#[inline(always)]
fn pass_any<T: Target>(backend: Backend, job: &Job<'_, T>, sink: &mut Sink<'_>) -> Sums {
    match backend {
        Backend::Scalar => pass_scalar(job, sink),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => crate::x86::pass_avx512(job, sink),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => crate::x86::pass_avx2(job, sink),
        _ => pass_portable(job, sink),
    }
}

/// The scalar pass, in a frame of its own (inlined into the dispatch, its stack frame would be
/// taken by every call, whichever backend runs it).
#[inline(never)]
fn pass_scalar<T: Target>(job: &Job<'_, T>, sink: &mut Sink<'_>) -> Sums {
    pass::pass::<f32, T>(job, sink)
}

/// The portable pass, also the fallback of the x86 backends: one copy per target type (each
/// caller that inlined it would compile the whole pass again).
#[inline(never)]
pub(crate) fn pass_portable<T: Target>(job: &Job<'_, T>, sink: &mut Sink<'_>) -> Sums {
    pass::pass::<simd::Vector, T>(job, sink)
}

/// Validation and target sum on a resolved, available backend (`x` empty: the targets alone,
/// see [`pass::scan`]).
pub(crate) fn scan<T: Target>(backend: Backend, x: &[f32], t: &[T]) -> Sums {
    match T::slice(t) {
        Slice::F32(t) => scan_f32(backend, x, t),
        Slice::U8(t) => scan_u8(backend, x, t),
    }
}

#[inline(never)]
fn scan_f32(backend: Backend, x: &[f32], t: &[f32]) -> Sums {
    scan_any(backend, x, t)
}

#[inline(never)]
fn scan_u8(backend: Backend, x: &[f32], t: &[u8]) -> Sums {
    scan_any(backend, x, t)
}

#[inline(always)]
fn scan_any<T: Target>(backend: Backend, x: &[f32], t: &[T]) -> Sums {
    match backend {
        Backend::Scalar => pass::scan::<f32, T>(x, t),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => crate::x86::scan_avx512(x, t),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => crate::x86::scan_avx2(x, t),
        _ => scan_portable(x, t),
    }
}

/// The portable scan, also the fallback of the x86 backends (see [`pass_portable`]).
#[inline(never)]
pub(crate) fn scan_portable<T: Target>(x: &[f32], t: &[T]) -> Sums {
    pass::scan::<simd::Vector, T>(x, t)
}
