//! Property tests: every layer of the shape matrix against the f64 reference, on random
//! image sizes (1..=40), inputs and weights (negatives, zeros, large values).
//!
//! A `harness = false` target driven by libtest-mimic, run on the main thread, so that the
//! same suite runs under qemu-user (which hangs on programs that start threads).
//! Cases per layer: `DSCONV_CASES` (default 24); seed: `DSCONV_SEED` (default fixed).
//! Tolerance: see `common::assert_close` — `2 * (dk*dk + M*DM + 2) * eps * magnitude`.

mod common;

use common::{assert_close, depthwise_oracle, oracle, OwnedWeights};
use dsconv::{reference, separable_conv, Backend, SeparableConv};
use libtest_mimic::{Arguments, Failed, Trial};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

macro_rules! layers {
    ($($name:ident: ($($args:tt)*);)*) => {
        $(
            #[separable_conv($($args)*)]
            struct $name;
        )*
        fn layer_trials() -> Vec<Trial> {
            let mut trials = Vec::new();
            for backend in Backend::ALL {
                $(
                    trials.push(trial::<$name>(
                        backend,
                        stringify!($name),
                        stringify!($($args)*),
                    ));
                )*
            }
            trials
        }
    };
}

layers! {
    L01Seed: (dk = 5, m = 3, n = 256);
    L02Tiny: (dk = 3, m = 1, n = 1);
    L03: (dk = 3, m = 2, n = 3, stride = 2);
    L04Pointwise1x1: (dk = 1, m = 4, n = 8);
    L05: (dk = 7, m = 7, n = 16, padding = "valid");
    L06: (dk = 3, m = 8, n = 17, bias = true, activation = "relu");
    L07: (dk = 5, m = 9, n = 64, stride = 2, activation = "relu6");
    L08: (dk = 3, m = 15, n = 16, depth_multiplier = 2);
    L09: (dk = 3, m = 16, n = 64, bias = true, activation = "relu6");
    L10: (dk = 3, m = 17, n = 8, stride = 2, padding = "valid");
    L11: (dk = 5, m = 31, n = 17, bias = true);
    L12: (dk = 3, m = 32, n = 64, activation = "relu");
    L13: (dk = 7, m = 33, n = 3, stride = 2, bias = true, activation = "relu");
    L14: (dk = 3, m = 64, n = 256, stride = 2);
    L15Fixed: (dk = 3, m = 3, n = 8, h = 8, w = 8);
    L16FixedValid: (dk = 5, m = 4, n = 16, padding = "valid", h = 9, w = 12, activation = "relu6");
    L17: (dk = 1, m = 7, n = 1, stride = 2);
    L18: (dk = 7, m = 1, n = 3, depth_multiplier = 2, activation = "relu");
    L19: (dk = 3, m = 9, n = 17, depth_multiplier = 2, stride = 2, bias = true, activation = "relu6");
    L20: (dk = 5, m = 2, n = 1, padding = "valid", stride = 2);
    L21: (dk = 3, m = 33, n = 16, padding = "valid", bias = true, activation = "relu");
    L22: (dk = 1, m = 64, n = 64, bias = true);
    L23: (dk = 3, m = 31, n = 1, stride = 2, activation = "relu6");
    L24OnePixel: (dk = 5, m = 16, n = 3, depth_multiplier = 2, h = 1, w = 1);
    L25: (dk = 7, m = 8, n = 8, padding = "valid", stride = 2, depth_multiplier = 2, bias = true);
    L26OneRow: (dk = 3, m = 4, n = 17, h = 1, w = 40);
    L27: (dk = 3, m = 15, n = 256, activation = "relu");
    L28: (dk = 5, m = 17, n = 64, stride = 2, padding = "valid", activation = "relu6");
    L29OneColumn: (dk = 3, m = 1, n = 16, bias = true, depth_multiplier = 2, h = 40, w = 1);
    L30: (dk = 7, m = 32, n = 17, activation = "relu6", bias = true);
    L31FixedOdd: (dk = 3, m = 7, n = 3, stride = 2, h = 5, w = 7);
    L32: (dk = 1, m = 9, n = 256, padding = "valid", activation = "relu");
    L33: (dk = 5, m = 64, n = 1, depth_multiplier = 2, stride = 2);
    // Tails: channel counts one short of, equal to and one past the vector widths (4, 8,
    // 16), so every partial-vector load and store is exercised; tiny and odd images.
    T01: (dk = 3, m = 7, n = 7);
    T02: (dk = 3, m = 15, n = 15, stride = 2);
    T03: (dk = 5, m = 31, n = 31, activation = "relu6");
    T04: (dk = 3, m = 33, n = 33, bias = true, activation = "relu");
    T05OddStride2: (dk = 3, m = 9, n = 9, stride = 2, h = 7, w = 9);
    T06SmallerThanKernel: (dk = 7, m = 16, n = 7, h = 3, w = 2);
    T07OnePixel: (dk = 3, m = 1, n = 15, h = 1, w = 1);
    T08: (dk = 5, m = 17, n = 31, depth_multiplier = 2);
    T09: (dk = 3, m = 7, n = 33, depth_multiplier = 2, stride = 2, h = 9, w = 1);
    T10: (dk = 3, m = 8, n = 1, h = 1, w = 23, activation = "relu6");
    T11: (dk = 1, m = 15, n = 9, stride = 2, bias = true);
    // Depth multipliers: 2, 4, 8 and 16 expand input lanes where they divide the lanes
    // (tails of M * DM channels included); 3, and 8 or 16 on narrower vectors, run scalar.
    D01: (dk = 3, m = 5, n = 9, depth_multiplier = 4);
    D02: (dk = 5, m = 3, n = 7, depth_multiplier = 8, stride = 2, activation = "relu");
    D03: (dk = 3, m = 3, n = 5, depth_multiplier = 3, bias = true);
    D04: (dk = 3, m = 2, n = 16, depth_multiplier = 16, stride = 2, bias = true, activation = "relu6");
    D05: (dk = 3, m = 35, n = 8, depth_multiplier = 2, padding = "valid");
    D06: (dk = 5, m = 9, n = 3, depth_multiplier = 4, stride = 2, h = 11, w = 13);
    D07: (dk = 3, m = 6, n = 5, depth_multiplier = 2, stride = 2, activation = "relu6");
    D08: (dk = 3, m = 11, n = 4, depth_multiplier = 4, bias = true);
}

