//! `forward` of one layer of `benches/layers.rs`, for A/B comparisons of two commits
//! (`scripts/ab_layers.sh`, which builds this file at both and interleaves the runs).
//!
//! `forward_ab LAYER REPS` runs `forward` REPS times (for instruction counts: run it under
//! `valgrind --tool=callgrind` with REPS 1 and 3, and halve the difference); with `TIME=1`
//! it prints the median time of REPS calls in microseconds. `B=<backend>` picks the backend
//! (default scalar); `STAGE=pw` times the pointwise stage alone, `STAGE=dw` the depthwise,
//! `STAGE=read` one read of the input; `SIZE=S` runs the layer on an S x S input; `OFFSET=K`
//! starts every buffer K floats past a 64-byte boundary (`OUT_OFFSET=K`: the outputs, and
//! the depthwise stage's output that the pointwise stage reads);
//! `FLUSH=MIB` writes and reads that much other data before each timed call; `PEAK=1`
//! prints the call's share of the core's FMA peak, measured in the same process, interleaved
//! (`share_of_peak`). `BODY` is MobileNetV1-224's 13 blocks as one `Chain` (commits since
//! the chain); `BODY` with `STEPS=1` prints each layer's median time inside the body's
//! sequence beside its time alone (`SHARE=1`: the five L7 run one L7's weights, so the later
//! four find them in cache). `PLAN=1` prints a layer's plan. Plain `main`, no criterion: it
//! must build at older commits too.
use dsconv::{separable_conv, AlignedBuf, Backend, Chain, Layer, SeparableConv};

#[path = "common/peak.rs"]
mod peak;
use peak::fma_peak;

#[separable_conv(dk = 5, m = 3, n = 256)]
struct S0;
#[separable_conv(dk = 3, m = 32, n = 64)]
struct L1;
#[separable_conv(dk = 3, m = 64, n = 128, stride = 2)]
struct L2;
#[separable_conv(dk = 3, m = 128, n = 128)]
struct L3;
#[separable_conv(dk = 3, m = 128, n = 256, stride = 2)]
struct L4;
#[separable_conv(dk = 3, m = 256, n = 256)]
struct L5;
#[separable_conv(dk = 3, m = 256, n = 512, stride = 2)]
struct L6;
#[separable_conv(dk = 3, m = 512, n = 512)]
struct L7;
#[separable_conv(dk = 3, m = 512, n = 1024, stride = 2)]
struct L8;
#[separable_conv(dk = 3, m = 1024, n = 1024)]
struct L9;
#[separable_conv(dk = 5, m = 144, n = 40)]
struct E5;
#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 2)]
struct Dm2;
#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 3)]
struct Dm3;
#[separable_conv(dk = 3, m = 128, n = 32)]
struct Ceil;
// Issue 15's kernel sizes: 5, 7 and 9 on 56x56x128 -> 128 (`K5a`..) and 28x28x256 -> 256
// (`K5b`..), the layers of `../shared/bench/peers` extended by `scripts/peer_layers.py`.
#[separable_conv(dk = 5, m = 128, n = 128)]
struct K5a;
#[separable_conv(dk = 7, m = 128, n = 128)]
struct K7a;
#[separable_conv(dk = 9, m = 128, n = 128)]
struct K9a;
#[separable_conv(dk = 5, m = 256, n = 256)]
struct K5b;
#[separable_conv(dk = 7, m = 256, n = 256)]
struct K7b;
#[separable_conv(dk = 9, m = 256, n = 256)]
struct K9b;
// Large kernels, whose kernel rows run as a loop: 11x11 on 28x28 (a border of 5 pixels
// around the interior), 31x31 on 14x14 (every pixel on the border).
#[separable_conv(dk = 11, m = 128, n = 128)]
struct K11;
#[separable_conv(dk = 31, m = 256, n = 256)]
struct K31;
// L9's depthwise stage with 1024 channels (input pixels 4 KiB apart, in one L1 set at each
// channel offset) and with 1040 (64 bytes more per pixel): what the input's stride costs.
#[separable_conv(dk = 3, m = 1024, n = 16)]
struct Ch1024;
#[separable_conv(dk = 3, m = 1040, n = 16)]
struct Ch1040;
// MobileNetV3-Large's 5x5 layers of 72 channels (stride 2, 56x56 in) and 120 (28x28): a
// partial last channel vector on AVX-512 (8 of 16 lanes).
#[separable_conv(dk = 5, m = 72, n = 40, stride = 2)]
struct V3a;
#[separable_conv(dk = 5, m = 120, n = 40)]
struct V3b;

fn vals(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1e-4)
        .collect()
}

