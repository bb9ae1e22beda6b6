//! What each of issues 12's and 13's features costs: a layer with the feature against the same layer
//! without it, timed in the same run, interleaved (A B, then B A, ... for `ROUNDS` rounds;
//! each side the median of `CALLS` `forward` calls), with the median ratio B / A and its
//! spread. Single thread, batch 1, aligned buffers, the best backend this CPU has
//! (`B=<backend>` picks another).
//!
//! Run: `cargo bench --bench features` (`ROUNDS`, `CALLS` in the environment; defaults 15
//! and 21). `cargo bench --bench features -- count PAIR a|b REPS` runs one side `REPS` times
//! for instruction counts under `valgrind --tool=callgrind` (not AVX-512).
use dsconv::{
    pointwise_conv, separable_conv, AlignedBuf, Backend, Chain, PointwiseConv, SeparableConv,
};

#[path = "common/ab.rs"]
mod ab;
#[path = "common/v1.rs"]
mod v1;
use ab::{loaded, runner, vals, Pair};
use v1::{body_layers, L2, L3};

// MobileNetV2's inverted-residual tail (ReLU6 after the depthwise stage, a linear 1x1).
#[separable_conv(dk = 3, m = 144, n = 24)]
struct V2Base;
#[separable_conv(dk = 3, m = 144, n = 24, dw_activation = "relu6")]
struct V2;
// TensorFlow "SAME" at stride 2 on an even size (0 zeros before, 1 after) against the
// symmetric padding of L2.
#[separable_conv(dk = 3, m = 64, n = 128, stride = 2, padding = "same_upper")]
struct L2Tf;
// Dilation 2 and the two activations, on L3.
#[separable_conv(dk = 3, m = 128, n = 128, dilation = 2)]
struct L3Dilated;
#[separable_conv(dk = 3, m = 128, n = 128, activation = "hardswish")]
struct L3HardSwish;
#[separable_conv(dk = 3, m = 128, n = 128, activation = "silu")]
struct L3Silu;
// EfficientNet-B0's stride-2 MBConv depthwise (SiLU) and its linear projection.
#[separable_conv(dk = 3, m = 96, n = 24, stride = 2)]
struct EffBase;
#[separable_conv(dk = 3, m = 96, n = 24, stride = 2, dw_activation = "silu")]
struct EffSilu;

// `residual = true` on the V2 tail: the skip added in the final store.
#[separable_conv(dk = 3, m = 144, n = 24, dw_activation = "relu6", residual = true)]
struct V2Residual;
// MobileNetV2's expand layer as a 1x1 layer, against the workaround it replaces: a dk = 1
// separable layer (with depthwise weights of 1 it computes the same; the time does not depend
// on the values).
#[pointwise_conv(m = 24, n = 144, activation = "relu6")]
struct Expand;
#[separable_conv(dk = 1, m = 24, n = 144, pw_activation = "relu6")]
struct ExpandWorkaround;

/// `forward_residual` of a residual layer, with a skip of the output's shape.
fn residual_runner<L: SeparableConv + 'static>(
    h: usize,
    w: usize,
    backend: Backend,
) -> Box<dyn FnMut()> {
    let mut l = loaded::<L>(h, w);
    Box::new(move || {
        l.layer
            .forward_residual_on(backend, &l.input, &l.skip, h, w, &mut l.out)
            .unwrap();
        std::hint::black_box(&l.out);
    })
}

/// What a residual block cost before `residual`: `forward`, then the skip added by hand in a
/// second pass over the output.
fn add_by_hand_runner<L: SeparableConv + 'static>(
    h: usize,
    w: usize,
    backend: Backend,
) -> Box<dyn FnMut()> {
    let mut l = loaded::<L>(h, w);
    Box::new(move || {
        l.layer
            .forward_on(backend, &l.input, h, w, &mut l.out)
            .unwrap();
        for (o, s) in l.out.iter_mut().zip(l.skip.iter()) {
            *o += *s;
        }
        std::hint::black_box(&l.out);
    })
}

