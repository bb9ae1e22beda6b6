//! Small shapes that reach every tail and border path of every kernel, for Miri:
//! `RUSTFLAGS="-C target-feature=+avx2,+fma" cargo +nightly miri test --test miri` runs the
//! scalar and AVX2 kernels under Miri, which fails on any out-of-bounds access or
//! uninitialised read. The same tests run natively in `cargo test` (on every backend the
//! CPU has), where they check the results against the reference.

use dsconv::{pointwise_conv, separable_conv, Backend, PointwiseConv, SeparableConv};
use dsconv_testkit::{assert_close, oracle, values, OwnedWeights};

/// 9 and 17 channels: one full AVX2 vector plus a 1-lane tail, in both stages.
#[separable_conv(dk = 3, m = 9, n = 17, bias = true, activation = "relu6")]
struct Tails;
/// Stride 2 with odd sizes; 7 channels: a partial vector only.
#[separable_conv(dk = 3, m = 7, n = 7, stride = 2)]
struct Stride2;
/// 5x5 taps on images smaller than the kernel; 3 channels.
#[separable_conv(dk = 5, m = 3, n = 33, activation = "relu")]
struct Wide;
/// Depth multiplier 2 with odd m: 14 channels, one full expanded AVX2 vector (4 input
/// floats, a 128-bit load) and a 6-lane tail (3 input floats, its 4-float load moved back
/// one channel so that it ends at the pixel's last).
#[separable_conv(dk = 3, m = 7, n = 5, depth_multiplier = 2)]
struct Multiplier;
/// Depth multiplier 4, stride 2: 12 channels, one full expanded AVX2 vector (2 input floats,
/// a 64-bit load) and a 4-lane tail (1 input float, its 2-float load moved back one).
#[separable_conv(dk = 3, m = 3, n = 5, depth_multiplier = 4, stride = 2)]
struct Multiplier4;
/// Depth multiplier 3 on 3 channels: every vector reads 3 input floats, fewer than the 4 of
/// a 128-bit load, so a masked load of 3.
#[separable_conv(dk = 3, m = 3, n = 4, depth_multiplier = 3)]
struct Multiplier3;
/// Depth multiplier 5: 25 channels, vectors starting mid-way through a channel's copies
/// (their own offsets and permutes), the last ones moved back to stay inside the pixel.
#[separable_conv(dk = 3, m = 5, n = 6, depth_multiplier = 5, stride = 2)]
struct Multiplier5;
/// 2 channels, stride 2: the width-vector depthwise (output columns across lanes), with
/// rows of more than one vector and a partial last one.
#[separable_conv(dk = 3, m = 2, n = 7, stride = 2)]
struct FewChannels;
/// Valid padding, no border at all.
#[separable_conv(dk = 3, m = 16, n = 8, padding = "valid")]
struct Valid;

/// A residual layer with 17 output channels: the skip's loads in the final store cover a
/// full AVX2 vector, a partial one, and fused tiles and chunks of a few pixels.
#[separable_conv(
    dk = 3,
    m = 9,
    n = 17,
    bias = true,
    activation = "relu6",
    residual = true
)]
struct ResidualTails;
/// A 1x1 layer with a skip: 13 output channels (8 + a 5-lane tail).
#[pointwise_conv(m = 5, n = 13, bias = true, activation = "silu", residual = true)]
struct PointwiseResidual;
/// A plain 1x1 layer: 3 output channels, a partial vector only.
#[pointwise_conv(m = 17, n = 3)]
struct PointwisePlain;

/// A residual separable layer on skips of exactly the output's length: in bounds, and the
/// result (checked natively) is the reference's plus the skip.
fn check_residual<L: SeparableConv>(backend: Backend, sizes: &[(usize, usize)]) {
    let weights = OwnedWeights::for_layer::<L>(6);
    let layer = L::load(&weights.view()).unwrap();
    for &(h, w) in sizes {
        let input = values(h * w * L::M, (h * 17 + w) as u32);
        let (ho, wo) = L::output_size(h, w);
        let skip = values(ho * wo * L::N, 3);
        let mut out = vec![f32::NAN; ho * wo * L::N];
        layer
            .forward_residual_on(backend, &input, &skip, h, w, &mut out)
            .unwrap();
        let (exact, magnitude) = oracle(&L::SHAPE, L::ACTIVATIONS, &input, h, w, &weights);
        let exact: Vec<f64> = exact
            .iter()
            .zip(&skip)
            .map(|(e, &s)| e + s as f64)
            .collect();
        let magnitude: Vec<f64> = magnitude
            .iter()
            .zip(&skip)
            .map(|(m, &s)| m + (s as f64).abs())
            .collect();
        let reduction = L::DK * L::DK + L::M * L::DEPTH_MULTIPLIER + 1;
        assert_close(
            &format!("{backend} {h}x{w}"),
            &out,
            &exact,
            &magnitude,
            reduction,
        )
        .unwrap();
    }
}

