//! Half-precision data against `f32`, next to a plain streaming pass over the same bytes.
//!
//! `cargo bench -p focal-loss-benches --bench half`. Sigmoid family (gamma 2, alpha 0.25,
//! `Mean`): logits f32 / bf16 / f16, targets u8 or bf16, gradient f32 / bf16 / f16. Softmax
//! family (gamma 2, C = 50, u32 labels): logits and gradient f32 / bf16 / f16. Each `stream`
//! entry reads the same input bytes and writes the same gradient bytes (`g = x * t`, or
//! `g = x` for the softmax rows). `FOCAL_BENCH_QUICK=1` measures only 64K.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use focal_loss::half::{bf16, f16};
use focal_loss::{Float, Focal, Reduction, SoftmaxFocal};

fn sizes() -> Vec<usize> {
    if std::env::var_os("FOCAL_BENCH_QUICK").is_some() {
        vec![64 << 10]
    } else {
        vec![64 << 10, 16 << 20]
    }
}

fn configure() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .sample_size(10)
}

fn conv<G: Float>(v: &[f32]) -> Vec<G> {
    v.iter().map(|&x| G::from_f32(x)).collect()
}

/// Logits spread over [-10, 10].
fn logits(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i.wrapping_mul(7919) % 2000) as f32 - 1000.0) / 100.0)
        .collect()
}

fn sigmoid(c: &mut Criterion) {
    for n in sizes() {
        let mut group = c.benchmark_group(format!("half_sigmoid/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        let x = logits(n);
        let (xb, xh): (Vec<bf16>, Vec<f16>) = (conv(&x), conv(&x));
        let t8: Vec<u8> = (0..n).map(|i| (i % 7 == 0) as u8).collect();
        let tb: Vec<bf16> = t8.iter().map(|&t| bf16::from_f32(t as f32)).collect();
        let (mut g, mut gb, mut gh) = (vec![0f32; n], vec![bf16::ZERO; n], vec![f16::ZERO; n]);
        let f = Focal::new(2.0).alpha(0.25);
        let r = Reduction::Mean;
        group.bench_function(BenchmarkId::from_parameter("f32-u8-f32"), |b| {
            b.iter(|| f.loss_and_grad(black_box(&x), &t8, &mut g, r).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("bf16-u8-bf16"), |b| {
            b.iter(|| f.loss_and_grad(black_box(&xb), &t8, &mut gb, r).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("f16-u8-f16"), |b| {
            b.iter(|| f.loss_and_grad(black_box(&xh), &t8, &mut gh, r).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("bf16-bf16-bf16"), |b| {
            b.iter(|| f.loss_and_grad(black_box(&xb), &tb, &mut gb, r).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("bf16-u8-f32"), |b| {
            b.iter(|| f.loss_and_grad(black_box(&xb), &t8, &mut g, r).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("stream-f32-u8-f32"), |b| {
            b.iter(|| {
                for ((g, x), &t) in g.iter_mut().zip(black_box(&x)).zip(&t8) {
                    *g = x * t as f32;
                }
            })
        });
        // The same 5 bytes per element: bf16 in, byte in, bf16 out.
        group.bench_function(BenchmarkId::from_parameter("stream-bf16-u8-bf16"), |b| {
            b.iter(|| {
                for ((g, x), &t) in gb.iter_mut().zip(black_box(&xb)).zip(&t8) {
                    *g = bf16::from_bits(x.to_bits() & (t as u16).wrapping_neg());
                }
            })
        });
        group.finish();
    }
}

fn softmax(c: &mut Criterion) {
    let classes = 50;
    for n in sizes() {
        let rows = n / classes;
        let n = rows * classes;
        let mut group = c.benchmark_group(format!("half_softmax_c50/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        let x = logits(n);
        let (xb, xh): (Vec<bf16>, Vec<f16>) = (conv(&x), conv(&x));
        let y: Vec<u32> = (0..rows).map(|r| ((r * 31) % classes) as u32).collect();
        let (mut g, mut gb, mut gh) = (vec![0f32; n], vec![bf16::ZERO; n], vec![f16::ZERO; n]);
        let f = SoftmaxFocal::new(2.0).classes(classes);
        let r = Reduction::Mean;
        group.bench_function(BenchmarkId::from_parameter("f32-f32"), |b| {
            b.iter(|| f.loss_and_grad(black_box(&x), &y, &mut g, r).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("bf16-bf16"), |b| {
            b.iter(|| f.loss_and_grad(black_box(&xb), &y, &mut gb, r).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("f16-f16"), |b| {
            b.iter(|| f.loss_and_grad(black_box(&xh), &y, &mut gh, r).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("bf16-f32"), |b| {
            b.iter(|| f.loss_and_grad(black_box(&xb), &y, &mut g, r).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("stream-f32"), |b| {
            b.iter(|| g.copy_from_slice(black_box(&x)))
        });
        group.bench_function(BenchmarkId::from_parameter("stream-bf16"), |b| {
            b.iter(|| gb.copy_from_slice(black_box(&xb)))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = configure();
    targets = sigmoid, softmax
}
criterion_main!(benches);
