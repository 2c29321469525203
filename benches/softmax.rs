//! Throughput of the softmax family's fused loss and gradient (index labels), in logits per
//! second, next to a plain streaming pass over the same bytes.
//!
//! `cargo bench -p focal-loss-benches --bench softmax` (default build: the backend is chosen at
//! run time). Groups: `softmax[<backend>]/<logits>`, entries `C<c>-gamma<g>` (C = 2, 4, 8, 50,
//! 1000, class-last `[rows, C]`, `u32` labels), `nchw-C19-gamma<g>` (`[N, 19, S]`, a
//! Cityscapes-like map with `S = 64K` positions per image), `C<c>-gamma2-smooth` /
//! `C<c>-gamma2-dist` (the dense path: label smoothing 0.1 on index labels, or `f32`
//! distributions), and `stream` (`g = x * 2`: the logits read and the gradient written, 8
//! bytes per logit, as the fused call; the labels are 4 bytes per row). `FOCAL_BENCH_QUICK=1`
//! measures only 64K.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use focal_loss::{Backend, Reduction, SoftmaxFocal};

fn sizes() -> Vec<usize> {
    if std::env::var_os("FOCAL_BENCH_QUICK").is_some() {
        vec![64 << 10]
    } else {
        vec![64 << 10, 16 << 20]
    }
}

/// Logits spread over [-5, 5].
fn logits(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i.wrapping_mul(7919) % 1000) as f32 - 500.0) / 100.0)
        .collect()
}

fn stream(x: &[f32], g: &mut [f32]) {
    for (g, x) in g.iter_mut().zip(x) {
        *g = x * 2.0;
    }
}

fn configure() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(15)
}

fn softmax(c: &mut Criterion) {
    let backend = Backend::Auto.resolve().unwrap().name();
    for n in sizes() {
        let mut group = c.benchmark_group(format!("softmax[{backend}]/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        let x = logits(n);
        let mut g = vec![0f32; n];
        for classes in [2usize, 4, 8, 50, 1000] {
            let rows = n / classes;
            let y: Vec<u32> = (0..rows).map(|r| ((r * 31) % classes) as u32).collect();
            let x = &x[..rows * classes];
            for gamma in [0.0f32, 2.0, 2.5] {
                let f = SoftmaxFocal::new(gamma);
                let id = format!("C{classes}-gamma{gamma}");
                group.bench_function(BenchmarkId::from_parameter(id), |b| {
                    b.iter(|| {
                        f.loss_and_grad(
                            black_box(x),
                            black_box(&y),
                            &mut g[..rows * classes],
                            Reduction::Mean,
                        )
                        .unwrap()
                    })
                });
            }
        }
        // The dense path: label smoothing 0.1 on index labels, and distributions (each row's
        // mass split 0.75 / 0.25 between two classes), gamma 2.
        for classes in [8usize, 50] {
            let rows = n / classes;
            let y: Vec<u32> = (0..rows).map(|r| ((r * 31) % classes) as u32).collect();
            let mut d = vec![0f32; rows * classes];
            for (r, &k) in y.iter().enumerate() {
                d[r * classes + k as usize] = 0.75;
                d[r * classes + (k as usize + 1) % classes] = 0.25;
            }
            let x = &x[..rows * classes];
            let g = &mut g[..rows * classes];
            let f = SoftmaxFocal::new(2.0).classes(classes);
            let smooth = f.label_smoothing(0.1);
            group.bench_function(
                BenchmarkId::from_parameter(format!("C{classes}-gamma2-smooth")),
                |b| {
                    b.iter(|| {
                        smooth
                            .loss_and_grad(black_box(x), black_box(&y), g, Reduction::Mean)
                            .unwrap()
                    })
                },
            );
            group.bench_function(
                BenchmarkId::from_parameter(format!("C{classes}-gamma2-dist")),
                |b| {
                    b.iter(|| {
                        f.loss_and_grad(black_box(x), black_box(&d), g, Reduction::Mean)
                            .unwrap()
                    })
                },
            );
        }
        // [N, 19, S], S = 64K positions per image (a 256 x 256 map), fewer for the small size.
        let sp = (n / 19).min(64 << 10);
        let imgs = n / (19 * sp);
        let y: Vec<u8> = (0..imgs * sp).map(|p| (p % 19) as u8).collect();
        let x19 = &x[..imgs * 19 * sp];
        for gamma in [0.0f32, 2.0, 2.5] {
            let f = SoftmaxFocal::new(gamma).spatial(sp);
            group.bench_function(
                BenchmarkId::from_parameter(format!("nchw-C19-gamma{gamma}")),
                |b| {
                    b.iter(|| {
                        f.loss_and_grad(
                            black_box(x19),
                            black_box(&y),
                            &mut g[..x19.len()],
                            Reduction::Mean,
                        )
                        .unwrap()
                    })
                },
            );
        }
        group.bench_function(BenchmarkId::from_parameter("stream"), |b| {
            b.iter(|| stream(black_box(&x), &mut g))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = configure();
    targets = softmax
}
criterion_main!(benches);