/// A 1x1 layer, with its skip if residual: in bounds, every output written and finite.
fn check_pointwise<L: PointwiseConv>(backend: Backend, sizes: &[(usize, usize)]) {
    let layer = L::load(
        &values(L::N * L::M, 4),
        L::BIAS.then(|| values(L::N, 5)).as_deref(),
    )
    .unwrap();
    for &(h, w) in sizes {
        let input = values(h * w * L::M, 8);
        let mut out = vec![f32::NAN; h * w * L::N];
        if L::RESIDUAL {
            let skip = values(h * w * L::N, 9);
            layer
                .forward_residual_on(backend, &input, &skip, h, w, &mut out)
                .unwrap();
        } else {
            layer.forward_on(backend, &input, h, w, &mut out).unwrap();
        }
        assert!(out.iter().all(|v| v.is_finite()), "{backend} {h}x{w}");
    }
}

fn residual_stores_are_in_bounds(backend: Backend) {
    check_residual::<ResidualTails>(backend, &[(1, 1), (2, 3), (4, 7)]);
    check_pointwise::<PointwiseResidual>(backend, &[(1, 1), (1, 7), (3, 3)]);
    check_pointwise::<PointwisePlain>(backend, &[(1, 1), (2, 5)]);
}

fn check<L: SeparableConv>(backend: Backend, sizes: &[(usize, usize)]) {
    let weights = OwnedWeights::for_layer::<L>(5);
    let layer = L::load(&weights.view()).unwrap();
    for &(h, w) in sizes {
        let input = values(h * w * L::M, (h * 31 + w) as u32);
        let (ho, wo) = L::output_size(h, w);
        let mut out = vec![f32::NAN; ho * wo * L::N];
        layer.forward_on(backend, &input, h, w, &mut out).unwrap();
        let (exact, magnitude) = oracle(&L::SHAPE, L::ACTIVATIONS, &input, h, w, &weights);
        let reduction = L::DK * L::DK + L::M * L::DEPTH_MULTIPLIER;
        assert_close(
            &format!("{backend} {h}x{w}"),
            &out,
            &exact,
            &magnitude,
            reduction,
        )
        .unwrap();
        let mut mid = vec![f32::NAN; ho * wo * L::M * L::DEPTH_MULTIPLIER];
        layer.depthwise_on(backend, &input, h, w, &mut mid).unwrap();
        let mut out2 = vec![f32::NAN; out.len()];
        layer
            .pointwise_on(backend, &mid, ho, wo, &mut out2)
            .unwrap();
        assert!(out2.iter().all(|v| v.is_finite()));
    }
}

fn tails_and_borders_are_in_bounds(backend: Backend) {
    check::<Tails>(backend, &[(1, 1), (2, 3), (4, 7)]);
}

fn stride2_odd_sizes_are_in_bounds(backend: Backend) {
    check::<Stride2>(backend, &[(1, 1), (3, 5), (5, 4)]);
}

fn images_smaller_than_the_kernel_are_in_bounds(backend: Backend) {
    check::<Wide>(backend, &[(1, 2), (3, 3), (6, 5)]);
}

fn depth_multiplier_is_in_bounds(backend: Backend) {
    check::<Multiplier>(backend, &[(2, 2), (3, 4)]);
    check::<Multiplier4>(backend, &[(1, 1), (3, 5), (4, 4)]);
    check::<Multiplier3>(backend, &[(1, 1), (2, 5)]);
    check::<Multiplier5>(backend, &[(1, 2), (5, 3)]);
}

fn few_channels_width_vectors_are_in_bounds(backend: Backend) {
    check::<FewChannels>(backend, &[(1, 1), (4, 19), (3, 2)]);
}

fn valid_padding_is_in_bounds(backend: Backend) {
    check::<Valid>(backend, &[(3, 3), (4, 6)]);
}

fn main() {
    dsconv_testkit::run_backend_tests(dsconv_testkit::backend_tests![
        tails_and_borders_are_in_bounds,
        stride2_odd_sizes_are_in_bounds,
        images_smaller_than_the_kernel_are_in_bounds,
        depth_multiplier_is_in_bounds,
        few_channels_width_vectors_are_in_bounds,
        valid_padding_is_in_bounds,
        residual_stores_are_in_bounds
    ]);
}
