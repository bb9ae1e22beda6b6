//! dsconv's test kit, shared by every suite, bench helper and the Miri run (a dev-only
//! crate): deterministic data ([`values`]), weights for a layer ([`OwnedWeights`]), one f64
//! oracle per stage ([`oracle`], [`depthwise_oracle`], [`pointwise_oracle`]) with the
//! tolerance rule ([`assert_close`]), guarded buffers ([`guard`]), one harness that makes a
//! trial per backend and reports a backend this CPU (or build) lacks as ignored with the
//! reason ([`run_tests`], [`run_backend_tests`]), the property matrix ([`matrix`]), and the
//! activations' accuracy probes ([`accuracy`]), and weights in other frameworks' layouts ([`layouts`]).
//!
//! Every suite is a `harness = false` libtest-mimic target run on the main thread, because
//! qemu-user (the aarch64 suite) hangs on programs that start threads.

#![allow(missing_docs, clippy::missing_panics_doc)]

pub mod accuracy;
pub mod guard;
pub mod layouts;
pub mod matrix;

use dsconv_runtime::reference;
use dsconv_runtime::{Activation, Activations, Backend, LayerShape, SeparableConv, Weights};

/// `len` values in `[-scale, scale)`, the same for the same `seed`.
pub fn lcg_values(len: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((state >> 8) as f32 / (1u32 << 23) as f32 - 1.0) * scale
        })
        .collect()
}

/// Deterministic pseudo-random values in [-1, 1) (the seed scrambled so nearby seeds differ
/// from the first value on).
pub fn values(len: usize, seed: u32) -> Vec<f32> {
    lcg_values(len, seed.wrapping_mul(2_654_435_761).wrapping_add(1), 1.0)
}

/// Owned weights for a layer type, in PyTorch layouts.
#[derive(Clone, Debug)]
pub struct OwnedWeights {
    pub depthwise: Vec<f32>,
    pub depthwise_bias: Option<Vec<f32>>,
    pub pointwise: Vec<f32>,
    pub pointwise_bias: Option<Vec<f32>>,
}

impl OwnedWeights {
    /// Deterministic weights of the right lengths for `L`.
    pub fn for_layer<L: SeparableConv>(seed: u32) -> Self {
        let c = L::M * L::DEPTH_MULTIPLIER;
        OwnedWeights {
            depthwise: values(c * L::DK * L::DK, seed),
            depthwise_bias: L::BIAS.then(|| values(c, seed + 1)),
            pointwise: values(L::N * c, seed + 2),
            pointwise_bias: L::BIAS.then(|| values(L::N, seed + 3)),
        }
    }

    pub fn view(&self) -> Weights<'_> {
        Weights {
            depthwise: &self.depthwise,
            depthwise_bias: self.depthwise_bias.as_deref(),
            pointwise: &self.pointwise,
            pointwise_bias: self.pointwise_bias.as_deref(),
        }
    }
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn widen_abs(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| (x as f64).abs()).collect()
}

/// The exact-ish result (f64 reference) and the magnitude bound (the same layer on absolute
/// values, without activation) of a whole separable layer.
pub fn oracle(
    shape: &LayerShape,
    activations: Activations,
    input: &[f32],
    h: usize,
    w: usize,
    weights: &OwnedWeights,
) -> (Vec<f64>, Vec<f64>) {
    let run = |conv: fn(&[f32]) -> Vec<f64>, act| {
        let dw = conv(&weights.depthwise);
        let dwb = weights.depthwise_bias.as_deref().map(conv);
        let pw = conv(&weights.pointwise);
        let pwb = weights.pointwise_bias.as_deref().map(conv);
        let wts = Weights {
            depthwise: &dw,
            depthwise_bias: dwb.as_deref(),
            pointwise: &pw,
            pointwise_bias: pwb.as_deref(),
        };
        reference::separable(shape, act, &conv(input), h, w, &wts).0
    };
    (
        run(widen, activations),
        run(widen_abs, Activations::both(Activation::None)),
    )
}

