//! The seed's layer (8x8x3, dk 5 -> 256, "same"): generated `forward` and its stages vs the
//! naive reference. Throughput is in elements = floating-point operations (2 per
//! multiply-add), so criterion's "Gelem/s" reads as GFLOP/s.
//!
//! Run: `cargo bench --bench seed`

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use dsconv::{reference, separable_conv, AlignedBuf, Backend, SeparableConv, Weights};
use std::hint::black_box;

#[separable_conv(dk = 5, m = 3, n = 256)]
struct Seed;

fn values(len: usize, seed: u32) -> Vec<f32> {
    dsconv_testkit::lcg_values(len, seed, 1.0)
}

fn seed(c: &mut Criterion) {
    let (h, w) = (8, 8);
    let input = values(h * w * Seed::M, 1);
    let dw = values(Seed::DEPTHWISE_MULS_PER_PIXEL, 2);
    let pw = values(Seed::POINTWISE_MULS_PER_PIXEL, 3);
    let layer = Seed::from_weights(&dw, &pw).unwrap();
    let counts = Seed::multiplications(h, w);
    let (ho, wo) = Seed::output_size(h, w);
    let mut out = AlignedBuf::zeroed(ho * wo * Seed::N);
    let mut mid = AlignedBuf::zeroed(ho * wo * Seed::M);
    let weights = Weights {
        depthwise: &dw,
        depthwise_bias: None,
        pointwise: &pw,
        pointwise_bias: None,
    };

    let mut g = c.benchmark_group("S0 seed 8x8x3 dk5 -> 256");
    g.throughput(Throughput::Elements(2 * counts.total() as u64));
    // Every backend this CPU runs, each labelled by its name.
    for backend in Backend::available() {
        g.bench_function(BenchmarkId::new("forward", backend), |b| {
            b.iter(|| {
                layer
                    .forward_on(backend, black_box(&input), h, w, black_box(&mut out))
                    .unwrap()
            })
        });
    }
    g.bench_function(BenchmarkId::new("forward", "reference"), |b| {
        b.iter(|| {
            reference::separable(
                &Seed::SHAPE,
                Seed::ACTIVATIONS,
                black_box(&input),
                h,
                w,
                &weights,
            )
        })
    });
    g.throughput(Throughput::Elements(2 * counts.depthwise as u64));
    for backend in Backend::available() {
        g.bench_function(BenchmarkId::new("depthwise", backend), |b| {
            b.iter(|| {
                layer
                    .depthwise_on(backend, black_box(&input), h, w, black_box(&mut mid))
                    .unwrap()
            })
        });
    }
    g.throughput(Throughput::Elements(2 * counts.pointwise as u64));
    for backend in Backend::available() {
        g.bench_function(BenchmarkId::new("pointwise", backend), |b| {
            b.iter(|| {
                layer
                    .pointwise_on(backend, black_box(&mid), ho, wo, black_box(&mut out))
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, seed);
fn main() {
    // One thread unless DSCONV_THREADS says otherwise (`cargo bench --bench threads` times
    // 2 threads against 1).
    if std::env::var_os(dsconv::THREADS_ENV).is_none() {
        let _ = dsconv::Pool::set_global(dsconv::Pool::new(1));
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
