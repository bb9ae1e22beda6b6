//! Naive reference kernels: the oracle every generated kernel is tested against.
//!
//! These loops are written to be obviously right, not fast, and share no code with the
//! generated kernels. They pad explicitly (a zero-filled copy of the image), visit every tap
//! (so a padded tap is a multiplication by zero, as the counting convention says), and are
//! generic over the number type so that tests can run them in `f64`, or with a number type
//! that counts its multiplications. Layouts: images HWC (NHWC, batch 1); weights in PyTorch
//! layouts, row-major.
//!
//! They panic on inconsistent lengths: they are test oracles, not an API for untrusted input.

use crate::{Activation, Activations, LayerShape, Padding, Weights};
use std::ops::{Add, Mul};

/// A number the reference kernels can compute with.
pub trait Element: Copy + Add<Output = Self> + Mul<Output = Self> {
    /// Additive identity (also the padding value).
    fn zero() -> Self;
    /// `x < 0 ? 0 : x` — NaN stays NaN.
    fn relu(self) -> Self;
    /// `x < 0 ? 0 : (x > 6 ? 6 : x)` — NaN stays NaN.
    fn relu6(self) -> Self;
    /// `x <= -3 ? 0 : (x >= 3 ? x : x * (x + 3) / 6)` — NaN stays NaN.
    fn hardswish(self) -> Self;
    /// `x / (1 + e^-x)`, with `silu(-inf) = 0` — NaN stays NaN.
    fn silu(self) -> Self;
}

macro_rules! float_element {
    ($t:ty) => {
        impl Element for $t {
            fn zero() -> Self {
                0.0
            }
            fn relu(self) -> Self {
                if self < 0.0 {
                    0.0
                } else {
                    self
                }
            }
            fn relu6(self) -> Self {
                if self < 0.0 {
                    0.0
                } else if self > 6.0 {
                    6.0
                } else {
                    self
                }
            }
            fn hardswish(self) -> Self {
                if self <= -3.0 {
                    0.0
                } else if self >= 3.0 {
                    self
                } else {
                    self * (self + 3.0) / 6.0
                }
            }
            fn silu(self) -> Self {
                if self == <$t>::NEG_INFINITY {
                    0.0
                } else {
                    self / (1.0 + (-self).exp())
                }
            }
        }
    };
}
float_element!(f32);
float_element!(f64);

/// Applies `activation` to one value.
pub fn activate<T: Element>(x: T, activation: Activation) -> T {
    match activation {
        Activation::None => x,
        Activation::Relu => x.relu(),
        Activation::Relu6 => x.relu6(),
        Activation::HardSwish => x.hardswish(),
        Activation::Silu => x.silu(),
    }
}

/// Output extent along one axis, computed the long way (independent of `shape.rs`):
/// the number of window positions `start = o * stride` with `start + window <= padded`.
fn extent(padded: usize, window: usize, stride: usize) -> usize {
    let mut count = 0;
    while count * stride + window <= padded {
        count += 1;
    }
    count
}

/// Zeros `(before, after)` along an axis, written out from each framework's definition
/// (independent of `shape.rs`): PyTorch's symmetric `(window - 1) / 2`; TensorFlow's SAME
/// (ONNX `SAME_UPPER`), which pads whatever makes `ceil(input / stride)` windows fit, the
/// odd zero after; ONNX `SAME_LOWER`, the odd zero before.
fn axis_pads(padding: Padding, input: usize, window: usize, stride: usize) -> (usize, usize) {
    match padding {
        Padding::Same => ((window - 1) / 2, (window - 1) / 2),
        Padding::Valid | Padding::Explicit(_) => (0, 0),
        Padding::SameUpper | Padding::SameLower => {
            let mut out = 0;
            while out * stride < input {
                out += 1;
            }
            let needed = (out - 1) * stride + window;
            let total = needed.saturating_sub(input);
            let (small, large) = (total / 2, total - total / 2);
            if padding == Padding::SameUpper {
                (small, large)
            } else {
                (large, small)
            }
        }
    }
}

/// `(top, left, bottom, right)` zeros for an `h x w` input.
fn pads_of(shape: &LayerShape, h: usize, w: usize) -> (usize, usize, usize, usize) {
    let window = (shape.dk - 1) * shape.dilation + 1;
    if let Padding::Explicit(p) = shape.padding {
        return (p.top, p.left, p.bottom, p.right);
    }
    let (top, bottom) = axis_pads(shape.padding, h, window, shape.stride);
    let (left, right) = axis_pads(shape.padding, w, window, shape.stride);
    (top, left, bottom, right)
}

/// A zero-padded copy of an HWC image and its padded size: `(h + top + bottom) x (w + left +
/// right) x c`.
fn padded_image<T: Element>(
    input: &[T],
    h: usize,
    w: usize,
    c: usize,
    (top, left, bottom, right): (usize, usize, usize, usize),
) -> (Vec<T>, usize, usize) {
    assert_eq!(input.len(), h * w * c, "reference: input length");
    let (hp, wp) = (h + top + bottom, w + left + right);
    let mut out = vec![T::zero(); hp * wp * c];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                out[((y + top) * wp + (x + left)) * c + ch] = input[(y * w + x) * c + ch];
            }
        }
    }
    (out, hp, wp)
}

