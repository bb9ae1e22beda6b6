//! Criterion benchmarks of the layers the peers (XNNPACK, ONNX Runtime, tract) are measured
//! on in `../shared/bench/peers`: the seed's layer, the MobileNetV1-224 blocks L1..L9, a 5x5
//! layer E5, and the 13-block body; also DM2 (depth multiplier 2), CEIL (a pointwise stage
//! held in L1, the attainable ceiling), issue 15's layers (DM 3, 5, 7; 7x7, 9x9 and 31x31
//! kernels; L3 and L5 from `Vec` buffers), and issue 12's features (per-stage activations,
//! TensorFlow padding, dilation, hard-swish, SiLU) beside their base layers. One thread
//! (unless `DSCONV_THREADS` is set), batch 1, f32. For each layer: `forward`,
//! the depthwise stage and the pointwise stage, on every backend this CPU has, and the naive
//! reference. Throughput is declared in floating-point operations (2 per multiply-add), so
//! criterion's "Gelem/s" reads as GFLOP/s. Inputs and outputs live in 64-byte aligned
//! buffers ([`AlignedBuf`]), as in the peers' engines (TFLite's arena and ONNX Runtime's
//! allocator align to 64 bytes).
//!
//! Run: `cargo bench --bench layers` (all), or `cargo bench --bench layers -- L3` (one).
//! `DSCONV_BENCH_REFERENCE=0` skips the reference kernels (slow on the big layers).

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use dsconv::{reference, separable_conv, AlignedBuf, Backend, Chain, SeparableConv, Weights};
use std::hint::black_box;

#[path = "common/issue15.rs"]
mod issue15;
#[path = "common/v1.rs"]
mod v1;
use issue15::{Dm2, Dm3, Dm5, Dm7, K7a, K7b, K9a, K9b, K31};
use std::time::Duration;
use v1::{body_layers, layer, values, weights_for, L1, L2, L3, L4, L5, L6, L7, L8, L9};

#[separable_conv(dk = 5, m = 3, n = 256)]
struct S0;
#[separable_conv(dk = 5, m = 144, n = 40)]
struct E5;
/// Issue 12's layers, each beside the same layer without its feature (`benches/features.rs`
/// times the pairs interleaved, for same-run ratios): MobileNetV2's tail (ReLU6 after the
/// depthwise stage, a linear 1x1) against V2BASE, TensorFlow "SAME" at stride 2 on an even
/// size against L2, dilation 2 against L3, hard-swish and SiLU against L3, and
/// EfficientNet-B0's stride-2 depthwise with SiLU against EFFBASE.
#[separable_conv(dk = 3, m = 144, n = 24)]
struct V2Base;
#[separable_conv(dk = 3, m = 144, n = 24, dw_activation = "relu6")]
struct V2;
#[separable_conv(dk = 3, m = 64, n = 128, stride = 2, padding = "same_upper")]
struct L2Tf;
#[separable_conv(dk = 3, m = 128, n = 128, dilation = 2)]
struct L3Dilated;
#[separable_conv(dk = 3, m = 128, n = 128, activation = "hardswish")]
struct L3HardSwish;
#[separable_conv(dk = 3, m = 128, n = 128, activation = "silu")]
struct L3Silu;
#[separable_conv(dk = 3, m = 96, n = 24, stride = 2)]
struct EffBase;
#[separable_conv(dk = 3, m = 96, n = 24, stride = 2, dw_activation = "silu")]
struct EffSilu;
/// The ceiling: a pointwise stage whose input (21 KiB), weights (16 KiB) and output (5 KiB)
/// fit in L1 together, so its GFLOP/s is what the register tile reaches with no cache misses:
/// the attainable fraction of the FMA peak on this machine at that moment.
#[separable_conv(dk = 3, m = 128, n = 32)]
struct Ceil;

fn with_reference() -> bool {
    std::env::var("DSCONV_BENCH_REFERENCE").map_or(true, |v| v != "0")
}

