//! Activation functions applied after each stage, and the scalar forms of hard-swish and
//! SiLU that the scalar backend runs (the vector backends run the same algorithm, with the
//! same constants, on whole vectors).

/// An activation applied after a stage (see [`Activations`]).
///
/// NaN propagates through every activation (`relu(NaN) = NaN`, `silu(NaN) = NaN`), on every
/// backend: a NaN is never silently turned into a number. Infinities saturate as the
/// mathematical function does: `relu6(+inf) = 6`, `relu(-inf) = 0`, `hardswish(+inf) = +inf`,
/// `hardswish(-inf) = 0`, `silu(+inf) = +inf`, `silu(-inf) = 0` (the literal formulas
/// `x * relu6(x + 3) / 6` and `x * sigmoid(x)` would give `-inf * 0 = NaN` there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// Identity.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x * min(max(x + 3, 0), 6) / 6` (MobileNetV3's hard-swish).
    HardSwish,
    /// `x / (1 + e^-x)`, also called swish (EfficientNet). Computed with a vectorised `exp`
    /// (see [`silu`]); its accuracy is stated there.
    Silu,
}

/// The activation of each stage: `out = pw_act(pw(dw_act(dw(x) + b_dw)) + b_pw)`.
/// MobileNetV1 has ReLU after both stages; MobileNetV2's blocks have ReLU6 after the
/// depthwise stage and none after the 1x1 projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Activations {
    /// After the depthwise stage (and its bias).
    pub depthwise: Activation,
    /// After the pointwise stage (and its bias).
    pub pointwise: Activation,
}

impl Activations {
    /// `activation` after both stages.
    pub const fn both(activation: Activation) -> Self {
        Activations {
            depthwise: activation,
            pointwise: activation,
        }
    }
}

impl Activation {
    /// Every activation, in attribute order.
    pub const ALL: [Activation; 5] = [
        Activation::None,
        Activation::Relu,
        Activation::Relu6,
        Activation::HardSwish,
        Activation::Silu,
    ];

    /// The attribute spelling (`"none"`, `"relu"`, `"relu6"`, `"hardswish"`, `"silu"`).
    pub const fn name(self) -> &'static str {
        match self {
            Activation::None => "none",
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
            Activation::HardSwish => "hardswish",
            Activation::Silu => "silu",
        }
    }

    /// The largest slope of the function (its Lipschitz constant): how much it can widen an
    /// error in its input. Hard-swish's slope `(2x + 3) / 6` reaches 1.5 at `x = 3`; SiLU's
    /// peaks at about 1.0998 near `x = 2.4`.
    pub const fn max_slope(self) -> f64 {
        match self {
            Activation::None | Activation::Relu | Activation::Relu6 => 1.0,
            Activation::HardSwish => 1.5,
            Activation::Silu => 1.1,
        }
    }

    /// `act(x)` in `f32`, as the scalar backend computes it (the vector backends compute
    /// the same function with the same algorithm).
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            // Comparisons, not `f32::max`, which would turn NaN into a number.
            Activation::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            // `clamp` keeps NaN.
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::HardSwish => hardswish(x),
            Activation::Silu => silu(x),
        }
    }
}

/// Hard-swish in `f32`: `xc * (min(max(xc + 3, 0), 6) * (1/6))` with `xc = max(x, -3)` (which
/// changes nothing for finite `x`, where the factor is 0 below -3, and gives
/// `hardswish(-inf) = 0`). NaN in, NaN out.
#[inline(always)]
pub fn hardswish(x: f32) -> f32 {
    let xc = if x < -3.0 { -3.0 } else { x };
    let t = (xc + 3.0).clamp(0.0, 6.0);
    // The factor t / 6 is in [0, 1]: nothing overflows (`hardswish(f32::MAX) = f32::MAX`).
    xc * (t * (1.0 / 6.0))
}

