//! Hard-swish and SiLU as every backend's kernels compute them (after either stage, every
//! lane and a partial vector), against `f64` over a strided sweep of every finite `f32` and
//! the special values: at most 2.5 ulps (`dsconv_testkit::accuracy::ulps`; the exhaustive
//! sweep of every finite f32, `examples/activation_accuracy.rs`, measured SiLU at 2.04
//! (scalar) and 1.91 (AVX2), hard-swish at 1.50), NaN in gives NaN out,
//! `act(+inf) = +inf` and `act(-inf) = 0`.

use dsconv::{separable_conv, Activation, Backend, SeparableConv};
use dsconv_testkit::accuracy::{finite_sweep, special_inputs, Probe, Worst};

// 19 channels: two whole AVX2 vectors and a partial one, one AVX-512 vector and a partial
// one, four NEON vectors and a partial one.
#[separable_conv(dk = 1, m = 19, n = 1, dw_activation = "silu")]
struct SiluDw;
#[separable_conv(dk = 1, m = 1, n = 19, pw_activation = "silu")]
struct SiluPw;
#[separable_conv(dk = 1, m = 19, n = 1, dw_activation = "hardswish")]
struct HardSwishDw;
#[separable_conv(dk = 1, m = 1, n = 19, pw_activation = "hardswish")]
struct HardSwishPw;

/// The bound every backend meets (ulps, see the module doc).
const BOUND: f64 = 2.5;

/// Every `step()`-th bit pattern: about 715,000 finite values of both signs. Emulated NEON
/// takes a sparser sweep (`DSCONV_CASES` is set low there).
fn step() -> u32 {
    match std::env::var("DSCONV_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        Some(cases) if cases < 24 => 60_013,
        _ => 6_007,
    }
}

fn sweep<L: SeparableConv>(backend: Backend) {
    let mut probe = Probe::<L>::new();
    let mut worst = probe.sweep(backend, &special_inputs());
    for batch in finite_sweep(0, step(), 1 << 16) {
        worst = worst.merge(probe.sweep(backend, &batch));
    }
    let Worst { ulps, at, count } = worst;
    assert!(
        ulps <= BOUND,
        "{} on {backend}: {ulps} ulps at x = {at:e} (bound {BOUND}, {count} outputs)",
        std::any::type_name::<L>()
    );
    // Every finite f32 has one in `step()` patterns in the sweep (about 2^32 / step inputs,
    // one output each on the depthwise probe, 19 on the pointwise one).
    let inputs = (u32::MAX / step()) as u64 * 250 / 256;
    assert!(
        count >= inputs,
        "{count} outputs checked, expected at least {inputs}"
    );
}

fn special_values<L: SeparableConv>(backend: Backend) {
    let mut probe = Probe::<L>::new();
    let activation = probe.activation();
    assert!(matches!(
        activation,
        Activation::Silu | Activation::HardSwish
    ));
    for (x, expected) in [
        (f32::INFINITY, f32::INFINITY),
        (f32::NEG_INFINITY, 0.0),
        (0.0, 0.0),
        (f32::MAX, f32::MAX),
    ] {
        let w = probe.sweep(backend, &[x]);
        assert_eq!(
            w.ulps, 0.0,
            "{activation:?}({x}) on {backend}, expected {expected}"
        );
    }
    // A NaN must come out NaN (the sweep's error for a NaN expected value is 0 only then).
    assert_eq!(
        probe.sweep(backend, &[f32::NAN]).ulps,
        0.0,
        "{activation:?}(NaN)"
    );
}

/// The sweep and the special values of one probe.
fn check<L: SeparableConv>(b: Backend) {
    sweep::<L>(b);
    special_values::<L>(b);
}

fn main() {
    dsconv_testkit::run_backend_tests(&[
        ("silu_depthwise", check::<SiluDw>),
        ("silu_pointwise", check::<SiluPw>),
        ("hardswish_depthwise", check::<HardSwishDw>),
        ("hardswish_pointwise", check::<HardSwishPw>),
    ]);
}