fn bench_layer<L: SeparableConv>(c: &mut Criterion, name: &str, h: usize, w: usize) {
    let l = layer::<L>(7);
    let (dw, pw) = weights_for::<L>(7);
    let input = AlignedBuf::from_slice(&values(h * w * L::M, 3));
    let (ho, wo) = L::output_size(h, w);
    let ch = L::M * L::DEPTH_MULTIPLIER;
    let mut out = AlignedBuf::zeroed(ho * wo * L::N);
    let mut mid = AlignedBuf::zeroed(ho * wo * ch);
    l.depthwise_on(Backend::Scalar, &input, h, w, &mut mid)
        .unwrap();
    let counts = L::multiplications(h, w);
    let mut g = c.benchmark_group(format!(
        "{name} {h}x{w}x{} s{} -> {}",
        L::M,
        L::STRIDE,
        L::N
    ));
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    let backends = Backend::available();

    g.throughput(Throughput::Elements(2 * counts.total() as u64));
    for &b in &backends {
        g.bench_function(BenchmarkId::new("forward", b), |bench| {
            bench.iter(|| {
                l.forward_on(b, black_box(&input), h, w, black_box(&mut out))
                    .unwrap()
            })
        });
    }
    let wts = Weights {
        depthwise: &dw,
        depthwise_bias: None,
        pointwise: &pw,
        pointwise_bias: None,
    };
    if with_reference() {
        g.bench_function(BenchmarkId::new("forward", "reference"), |bench| {
            bench.iter(|| {
                reference::separable(&L::SHAPE, L::ACTIVATIONS, black_box(&input), h, w, &wts)
            })
        });
    }

    g.throughput(Throughput::Elements(2 * counts.depthwise as u64));
    for &b in &backends {
        g.bench_function(BenchmarkId::new("depthwise", b), |bench| {
            bench.iter(|| {
                l.depthwise_on(b, black_box(&input), h, w, black_box(&mut mid))
                    .unwrap()
            })
        });
    }
    if with_reference() {
        g.bench_function(BenchmarkId::new("depthwise", "reference"), |bench| {
            bench.iter(|| {
                reference::depthwise(
                    &L::SHAPE,
                    L::DW_ACTIVATION,
                    black_box(&input),
                    h,
                    w,
                    &dw,
                    None,
                )
            })
        });
    }

    g.throughput(Throughput::Elements(2 * counts.pointwise as u64));
    for &b in &backends {
        g.bench_function(BenchmarkId::new("pointwise", b), |bench| {
            bench.iter(|| {
                l.pointwise_on(b, black_box(&mid), ho, wo, black_box(&mut out))
                    .unwrap()
            })
        });
    }
    if with_reference() {
        g.bench_function(BenchmarkId::new("pointwise", "reference"), |bench| {
            bench.iter(|| {
                reference::pointwise(
                    L::PW_ACTIVATION,
                    black_box(&mid),
                    ho * wo,
                    ch,
                    L::N,
                    &pw,
                    None,
                )
            })
        });
    }
    g.finish();
}

fn layers(c: &mut Criterion) {
    bench_layer::<S0>(c, "S0", 8, 8);
    bench_layer::<L1>(c, "L1", 112, 112);
    bench_layer::<L2>(c, "L2", 112, 112);
    bench_layer::<L3>(c, "L3", 56, 56);
    bench_layer::<L4>(c, "L4", 56, 56);
    bench_layer::<L5>(c, "L5", 28, 28);
    bench_layer::<L6>(c, "L6", 28, 28);
    bench_layer::<L7>(c, "L7", 14, 14);
    bench_layer::<L8>(c, "L8", 14, 14);
    bench_layer::<L9>(c, "L9", 7, 7);
    bench_layer::<E5>(c, "E5", 56, 56);
    bench_layer::<Dm2>(c, "DM2", 56, 56);
    bench_layer::<Dm3>(c, "DM3", 56, 56);
    bench_layer::<Dm5>(c, "DM5", 56, 56);
    bench_layer::<Dm7>(c, "DM7", 56, 56);
    bench_layer::<K7a>(c, "K7A", 56, 56);
    bench_layer::<K9a>(c, "K9A", 56, 56);
    bench_layer::<K7b>(c, "K7B", 28, 28);
    bench_layer::<K9b>(c, "K9B", 28, 28);
    bench_layer::<K31>(c, "K31", 14, 14);
    bench_layer::<V2Base>(c, "V2BASE", 56, 56);
    bench_layer::<V2>(c, "V2", 56, 56);
    bench_layer::<L2Tf>(c, "L2TF", 112, 112);
    bench_layer::<L3Dilated>(c, "L3D2", 56, 56);
    bench_layer::<L3HardSwish>(c, "L3HSWISH", 56, 56);
    bench_layer::<L3Silu>(c, "L3SILU", 56, 56);
    bench_layer::<EffBase>(c, "EFFBASE", 112, 112);
    bench_layer::<EffSilu>(c, "EFFSILU", 112, 112);
}