/// Depthwise stage: returns `(output HWC of ho x wo x m*dm, ho, wo)`.
///
/// `weights` has the PyTorch layout `(m*dm, 1, dk, dk)`; output channel `o` reads input
/// channel `o / dm`. `bias`, when given, has `m*dm` values. The activation is applied.
pub fn depthwise<T: Element>(
    shape: &LayerShape,
    activation: Activation,
    input: &[T],
    h: usize,
    w: usize,
    weights: &[T],
    bias: Option<&[T]>,
) -> (Vec<T>, usize, usize) {
    let (dk, m, dm, s) = (shape.dk, shape.m, shape.depth_multiplier, shape.stride);
    let c = m * dm;
    assert_eq!(
        weights.len(),
        c * dk * dk,
        "reference: depthwise weights length"
    );
    let d = shape.dilation;
    let window = (dk - 1) * d + 1;
    let (padded, hp, wp) = padded_image(input, h, w, m, pads_of(shape, h, w));
    let (ho, wo) = (extent(hp, window, s), extent(wp, window, s));
    let mut out = vec![T::zero(); ho * wo * c];
    for oy in 0..ho {
        for ox in 0..wo {
            for o in 0..c {
                let ci = o / dm;
                let mut acc = match bias {
                    Some(b) => b[o],
                    None => T::zero(),
                };
                for ky in 0..dk {
                    for kx in 0..dk {
                        let (y, x) = (oy * s + ky * d, ox * s + kx * d);
                        acc =
                            acc + padded[(y * wp + x) * m + ci] * weights[(o * dk + ky) * dk + kx];
                    }
                }
                out[(oy * wo + ox) * c + o] = activate(acc, activation);
            }
        }
    }
    (out, ho, wo)
}

/// Pointwise (1x1) stage over `pixels` pixels of `k` channels each, to `n` channels.
///
/// `weights` has the PyTorch layout `(n, k, 1, 1)`; `bias`, when given, has `n` values.
/// The activation is applied.
pub fn pointwise<T: Element>(
    activation: Activation,
    input: &[T],
    pixels: usize,
    k: usize,
    n: usize,
    weights: &[T],
    bias: Option<&[T]>,
) -> Vec<T> {
    assert_eq!(input.len(), pixels * k, "reference: pointwise input length");
    assert_eq!(weights.len(), n * k, "reference: pointwise weights length");
    let mut out = vec![T::zero(); pixels * n];
    for px in 0..pixels {
        for on in 0..n {
            let mut acc = match bias {
                Some(b) => b[on],
                None => T::zero(),
            };
            for ik in 0..k {
                acc = acc + input[px * k + ik] * weights[on * k + ik];
            }
            out[px * n + on] = activate(acc, activation);
        }
    }
    out
}

/// The whole separable layer: `pw_act(pw(dw_act(dw(x) + b_dw)) + b_pw)`.
/// Returns `(output HWC of ho x wo x n, ho, wo)`.
pub fn separable<T: Element>(
    shape: &LayerShape,
    activations: Activations,
    input: &[T],
    h: usize,
    w: usize,
    weights: &Weights<'_, T>,
) -> (Vec<T>, usize, usize) {
    let (dw, ho, wo) = depthwise(
        shape,
        activations.depthwise,
        input,
        h,
        w,
        weights.depthwise,
        weights.depthwise_bias,
    );
    let c = shape.m * shape.depth_multiplier;
    let out = pointwise(
        activations.pointwise,
        &dw,
        ho * wo,
        c,
        shape.n,
        weights.pointwise,
        weights.pointwise_bias,
    );
    (out, ho, wo)
}

/// The standard (dense) `dk x dk` convolution from `m` to `n` channels that a separable
/// layer replaces, without bias or activation. `weights` has the PyTorch layout
/// `(n, m, dk, dk)`. Returns `(output HWC of ho x wo x n, ho, wo)`. Used to check the
/// `STANDARD_MULS` accounting.
pub fn standard<T: Element>(
    shape: &LayerShape,
    input: &[T],
    h: usize,
    w: usize,
    weights: &[T],
) -> (Vec<T>, usize, usize) {
    let (dk, m, n, s) = (shape.dk, shape.m, shape.n, shape.stride);
    assert_eq!(
        weights.len(),
        n * m * dk * dk,
        "reference: standard weights length"
    );
    let d = shape.dilation;
    let window = (dk - 1) * d + 1;
    let (padded, hp, wp) = padded_image(input, h, w, m, pads_of(shape, h, w));
    let (ho, wo) = (extent(hp, window, s), extent(wp, window, s));
    let mut out = vec![T::zero(); ho * wo * n];
    for oy in 0..ho {
        for ox in 0..wo {
            for on in 0..n {
                let mut acc = T::zero();
                for ci in 0..m {
                    for ky in 0..dk {
                        for kx in 0..dk {
                            let (y, x) = (oy * s + ky * d, ox * s + kx * d);
                            let x = padded[(y * wp + x) * m + ci];
                            acc = acc + x * weights[((on * m + ci) * dk + ky) * dk + kx];
                        }
                    }
                }
                out[(oy * wo + ox) * n + on] = acc;
            }
        }
    }
    (out, ho, wo)
}
