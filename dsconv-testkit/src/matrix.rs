//! The property matrix: a declared layer against the f64 reference on random image sizes,
//! inputs and weights (negatives, zeros, large values, the relu6 edges), on one backend:
//! `forward` (guarded buffers), a batch of two (each image bit-identical to `forward` alone),
//! and each stage alone.
//!
//! Cases per layer: `DSCONV_CASES` (default 24). Seed: a fresh one per run, printed by
//! [`run`] and in every failure; `DSCONV_SEED=<n>` reproduces a run.
//! Tolerance: see [`crate::assert_close`] — `2 * (dk*dk + M*DM + 2) * eps * magnitude`,
//! the terms widened by hard-swish and SiLU ([`crate::activation_terms`]).

use crate::guard::{guarded_input, guarded_output, unguard, GUARD};
use crate::{
    activation_terms, assert_close, depthwise_oracle, oracle, pointwise_oracle, OwnedWeights,
};
use dsconv_runtime::{Backend, SeparableConv};
use libtest_mimic::{Arguments, Failed, Trial};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use std::sync::OnceLock;

/// Declares each layer with `#[separable_conv(..)]` and defines `fn layer_trials() ->
/// Vec<Trial>`: one trial per (backend, layer), see [`trial`].
#[macro_export]
macro_rules! matrix_layers {
    ($($name:ident: ($($args:tt)*);)*) => {
        $(
            #[::dsconv::separable_conv($($args)*)]
            struct $name;
        )*
        fn layer_trials() -> ::std::vec::Vec<$crate::libtest_mimic::Trial> {
            let mut trials = ::std::vec::Vec::new();
            for backend in ::dsconv::Backend::ALL {
                $(
                    trials.push($crate::matrix::trial::<$name>(
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

/// The run's seed: `DSCONV_SEED` if set, else a fresh one (time and process id).
pub fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        std::env::var("DSCONV_SEED")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                (nanos ^ (u64::from(std::process::id()) << 32)) % 1_000_000_007
            })
    })
}

/// The largest random image side of a layer without a fixed size (layers declared with
/// `h`/`w` run at that size: the matrix's large images, up to 130, are declared so).
const MAX_SIDE: usize = 40;

/// One random case: an image size, its input, a second image, and weights.
#[derive(Clone, Debug)]
pub struct Case {
    pub h: usize,
    pub w: usize,
    pub input: Vec<f32>,
    pub second_image: Vec<f32>,
    pub weights: OwnedWeights,
}

/// Random values: mostly ordinary, with zeros, negatives, large magnitudes and the relu6
/// edges, drawn in one pass over the case's RNG.
///
/// A case draws up to a million values. `prop::collection::vec` of a per-value strategy
/// built a value tree for each of them (a boxed union, about 100 bytes), and building,
/// moving and dropping those trees took most of a large case's time, over half of it in
/// page faults; the layers' checks took a few percent. These vectors do not shrink: a
/// failing case of a layer without a fixed size shrinks its image size (drawing new values
/// for each size tried), a fixed-size case is reported as drawn, and the printed seed
/// reproduces either. Halving a million values one at a time within `max_shrink_iters`
/// would not get far anyway.
#[derive(Clone, Copy, Debug)]
struct Values {
    len: usize,
}

/// One draw of [`Values`]: the vector, kept as drawn.
#[derive(Clone, Debug)]
struct Drawn(Vec<f32>);

impl proptest::strategy::ValueTree for Drawn {
    type Value = Vec<f32>;
    fn current(&self) -> Vec<f32> {
        self.0.clone()
    }
    fn simplify(&mut self) -> bool {
        false
    }
    fn complicate(&mut self) -> bool {
        false
    }
}

/// The special values: a negative zero, the relu6 edges and a small magnitude.
const SPECIAL: [f32; 6] = [-0.0, 6.0, 5.999, 6.001, -6.0, 1e-3];

/// One value from `bits`: 6 in 9 uniform in [-1, 1), 1 in 9 zero, 1 in 9 uniform in
/// [-1000, 1000), 1 in 9 one of [`SPECIAL`].
fn value(bits: u64) -> f32 {
    // 24 random bits: a uniform float in [0, 1) (every such float is exact in f32).
    let unit = (bits >> 40) as f32 / (1u32 << 24) as f32;
    match (bits & 0xffff_ffff) % 9 {
        0..=5 => unit * 2.0 - 1.0,
        6 => 0.0,
        7 => unit * 2000.0 - 1000.0,
        _ => SPECIAL[((bits >> 32) & 0xff) as usize % SPECIAL.len()],
    }
}

impl Strategy for Values {
    type Tree = Drawn;
    type Value = Vec<f32>;
    fn new_tree(&self, runner: &mut TestRunner) -> proptest::strategy::NewTree<Self> {
        let rng = runner.rng();
        Ok(Drawn(
            (0..self.len).map(|_| value(rng.next_u64())).collect(),
        ))
    }
}

fn values(len: usize) -> Values {
    Values { len }
}

/// Cases for `L`: its fixed size, or random sizes from the smallest it accepts to 40.
pub fn case_strategy<L: SeparableConv>() -> impl Strategy<Value = Case> {
    // The smallest size with an output (the padded kernel window fits).
    let (lo_h, lo_w) = L::SHAPE.min_input();
    let sizes = match L::SHAPE.fixed_size {
        Some((h, w)) => (Just(h), Just(w)).boxed(),
        None => (lo_h..=MAX_SIDE.max(lo_h), lo_w..=MAX_SIDE.max(lo_w)).boxed(),
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

/// Random values a case of a fixed-size layer draws above which it runs fewer cases (the
/// large images of the matrix: their cases cost the most, in the f64 oracles).
const VALUES_PER_CASE_BUDGET: usize = 150_000;

/// Cases for `L`: `DSCONV_CASES` (default 24), scaled down (to at least 2) for fixed-size
/// layers drawing more than [`VALUES_PER_CASE_BUDGET`] values per case.
fn cases<L: SeparableConv>() -> u32 {
    let base: usize = std::env::var("DSCONV_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let Some(drawn) = drawn_per_case::<L>() else {
        return base as u32;
    };
    let scaled = base * VALUES_PER_CASE_BUDGET / drawn.max(1);
    scaled.clamp(2.min(base), base) as u32
}

/// Random values a case of a fixed-size layer draws (two images and the weights).
fn drawn_per_case<L: SeparableConv>() -> Option<usize> {
    let (h, w) = L::SHAPE.fixed_size?;
    let c = L::M * L::DEPTH_MULTIPLIER;
    Some(2 * h * w * L::M + c * L::DK * L::DK + c * L::N)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 1024,
        rng_seed: RngSeed::Fixed(seed()),
        ..Config::default()
    }
}

/// One trial per (backend, layer); a backend that cannot run here is reported as ignored,
/// with the reason.
pub fn trial<L: SeparableConv + 'static>(backend: Backend, name: &str, args: &str) -> Trial {
    let args = args.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::backend_trial(backend, &format!("{name} ({args})"), check_layer::<L>)
}

fn check_layer<L: SeparableConv>(backend: Backend) -> Result<(), Failed> {
    let mut runner = TestRunner::new(config(cases::<L>()));
    runner
        .run(&case_strategy::<L>(), |case| {
            check_case::<L>(backend, &case)
        })
        .map_err(|e| Failed::from(format!("{e} (DSCONV_SEED={} reproduces it)", seed())))
}

/// One case on one backend: `forward`, a batch of two, and each stage alone.
pub fn check_case<L: SeparableConv>(backend: Backend, case: &Case) -> Result<(), TestCaseError> {
    let fail = TestCaseError::fail;
    let (h, w) = (case.h, case.w);
    let layer = L::load(&case.weights.view()).map_err(|e| fail(e.to_string()))?;
    let (ho, wo) = L::output_size(h, w);
    let c = L::M * L::DEPTH_MULTIPLIER;
    let dk2 = L::DK * L::DK;

    // Whole layer.
    let (exact, magnitude) = oracle(&L::SHAPE, L::ACTIVATIONS, &case.input, h, w, &case.weights);
    let input = guarded_input(&case.input);
    let input = &input[GUARD..GUARD + case.input.len()];
    let mut out = guarded_output(ho * wo * L::N);
    let len = out.len() - 2 * GUARD;
    layer
        .forward_on(backend, input, h, w, &mut out[GUARD..GUARD + len])
        .map_err(|e| fail(e.to_string()))?;
    let out = unguard("forward", &out).map_err(fail)?;
    let (dw_terms, pw_act) = (activation_terms(dk2, L::DW_ACTIVATION), L::PW_ACTIVATION);
    let terms = activation_terms(dw_terms + c, pw_act);
    assert_close("forward", &out, &exact, &magnitude, terms).map_err(fail)?;

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

    // Other thread counts: the same bits (`out` ran on the global pool).
    for pool in crate::other_pools() {
        let mut threaded = vec![f32::NAN; out.len()];
        pool.install(|| layer.forward_on(backend, &case.input, h, w, &mut threaded))
            .map_err(|e| fail(e.to_string()))?;
        same_bits(
            &format!("forward on {} threads", pool.threads()),
            &threaded,
            &out,
        )?;
    }

    // Depthwise stage alone.
    let mut dw_out = guarded_output(ho * wo * c);
    let len = dw_out.len() - 2 * GUARD;
    layer
        .depthwise_on(backend, input, h, w, &mut dw_out[GUARD..GUARD + len])
        .map_err(|e| fail(e.to_string()))?;
    let dw_out = unguard("depthwise", &dw_out).map_err(fail)?;
    let (dw_exact, dw_mag) = depthwise_oracle(
        &L::SHAPE,
        L::DW_ACTIVATION,
        &case.input,
        h,
        w,
        &case.weights,
    );
    assert_close("depthwise", &dw_out, &dw_exact, &dw_mag, dw_terms).map_err(fail)?;

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
    let pw_out = unguard("pointwise", &pw_out).map_err(fail)?;
    let (pw_exact, pw_mag) =
        pointwise_oracle(L::PW_ACTIVATION, &dw_out, ho * wo, c, L::N, &case.weights);
    let pw_terms = activation_terms(c, pw_act);
    assert_close("pointwise", &pw_out, &pw_exact, &pw_mag, pw_terms).map_err(fail)?;
    Ok(())
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

/// Runs a matrix suite: prints the backends run and skipped, the default backend and the
/// seed, then the trials, on the main thread (qemu-user hangs on thread creation).
pub fn run(mut trials: Vec<Trial>) -> ! {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let (ran, skipped): (Vec<Backend>, Vec<Backend>) =
        Backend::ALL.into_iter().partition(|b| b.is_available());
    let names = |v: &[Backend]| v.iter().map(|b| b.name()).collect::<Vec<_>>().join(", ");
    println!(
        "backends run: {}; skipped (this CPU or build lacks them): {}",
        names(&ran),
        if skipped.is_empty() {
            "none".to_string()
        } else {
            names(&skipped)
        }
    );
    let best = Backend::detect();
    println!("default backend (Backend::detect): {best}");
    println!(
        "seed: {} (DSCONV_SEED={} reproduces this run)",
        seed(),
        seed()
    );
    let threads: Vec<String> = crate::other_pools()
        .iter()
        .map(|p| p.threads().to_string())
        .collect();
    let global = dsconv_runtime::Pool::global().threads();
    if threads.is_empty() {
        println!("each forward on the default pool of {global} thread(s) only");
    } else {
        println!(
            "each forward also on pools of {} thread(s), for the same bits as the default pool of {global}",
            threads.join(" and ")
        );
    }
    if std::env::var_os("DSCONV_NO_THREADS").is_some() {
        // Reported as skipped (ignored), with the reason, not dropped silently.
        trials.push(
            Trial::test(
                "the same bits on 3 threads [skipped: starts threads, DSCONV_NO_THREADS is set]",
                || Ok(()),
            )
            .with_ignored_flag(true),
        );
    }
    trials.push(Trial::test(
        "the default backend is the best this CPU runs",
        move || {
            // Written out, not derived from the table's order.
            let expected = if cfg!(target_arch = "aarch64") && Backend::Neon.is_built() {
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
    libtest_mimic::run(&args, trials).exit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;

    /// Every kind of value turns up at about its share, ordinary values fill [-1, 1) and
    /// large ones reach past 100 on both sides.
    #[test]
    fn values_draw_every_kind_at_its_share() {
        let mut runner = TestRunner::new(config(1));
        let drawn = values(90_000).new_tree(&mut runner).unwrap().current();
        assert_eq!(drawn.len(), 90_000);
        let share = |f: &dyn Fn(f32) -> bool| drawn.iter().filter(|&&v| f(v)).count();
        // Zeros: 1 in 9, and -0.0 from the specials (about 1 in 54).
        let zeros = share(&|v| v == 0.0);
        assert!((11_000..12_400).contains(&zeros), "{zeros} zeros");
        assert!(share(&|v| v == 0.0 && v.is_sign_negative()) > 1_000);
        for special in [6.0, 5.999, 6.001, -6.0, 1e-3] {
            let n = share(&|v| v == special);
            assert!((1_400..2_000).contains(&n), "{n} of {special}");
        }
        let (large_pos, large_neg) = (share(&|v| v > 100.0), share(&|v| v < -100.0));
        assert!(
            large_pos > 4_000 && large_neg > 4_000,
            "{large_pos}, {large_neg}"
        );
        assert!(drawn.iter().all(|v| (-1000.0..1000.0).contains(v)));
        let small = share(&|v| v != 0.0 && (-1.0..1.0).contains(&v) && v != 1e-3);
        // 6 in 9 ordinary, and the large draws that land inside (-1, 1) (1 in 1000 of them).
        assert!((59_000..61_100).contains(&small), "{small} ordinary");
        // Half of them negative (30,000, sigma about 140), spread over the whole range.
        let negative = share(&|v| (-1.0..0.0).contains(&v));
        assert!((29_000..31_000).contains(&negative), "{negative} negative");
        let (low, high) = (
            share(&|v| (-1.0..-0.9).contains(&v)),
            share(&|v| (0.9..1.0).contains(&v)),
        );
        assert!(
            low > 2_500 && high > 2_500,
            "{low} below -0.9, {high} above 0.9"
        );
        // Two draws differ: the RNG advances.
        let again = values(16).new_tree(&mut runner).unwrap().current();
        assert_ne!(&again[..], &drawn[..16]);
    }
}