/// The 13 MobileNetV1 blocks as a `Chain` ("forward"), and the same layers called in turn
/// through two buffers by hand ("layers").
fn body(c: &mut Criterion) {
    let mut chain = Chain::new(112, 112, body_layers()).unwrap();
    let layers = body_layers();
    let sizes: Vec<(usize, usize, usize)> = chain.input_dims_of_each().collect();
    let input = AlignedBuf::from_slice(&values(112 * 112 * 32, 11));
    let mut out = AlignedBuf::zeroed(7 * 7 * 1024);
    let mut bufs = [
        AlignedBuf::zeroed(112 * 112 * 64),
        AlignedBuf::zeroed(112 * 112 * 64),
    ];
    let macs = chain.multiplications().total();
    let mut g = c.benchmark_group("BODY 13 MobileNetV1 blocks 112x112x32 -> 7x7x1024");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .throughput(Throughput::Elements(2 * macs as u64));
    for backend in Backend::available() {
        g.bench_function(BenchmarkId::new("forward", backend), |bench| {
            bench.iter(|| {
                chain
                    .forward_on(backend, &input, black_box(&mut out))
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("layers", backend), |bench| {
            bench.iter(|| {
                let [a, b] = &mut bufs;
                let (mut src, mut dst): (&mut [f32], &mut [f32]) = (a, b);
                for (i, (l, &(h, w, c))) in layers.iter().zip(&sizes).enumerate() {
                    let (ho, wo) = l.output_dims(h, w).unwrap();
                    let n = ho * wo * l.output_channels();
                    let x: &[f32] = if i == 0 { &input } else { &src[..h * w * c] };
                    l.run_on(backend, x, h, w, &mut dst[..n]).unwrap();
                    std::mem::swap(&mut src, &mut dst);
                }
                black_box(&src[..7 * 7 * 1024]);
            })
        });
    }
    g.finish();
}

/// The pointwise stage of [`Ceil`] on a 1x42 image: three blocks of AVX-512's 14-row register
/// tile (seven of AVX2's 6 rows), K = 128, everything in L1. Compare its GFLOP/s with the roofline's FMA peak and the layers' figures.
fn ceiling(c: &mut Criterion) {
    let l = layer::<Ceil>(5);
    let (ho, wo) = (1, 42);
    let mid = AlignedBuf::from_slice(&values(ho * wo * Ceil::M, 6));
    let mut out = AlignedBuf::zeroed(ho * wo * Ceil::N);
    let mut g = c.benchmark_group("CEIL 1x42x128 -> 32, pointwise with everything in L1");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .throughput(Throughput::Elements(
            2 * Ceil::multiplications(ho, wo).pointwise as u64,
        ));
    for b in Backend::available() {
        g.bench_function(BenchmarkId::new("pointwise", b), |bench| {
            bench.iter(|| {
                l.pointwise_on(b, black_box(&mid), ho, wo, black_box(&mut out))
                    .unwrap()
            })
        });
    }
    g.finish();
}

/// `forward` of L3 and L5 with input and output in `Vec<f32>`s (as users pass them; a large
/// `Vec` from `malloc` typically starts 16 bytes into a cache line) beside the same call
/// with 64-byte aligned buffers.
fn vec_buffers(c: &mut Criterion) {
    fn one<L: SeparableConv>(c: &mut Criterion, name: &str, h: usize, w: usize) {
        let l = layer::<L>(7);
        let input = values(h * w * L::M, 3);
        let (ho, wo) = L::output_size(h, w);
        let mut out = vec![0.0f32; ho * wo * L::N];
        let aligned_in = AlignedBuf::from_slice(&input);
        let mut aligned_out = AlignedBuf::zeroed(ho * wo * L::N);
        let offset = |p: *const f32| p as usize % 64;
        let mut g = c.benchmark_group(format!(
            "{name} Vec buffers (input {} and output {} bytes into a line) against aligned",
            offset(input.as_ptr()),
            offset(out.as_ptr())
        ));
        g.warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20)
            .throughput(Throughput::Elements(
                2 * L::multiplications(h, w).total() as u64,
            ));
        for b in Backend::available() {
            g.bench_function(BenchmarkId::new("forward vec", b), |bench| {
                bench.iter(|| {
                    l.forward_on(b, black_box(&input), h, w, black_box(&mut out))
                        .unwrap()
                })
            });
            g.bench_function(BenchmarkId::new("forward aligned", b), |bench| {
                bench.iter(|| {
                    l.forward_on(b, black_box(&aligned_in), h, w, black_box(&mut aligned_out))
                        .unwrap()
                })
            });
        }
        g.finish();
    }
    one::<L3>(c, "L3", 56, 56);
    one::<L5>(c, "L5", 28, 28);
}

criterion_group!(benches, layers, body, ceiling, vec_buffers);
fn main() {
    // One thread unless DSCONV_THREADS says otherwise (`cargo bench --bench threads` times
    // 2 threads against 1).
    if std::env::var_os(dsconv::THREADS_ENV).is_none() {
        let _ = dsconv::Pool::set_global(dsconv::Pool::new(1));
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
