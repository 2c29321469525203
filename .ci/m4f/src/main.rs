//! focal_loss on a Cortex-M4F (QEMU's `mps2-an386`) against the host, run by `.ci/m4f.sh`.
//!
//! [`cases`] runs fixed batches (inputs from a xorshift, fixed-size arrays: no allocation)
//! through the public API of both families, on `Backend::Scalar`, on the default
//! `Backend::Auto` (`Scalar` on the M4, AVX-512 or AVX2 on an x86-64 host) and on
//! `Backend::Portable` where it is available (not on the M4), and writes one line per result: `scalar|auto|portable NAME` and the
//! bits of each f32 (`{:08x}` of `to_bits`). Lines starting with `#` are comments, which the
//! comparison (`.ci/m4f/compare.py`) ignores.
//!
//! On the host, `main` prints the lines to stdout (the cases run, unoptimised, on a thread
//! with a 512 KiB stack). On the firmware, the entry point prints
//! the same lines through semihosting, then the stack high-water mark of the heaviest call,
//! and exits through semihosting (failure on a panic). The firmware has no global allocator:
//! anything that needed `alloc` would fail to link.
//!
//! With the `baseline` feature every call to focal_loss is replaced by a stub of the same
//! shape ([`stub`]), for the flash size the crate adds (the two images' difference).
#![cfg_attr(target_os = "none", no_std, no_main)]

use core::fmt::{self, Write};

use focal_loss::half::{bf16, f16};
use focal_loss::{Backend, Error, Modulator, Reduction};
#[cfg(not(feature = "baseline"))]
use focal_loss::{Focal, SoftmaxFocal, class_balanced_weights};
#[cfg(feature = "baseline")]
use stub::{Focal, SoftmaxFocal, class_balanced_weights};

/// Runs each call of [`cases`]: on the firmware, to measure the stack the call uses.
pub trait Probe {
    fn call<R>(&mut self, tag: &'static str, name: &'static str, f: impl FnOnce() -> R) -> R;
}

