"""Generate Keras reference cases for the depthwise-separable convolution tests.

Each case is a small Keras model

    input (1, H, W, M)
      -> [ZeroPadding2D(((0, 1), (0, 1)))]      only for padding "zeropad"
      -> DepthwiseConv2D(k, strides, padding, depth_multiplier, dilation_rate)
      -> depthwise activation
      -> Conv2D(N, 1)                           pointwise
      -> pointwise activation

with seeded random weights and input. The script runs the model with Keras
(float32, CPU), checks the result against an independent float64 numpy
implementation, and writes one plain-text file per case, `<outdir>/<name>.txt`,
holding the parameters, the input, the weights (in Keras layouts) and the
output, all floats printed so that they parse back to the same f32.

Usage (from the repository root):

    python3 -m venv /work/venv-tf
    /work/venv-tf/bin/pip install tensorflow-cpu numpy
    /work/venv-tf/bin/python scripts/keras_cases.py [outdir]   # default tests/keras
"""
import os
import sys
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # silence TensorFlow's start-up chatter

import numpy as np
import tensorflow as tf
import keras

SEED = 12345
TOLERANCE = 1e-4  # max |keras - numpy| allowed for a case's output
ACTIVATION_TOLERANCE = 1e-6


class Case(NamedTuple):
    name: str
    k: int
    m: int
    dm: int
    n: int
    stride: int
    dilation: int
    padding: str  # "same", "valid" or "zeropad"
    dw_act: str  # "none", "relu", "relu6", "hardswish" or "silu"
    pw_act: str
    h: int
    w: int


CASES = [
    Case("k3_s2_same_even", 3, 4, 1, 8, 2, 1, "same", "relu6", "none", 8, 8),
    Case("k3_s2_same_odd", 3, 4, 1, 8, 2, 1, "same", "relu", "relu", 9, 9),
    Case("k5_s2_same_rect", 5, 3, 1, 6, 2, 1, "same", "hardswish", "none", 8, 10),
    Case("k3_d2_same", 3, 4, 1, 8, 1, 2, "same", "relu6", "relu6", 9, 9),
    Case("k3_dm2_silu", 3, 3, 2, 8, 1, 1, "same", "silu", "silu", 7, 7),
    Case("k3_valid_hswish", 3, 4, 1, 4, 1, 1, "valid", "hardswish", "hardswish", 6, 7),
    Case("k4_same_even_kernel", 4, 4, 1, 4, 1, 1, "same", "none", "silu", 8, 8),
    Case("k3_s2_zeropad", 3, 4, 1, 8, 2, 1, "zeropad", "relu6", "relu6", 8, 8),
    Case("k3_d2_valid", 3, 4, 1, 8, 1, 2, "valid", "none", "relu", 9, 9),
    Case("k3_s2_same_even_dm2", 3, 2, 2, 4, 2, 1, "same", "relu6", "none", 6, 6),
]

# Extra padding (top, bottom), (left, right) applied by ZeroPadding2D in "zeropad" cases.
ZEROPAD = ((0, 1), (0, 1))


# ---------------------------------------------------------------- activations

def _keras_fn(*names):
    """The first of keras.activations.<name> that exists."""
    for name in names:
        fn = getattr(keras.activations, name, None)
        if fn is not None:
            return fn
    raise RuntimeError(f"keras.activations has none of {names}")


KERAS_HARD_SWISH = _keras_fn("hard_swish", "hard_silu")
KERAS_SILU = _keras_fn("silu", "swish")


def np_activation(name, x):
    """Reference activations in float64 numpy."""
    if name == "none":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "relu6":
        return np.clip(x, 0.0, 6.0)
    if name == "hardswish":
        return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    raise ValueError(f"unknown activation {name!r}")


def keras_activation(name):
    """The Keras layer for an activation, or None for the identity."""
    if name == "none":
        return None
    if name == "relu":
        return keras.layers.ReLU()
    if name == "relu6":
        return keras.layers.ReLU(6.0)
    if name == "hardswish":
        return keras.layers.Activation(KERAS_HARD_SWISH)
    if name == "silu":
        return keras.layers.Activation(KERAS_SILU)
    raise ValueError(f"unknown activation {name!r}")


def check_activation_formulas():
    """Keras's hard-swish and SiLU must be x*relu6(x+3)/6 and x*sigmoid(x)."""
    x = np.concatenate([np.linspace(-6.0, 6.0, 2401), [-3.0, 3.0, 0.0]]).astype(np.float32)
    for name, fn in (("hardswish", KERAS_HARD_SWISH), ("silu", KERAS_SILU)):
        got = np.asarray(fn(tf.constant(x)), dtype=np.float64)
        want = np_activation(name, x.astype(np.float64))
        diff = float(np.max(np.abs(got - want)))
        print(f"activation {name} (keras.activations.{fn.__name__}): max diff {diff:.3g}")
        assert diff < ACTIVATION_TOLERANCE, f"{name}: Keras differs from the formula by {diff}"


# ---------------------------------------------------------------- numpy reference