fn run<L: SeparableConv>(h: usize, w: usize, reps: usize, make: impl Fn(&[f32], &[f32]) -> L) {
    // `SIZE=S`: an S x S input instead of the layer's own (say, small enough to stay in L2).
    let (h, w) = std::env::var("SIZE").map_or((h, w), |v| (v.parse().unwrap(), v.parse().unwrap()));
    let c = L::M * L::DEPTH_MULTIPLIER;
    let l = make(&vals(c * L::DK * L::DK), &vals(L::N * c));
    // `OFFSET=K`: every buffer starts K floats past a 64-byte boundary (as a `Vec` may).
    let k: usize = std::env::var("OFFSET").map_or(0, |v| v.parse().unwrap());
    let mut input = AlignedBuf::zeroed(k + h * w * L::M);
    input[k..].copy_from_slice(&vals(h * w * L::M));
    let input = &input[k..];
    let (ho, wo) = L::output_size(h, w);
    // `OUT_OFFSET=K`: the outputs at their own offset: `forward`'s and the pointwise
    // stage's, and the depthwise stage's (which is the pointwise stage's input).
    let k = std::env::var("OUT_OFFSET").map_or(k, |v| v.parse().unwrap());
    let mut out_buf = AlignedBuf::zeroed(k + ho * wo * L::N);
    let out = &mut out_buf[k..];
    let b: Backend = std::env::var("B").ok().map_or(Backend::Scalar, |v| {
        Backend::ALL.into_iter().find(|b| b.name() == v).unwrap()
    });
    // `STAGE=pw`: the pointwise stage alone, on the depthwise output grid (the GEMM of
    // `../shared/bench/peers/bench_gemm.py`); `STAGE=dw`: the depthwise stage alone.
    if std::env::var("PLAN").is_ok() {
        println!("{}", L::plan(b).unwrap());
        return;
    }
    let stage = std::env::var("STAGE").unwrap_or_default();
    let mut mid_buf = AlignedBuf::zeroed(k + ho * wo * c);
    mid_buf[k..].copy_from_slice(&vals(ho * wo * c));
    let mid = &mut mid_buf[k..];
    let mut once = || match stage.as_str() {
        "pw" => l.pointwise_on(b, mid, ho, wo, out).unwrap(),
        "dw" => l.depthwise_on(b, input, h, w, mid).unwrap(),
        // Reading the input once (64 independent sums, vectorised by the compiler): what
        // streaming it costs where it does not fit in L2 (L1-L3: from L3 every call).
        "read" => {
            let mut acc = [0f32; 64];
            for c in input.chunks_exact(64) {
                for (a, x) in acc.iter_mut().zip(c) {
                    *a += x;
                }
            }
            std::hint::black_box(acc);
        }
        _ => l.forward_on(b, input, h, w, out).unwrap(),
    };
    if std::env::var("PEAK").is_ok() {
        assert_ne!(stage, "read", "PEAK=1 needs a stage that multiplies");
        let m = L::multiplications(h, w);
        let mults = match stage.as_str() {
            "pw" => m.pointwise,
            "dw" => m.depthwise,
            _ => m.depthwise + m.pointwise,
        };
        return share_of_peak(b, 2.0 * mults as f64, reps, &mut once);
    }
    if std::env::var("TIME").is_ok() {
        // Median of `reps` timed calls after two warm-ups, in microseconds.
        once();
        once();
        // `FLUSH=MIB`: before each timed call, write and read MIB MiB of other data, as the
        // layers before it in a network do (this layer's weights and input leave L2).
        let flush_mib: usize = std::env::var("FLUSH").map_or(0, |v| v.parse().unwrap());
        let mut other = vec![0f32; flush_mib << 18];
        let mut t: Vec<f64> = (0..reps)
            .map(|r| {
                for (i, x) in other.iter_mut().enumerate() {
                    *x += (i + r) as f32;
                }
                std::hint::black_box(other.iter().sum::<f32>());
                let s = std::time::Instant::now();
                once();
                s.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("{:.2}", t[t.len() / 2]);
    } else {
        (0..reps).for_each(|_| once());
    }
    std::hint::black_box(&out);
}

/// `PEAK=1`: the call's GFLOP/s as a share of this core's FMA peak, both measured in this
/// process, interleaved: each of `reps` rounds times the FMA loop of `fma_peak` (`common/peak.rs`; the best
/// of three) and then one call, and the share is that round's ratio. Prints the median share
/// [min, max] and the median GFLOP/s of each. On a host whose speed drifts from one minute
/// (or process) to the next, this ratio holds where separate runs of the roofline and of the
/// layer do not.
fn share_of_peak(b: Backend, flops: f64, reps: usize, once: &mut dyn FnMut()) {
    let (mut shares, mut layer, mut peak) = (Vec::new(), Vec::new(), Vec::new());
    once();
    once();
    for _ in 0..reps {
        let p = (0..3).map(|_| fma_peak(b)).fold(0.0, f64::max);
        let s = std::time::Instant::now();
        once();
        let g = flops / s.elapsed().as_secs_f64() * 1e-9;
        shares.push(g / p);
        layer.push(g);
        peak.push(p);
    }
    for v in [&mut shares, &mut layer, &mut peak] {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    let mid = |v: &Vec<f64>| v[v.len() / 2];
    println!(
        "share of peak {:.3} [{:.3}, {:.3}]; call {:.1} GFLOP/s, FMA peak {:.1} GFLOP/s ({} rounds)",
        mid(&shares),
        shares[0],
        shares[shares.len() - 1],
        mid(&layer),
        mid(&peak),
        reps
    );
}

/// The 13-block body as one chain: median (with `TIME`) of `reps` forwards.
fn body(reps: usize) {
    fn boxed<L: SeparableConv + 'static>(
        make: impl Fn(&[f32], &[f32]) -> Result<L, dsconv::Error>,
    ) -> Box<dyn Layer> {
        let c = L::M * L::DEPTH_MULTIPLIER;
        Box::new(make(&vals(c * L::DK * L::DK), &vals(L::N * c)).unwrap())
    }
    let mut layers: Vec<Box<dyn Layer>> = vec![
        boxed(L1::from_weights),
        boxed(L2::from_weights),
        boxed(L3::from_weights),
        boxed(L4::from_weights),
        boxed(L5::from_weights),
        boxed(L6::from_weights),
    ];
    layers.extend((0..5).map(|_| boxed(L7::from_weights)));
    layers.push(boxed(L8::from_weights));
    layers.push(boxed(L9::from_weights));
    let b: Backend = std::env::var("B").ok().map_or(Backend::Scalar, |v| {
        Backend::ALL.into_iter().find(|b| b.name() == v).unwrap()
    });
    if std::env::var("STEPS").is_ok() {
        return steps(&layers, b, reps);
    }
    let mut chain = Chain::new(112, 112, layers).unwrap();
    let input = AlignedBuf::from_slice(&vals(112 * 112 * 32));
    let mut out = AlignedBuf::zeroed(7 * 7 * 1024);
    let m = chain.multiplications();
    let mut once = || chain.forward_on(b, &input, &mut out).unwrap();
    if std::env::var("PEAK").is_ok() {
        return share_of_peak(b, 2.0 * (m.depthwise + m.pointwise) as f64, reps, &mut once);
    }
    if std::env::var("TIME").is_ok() {
        once();
        once();
        // `FLUSH=MIB`: before each timed call, write and read MIB MiB of other data, as the
        // layers before it in a network do (this layer's weights and input leave L2).
        let flush_mib: usize = std::env::var("FLUSH").map_or(0, |v| v.parse().unwrap());
        let mut other = vec![0f32; flush_mib << 18];
        let mut t: Vec<f64> = (0..reps)
            .map(|r| {
                for (i, x) in other.iter_mut().enumerate() {
                    *x += (i + r) as f32;
                }
                std::hint::black_box(other.iter().sum::<f32>());
                let s = std::time::Instant::now();
                once();
                s.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("{:.2}", t[t.len() / 2]);
    } else {
        (0..reps).for_each(|_| once());
    }
}

/// `BODY` with `STEPS=1`: each layer's median time in microseconds, in the body's order
/// through two ping-pong buffers (as `Chain` runs them), beside the same layer called
/// `reps` times in a row on its own (warm caches), and the ratio.
fn steps(layers: &[Box<dyn Layer>], b: Backend, reps: usize) {
    let mut dims = vec![(112, 112, 32)];
    for l in layers {
        let (h, w, _) = dims[dims.len() - 1];
        let (ho, wo) = l.output_dims(h, w).unwrap();
        dims.push((ho, wo, l.output_channels()));
    }
    let most = dims.iter().map(|d| d.0 * d.1 * d.2).max().unwrap();
    let mut bufs = [
        AlignedBuf::from_slice(&vals(most)),
        AlignedBuf::zeroed(most),
    ];
    let mut chained = vec![Vec::new(); layers.len()];
    for r in 0..reps + 2 {
        for (i, l) in layers.iter().enumerate() {
            let l = if std::env::var("SHARE").is_ok() && (7..=10).contains(&i) {
                &layers[6]
            } else {
                l
            };
            let (h, w, c) = dims[i];
            let o = dims[i + 1];
            let (lo, hi) = bufs.split_at_mut(1);
            let (src, dst) = if i % 2 == 0 {
                (&lo[0][..], &mut hi[0][..])
            } else {
                (&hi[0][..], &mut lo[0][..])
            };
            let s = std::time::Instant::now();
            l.run_on(b, &src[..h * w * c], h, w, &mut dst[..o.0 * o.1 * o.2])
                .unwrap();
            if r >= 2 {
                chained[i].push(s.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    let median = |t: &mut Vec<f64>| {
        t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        t[t.len() / 2]
    };
    let (mut sum_c, mut sum_a) = (0.0, 0.0);
    for (i, l) in layers.iter().enumerate() {
        let (h, w, c) = dims[i];
        let o = dims[i + 1];
        let src = AlignedBuf::from_slice(&vals(h * w * c));
        let mut dst = AlignedBuf::zeroed(o.0 * o.1 * o.2);
        let mut alone: Vec<f64> = (0..reps + 2)
            .map(|_| {
                let s = std::time::Instant::now();
                l.run_on(b, &src, h, w, &mut dst).unwrap();
                s.elapsed().as_secs_f64() * 1e6
            })
            .skip(2)
            .collect();
        let (c_t, a_t) = (median(&mut chained[i]), median(&mut alone));
        sum_c += c_t;
        sum_a += a_t;
        println!(
            "{i:2} {:>4} chained {c_t:9.1} alone {a_t:9.1} ratio {:.3}",
            l.name(),
            c_t / a_t
        );
    }
    println!(
        "sum chained {sum_c:.1} alone {sum_a:.1} ratio {:.3}",
        sum_c / sum_a
    );
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let reps: usize = a[2].parse().unwrap();
    match a[1].as_str() {
        "BODY" => body(reps),
        "S0" => run(8, 8, reps, |d, p| S0::from_weights(d, p).unwrap()),
        "L1" => run(112, 112, reps, |d, p| L1::from_weights(d, p).unwrap()),
        "L2" => run(112, 112, reps, |d, p| L2::from_weights(d, p).unwrap()),
        "L3" => run(56, 56, reps, |d, p| L3::from_weights(d, p).unwrap()),
        "L4" => run(56, 56, reps, |d, p| L4::from_weights(d, p).unwrap()),
        "L5" => run(28, 28, reps, |d, p| L5::from_weights(d, p).unwrap()),
        "L6" => run(28, 28, reps, |d, p| L6::from_weights(d, p).unwrap()),
        "L7" => run(14, 14, reps, |d, p| L7::from_weights(d, p).unwrap()),
        "L8" => run(14, 14, reps, |d, p| L8::from_weights(d, p).unwrap()),
        "L9" => run(7, 7, reps, |d, p| L9::from_weights(d, p).unwrap()),
        "Ch1024" => run(7, 7, reps, |d, p| Ch1024::from_weights(d, p).unwrap()),
        "Ch1040" => run(7, 7, reps, |d, p| Ch1040::from_weights(d, p).unwrap()),
        "E5" => run(56, 56, reps, |d, p| E5::from_weights(d, p).unwrap()),
        "V3a" => run(56, 56, reps, |d, p| V3a::from_weights(d, p).unwrap()),
        "V3b" => run(28, 28, reps, |d, p| V3b::from_weights(d, p).unwrap()),
        "Dm2" => run(56, 56, reps, |d, p| Dm2::from_weights(d, p).unwrap()),
        "Dm3" => run(56, 56, reps, |d, p| Dm3::from_weights(d, p).unwrap()),
        "Ceil" => run(14, 14, reps, |d, p| Ceil::from_weights(d, p).unwrap()),
        "K5A" => run(56, 56, reps, |d, p| K5a::from_weights(d, p).unwrap()),
        "K7A" => run(56, 56, reps, |d, p| K7a::from_weights(d, p).unwrap()),
        "K9A" => run(56, 56, reps, |d, p| K9a::from_weights(d, p).unwrap()),
        "K5B" => run(28, 28, reps, |d, p| K5b::from_weights(d, p).unwrap()),
        "K7B" => run(28, 28, reps, |d, p| K7b::from_weights(d, p).unwrap()),
        "K9B" => run(28, 28, reps, |d, p| K9b::from_weights(d, p).unwrap()),
        "K11" => run(28, 28, reps, |d, p| K11::from_weights(d, p).unwrap()),
        "K31" => run(14, 14, reps, |d, p| K31::from_weights(d, p).unwrap()),
        x => panic!("{x}"),
    }
}