/// One random case: an image size, its input, and weights.
#[derive(Clone, Debug)]
struct Case {
    h: usize,
    w: usize,
    input: Vec<f32>,
    second_image: Vec<f32>,
    weights: OwnedWeights,
}

/// Mostly ordinary values, with zeros, negatives, large magnitudes and the relu6 edges.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -1.0f32..1.0,
        1 => Just(0.0f32),
        1 => -1000.0f32..1000.0,
        1 => prop::sample::select(vec![-0.0f32, 6.0, 5.999, 6.001, -6.0, 1e-3]),
    ]
}

fn values(len: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(value(), len)
}

fn case_strategy<L: SeparableConv>() -> impl Strategy<Value = Case> {
    let lo = match L::PADDING {
        dsconv::Padding::Valid => L::DK,
        dsconv::Padding::Same => 1,
    };
    let sizes = match L::SHAPE.fixed_size {
        Some((h, w)) => (Just(h), Just(w)).boxed(),
        None => (lo..=40usize, lo..=40usize).boxed(),
    };
    let c = L::M * L::DEPTH_MULTIPLIER;
    sizes.prop_flat_map(move |(h, w)| {
        let bias = |len: usize| {
            if L::BIAS {
                values(len).prop_map(Some).boxed()
            } else {
                Just(None).boxed()
            }
        };
        (
            values(h * w * L::M),
            values(h * w * L::M),
            values(c * L::DK * L::DK),
            bias(c),
            values(L::N * c),
            bias(L::N),
        )
            .prop_map(move |(input, second_image, dw, dwb, pw, pwb)| Case {
                h,
                w,
                input,
                second_image,
                weights: OwnedWeights {
                    depthwise: dw,
                    depthwise_bias: dwb,
                    pointwise: pw,
                    pointwise_bias: pwb,
                },
            })
    })
}