/// The f64 reference and the magnitude bound (absolute values, no activation) of the
/// depthwise stage alone, with the weights' depthwise part.
pub fn depthwise_oracle(
    shape: &LayerShape,
    activation: Activation,
    input: &[f32],
    h: usize,
    w: usize,
    weights: &OwnedWeights,
) -> (Vec<f64>, Vec<f64>) {
    let run = |conv: fn(&[f32]) -> Vec<f64>, act| {
        let bias = weights.depthwise_bias.as_deref().map(conv);
        reference::depthwise(
            shape,
            act,
            &conv(input),
            h,
            w,
            &conv(&weights.depthwise),
            bias.as_deref(),
        )
        .0
    };
    (run(widen, activation), run(widen_abs, Activation::None))
}

/// The tolerance rule of every comparison with the reference:
///
/// `|got - exact| <= 2 * (reduction + 2) * f32::EPSILON * magnitude + 1e-30`
///
/// where `exact` is the f64 reference, `magnitude` the same computation on absolute values
/// (which bounds every partial sum), and `reduction` the number of terms summed in f32 along
/// the way (`dk*dk` for the depthwise stage plus `M*DM` for the pointwise stage). This is the
/// standard forward error bound of recursive summation, `gamma_n * sum |terms|`, with a
/// factor 2 of headroom. ReLU and ReLU6 are 1-Lipschitz and do not widen it; for hard-swish
/// and SiLU the caller widens `reduction` by [`activation_terms`].
pub fn assert_close(
    what: &str,
    got: &[f32],
    exact: &[f64],
    magnitude: &[f64],
    reduction: usize,
) -> Result<(), String> {
    if got.len() != exact.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            exact.len()
        ));
    }
    let factor = 2.0 * (reduction as f64 + 2.0) * f32::EPSILON as f64;
    for (i, ((&g, &e), &m)) in got.iter().zip(exact).zip(magnitude).enumerate() {
        let tol = factor * m + 1e-30;
        let ok = if e.is_nan() {
            g.is_nan()
        } else if e.is_infinite() {
            g as f64 == e
        } else {
            (g as f64 - e).abs() <= tol
        };
        if !ok {
            return Err(format!(
                "{what}: value {i} is {g}, expected {e} (tolerance {tol:e}, magnitude {m:e})"
            ));
        }
    }
    Ok(())
}

/// The `reduction` to give [`assert_close`] for an error of `terms` passed through
/// `activation`: unchanged for the 1-Lipschitz ones (none, ReLU, ReLU6); for hard-swish and
/// SiLU, scaled by the largest slope ([`Activation::max_slope`]: 1.5 and 1.1, which can widen
/// an error of their input by that much) plus 2 for their own rounding (at most 2 ulps of the
/// result, measured by `examples/activation_accuracy.rs`; the result is bounded by the
/// magnitude since `|act(x)| <= |x|`).
pub fn activation_terms(terms: usize, activation: Activation) -> usize {
    match activation {
        Activation::None | Activation::Relu | Activation::Relu6 => terms,
        Activation::HardSwish | Activation::Silu => {
            (terms as f64 * activation.max_slope()).ceil() as usize + 2
        }
    }
}

/// The f64 reference and the magnitude bound of the pointwise stage alone, on `input`
/// (`pixels x k`, a depthwise output) with the weights' pointwise part.
pub fn pointwise_oracle(
    activation: Activation,
    input: &[f32],
    pixels: usize,
    k: usize,
    n: usize,
    weights: &OwnedWeights,
) -> (Vec<f64>, Vec<f64>) {
    let bias = weights.pointwise_bias.as_deref();
    let exact = reference::pointwise(
        activation,
        &widen(input),
        pixels,
        k,
        n,
        &widen(&weights.pointwise),
        bias.map(widen).as_deref(),
    );
    let magnitude = reference::pointwise(
        Activation::None,
        &widen_abs(input),
        pixels,
        k,
        n,
        &widen_abs(&weights.pointwise),
        bias.map(widen_abs).as_deref(),
    );
    (exact, magnitude)
}

