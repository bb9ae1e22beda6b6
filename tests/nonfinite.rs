//! Non-finite inputs. The documented behaviour: NaN and infinities in the input flow through
//! the arithmetic exactly as in the reference — a NaN reaches every output whose depthwise
//! window covers it (in all N channels, since the pointwise stage mixes channels), NaN passes
//! through every activation, `relu(-inf) = 0`, `relu6(+inf) = 6`, `silu(-inf) =
//! hardswish(-inf) = 0`, `silu(+inf) = hardswish(+inf) = +inf`, and `inf - inf` or
//! `0 * inf` give NaN. (Non-finite *weights* are rejected by `from_weights`; see errors.rs.)

use dsconv::{separable_conv, SeparableConv};
use dsconv_testkit::{activation_terms, assert_close, oracle, values, OwnedWeights};

#[separable_conv(dk = 3, m = 4, n = 6)]
struct Plain;
#[separable_conv(dk = 3, m = 4, n = 6, activation = "relu", bias = true)]
struct Relu;
#[separable_conv(dk = 5, m = 3, n = 5, activation = "relu6", stride = 2)]
struct Relu6;
#[separable_conv(dk = 3, m = 4, n = 6, activation = "silu", bias = true)]
struct Silu;
#[separable_conv(dk = 3, m = 4, n = 6, activation = "hardswish")]
struct HardSwish;

fn check<L: SeparableConv>(poison: &[(usize, f32)]) -> Vec<f32> {
    let (h, w) = (9, 7);
    let weights = OwnedWeights::for_layer::<L>(11);
    let layer = L::load(&weights.view()).unwrap();
    let mut input = values(h * w * L::M, 5);
    for &(i, v) in poison {
        input[i] = v;
    }
    let (ho, wo) = L::output_size(h, w);
    let mut out = vec![0.0; ho * wo * L::N];
    layer.forward(&input, h, w, &mut out).unwrap();
    let (exact, magnitude) = oracle(&L::SHAPE, L::ACTIVATIONS, &input, h, w, &weights);
    let terms = activation_terms(
        activation_terms(L::DK * L::DK, L::DW_ACTIVATION) + L::M,
        L::PW_ACTIVATION,
    );
    assert_close("forward", &out, &exact, &magnitude, terms).unwrap();
    out
}

fn nan_propagates_to_the_outputs_whose_window_covers_it() {
    // Pixel (4, 3), channel 1 of a 9x7 image: outputs (3..=5, 2..=4) see it.
    let out = check::<Plain>(&[((4 * 7 + 3) * 4 + 1, f32::NAN)]);
    for oy in 0..9 {
        for ox in 0..7 {
            let touched = (3..=5).contains(&oy) && (2..=4).contains(&ox);
            for ch in 0..6 {
                assert_eq!(
                    out[(oy * 7 + ox) * 6 + ch].is_nan(),
                    touched,
                    "({oy},{ox}) ch {ch}"
                );
            }
        }
    }
}

fn nan_passes_through_relu_and_relu6() {
    let out = check::<Relu>(&[(0, f32::NAN)]);
    assert!(out[0].is_nan(), "relu(NaN) stays NaN");
    let out = check::<Relu6>(&[(3 * 20, f32::NAN)]);
    assert!(out.iter().any(|v| v.is_nan()), "relu6(NaN) stays NaN");
}

fn infinities_match_the_reference() {
    let out = check::<Plain>(&[(10, f32::INFINITY), (50, f32::NEG_INFINITY)]);
    assert!(out.iter().any(|v| !v.is_finite()));
    let out = check::<Relu6>(&[(7, f32::INFINITY), (40, f32::NEG_INFINITY), (90, f32::NAN)]);
    assert!(out.iter().all(|v| v.is_nan() || (0.0..=6.0).contains(v)));
    check::<Relu>(&[(12, f32::NEG_INFINITY)]);
    // silu(-inf) = hardswish(-inf) = 0 and silu(+inf) = hardswish(+inf) = +inf, as the
    // reference says (the literal formulas would give NaN at -inf).
    for poison in [
        [(7, f32::INFINITY), (40, f32::NEG_INFINITY), (90, f32::NAN)],
        [
            (5, f32::NEG_INFINITY),
            (6, f32::NEG_INFINITY),
            (200, f32::INFINITY),
        ],
    ] {
        check::<Silu>(&poison);
        check::<HardSwish>(&poison);
    }
}

fn main() {
    dsconv_testkit::run_tests(
        dsconv_testkit::tests![
            nan_propagates_to_the_outputs_whose_window_covers_it,
            nan_passes_through_relu_and_relu6,
            infinities_match_the_reference
        ],
        &[],
    );
}