/// The constants of [`silu`]'s `exp`, shared by every backend's kernels.
pub mod silu_consts {
    /// Inputs are clamped to at least this: below it `silu` rounds to zero in `f32`
    /// (`|x| e^x < 2^-150` for `x < -108.5`), and `silu(-inf)` becomes `-110 * 0 = -0`.
    pub const LOWER: f32 = -110.0;
    /// How far `e^y` is scaled up so that it stays a normal `f32` down to `y = -110`
    /// (`2^-159`): the kernels compute `q = e^y * 2^SCALE` and multiply by `2^-SCALE` last.
    pub const SCALE: i32 = 64;
    /// `1.5 * 2^23 + 127 + SCALE`: `y * log2(e) + MAGIC` rounds `y * log2(e)` to an integer
    /// `k` and holds `k + 127 + SCALE` in the low mantissa bits, so the sum's bits shifted
    /// left by 23 are `2^(k + SCALE)` (`MAGIC`'s own bits fall off the top); `sum - MAGIC`
    /// is `k`.
    pub const MAGIC: f32 = 12_582_912.0 + 127.0 + SCALE as f32;
    /// `2^-SCALE`.
    pub const UNSCALE: f32 = 1.0 / 18_446_744_073_709_551_616.0;
    /// `log2(e)`.
    pub const LOG2E: f32 = std::f32::consts::LOG2_E;
    /// `ln 2` in two parts: the high part has 9 significant bits, so `k * LN2_HI` is exact
    /// for every `|k| < 2^15`.
    pub const LN2_HI: f32 = 355.0 / 512.0;
    /// `ln 2 - LN2_HI`.
    pub const LN2_LO: f32 = -2.121_944_4e-4;
    /// `e^r` on `|r| <= ln2 / 2` by its Taylor series to degree 7, Horner coefficients from
    /// the highest (`1/7!`) down to the constant term; the truncation error,
    /// `|r|^8 / 8! < 6e-9`, is well under half an ulp.
    pub const EXP_POLY: [f32; 8] = [
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    /// Mantissa bits of `f32`.
    pub const MANTISSA_BITS: u32 = 23;
}

/// SiLU in `f32`, the algorithm every backend runs:
///
/// 1. `xc = max(x, -110)`; `y = max(-|xc|, -110)` (so `y` is in `[-110, 0]`).
/// 2. `q = e^y * 2^64`: `y = k ln2 + r` with `k = round(y log2 e)`, `|r| <= ln2 / 2`; `e^r`
///    by a degree-7 polynomial times `2^(k + 64)`, built from `k`'s bits (a normal `f32`:
///    `k >= -159`). `e = q * 2^-64`.
/// 3. `silu = xc / (1 + e)` for `xc >= 0`; below zero `xc * e / (1 + e)`, computed as
///    `(xc * q / (1 + e)) * 2^-64` so that a result in the subnormal range is rounded once,
///    at the last step (no overflow either way).
///
/// Accuracy, measured by `examples/activation_accuracy.rs` over every finite `f32` against
/// `f64`: see the README (about 2 ulps: relative error in units of `f32::EPSILON`; where the
/// result is subnormal, in units of the smallest subnormal). NaN in, NaN out (the final
/// product has `xc = NaN`); `silu(+inf) = +inf`; `silu(-inf) = -0`.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    use silu_consts::*;
    let xc = if x < LOWER { LOWER } else { x };
    let y = -xc.abs();
    let y = if y < LOWER { LOWER } else { y };
    let t = y * LOG2E + MAGIC;
    let kf = t - MAGIC;
    let r = y - kf * LN2_HI;
    let r = r - kf * LN2_LO;
    let mut p = EXP_POLY[0];
    for c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    let q = p * f32::from_bits(t.to_bits() << MANTISSA_BITS);
    let e = q * UNSCALE;
    let (a, b) = if xc < 0.0 { (q, UNSCALE) } else { (1.0, 1.0) };
    xc * a / (1.0 + e) * b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silu64(x: f64) -> f64 {
        if x == f64::NEG_INFINITY {
            0.0
        } else {
            x / (1.0 + (-x).exp())
        }
    }

    /// Relative error of `got` against `exact`, in units of `f32::EPSILON` (ulps at 1),
    /// for normal results; subnormal results are compared in absolute units of the
    /// smallest subnormal.
    fn error(got: f32, exact: f64) -> f64 {
        let min_normal = f32::MIN_POSITIVE as f64;
        if exact.abs() < min_normal {
            (got as f64 - exact).abs() / f64::from(f32::from_bits(1))
        } else {
            ((got as f64 - exact) / exact).abs() / f32::EPSILON as f64
        }
    }

    #[test]
    fn silu_within_2_5_ulps_over_a_strided_sweep_of_every_finite_f32() {
        let mut worst = (0.0f64, 0.0f32);
        // Every 997th bit pattern: about 4.3 million finite values of both signs.
        for bits in (0..u32::MAX).step_by(997) {
            let x = f32::from_bits(bits);
            if !x.is_finite() {
                continue;
            }
            let e = error(silu(x), silu64(x as f64));
            if e > worst.0 {
                worst = (e, x);
            }
        }
        assert!(
            worst.0 <= 2.0,
            "worst {} ulps at x = {:e}",
            worst.0,
            worst.1
        );
    }

    #[test]
    fn silu_special_values() {
        assert!(silu(f32::NAN).is_nan());
        assert_eq!(silu(f32::INFINITY), f32::INFINITY);
        assert_eq!(silu(f32::NEG_INFINITY), 0.0);
        assert_eq!(silu(0.0), 0.0);
        assert_eq!(silu(f32::MAX), f32::MAX);
        assert_eq!(silu(-200.0), 0.0);
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-7);
    }

    #[test]
    fn hardswish_values() {
        assert!(hardswish(f32::NAN).is_nan());
        assert_eq!(hardswish(f32::INFINITY), f32::INFINITY);
        assert_eq!(hardswish(f32::NEG_INFINITY), 0.0);
        assert_eq!(hardswish(-3.5), 0.0);
        assert_eq!(hardswish(4.0), 4.0);
        assert_eq!(hardswish(0.0), 0.0);
        assert!((hardswish(1.0) - 4.0 / 6.0).abs() < 1e-7);
        for a in Activation::ALL {
            assert!(a.apply(f32::NAN).is_nan(), "{a:?}");
        }
    }
}