/// A `#[pointwise_conv]` layer's `forward`.
fn pointwise_runner<L: PointwiseConv + 'static>(
    h: usize,
    w: usize,
    backend: Backend,
) -> Box<dyn FnMut()> {
    let l = L::load(&vals(L::N * L::M, 2), None).unwrap();
    let input = AlignedBuf::from_slice(&vals(h * w * L::M, 3));
    let mut out = AlignedBuf::zeroed(h * w * L::N);
    Box::new(move || {
        l.forward_on(backend, &input, h, w, &mut out).unwrap();
        std::hint::black_box(&out);
    })
}

/// The MobileNetV1 body as a `Chain`.
fn chain_runner(backend: Backend) -> Box<dyn FnMut()> {
    let mut chain = Chain::new(112, 112, body_layers()).unwrap();
    let input = AlignedBuf::from_slice(&v1::values(112 * 112 * 32, 11));
    let mut out = AlignedBuf::zeroed(7 * 7 * 1024);
    Box::new(move || {
        chain.forward_on(backend, &input, &mut out).unwrap();
        std::hint::black_box(&out);
    })
}

/// The same 13 layers called in turn through two buffers by hand.
fn layers_runner(backend: Backend) -> Box<dyn FnMut()> {
    let layers = body_layers();
    let input = AlignedBuf::from_slice(&v1::values(112 * 112 * 32, 11));
    let mut bufs = [
        AlignedBuf::zeroed(112 * 112 * 64),
        AlignedBuf::zeroed(112 * 112 * 64),
    ];
    Box::new(move || {
        let (mut h, mut w, mut c) = (112, 112, 32);
        let [a, b] = &mut bufs;
        let (mut src, mut dst): (&mut [f32], &mut [f32]) = (a, b);
        for (i, l) in layers.iter().enumerate() {
            let (ho, wo) = l.output_dims(h, w).unwrap();
            let n = l.output_channels();
            let x: &[f32] = if i == 0 { &input } else { &src[..h * w * c] };
            l.run_on(backend, x, h, w, &mut dst[..ho * wo * n]).unwrap();
            std::mem::swap(&mut src, &mut dst);
            (h, w, c) = (ho, wo, n);
        }
        std::hint::black_box(&src[..7 * 7 * 1024]);
    })
}

fn pairs(backend: Backend) -> Vec<Pair> {
    vec![
        Pair::new(
            "V2 dw relu6 / none, 56x56x144 -> 24",
            runner::<V2Base>(56, 56, backend),
            runner::<V2>(56, 56, backend),
        ),
        Pair::new(
            "same_upper / same, L2 112x112 s2",
            runner::<L2>(112, 112, backend),
            runner::<L2Tf>(112, 112, backend),
        ),
        Pair::new(
            "dilation 2 / 1, L3 56x56",
            runner::<L3>(56, 56, backend),
            runner::<L3Dilated>(56, 56, backend),
        ),
        Pair::new(
            "hardswish / none, L3 56x56",
            runner::<L3>(56, 56, backend),
            runner::<L3HardSwish>(56, 56, backend),
        ),
        Pair::new(
            "silu / none, L3 56x56",
            runner::<L3>(56, 56, backend),
            runner::<L3Silu>(56, 56, backend),
        ),
        Pair::new(
            "EfficientNet dw silu / none, 112x112x96 s2 -> 24",
            runner::<EffBase>(112, 112, backend),
            runner::<EffSilu>(112, 112, backend),
        ),
        Pair::new(
            "V2 residual / none, 56x56x144 -> 24",
            runner::<V2>(56, 56, backend),
            residual_runner::<V2Residual>(56, 56, backend),
        ),
        Pair::new(
            "V2 residual / forward then a hand-written add, 56x56x144 -> 24",
            add_by_hand_runner::<V2>(56, 56, backend),
            residual_runner::<V2Residual>(56, 56, backend),
        ),
        Pair::new(
            "MobileNetV1 body: Chain / the 13 layers called in turn",
            layers_runner(backend),
            chain_runner(backend),
        ),
        Pair::new(
            "pointwise_conv / dk = 1 separable, 56x56x24 -> 144",
            runner::<ExpandWorkaround>(56, 56, backend),
            pointwise_runner::<Expand>(56, 56, backend),
        ),
    ]
}

fn main() {
    ab::main(pairs)
}
