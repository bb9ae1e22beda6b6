//! The 13 separable blocks of Keras' `MobileNet(alpha = 0.25, input_shape = (128, 128, 3))`
//! from a `.safetensors` file (Keras names, TensorFlow layout, BatchNorm folded at load), run
//! as one `Chain` on Keras' input of the first block. Prints each block's plan, its split
//! into work items at this size and its time, the chain's time against the sum of the
//! blocks timed alone, and the largest difference to Keras' output, block by block and at
//! the end of the chain.
//!
//! Run: `cargo run --release --features safetensors --example mobilenet [file]`
//! (default: the file `scripts/keras_mobilenet.py` wrote into `tests/keras/`).

#[path = "../tests/mobilenet/body.rs"]
mod body;

use dsconv::safetensors::{read, WeightFile};
use dsconv::{Backend, Chain, Error};
use std::time::Instant;

/// Median and spread (min, max) of `samples`.
fn median(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}

/// Seconds per call of `f`, averaged over `reps` calls.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() / reps as f64
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn main() -> Result<(), Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| body::DEFAULT_FILE.to_string());
    let bytes = read(&path)?;
    let file = WeightFile::parse(&bytes)?;
    let backend = Backend::active()?;
    let body = body::load_body(&file)?;
    println!("{path}: 13 separable blocks on {backend}");

    // Each block on Keras' own input of it: the difference to Keras' output, and its time.
    let input = file.tensor("example", "input", &[64, 64, 8])?;
    let mut block_input = input.clone();
    let (mut h, mut w) = (64, 64);
    let mut outputs = Vec::new();
    for (i, layer) in body.iter().enumerate() {
        let (ho, wo) = layer.output_dims(h, w)?;
        let n = layer.output_channels();
        let keras = file.tensor("example", &body::output_name(i + 1), &[ho, wo, n])?;
        let mut out = vec![0.0; ho * wo * n];
        layer.run_on(backend, &block_input, h, w, &mut out)?;
        let muls = layer.multiplications_at(h, w).total();
        let (t, _, _) = median(
            (0..15)
                .map(|_| {
                    time(20, || {
                        layer.run_on(backend, &block_input, h, w, &mut out).unwrap();
                    })
                })
                .collect(),
        );
        println!(
            "block {:2} {:>3}x{:<3}x{:>3} -> {:>3}x{:<3}x{:>3}  {:7.1} us  {:5.1} GFLOP/s  max |dsconv - keras| {:.2e}",
            i + 1,
            h, w, layer.input_channels(), ho, wo, n,
            t * 1e6,
            2.0 * muls as f64 / t / 1e9,
            largest_difference(&out, &keras),
        );
        if let Some(plan) = layer.plan_on(backend) {
            println!("         plan: {plan}");
        }
        if let Some(split) = layer.split_on(backend, h, w, dsconv::Pool::global().threads()) {
            println!("         this size: {split}");
        }
        outputs.push(out);
        (block_input, h, w) = (keras, ho, wo);
    }

    // The chain from Keras' first input, and the chain against its blocks timed alone,
    // interleaved (chain, blocks, chain, blocks, ...) so both see the same machine.
    let last = file.tensor("example", &body::output_name(13), &[4, 4, 256])?;
    let mut chain = Chain::new(64, 64, body)?;
    let mut out = vec![0.0; 4 * 4 * 256];
    chain.forward_on(backend, &input, &mut out)?;
    println!(
        "chain of 13: max |dsconv - keras| at the end {:.2e} (Keras' output of the last block spans {:.2}..{:.2})",
        largest_difference(&out, &last),
        last.iter().copied().fold(f32::INFINITY, f32::min),
        last.iter().copied().fold(f32::NEG_INFINITY, f32::max),
    );
    let mut ins = vec![input.clone()];
    ins.extend(outputs.iter().take(12).cloned());
    let dims: Vec<_> = chain.input_dims_of_each().collect();
    let (mut chain_t, mut sum_t, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..15 {
        let c = time(20, || chain.forward_on(backend, &input, &mut out).unwrap());
        let s: f64 = chain
            .layers()
            .zip(&ins)
            .zip(&dims)
            .zip(outputs.iter_mut())
            .map(|(((layer, x), &(h, w, _)), y)| {
                time(20, || layer.run_on(backend, x, h, w, y).unwrap())
            })
            .sum();
        chain_t.push(c);
        sum_t.push(s);
        ratios.push(c / s);
    }
    let muls = chain.multiplications().total();
    let (c, _, _) = median(chain_t);
    let (s, _, _) = median(sum_t);
    let (r, lo, hi) = median(ratios);
    println!(
        "chain {:.1} us ({:.1} GFLOP/s), blocks alone summed {:.1} us: chain / sum {:.3} (15 interleaved rounds, range {:.3}..{:.3})",
        c * 1e6,
        2.0 * muls as f64 / c / 1e9,
        s * 1e6,
        r,
        lo,
        hi
    );
    Ok(())
}