fn config() -> Config {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    Config {
        cases: env("DSCONV_CASES", 24) as u32,
        failure_persistence: None,
        max_shrink_iters: 1024,
        rng_seed: RngSeed::Fixed(env("DSCONV_SEED", 0x5eed)),
        ..Config::default()
    }
}

/// One trial per (backend, layer); a backend this CPU lacks is reported as ignored.
fn trial<L: SeparableConv + 'static>(backend: Backend, name: &str, args: &str) -> Trial {
    let args = args.split_whitespace().collect::<Vec<_>>().join(" ");
    let available = backend.is_available();
    let label = if available {
        format!("{backend}::{name} ({args})")
    } else {
        format!("{backend}::{name} ({args}) [skipped: this CPU lacks {backend}]")
    };
    Trial::test(label, move || check_layer::<L>(backend)).with_ignored_flag(!available)
}

fn check_layer<L: SeparableConv>(backend: Backend) -> Result<(), Failed> {
    let mut runner = TestRunner::new(config());
    runner
        .run(&case_strategy::<L>(), |case| {
            check_case::<L>(backend, &case)
        })
        .map_err(|e| Failed::from(e.to_string()))
}

fn check_case<L: SeparableConv>(backend: Backend, case: &Case) -> Result<(), TestCaseError> {
    let fail = TestCaseError::fail;
    let (h, w) = (case.h, case.w);
    let layer = L::load(&case.weights.view()).map_err(|e| fail(e.to_string()))?;
    let (ho, wo) = L::output_size(h, w);
    let c = L::M * L::DEPTH_MULTIPLIER;
    let dk2 = L::DK * L::DK;

    // Whole layer.
    let (exact, magnitude) = oracle(&L::SHAPE, L::ACTIVATION, &case.input, h, w, &case.weights);
    let input = guarded_input(&case.input);
    let input = &input[GUARD..GUARD + case.input.len()];
    let mut out = guarded_output(ho * wo * L::N);
    let len = out.len() - 2 * GUARD;
    layer
        .forward_on(backend, input, h, w, &mut out[GUARD..GUARD + len])
        .map_err(|e| fail(e.to_string()))?;
    let out = unguard("forward", &out)?;
    assert_close("forward", &out, &exact, &magnitude, dk2 + c).map_err(fail)?;

    // Batch of two: each image exactly as `forward` computes it alone.
    let mut batch_in = case.input.clone();
    batch_in.extend_from_slice(&case.second_image);
    let mut batch_out = vec![f32::NAN; 2 * out.len()];
    layer
        .forward_batch_on(backend, &batch_in, 2, h, w, &mut batch_out)
        .map_err(|e| fail(e.to_string()))?;
    let mut second = vec![f32::NAN; out.len()];
    layer
        .forward_on(backend, &case.second_image, h, w, &mut second)
        .map_err(|e| fail(e.to_string()))?;
    same_bits("batch image 0", &batch_out[..out.len()], &out)?;
    same_bits("batch image 1", &batch_out[out.len()..], &second)?;

    // Depthwise stage alone.
    let mut dw_out = guarded_output(ho * wo * c);
    let len = dw_out.len() - 2 * GUARD;
    layer
        .depthwise_on(backend, input, h, w, &mut dw_out[GUARD..GUARD + len])
        .map_err(|e| fail(e.to_string()))?;
    let dw_out = unguard("depthwise", &dw_out)?;
    let (dw_exact, dw_mag) =
        depthwise_oracle(&L::SHAPE, L::ACTIVATION, &case.input, h, w, &case.weights);
    assert_close("depthwise", &dw_out, &dw_exact, &dw_mag, dk2).map_err(fail)?;

    // Pointwise stage alone, on the depthwise output.
    let pw_in = guarded_input(&dw_out);
    let mut pw_out = guarded_output(ho * wo * L::N);
    let len = pw_out.len() - 2 * GUARD;
    layer
        .pointwise_on(
            backend,
            &pw_in[GUARD..GUARD + dw_out.len()],
            ho,
            wo,
            &mut pw_out[GUARD..GUARD + len],
        )
        .map_err(|e| fail(e.to_string()))?;
    let pw_out = unguard("pointwise", &pw_out)?;
    let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let abs = |v: &[f32]| v.iter().map(|&x| (x as f64).abs()).collect::<Vec<f64>>();
    let pwb = case.weights.pointwise_bias.as_deref();
    let pw_exact = reference::pointwise(
        L::ACTIVATION,
        &wide(&dw_out),
        ho * wo,
        c,
        L::N,
        &wide(&case.weights.pointwise),
        pwb.map(wide).as_deref(),
    );
    let pw_mag = reference::pointwise(
        dsconv::Activation::None,
        &abs(&dw_out),
        ho * wo,
        c,
        L::N,
        &abs(&case.weights.pointwise),
        pwb.map(abs).as_deref(),
    );
    assert_close("pointwise", &pw_out, &pw_exact, &pw_mag, c).map_err(fail)?;
    Ok(())
}

