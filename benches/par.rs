//! The parallel entry points (feature `rayon`) on pools of 1 and 2 threads, beside the
//! sequential call and a plain streaming pass over the same bytes on 1 and 2 threads.
//!
//! `cargo bench -p focal-loss-benches --bench par`. Sigmoid family: `[n / 50, 50]`, gamma 2,
//! alpha 0.25, `f32` logits, hard `f32` targets, `Mean`, `loss_and_grad`. Softmax family:
//! `[n / 50, 50]`, gamma 2, `u32` labels, `Mean`, `loss_and_grad`; `par_softmax_map`: one
//! `[1, 19, n / 19]` image (a segmentation map, `u8` labels), cut into windows of positions
//! from `2^18` logits on. Sizes in elements (logits):
//! 4K, 64K, 1M, 16M. `seq` is the sequential call; `par-1` / `par-2` the parallel one called
//! from a thread of a pool of 1 / 2 threads (the whole timing loop runs inside the pool, so
//! that entering it is not measured); `stream-1` / `stream-2` read the logits and targets (labels) and
//! write the gradient (`g = x * t`, or `g = x` for the softmax rows) in chunks of 2^16
//! elements on such a pool; `par-2-per-positive` (sigmoid) is `par-2` with `PerPositive`, whose
//! positives a first pass over the targets counts. `FOCAL_BENCH_QUICK=1` measures 64K and 1M only;
//! `FOCAL_BENCH_SIZES=131072,262144` the sizes listed.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use focal_loss::{Focal, Reduction, SoftmaxFocal};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

const C: usize = 50;
const CHUNK: usize = 1 << 16;

fn sizes() -> Vec<usize> {
    if let Ok(list) = std::env::var("FOCAL_BENCH_SIZES") {
        return list.split(',').map(|v| v.trim().parse().unwrap()).collect();
    }
    if std::env::var_os("FOCAL_BENCH_QUICK").is_some() {
        vec![64 << 10, 1 << 20]
    } else {
        vec![4 << 10, 64 << 10, 1 << 20, 16 << 20]
    }
}

fn configure() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .sample_size(10)
}

/// Logits spread over [-10, 10].
fn logits(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i.wrapping_mul(7919) % 2000) as f32 - 1000.0) / 100.0)
        .collect()
}

fn pools() -> [(usize, ThreadPool); 2] {
    [1, 2].map(|k| (k, ThreadPoolBuilder::new().num_threads(k).build().unwrap()))
}

/// The sequential call (`call(false)`, as `seq`) and the parallel one (`call(true)`, as
/// `par-k`) from inside each pool of `k` threads, the whole timing loop in the pool.
fn seq_and_pools<F>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    pools: &[(usize, ThreadPool)],
    mut call: F,
) where
    F: FnMut(bool) -> f32 + Send,
{
    group.bench_function(BenchmarkId::from_parameter("seq"), |b| {
        b.iter(|| call(false))
    });
    for (k, pool) in pools {
        group.bench_function(BenchmarkId::from_parameter(format!("par-{k}")), |b| {
            pool.install(|| b.iter(|| call(true)))
        });
    }
}

fn sigmoid(c: &mut Criterion) {
    let pools = pools();
    for n in sizes() {
        let n = n / C * C;
        let mut group = c.benchmark_group(format!("par_sigmoid/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        let x = logits(n);
        let t: Vec<f32> = (0..n).map(|i| (i % 7 == 0) as u8 as f32).collect();
        let mut g = vec![0f32; n];
        let f = Focal::new(2.0).alpha(0.25).classes(C);
        let r = Reduction::Mean;
        seq_and_pools(&mut group, &pools, |par| match par {
            false => f.loss_and_grad(black_box(&x), &t, &mut g, r).unwrap(),
            true => f.par_loss_and_grad(black_box(&x), &t, &mut g, r).unwrap(),
        });
        // PerPositive: a first parallel pass over the targets counts the positives.
        let (_, pool) = &pools[1];
        group.bench_function(BenchmarkId::from_parameter("par-2-per-positive"), |b| {
            let r = Reduction::PerPositive;
            pool.install(|| b.iter(|| f.par_loss_and_grad(black_box(&x), &t, &mut g, r)))
        });
        for (k, pool) in &pools {
            group.bench_function(BenchmarkId::from_parameter(format!("stream-{k}")), |b| {
                pool.install(|| {
                    b.iter(|| {
                        g.par_chunks_mut(CHUNK)
                            .zip(black_box(&x).par_chunks(CHUNK))
                            .zip(t.par_chunks(CHUNK))
                            .for_each(|((g, x), t)| {
                                for ((g, x), t) in g.iter_mut().zip(x).zip(t) {
                                    *g = x * t;
                                }
                            })
                    })
                })
            });
        }
        group.finish();
    }
}

fn softmax(c: &mut Criterion) {
    let pools = pools();
    for n in sizes() {
        let n = n / C * C;
        let rows = n / C;
        let mut group = c.benchmark_group(format!("par_softmax/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        let x = logits(n);
        let y: Vec<u32> = (0..rows as u32)
            .map(|r| r.wrapping_mul(37) % C as u32)
            .collect();
        let mut g = vec![0f32; n];
        let f = SoftmaxFocal::new(2.0);
        let r = Reduction::Mean;
        seq_and_pools(&mut group, &pools, |par| match par {
            false => f.loss_and_grad(black_box(&x), &y, &mut g, r).unwrap(),
            true => f.par_loss_and_grad(black_box(&x), &y, &mut g, r).unwrap(),
        });
        let rc = CHUNK / C;
        for (k, pool) in &pools {
            group.bench_function(BenchmarkId::from_parameter(format!("stream-{k}")), |b| {
                pool.install(|| {
                    b.iter(|| {
                        g.par_chunks_mut(rc * C)
                            .zip(black_box(&x).par_chunks(rc * C))
                            .zip(y.par_chunks(rc))
                            .for_each(|((g, x), y)| {
                                for ((g, x), &y) in g.chunks_mut(C).zip(x.chunks(C)).zip(y) {
                                    for (g, x) in g.iter_mut().zip(x) {
                                        *g = x + y as f32;
                                    }
                                }
                            })
                    })
                })
            });
        }
        group.finish();
    }
}

fn softmax_map(c: &mut Criterion) {
    const C19: usize = 19;
    let pools = pools();
    for n in sizes() {
        let sp = n / C19;
        let n = sp * C19;
        let mut group = c.benchmark_group(format!("par_softmax_map/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        let x = logits(n);
        let y: Vec<u8> = (0..sp as u32)
            .map(|p| (p.wrapping_mul(37) % 19) as u8)
            .collect();
        let mut g = vec![0f32; n];
        let f = SoftmaxFocal::new(2.0).spatial(sp);
        let r = Reduction::Mean;
        seq_and_pools(&mut group, &pools, |par| match par {
            false => f.loss_and_grad(black_box(&x), &y, &mut g, r).unwrap(),
            true => f.par_loss_and_grad(black_box(&x), &y, &mut g, r).unwrap(),
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = configure();
    targets = sigmoid, softmax, softmax_map
}
criterion_main!(benches);