def same_padding(size, k, stride, dilation):
    """TensorFlow "SAME" padding (before, after) along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def np_forward(case, x, dw_kernel, dw_bias, pw_kernel, pw_bias):
    """Independent float64 forward pass; x is (H, W, M), returns (ho, wo, N)."""
    x = x.astype(np.float64)
    if case.padding == "same":
        pads = (same_padding(case.h, case.k, case.stride, case.dilation),
                same_padding(case.w, case.k, case.stride, case.dilation))
    elif case.padding == "zeropad":
        pads = ZEROPAD
    else:
        pads = ((0, 0), (0, 0))
    xp = np.pad(x, (pads[0], pads[1], (0, 0)))

    span = (case.k - 1) * case.dilation + 1  # extent of the dilated kernel
    ho = (xp.shape[0] - span) // case.stride + 1
    wo = (xp.shape[1] - span) // case.stride + 1

    # Depthwise: channel c*DM + j of the result is input channel c convolved with kernel[:, :, c, j].
    acc = np.zeros((ho, wo, case.m, case.dm))
    for a in range(case.k):
        for b in range(case.k):
            r0, c0 = a * case.dilation, b * case.dilation
            patch = xp[r0:r0 + (ho - 1) * case.stride + 1:case.stride,
                       c0:c0 + (wo - 1) * case.stride + 1:case.stride, :]
            acc += patch[:, :, :, None] * dw_kernel[a, b].astype(np.float64)[None, None, :, :]
    mid = acc.reshape(ho, wo, case.m * case.dm) + dw_bias.astype(np.float64)
    mid = np_activation(case.dw_act, mid)

    out = mid @ pw_kernel[0, 0].astype(np.float64) + pw_bias.astype(np.float64)
    return np_activation(case.pw_act, out)


# ---------------------------------------------------------------- Keras model

def random_data(case, seed):
    """Input and weights of a case, all float32."""
    rng = np.random.default_rng(seed)

    def uniform(lo, hi, shape):
        return rng.uniform(lo, hi, shape).astype(np.float32)

    md = case.m * case.dm
    x = uniform(-3.0, 3.0, (1, case.h, case.w, case.m))
    dw_kernel = uniform(-1.0, 1.0, (case.k, case.k, case.m, case.dm))
    dw_bias = uniform(-1.0, 1.0, (md,))
    pw_kernel = uniform(-0.5, 0.5, (1, 1, md, case.n))
    pw_bias = uniform(-1.0, 1.0, (case.n,))
    return x, dw_kernel, dw_bias, pw_kernel, pw_bias


def keras_model(case, dw_kernel, dw_bias, pw_kernel, pw_bias):
    depthwise = keras.layers.DepthwiseConv2D(
        kernel_size=case.k,
        strides=case.stride,
        padding="valid" if case.padding == "zeropad" else case.padding,
        depth_multiplier=case.dm,
        dilation_rate=case.dilation,
        use_bias=True,
    )
    pointwise = keras.layers.Conv2D(case.n, 1, use_bias=True)

    layers = [keras.Input((case.h, case.w, case.m))]
    if case.padding == "zeropad":
        layers.append(keras.layers.ZeroPadding2D(ZEROPAD))
    layers += [depthwise, keras_activation(case.dw_act), pointwise, keras_activation(case.pw_act)]
    model = keras.Sequential([layer for layer in layers if layer is not None])

    depthwise.set_weights([dw_kernel, dw_bias])
    pointwise.set_weights([pw_kernel, pw_bias])
    return model


# ---------------------------------------------------------------- output file

def fmt(values):
    """Space-separated floats that parse back to exactly the same f32 values."""
    values = np.asarray(values, dtype=np.float32).ravel()
    texts = ["%.9g" % v for v in values.tolist()]
    assert np.array_equal(np.array(texts, dtype=np.float64).astype(np.float32), values)
    return " ".join(texts)


def case_text(case, header, x, dw_kernel, dw_bias, pw_kernel, pw_bias, y):
    _, ho, wo, _ = y.shape
    lines = [
        header,
        f"name {case.name}",
        f"dk {case.k}",
        f"m {case.m}",
        f"dm {case.dm}",
        f"n {case.n}",
        f"stride {case.stride}",
        f"dilation {case.dilation}",
        f"padding {case.padding}",
        f"dw_activation {case.dw_act}",
        f"pw_activation {case.pw_act}",
        f"h {case.h}",
        f"w {case.w}",
        f"ho {ho}",
        f"wo {wo}",
        f"input {fmt(x)}",
        f"dw_kernel {fmt(dw_kernel)}",
        f"dw_bias {fmt(dw_bias)}",
        f"pw_kernel {fmt(pw_kernel)}",
        f"pw_bias {fmt(pw_bias)}",
        f"output {fmt(y)}",
    ]
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) > 2:
        sys.exit(__doc__)
    default_dir = Path(__file__).resolve().parent.parent / "tests" / "keras"
    outdir = Path(sys.argv[1]) if len(sys.argv) == 2 else default_dir
    outdir.mkdir(parents=True, exist_ok=True)

    tf.config.set_visible_devices([], "GPU")
    header = (f"# generated by scripts/keras_cases.py (TensorFlow {tf.__version__}, "
              f"Keras {keras.__version__}); do not edit")
    print(header[2:])
    check_activation_formulas()

    for index, case in enumerate(CASES):
        x, dw_kernel, dw_bias, pw_kernel, pw_bias = random_data(case, SEED + index)
        model = keras_model(case, dw_kernel, dw_bias, pw_kernel, pw_bias)
        y = np.asarray(model(x, training=False), dtype=np.float32)

        want = np_forward(case, x[0], dw_kernel, dw_bias, pw_kernel, pw_bias)
        assert y.shape == (1,) + want.shape, f"{case.name}: shape {y.shape} vs {want.shape}"
        diff = float(np.max(np.abs(y[0].astype(np.float64) - want)))
        print(f"{case.name:22} output {y.shape}  max |keras - numpy| {diff:.3g}")
        assert diff < TOLERANCE, f"{case.name}: Keras and numpy differ by {diff}"

        path = outdir / f"{case.name}.txt"
        path.write_text(case_text(case, header, x, dw_kernel, dw_bias, pw_kernel, pw_bias, y))


if __name__ == "__main__":
    main()
