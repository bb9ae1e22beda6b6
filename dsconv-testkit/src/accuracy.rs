//! The accuracy of an activation as a backend's kernels compute it, against `f64`: probe
//! layers (`dk = 1`, unit weights, no bias) make a stage's output exactly `act(x)`, so a
//! sweep of inputs through `depthwise_on` / `pointwise_on` measures the activation alone.
//!
//! - Depthwise probe: `dk = 1, m = C, n = 1` with `dw_activation`; every depthwise weight
//!   is 1, so channel `c` of pixel `p` is `act(x)` for the input at that place.
//! - Pointwise probe: `dk = 1, m = 1, n = C` with `pw_activation`; every pointwise weight is
//!   1, so all `C` outputs of pixel `p` are `act(x_p)` (every lane, tails included).

use dsconv_runtime::reference::activate;
use dsconv_runtime::{Activation, Backend, SeparableConv, Weights};

/// The error of `got` against `exact` in units: relative error over `f32::EPSILON` when
/// `exact` is normal in `f32`; absolute error over the smallest subnormal when it is not
/// (where `f32` itself has only absolute precision). Non-finite or mismatched special
/// values are `f64::INFINITY`.
pub fn ulps(got: f32, exact: f64) -> f64 {
    if exact.is_nan() {
        return if got.is_nan() { 0.0 } else { f64::INFINITY };
    }
    if exact.is_infinite() || got.is_nan() {
        return if got as f64 == exact {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let diff = (got as f64 - exact).abs();
    if exact.abs() < f32::MIN_POSITIVE as f64 {
        diff / f32::from_bits(1) as f64
    } else {
        diff / exact.abs() / f32::EPSILON as f64
    }
}

/// The largest error of a sweep and where it was.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Worst {
    /// Units of [`ulps`].
    pub ulps: f64,
    /// The input that gave it.
    pub at: f32,
    /// Outputs checked.
    pub count: u64,
}

impl Worst {
    fn update(&mut self, got: f32, x: f32, activation: Activation) {
        let e = ulps(got, activate(x as f64, activation));
        if e > self.ulps || e.is_nan() {
            self.ulps = e;
            self.at = x;
        }
        self.count += 1;
    }

    /// The worse of two sweeps.
    pub fn merge(self, other: Worst) -> Worst {
        let count = self.count + other.count;
        let mut w = if other.ulps > self.ulps { other } else { self };
        w.count = count;
        w
    }
}

/// Which stage a probe layer exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `dk = 1, m = C, n = 1`, activation after the depthwise stage.
    Depthwise,
    /// `dk = 1, m = 1, n = C`, activation after the pointwise stage.
    Pointwise,
}

/// A loaded probe layer with its buffers, reused across sweeps.
pub struct Probe<L: SeparableConv> {
    layer: L,
    stage: Stage,
    out: Vec<f32>,
}

/// Pixels per call of a probe.
const PIXELS: usize = 4096;

impl<L: SeparableConv> Probe<L> {
    /// Loads `L` (a probe as in the module doc) with unit weights.
    pub fn new() -> Self {
        assert_eq!(L::DK, 1, "a probe has dk = 1");
        assert!(!L::BIAS, "a probe has no bias");
        let stage = if L::N == 1 && L::M > 1 {
            Stage::Depthwise
        } else {
            assert_eq!(L::M, 1, "a pointwise probe has m = 1");
            Stage::Pointwise
        };
        let ones_dw = vec![1.0; L::M];
        let ones_pw = vec![1.0; L::N * L::M];
        let layer = L::load(&Weights {
            depthwise: &ones_dw,
            depthwise_bias: None,
            pointwise: &ones_pw,
            pointwise_bias: None,
        })
        .expect("unit weights load");
        Probe {
            layer,
            stage,
            out: Vec::new(),
        }
    }

    /// The activation the probe's stage applies.
    pub fn activation(&self) -> Activation {
        match self.stage {
            Stage::Depthwise => L::DW_ACTIVATION,
            Stage::Pointwise => L::PW_ACTIVATION,
        }
    }

    /// The worst error over `xs` on `backend`.
    pub fn sweep(&mut self, backend: Backend, xs: &[f32]) -> Worst {
        let activation = self.activation();
        let mut worst = Worst::default();
        let per_pixel = L::M;
        for chunk in xs.chunks(PIXELS * per_pixel) {
            // Whole pixels: pad the last chunk with zeros.
            let pixels = chunk.len().div_ceil(per_pixel);
            let mut input = chunk.to_vec();
            input.resize(pixels * per_pixel, 0.0);
            match self.stage {
                Stage::Depthwise => {
                    self.out.resize(pixels * L::M, f32::NAN);
                    self.layer
                        .depthwise_on(backend, &input, 1, pixels, &mut self.out)
                        .expect("depthwise probe runs");
                    for (&x, &y) in chunk.iter().zip(&self.out) {
                        worst.update(y, x, activation);
                    }
                }
                Stage::Pointwise => {
                    self.out.resize(pixels * L::N, f32::NAN);
                    self.layer
                        .pointwise_on(backend, &input, 1, pixels, &mut self.out)
                        .expect("pointwise probe runs");
                    for (&x, outs) in chunk.iter().zip(self.out.chunks_exact(L::N)) {
                        for &y in outs {
                            worst.update(y, x, activation);
                        }
                    }
                }
            }
        }
        worst
    }
}

impl<L: SeparableConv> Default for Probe<L> {
    fn default() -> Self {
        Self::new()
    }
}

/// Every `step`-th `f32` bit pattern from `start`, finite ones only, in batches of `batch`.
pub fn finite_sweep(start: u32, step: u32, batch: usize) -> impl Iterator<Item = Vec<f32>> {
    let mut next = Some(start);
    std::iter::from_fn(move || {
        let mut out = Vec::with_capacity(batch);
        while out.len() < batch {
            let Some(bits) = next else { break };
            next = bits.checked_add(step);
            let x = f32::from_bits(bits);
            if x.is_finite() {
                out.push(x);
            }
        }
        (!out.is_empty()).then_some(out)
    })
}

/// Special inputs every sweep adds: zeros, infinities, NaN, the extremes, the edges of
/// hard-swish and of SiLU's clamp and subnormal range.
pub fn special_inputs() -> Vec<f32> {
    vec![
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        -3.0,
        3.0,
        -2.999_999_8,
        6.0,
        -87.0,
        -88.0,
        -103.0,
        -108.5,
        -110.0,
        -111.0,
        88.7,
        1.0,
        -1.0,
    ]
}
