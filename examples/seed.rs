//! The seed text's worked example, end to end: an 8x8x3 image, a 5x5 depthwise stage and a
//! 1x1 stage to 256 channels, "same" padding. Prints the multiplication counts, checks the
//! generated layer against the naive reference, and times both.
//!
//! Run: `cargo run --release --example seed`

use dsconv::reference;
use dsconv::{separable_conv, AlignedBuf, SeparableConv};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The seed's layer, with its input size fixed so the counts are constants.
#[separable_conv(dk = 5, m = 3, n = 256, h = 8, w = 8)]
pub struct Stem;

// The counts are usable in const items.
const _: () = assert!(Stem::MULS == 53_952);

/// Deterministic pseudo-random values in [-1, 1) (a 32-bit linear congruential generator:
/// stand-in weights and images, the same on every run).
fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn median_time(mut f: impl FnMut()) -> Duration {
    for _ in 0..100 {
        f();
    }
    let mut samples: Vec<Duration> = (0..31)
        .map(|_| {
            let reps = 200;
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed() / reps
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> Result<(), dsconv::Error> {
    let (h, w) = (Stem::H, Stem::W);
    let counts = Stem::multiplications(h, w);
    println!(
        "Seed layer: {h}x{w}x{} input, dk = {}, {} -> {} channels, \"same\" padding",
        Stem::M,
        Stem::DK,
        Stem::M,
        Stem::N
    );
    println!();
    println!("| stage                         | multiplications |");
    println!("|-------------------------------|----------------:|");
    println!(
        "| standard 5x5x3 convolution    | {:>15} |",
        fmt(counts.standard)
    );
    println!(
        "| depthwise (8*8*5*5*3)         | {:>15} |",
        fmt(counts.depthwise)
    );
    println!(
        "| pointwise (8*8*3*256)         | {:>15} |",
        fmt(counts.pointwise)
    );
    println!(
        "| separable total               | {:>15} |",
        fmt(counts.total())
    );
    println!(
        "| reduction                     | {:>14.1}x |",
        counts.reduction()
    );
    println!("(the seed text prints the depthwise count as 3,800; 8*8*5*5*3 is 4,800)");
    println!();

    println!("plan of each backend compiled for this target:");
    for plan in Stem::PLANS {
        let state = if plan.backend.is_available() {
            ""
        } else {
            " (not on this CPU)"
        };
        println!("  {plan}{state}");
    }
    println!();

    let input = values(h * w * Stem::M, 1);
    let dw = values(Stem::DEPTHWISE_MULS_PER_PIXEL, 2);
    let pw = values(Stem::POINTWISE_MULS_PER_PIXEL, 3);
    let layer = Stem::from_weights(&dw, &pw)?;
    let (ho, wo) = Stem::output_size(h, w);
    let mut out = AlignedBuf::zeroed(ho * wo * Stem::N);
    layer.forward(&input, h, w, &mut out)?;

    let weights = dsconv::Weights {
        depthwise: &dw,
        depthwise_bias: None,
        pointwise: &pw,
        pointwise_bias: None,
    };
    let (expected, _, _) =
        reference::separable(&Stem::SHAPE, Stem::ACTIVATIONS, &input, h, w, &weights);
    let max_err = out
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "generated vs reference: {} outputs, max |difference| = {max_err:e}",
        out.len()
    );
    assert!(
        max_err <= 1e-4,
        "generated layer disagrees with the reference"
    );

    let generated = median_time(|| {
        layer
            .forward(black_box(&input), h, w, black_box(&mut out))
            .unwrap()
    });
    let naive = median_time(|| {
        black_box(reference::separable(
            &Stem::SHAPE,
            Stem::ACTIVATIONS,
            black_box(&input),
            h,
            w,
            &weights,
        ));
    });
    let flops = 2.0 * counts.total() as f64;
    println!();
    println!("time per forward (median of 31 samples; use `cargo bench` for real figures):");
    let backend = dsconv::Backend::active()?;
    println!(
        "  generated ({backend:>6}): {:>9.2?}  {:>6.2} GFLOP/s",
        generated,
        flops / generated.as_nanos() as f64
    );
    println!(
        "  reference:          {:>9.2?}  {:>6.2} GFLOP/s",
        naive,
        flops / naive.as_nanos() as f64
    );
    println!(
        "  speed-up:           {:>8.1}x",
        naive.as_secs_f64() / generated.as_secs_f64()
    );
    Ok(())
}

fn fmt(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
