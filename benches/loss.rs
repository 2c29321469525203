//! Throughput of every public entry point, next to a plain streaming pass over the same bytes.
//!
//! `cargo bench -p focal-loss-benches --bench loss` (default build: the backend is chosen at run time);
//! `RUSTFLAGS="-C target-cpu=native" cargo bench -p focal-loss-benches --bench loss` for the native build.
//! Each group reports elements per second; the `stream` entry of a group reads the same
//! logits and targets and writes the same gradient bytes (`g = x * t`), so the ratio of the
//! medians is the distance to the memory limit. `FOCAL_BENCH_QUICK=1` measures only 64K;
//! `FOCAL_BENCH_BACKEND=avx2` (or `scalar`, `portable`, `avx512`) runs the `loss_and_grad`
//! group on that backend.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use focal_loss::{Backend, Focal, Grad, Modulator, Reduction};

const SIZES: [usize; 4] = [4 << 10, 64 << 10, 1 << 20, 16 << 20];

fn sizes() -> Vec<usize> {
    if std::env::var_os("FOCAL_BENCH_QUICK").is_some() {
        vec![64 << 10]
    } else {
        SIZES.to_vec()
    }
}

/// Logits spread over [-10, 10], hard targets (about 1 in 7 positive) or soft ones.
fn data(n: usize, soft: bool) -> (Vec<f32>, Vec<f32>) {
    let x = (0..n)
        .map(|i| ((i.wrapping_mul(7919) % 2000) as f32 - 1000.0) / 100.0)
        .collect();
    let t = (0..n)
        .map(|i| {
            if soft {
                (i % 11) as f32 / 10.0
            } else {
                (i % 7 == 0) as u8 as f32
            }
        })
        .collect();
    (x, t)
}

/// `g = x * t`: 8 bytes read and 4 written per element, like the fused loss and gradient.
fn stream(x: &[f32], t: &[f32], g: &mut [f32]) {
    for ((g, x), t) in g.iter_mut().zip(x).zip(t) {
        *g = x * t;
    }
}

/// `g = x * t` with byte targets: 5 bytes read and 4 written per element.
fn stream_u8(x: &[f32], t: &[u8], g: &mut [f32]) {
    for ((g, x), &t) in g.iter_mut().zip(x).zip(t) {
        *g = x * t as f32;
    }
}

fn configure() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(20)
}

/// The backend of the `loss_and_grad` group: `FOCAL_BENCH_BACKEND=scalar|portable|avx2|avx512`
/// forces one (to measure it at every size), else the run-time choice.
fn group_backend() -> Backend {
    let b = match std::env::var("FOCAL_BENCH_BACKEND").as_deref() {
        Ok("scalar") => Backend::Scalar,
        Ok("portable") => Backend::Portable,
        Ok("avx2") => Backend::Avx2,
        Ok("avx512") => Backend::Avx512,
        _ => Backend::Auto,
    };
    b.resolve()
        .expect("FOCAL_BENCH_BACKEND: not available on this CPU")
}