/// xorshift32: the same inputs on every target (the conversions to f32 are exact).
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// In `[0, 1)`, a multiple of `2^-24`.
    fn unit(&mut self) -> f32 {
        (self.next() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

fn ok<T>(r: Result<T, Error>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("focal_loss returned an error: {e}"),
    }
}

/// One line: `TAG NAME` and the bits of `head` then of each of `tail`.
fn emit<W: Write>(out: &mut W, tag: &str, name: &str, head: &[f32], tail: &[f32]) -> fmt::Result {
    write!(out, "{tag} {name}")?;
    for v in head.iter().chain(tail) {
        write!(out, " {:08x}", v.to_bits())?;
    }
    writeln!(out)
}

// The sigmoid batch: 9 rows of 5 classes (45 elements: a 16-lane block, a tail).
const SC: usize = 5;
const SN: usize = 9 * SC;
// The softmax batch: 11 rows of 5 classes; the [N, C, S] batch: 2 images, 4 classes, 9 positions.
const MC: usize = 5;
const MR: usize = 11;
const MN: usize = MR * MC;
const NC: usize = 4;
const NS: usize = 9;
const NN: usize = 2;

/// Every case on `Backend::Scalar`, `Backend::Auto` and `Backend::Portable` (lines `scalar ...`,
/// `auto ...`, `portable ...`), after `#` lines naming what `Auto` runs on, whether
/// `Portable` is available (not on the M4: without vector registers it is compiled out) and
/// whether it fuses its multiply-adds.
pub fn cases<W: Write, P: Probe>(out: &mut W, probe: &mut P) -> fmt::Result {
    #[cfg(not(feature = "baseline"))]
    let auto = ok(Backend::Auto.resolve());
    #[cfg(feature = "baseline")]
    let auto = core::hint::black_box(Backend::Portable);
    writeln!(out, "# Backend::Auto runs on {}", auto.name())?;
    // Whether `Backend::Portable` fuses its multiply-adds (as `wide` does with FMA on x86-64
    // and always on aarch64): unfused on both sides, its results must be the same bits.
    let fused = cfg!(target_feature = "fma") || cfg!(target_arch = "aarch64");
    writeln!(
        out,
        "# Backend::Portable fuses mul_add: {}",
        if fused { "yes" } else { "no" }
    )?;
    let portable = Backend::Portable.is_available();
    writeln!(
        out,
        "# Backend::Portable available: {}",
        if portable { "yes" } else { "no" }
    )?;
    batch(out, probe, "scalar", Backend::Scalar)?;
    batch(out, probe, "auto", Backend::Auto)?;
    if portable {
        batch(out, probe, "portable", Backend::Portable)?;
    }
    Ok(())
}

fn batch<W: Write, P: Probe>(
    out: &mut W,
    probe: &mut P,
    tag: &'static str,
    b: Backend,
) -> fmt::Result {
    // ---- inputs (the same for both backends) ----
    let mut rng = Rng(0x9e37_79b9);
    let mut x = [0f32; SN];
    let mut hard = [0f32; SN];
    let mut hard_u8 = [0u8; SN];
    let mut soft = [0f32; SN];
    for i in 0..SN {
        x[i] = rng.range(-9.0, 9.0);
        let h = rng.unit() < 0.3;
        hard[i] = h as u8 as f32;
        hard_u8[i] = h as u8;
        soft[i] = rng.unit();
    }
    // The extremes: 0, a hopeless positive (x = -100, t = 1), saturated, tiny, far negative.
    x[0] = 0.0;
    (x[7], hard[7], hard_u8[7]) = (-100.0, 1.0, 1);
    x[13] = 40.0;
    x[21] = 1.0e-3;
    x[30] = -17.5;
    let x_bf16 = x.map(bf16::from_f32);

    let mut w = [0f32; SC];
    ok(class_balanced_weights(
        &[120_000, 800, 9, 40_000, 3],
        0.9999,
        &mut w,
    ));
    emit(out, tag, "class_balanced_weights.beta0.9999", &w, &[])?;
    let pos_weight = [1.0f32, 2.5, 0.5, 4.0, 1.25];

    // ---- the sigmoid family ----
    let mut g = [0f32; SN];
    let n = "sig.g2.hard.loss.mean";
    let l = probe.call(tag, n, || {
        ok(Focal::new(2.0).backend(b).loss(&x, &hard, Reduction::Mean))
    });
    emit(out, tag, n, &[l], &[])?;

    let n = "sig.g2.5.alpha.soft.grad.sum";
    let l = probe.call(tag, n, || {
        let f = Focal::new(2.5).alpha(0.25).backend(b);
        ok(f.loss_and_grad(&x, &soft, &mut g, Reduction::Sum))
    });
    emit(out, tag, n, &[l], &g)?;

    let n = "sig.g0.u8.grad.mean";
    let l = probe.call(tag, n, || {
        let f = Focal::new(0.0).backend(b);
        ok(f.loss_and_grad(&x, &hard_u8, &mut g, Reduction::Mean))
    });
    emit(out, tag, n, &[l], &g)?;

    let n = "sig.cb.tf_original.g2.u8.grad.perpositive";
    let l = probe.call(tag, n, || {
        let f = Focal::tf_original(2.0).class_weights(&w).backend(b);
        ok(f.loss_and_grad(&x, &hard_u8, &mut g, Reduction::PerPositive))
    });
    emit(out, tag, n, &[l], &g)?;

    let n = "sig.vidhoi.posw.smooth.soft.grad.mean";
    let l = probe.call(tag, n, || {
        let f = Focal::vidhoi(&w)
            .pos_weight(&pos_weight)
            .label_smoothing(0.05)
            .backend(b);
        ok(f.loss_and_grad(&x, &soft, &mut g, Reduction::Mean))
    });
    emit(out, tag, n, &[l], &g)?;

    let n = "sig.kornia.g2.5.soft.elementwise";
    probe.call(tag, n, || {
        let f = Focal::kornia(0.25, 2.5).backend(b);
        ok(f.loss_elementwise(&x, &soft, &mut g))
    });
    emit(out, tag, n, &g, &[])?;

    let mut g16 = [f16::ZERO; SN];
    let n = "sig.torchvision.g2.bf16.f16grad.mean";
    let l = probe.call(tag, n, || {
        let f = Focal::torchvision(0.25, 2.0).backend(b);
        ok(f.loss_and_grad(&x_bf16, &hard, &mut g16, Reduction::Mean))
    });
    emit(out, tag, n, &[l], &g16.map(f16::to_f32))?;

    let n = "sig.g1.separable.cw.soft.loss.sum";
    let l = probe.call(tag, n, || {
        let f = Focal::new(1.0)
            .modulator(Modulator::Separable)
            .class_weights(&w)
            .backend(b);
        ok(f.loss(&x, &soft, Reduction::Sum))
    });
    emit(out, tag, n, &[l], &[])?;

    // ---- the softmax family ----
    let mut z = [0f32; MN];
    let mut y_u8 = [0u8; MR];
    let mut y_u32 = [0u32; MR];
    let mut y_i64 = [0i64; MR];
    let mut dist = [0f32; MN];
    for r in 0..MR {
        let mut sum = 0.0;
        for c in 0..MC {
            z[r * MC + c] = rng.range(-6.0, 6.0);
            dist[r * MC + c] = rng.unit();
            sum += dist[r * MC + c];
        }
        for c in 0..MC {
            dist[r * MC + c] /= sum;
        }
        let y = rng.below(MC as u32);
        (y_u8[r], y_u32[r], y_i64[r]) = (y as u8, y, y as i64);
    }
    // A row of ties, a row with one far ahead, two ignored rows.
    z[3 * MC..4 * MC].fill(1.5);
    z[7 * MC + 2] = 30.0;
    (y_i64[2], y_i64[8]) = (-100, -100);

    let mut gz = [0f32; MN];
    let n = "sm.g2.u32.grad.mean";
    let l = probe.call(tag, n, || {
        let f = SoftmaxFocal::new(2.0).classes(MC).backend(b);
        ok(f.loss_and_grad(&z, &y_u32, &mut gz, Reduction::Mean))
    });
    emit(out, tag, n, &[l], &gz)?;

    let n = "sm.g2.5.cw.i64.ignore.grad.weightedmean";
    let l = probe.call(tag, n, || {
        let f = SoftmaxFocal::new(2.5)
            .class_weights(&w)
            .ignore_index(-100)
            .backend(b);
        ok(f.loss_and_grad(&z, &y_i64, &mut gz, Reduction::WeightedMean))
    });
    emit(out, tag, n, &[l], &gz)?;

    let n = "sm.ce.smooth0.1.u8.grad.mean";
    let l = probe.call(tag, n, || {
        let f = SoftmaxFocal::cross_entropy()
            .label_smoothing(0.1)
            .classes(MC)
            .backend(b);
        ok(f.loss_and_grad(&z, &y_u8, &mut gz, Reduction::Mean))
    });
    emit(out, tag, n, &[l], &gz)?;

    let n = "sm.class_balanced.u32.loss.mean";
    let l = probe.call(tag, n, || {
        let f = SoftmaxFocal::class_balanced(&w).backend(b);
        ok(f.loss(&z, &y_u32, Reduction::Mean))
    });
    emit(out, tag, n, &[l], &[])?;

    let mut rows = [0f32; MR];
    let n = "sm.g1.5.alpha.dense.per_row";
    probe.call(tag, n, || {
        let f = SoftmaxFocal::new(1.5).alpha(0.25).classes(MC).backend(b);
        ok(f.loss_per_row(&z, &dist, &mut rows))
    });
    emit(out, tag, n, &rows, &[])?;

    let mut nchw = [0f32; NN * NC * NS];
    for v in &mut nchw {
        *v = rng.range(-5.0, 5.0);
    }
    let mut y_nchw = [0u32; NN * NS];
    for y in &mut y_nchw {
        *y = rng.below(NC as u32);
    }
    let mut g_nchw = [0f32; NN * NC * NS];
    let n = "sm.nchw.spatial9.g2.u32.grad.sum";
    let l = probe.call(tag, n, || {
        let f = SoftmaxFocal::new(2.0).classes(NC).spatial(NS).backend(b);
        ok(f.loss_and_grad(&nchw, &y_nchw, &mut g_nchw, Reduction::Sum))
    });
    emit(out, tag, n, &[l], &g_nchw)?;

    let mut per = [0f32; NN * NS];
    let n = "sm.nchw.spatial9.g2.u32.per_row";
    probe.call(tag, n, || {
        let f = SoftmaxFocal::new(2.0).classes(NC).spatial(NS).backend(b);
        ok(f.loss_per_row(&nchw, &y_nchw, &mut per))
    });
    emit(out, tag, n, &per, &[])?;

    // A confident row: the top class's loss is tiny and rounds through T, S and ln S.
    let zc = [23.679f32, 14.036648, -17.740498, 19.178091];
    let mut gc = [0f32; 4];
    let n = "sm.confident.g4.937499.grad.sum";
    let l = probe.call(tag, n, || {
        let f = SoftmaxFocal::new(4.937499).backend(b);
        ok(f.loss_and_grad(&zc, &[0u8], &mut gc, Reduction::Sum))
    });
    emit(out, tag, n, &[l], &gc)?;
    Ok(())
}

/// Stubs of the calls [`cases`] makes, for the `baseline` image: the same harness and output
/// without focal_loss's code (its types `Backend`, `Reduction`, `Error` are kept; only
/// `Backend::name` of the crate stays linked).
#[cfg(feature = "baseline")]
mod stub {
    use core::hint::black_box;

    use focal_loss::{Backend, Error, Modulator, Reduction};

    pub fn class_balanced_weights(c: &[u64], beta: f64, out: &mut [f32]) -> Result<(), Error> {
        black_box((c, beta, out));
        Ok(())
    }

    /// Both families' builders and entry points, doing nothing but keep their arguments.
    #[derive(Clone, Copy)]
    pub struct Focal;
    pub type SoftmaxFocal = Focal;

    impl Focal {
        pub fn new(gamma: f32) -> Self {
            black_box(gamma);
            Focal
        }
        pub fn torchvision(alpha: f32, gamma: f32) -> Self {
            black_box((alpha, gamma));
            Focal
        }
        pub fn tf_original(gamma: f32) -> Self {
            Focal::new(gamma)
        }
        pub fn vidhoi(w: &[f32]) -> Self {
            black_box(w);
            Focal
        }
        pub fn kornia(alpha: f32, gamma: f32) -> Self {
            Focal::torchvision(alpha, gamma)
        }
        pub fn cross_entropy() -> Self {
            Focal
        }
        pub fn class_balanced(w: &[f32]) -> Self {
            Focal::vidhoi(w)
        }
        pub fn alpha(self, a: f32) -> Self {
            black_box(a);
            self
        }
        pub fn class_weights(self, w: &[f32]) -> Self {
            black_box(w);
            self
        }
        pub fn pos_weight(self, w: &[f32]) -> Self {
            black_box(w);
            self
        }
        pub fn label_smoothing(self, eps: f32) -> Self {
            black_box(eps);
            self
        }
        pub fn classes(self, c: usize) -> Self {
            black_box(c);
            self
        }
        pub fn spatial(self, s: usize) -> Self {
            black_box(s);
            self
        }
        pub fn ignore_index(self, i: i64) -> Self {
            black_box(i);
            self
        }
        pub fn modulator(self, m: Modulator) -> Self {
            black_box(m);
            self
        }
        pub fn backend(self, b: Backend) -> Self {
            black_box(b);
            self
        }
        pub fn loss<X, T>(&self, x: &[X], t: &[T], r: Reduction) -> Result<f32, Error> {
            black_box((x, t, r));
            Ok(black_box(0.0))
        }
        pub fn loss_and_grad<X, T, G>(
            &self,
            x: &[X],
            t: &[T],
            g: &mut [G],
            r: Reduction,
        ) -> Result<f32, Error> {
            black_box((x, t, g, r));
            Ok(black_box(0.0))
        }
        pub fn loss_elementwise<X, T, G>(
            &self,
            x: &[X],
            t: &[T],
            o: &mut [G],
        ) -> Result<(), Error> {
            black_box((x, t, o));
            Ok(())
        }
        pub fn loss_per_row<X, T, G>(&self, x: &[X], t: &[T], o: &mut [G]) -> Result<(), Error> {
            black_box((x, t, o));
            Ok(())
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    struct Direct;
    impl Probe for Direct {
        fn call<R>(&mut self, _: &'static str, _: &'static str, f: impl FnOnce() -> R) -> R {
            f()
        }
    }
    // On a thread with a quarter of the stack of a `cargo test` thread (2 MiB): this program
    // is built unoptimised, as users' tests are, where every inlined temporary has a stack
    // slot of its own (the crate's build.rs). A frame grown back to megabytes fails here.
    let s = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(|| {
            let mut s = String::new();
            cases(&mut s, &mut Direct).expect("formatting into a String");
            s
        })
        .expect("spawning the thread")
        .join()
        .expect("the cases panicked");
    print!("{s}");
    println!("# host: every case ran on a thread of {} KiB", STACK / 1024);
}

/// The host thread's stack (see `main`).
#[cfg(not(target_os = "none"))]
const STACK: usize = 512 * 1024;

#[cfg(target_os = "none")]
mod firmware {
    use core::fmt::{self, Write};
    use core::panic::PanicInfo;
    use core::ptr::{read_volatile, write_volatile};

    use cortex_m_rt::entry;
    use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
    use cortex_m_semihosting::hio::{self, HostStream};

    use super::Probe;

    /// Semihosting stdout, one host call per line (or per full buffer).
    struct Out {
        host: HostStream,
        buf: [u8; 256],
        len: usize,
    }

    impl Out {
        fn flush(&mut self) -> fmt::Result {
            let r = self.host.write_all(&self.buf[..self.len]);
            self.len = 0;
            r.map_err(|()| fmt::Error)
        }
    }

    impl Write for Out {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for &b in s.as_bytes() {
                if self.len == self.buf.len() {
                    self.flush()?;
                }
                self.buf[self.len] = b;
                self.len += 1;
                if b == b'\n' {
                    self.flush()?;
                }
            }
            Ok(())
        }
    }

    unsafe extern "C" {
        /// cortex-m-rt's lowest address the stack may reach (the end of .bss/.uninit).
        static _stack_end: u32;
    }

    const PAINT: u32 = 0xdead_c0de;
    /// How far below the caller the stack is painted (a call deeper than this shows as `>=`).
    const WINDOW: usize = 64 * 1024;

    #[inline(always)]
    fn sp() -> usize {
        let sp: usize;
        // SAFETY: reads the stack pointer, touches nothing.
        unsafe { core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack)) };
        sp
    }

    /// Paints the free stack from `lo` up to just below this function's own frame.
    #[inline(never)]
    fn paint(lo: usize) {
        let hi = sp() - 16;
        let mut a = lo;
        while a < hi {
            // SAFETY: below the stack pointer and above `_stack_end`: free stack, 4-aligned.
            unsafe { write_volatile(a as *mut u32, PAINT) };
            a += 4;
        }
    }

    /// The lowest address at or above `lo` whose word was overwritten.
    #[inline(never)]
    fn lowest_touched(lo: usize, hi: usize) -> usize {
        let mut a = lo;
        // SAFETY: free stack painted by `paint`, 4-aligned.
        while a < hi && unsafe { read_volatile(a as *const u32) } == PAINT {
            a += 4;
        }
        a
    }

    const TAGS: [&str; 3] = ["scalar", "auto", "portable"];

    /// Stack bytes of the heaviest call of each backend (in the order of `TAGS`), its name.
    struct Stack {
        max: [(usize, &'static str); 3],
        overflow: bool,
    }

    impl Probe for Stack {
        #[inline(never)]
        fn call<R>(&mut self, tag: &'static str, name: &'static str, f: impl FnOnce() -> R) -> R {
            let top = sp();
            let floor = (&raw const _stack_end) as usize;
            let lo = top.saturating_sub(WINDOW).max(floor) & !3;
            paint(lo);
            let r = core::hint::black_box(f());
            let low = lowest_touched(lo, top);
            self.overflow |= low == lo;
            let used = top - low;
            let i = TAGS.iter().position(|&t| t == tag).unwrap_or(0);
            if used > self.max[i].0 {
                self.max[i] = (used, name);
            }
            r
        }
    }

    /// After `debug::exit`, which does not return under QEMU.
    fn halt() -> ! {
        loop {
            core::hint::spin_loop();
        }
    }

    #[entry]
    fn main() -> ! {
        let Ok(host) = hio::hstdout() else {
            debug::exit(EXIT_FAILURE);
            halt()
        };
        let mut out = Out {
            host,
            buf: [0; 256],
            len: 0,
        };
        let mut stack = Stack {
            max: [(0, ""); 3],
            overflow: false,
        };
        let r = super::cases(&mut out, &mut stack).and_then(|()| {
            for (tag, (bytes, name)) in TAGS.iter().zip(stack.max) {
                if name.is_empty() {
                    continue; // no call ran on this backend
                }
                let ge = if stack.overflow { ">= " } else { "" };
                writeln!(
                    out,
                    "# stack: {tag}: heaviest call {name}: {ge}{bytes} bytes"
                )?;
            }
            out.flush()
        });
        debug::exit(if r.is_ok() {
            EXIT_SUCCESS
        } else {
            EXIT_FAILURE
        });
        halt()
    }

    #[panic_handler]
    fn panic(info: &PanicInfo<'_>) -> ! {
        if let Ok(mut e) = hio::hstderr() {
            let _ = writeln!(e, "firmware panicked: {info}");
        }
        debug::exit(EXIT_FAILURE);
        halt()
    }
}