/// Floats of guard zone around every buffer a kernel sees: a kernel reading past its input
/// meets NaN (which poisons its outputs); one writing past its output changes the guard.
const GUARD: usize = 64;
const CANARY: f32 = -7.25e30;

/// `data` inside a buffer with NaN guards on both sides; returns the buffer.
fn guarded_input(data: &[f32]) -> Vec<f32> {
    let mut buf = vec![f32::NAN; data.len() + 2 * GUARD];
    buf[GUARD..GUARD + data.len()].copy_from_slice(data);
    buf
}

/// An output buffer of `len` floats inside canary guards.
fn guarded_output(len: usize) -> Vec<f32> {
    let mut buf = vec![CANARY; len + 2 * GUARD];
    buf[GUARD..GUARD + len].fill(f32::NAN);
    buf
}

/// The output part of a guarded buffer, after checking the guards are intact.
fn unguard(what: &str, buf: &[f32]) -> Result<Vec<f32>, TestCaseError> {
    let len = buf.len() - 2 * GUARD;
    let intact = buf[..GUARD]
        .iter()
        .chain(&buf[GUARD + len..])
        .all(|&v| v == CANARY);
    if !intact {
        return Err(TestCaseError::fail(format!(
            "{what}: wrote outside its output slice"
        )));
    }
    Ok(buf[GUARD..GUARD + len].to_vec())
}

/// `got` and `expected` hold the same bits (the kernels are deterministic).
fn same_bits(what: &str, got: &[f32], expected: &[f32]) -> Result<(), TestCaseError> {
    match got
        .iter()
        .zip(expected)
        .position(|(a, b)| a.to_bits() != b.to_bits())
    {
        None => Ok(()),
        Some(i) => Err(TestCaseError::fail(format!(
            "{what}: value {i} is {}, alone it is {}",
            got[i], expected[i]
        ))),
    }
}

fn main() {
    let mut args = Arguments::from_args();
    // Main thread only: qemu-user hangs on thread creation, and the layers are cheap.
    args.test_threads = Some(1);
    let (ran, skipped): (Vec<Backend>, Vec<Backend>) =
        Backend::ALL.into_iter().partition(|b| b.is_available());
    let names = |v: &[Backend]| v.iter().map(|b| b.name()).collect::<Vec<_>>().join(", ");
    println!(
        "backends run: {}; skipped (this CPU lacks them): {}",
        names(&ran),
        if skipped.is_empty() {
            "none".to_string()
        } else {
            names(&skipped)
        }
    );
    let best = Backend::detect();
    println!("default backend (Backend::detect): {best}");
    let mut trials = layer_trials();
    trials.push(Trial::test(
        "the default backend is the best this CPU runs",
        move || {
            let expected = if cfg!(target_arch = "aarch64") {
                Backend::Neon
            } else if Backend::Avx512.is_available() {
                Backend::Avx512
            } else if Backend::Avx2.is_available() {
                Backend::Avx2
            } else {
                Backend::Scalar
            };
            if best == expected {
                Ok(())
            } else {
                Err(format!("detected {best}, expected {expected}").into())
            }
        },
    ));
    libtest_mimic::run(&args, trials).exit();
}