fn loss_and_grad(c: &mut Criterion) {
    let chosen = group_backend();
    let backend = chosen.name();
    for n in sizes() {
        let mut group = c.benchmark_group(format!("loss_and_grad[{backend}]/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        let mut g = vec![0f32; n];
        // Hard targets, soft ones, and hard ones with label smoothing 0.1 (all soft).
        for kind in ["hard", "soft", "smooth"] {
            let (x, t) = data(n, kind == "soft");
            for gamma in [0.0f32, 0.5, 2.0, 2.5] {
                let f = Focal::new(gamma).alpha(0.25).backend(chosen);
                let f = if kind == "smooth" {
                    f.label_smoothing(0.1)
                } else {
                    f
                };
                let id = format!("gamma{gamma}-{kind}");
                group.bench_function(BenchmarkId::from_parameter(id), |b| {
                    b.iter(|| {
                        f.loss_and_grad(black_box(&x), black_box(&t), &mut g, Reduction::Mean)
                            .unwrap()
                    })
                });
            }
            if kind == "hard" {
                let t8: Vec<u8> = t.iter().map(|&v| v as u8).collect();
                for gamma in [0.0f32, 0.5, 2.0, 2.5] {
                    let f = Focal::new(gamma).alpha(0.25).backend(chosen);
                    group.bench_function(
                        BenchmarkId::from_parameter(format!("gamma{gamma}-u8")),
                        |b| {
                            b.iter(|| {
                                f.loss_and_grad(
                                    black_box(&x),
                                    black_box(&t8),
                                    &mut g,
                                    Reduction::Mean,
                                )
                                .unwrap()
                            })
                        },
                    );
                }
                group.bench_function(BenchmarkId::from_parameter("stream"), |b| {
                    b.iter(|| stream(black_box(&x), black_box(&t), &mut g))
                });
                group.bench_function(BenchmarkId::from_parameter("stream-u8"), |b| {
                    b.iter(|| stream_u8(black_box(&x), black_box(&t8), &mut g))
                });
            }
        }
        group.finish();
    }
}

fn entry_points(c: &mut Criterion) {
    let backend = Backend::Auto.resolve().unwrap().name();
    for n in sizes() {
        let mut group = c.benchmark_group(format!("entry_points[{backend}]/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        let (x, t) = data(n, false);
        let mut g = vec![0f32; n];
        let f = Focal::new(2.0).alpha(0.25);
        group.bench_function("loss", |b| {
            b.iter(|| f.loss(black_box(&x), &t, Reduction::Mean).unwrap())
        });
        group.bench_function("loss_elementwise", |b| {
            b.iter(|| f.loss_elementwise(black_box(&x), &t, &mut g).unwrap())
        });
        group.bench_function("loss_and_grad_accumulate", |b| {
            b.iter(|| {
                f.loss_and_grad_accumulate(black_box(&x), &t, &mut g, Reduction::Mean)
                    .unwrap()
            })
        });
        group.bench_function("partial", |b| {
            b.iter(|| {
                f.partial(black_box(&x), &t, Grad::Write(&mut g, 1.0))
                    .unwrap()
            })
        });
        group.bench_function("per_positive", |b| {
            b.iter(|| {
                f.loss_and_grad(black_box(&x), &t, &mut g, Reduction::PerPositive)
                    .unwrap()
            })
        });
        let w: Vec<f32> = (0..50).map(|c| 0.2 + c as f32 * 0.05).collect();
        let vidhoi = Focal::new(0.5)
            .class_weights(&w)
            .modulator(Modulator::Geometric);
        let m = n / 50 * 50;
        group.bench_function("vidhoi_50_classes", |b| {
            b.iter(|| {
                vidhoi
                    .loss_and_grad(
                        black_box(&x[..m]),
                        &t[..m],
                        &mut g[..m],
                        Reduction::PerPositive,
                    )
                    .unwrap()
            })
        });
        group.bench_function("stream", |b| {
            b.iter(|| stream(black_box(&x), black_box(&t), &mut g))
        });
        group.finish();
    }
}

fn backends(c: &mut Criterion) {
    let n = 64 << 10;
    let mut group = c.benchmark_group(format!("backends/{n}"));
    group.throughput(Throughput::Elements(n as u64));
    let (x, t) = data(n, false);
    let mut g = vec![0f32; n];
    for b in Backend::available() {
        for gamma in [2.0f32, 2.5] {
            let f = Focal::new(gamma).alpha(0.25).backend(b);
            group.bench_function(format!("{}-gamma{gamma}", b.name()), |bn| {
                bn.iter(|| {
                    f.loss_and_grad(black_box(&x), &t, &mut g, Reduction::Mean)
                        .unwrap()
                })
            });
        }
    }
    group.finish();
}

/// Per-call overhead: a batch of 16 elements.
fn overhead(c: &mut Criterion) {
    let (x, t) = data(16, false);
    let mut g = [0f32; 16];
    let f = Focal::new(2.0).alpha(0.25);
    c.bench_function("overhead/16_elements", |b| {
        b.iter(|| {
            f.loss_and_grad(black_box(&x), &t, &mut g, Reduction::Mean)
                .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = configure();
    targets = loss_and_grad, entry_points, backends, overhead
}
criterion_main!(benches);