/// Pools of 1 and 3 threads other than the global pool's count, to check that every thread
/// count computes the same bits as the global pool; never the 3-thread pool when
/// `DSCONV_NO_THREADS` is set (qemu-user hangs on programs that start threads), so under
/// qemu, where the global pool has one thread too, none.
pub fn other_pools() -> Vec<&'static dsconv_runtime::Pool> {
    use dsconv_runtime::Pool;
    use std::sync::OnceLock;
    static ONE: OnceLock<Pool> = OnceLock::new();
    static THREE: OnceLock<Pool> = OnceLock::new();
    let global = Pool::global().threads();
    let mut pools = Vec::new();
    if global != 1 {
        pools.push(ONE.get_or_init(|| Pool::new(1)));
    }
    if global != 3 && std::env::var_os("DSCONV_NO_THREADS").is_none() {
        pools.push(THREE.get_or_init(|| Pool::new(3)));
    }
    pools
}

/// Why `backend` cannot run here, if it cannot: left out of this build, or missing from
/// this CPU.
pub fn unavailable_reason(backend: Backend) -> Option<String> {
    if backend.is_available() {
        None
    } else if !backend.is_built() {
        Some(format!("this build leaves out {backend} (cargo feature)"))
    } else {
        Some(format!("this CPU lacks {backend}"))
    }
}

/// A named test run once per backend.
pub type BackendTest = (&'static str, fn(Backend));

/// One libtest-mimic trial per backend of [`Backend::ALL`] for each `(name, test)`, named
/// `backend::name`, running `test(backend)`; a backend that cannot run here is reported as
/// ignored with the reason, never passed silently.
pub fn run_backend_tests(tests: &[BackendTest]) {
    run_backend_tests_with(tests, &[])
}

/// [`run_backend_tests`], the tests named in `needs_threads` reported as ignored (with the
/// reason) when `DSCONV_NO_THREADS` is set.
pub fn run_backend_tests_with(tests: &[BackendTest], needs_threads: &[&str]) {
    let mut args = libtest_mimic::Arguments::from_args();
    args.test_threads = Some(1);
    let no_threads = std::env::var_os("DSCONV_NO_THREADS").is_some();
    let mut trials = Vec::new();
    for backend in Backend::ALL {
        for &(name, test) in tests {
            let trial = if no_threads && needs_threads.contains(&name) {
                libtest_mimic::Trial::test(
                    format!(
                        "{backend}::{name} [skipped: starts threads, DSCONV_NO_THREADS is set]"
                    ),
                    || Ok(()),
                )
                .with_ignored_flag(true)
            } else {
                backend_trial(backend, name, move |b| {
                    test(b);
                    Ok(())
                })
            };
            trials.push(trial);
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

/// A trial named `backend::name` running `test(backend)`, ignored (with the reason in its
/// name) when the backend cannot run here.
pub fn backend_trial(
    backend: Backend,
    name: &str,
    test: impl FnOnce(Backend) -> Result<(), libtest_mimic::Failed> + Send + 'static,
) -> libtest_mimic::Trial {
    let reason = unavailable_reason(backend);
    let label = match &reason {
        None => format!("{backend}::{name}"),
        Some(why) => format!("{backend}::{name} [skipped: {why}]"),
    };
    libtest_mimic::Trial::test(label, move || test(backend)).with_ignored_flag(reason.is_some())
}

/// Runs plain test functions as a libtest-mimic suite on the main thread (qemu-user, used
/// for the aarch64 suite, hangs on programs that start threads). Panics fail the test.
/// Tests named in `needs_threads` are reported as ignored when `DSCONV_NO_THREADS` is set.
pub fn run_tests(tests: &[(&'static str, fn())], needs_threads: &[&str]) {
    let mut args = libtest_mimic::Arguments::from_args();
    args.test_threads = Some(1);
    let no_threads = std::env::var_os("DSCONV_NO_THREADS").is_some();
    let trials = tests
        .iter()
        .map(|&(name, f)| {
            let skip = no_threads && needs_threads.contains(&name);
            let label = if skip {
                format!("{name} [skipped: starts threads, DSCONV_NO_THREADS is set]")
            } else {
                name.to_string()
            };
            libtest_mimic::Trial::test(label, move || {
                f();
                Ok(())
            })
            .with_ignored_flag(skip)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// `[("name", name as fn()), ...]` for `run_tests`.
#[macro_export]
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), $name as fn())),*]
    };
}

#[doc(hidden)]
pub use libtest_mimic;

/// `[("name", name as fn(Backend)), ...]` for [`run_backend_tests`].
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), $name as fn(::dsconv::Backend))),*]
    };
}
