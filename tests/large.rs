//! Large images (megabytes per buffer, beyond the random sizes of the matrix), for the
//! standalone depthwise stage: into an aligned buffer and into one a float off alignment,
//! both against the reference (tolerance as in `dsconv_testkit::assert_close`, reduction `dk*dk`),
//! and bit-identical to each other (alignment changes speed, never values).

use dsconv::{separable_conv, AlignedBuf, Backend, SeparableConv};
use dsconv_testkit::{assert_close, depthwise_oracle, values, OwnedWeights};

/// 96x96x32 in and out: 1.2 MB each.
#[separable_conv(dk = 3, m = 32, n = 16, bias = true, activation = "relu6")]
struct Big;
/// Stride 2, 192x192x16 in (2.4 MB), 96x96x16 out (0.6 MB).
#[separable_conv(dk = 3, m = 16, n = 8, stride = 2)]
struct BigStride2;

fn check<L: SeparableConv>(backend: Backend, h: usize, w: usize) {
    let weights = OwnedWeights::for_layer::<L>(21);
    let layer = L::load(&weights.view()).unwrap();
    let input = AlignedBuf::from_slice(&values(h * w * L::M, 8));
    let (ho, wo) = L::output_size(h, w);
    let len = ho * wo * L::M;
    let (exact, magnitude) = depthwise_oracle(&L::SHAPE, L::DW_ACTIVATION, &input, h, w, &weights);
    let mut aligned = AlignedBuf::zeroed(len);
    layer
        .depthwise_on(backend, &input, h, w, &mut aligned)
        .unwrap();
    assert_close(
        &format!("{backend} aligned"),
        &aligned,
        &exact,
        &magnitude,
        L::DK * L::DK,
    )
    .unwrap();
    let mut shifted = AlignedBuf::zeroed(len + 1);
    layer
        .depthwise_on(backend, &input, h, w, &mut shifted[1..])
        .unwrap();
    assert!(
        aligned
            .iter()
            .zip(&shifted[1..])
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "{backend}: aligned and misaligned outputs differ"
    );
}

fn large_image_matches_the_reference(backend: Backend) {
    check::<Big>(backend, 96, 96);
}

fn large_stride2_image_matches_the_reference(backend: Backend) {
    check::<BigStride2>(backend, 192, 192);
}

fn main() {
    dsconv_testkit::run_backend_tests(dsconv_testkit::backend_tests![
        large_image_matches_the_reference,
        large_stride2_image_matches_the_reference
    ]);
}
