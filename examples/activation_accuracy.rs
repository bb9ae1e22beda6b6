//! The accuracy of hard-swish and SiLU as each backend's kernels compute them, against
//! `f64`, over every finite `f32` (or every `STEP`-th bit pattern:
//! `cargo run --release --example activation_accuracy -- STEP`; default 1, about five
//! minutes per backend). Prints the largest error in ulps — relative, in units of
//! `f32::EPSILON`, where the exact result is a normal `f32`; absolute, in units of the
//! smallest subnormal, below — and the input that gave it. The probes have one output
//! channel (one lane of each vector); `tests/activations.rs` checks every lane on a strided
//! sweep.

use dsconv::{separable_conv, Backend};
use dsconv_testkit::accuracy::{finite_sweep, special_inputs, Probe, Worst};

#[separable_conv(dk = 1, m = 1, n = 1, pw_activation = "silu")]
struct SiluProbe;
#[separable_conv(dk = 1, m = 1, n = 1, pw_activation = "hardswish")]
struct HardSwishProbe;

fn main() {
    let step: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
        let mut silu = Probe::<SiluProbe>::new();
        let mut hswish = Probe::<HardSwishProbe>::new();
        let (mut ws, mut wh) = (Worst::default(), Worst::default());
        let specials = special_inputs();
        ws = ws.merge(silu.sweep(backend, &specials));
        wh = wh.merge(hswish.sweep(backend, &specials));
        for batch in finite_sweep(0, step, 1 << 20) {
            ws = ws.merge(silu.sweep(backend, &batch));
            wh = wh.merge(hswish.sweep(backend, &batch));
        }
        println!(
            "{backend}: silu worst {:.3} ulps at x = {:e}; hardswish worst {:.3} ulps at x = {:e} ({} outputs each)",
            ws.ulps, ws.at, wh.ulps, wh.at, ws.count
        );
    }
}
