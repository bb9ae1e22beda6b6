"""Write a Keras MobileNet's 13 separable blocks, as Keras computes them, for dsconv's tests.

Builds `keras.applications.MobileNet(alpha=0.25, input_shape=(128, 128, 3),
weights=None)` with a fixed seed, gives every BatchNormalization random statistics
(moving mean and variance calibrated on random images, so that each block's output keeps a
spread of values instead of saturating or dying, then perturbed; gamma and beta random),
runs one random image through it, and writes one `.safetensors` file holding

- every block's weights under their Keras names, in TensorFlow layout, BatchNorm unfolded:
  `conv_dw_K/depthwise_kernel` (3, 3, M, 1), `conv_dw_K_bn/{gamma,beta,moving_mean,
  moving_variance}`, `conv_pw_K/kernel` (1, 1, M, N), `conv_pw_K_bn/...` for K = 1..13;
- `input`: the first block's input (the output of `conv1_relu`), (64, 64, 8) HWC;
- `conv_pw_K_relu/output`: every block's output as Keras computes it (HWC).

The BatchNorm epsilon is Keras MobileNet's, 1e-3, recorded in the file's metadata.

Usage (from the repository root; run by hand, not in CI):

    python3 -m venv /work/venv-tf
    /work/venv-tf/bin/pip install tensorflow-cpu numpy safetensors
    /work/venv-tf/bin/python scripts/keras_mobilenet.py [out]   # default tests/keras/mobilenet_025_128.safetensors
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import keras
from safetensors.numpy import save_file

SEED = 2026
BLOCKS = 13


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/keras/mobilenet_025_128.safetensors")
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = keras.applications.MobileNet(
        alpha=0.25, input_shape=(128, 128, 3), weights=None, include_top=False
    )
    calibration = rng.uniform(-1.0, 1.0, size=(4, 128, 128, 3)).astype(np.float32)
    # Each BatchNormalization in order: its statistics calibrated on what reaches it with the
    # earlier ones already set, so every block sees inputs of a realistic spread.
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        probe = keras.Model(model.input, layer.input)
        x = np.asarray(probe(calibration, training=False), dtype=np.float64)
        mean = x.mean(axis=(0, 1, 2))
        var = x.var(axis=(0, 1, 2))
        c = mean.shape[0]
        gamma = rng.uniform(0.5, 3.0, c)
        beta = rng.normal(0.5, 1.0, c)
        moving_mean = mean + rng.normal(0.0, 0.1, c) * np.sqrt(var + 1e-3)
        moving_variance = var * rng.uniform(0.7, 1.4, c) + 1e-4
        layer.set_weights(
            [a.astype(np.float32) for a in (gamma, beta, moving_mean, moving_variance)]
        )
        assert layer.epsilon == 1e-3, layer.epsilon

    image = rng.uniform(-1.0, 1.0, size=(1, 128, 128, 3)).astype(np.float32)
    names = ["conv1_relu"] + [f"conv_pw_{k}_relu" for k in range(1, BLOCKS + 1)]
    taps = keras.Model(model.input, [model.get_layer(n).output for n in names])
    outputs = [np.asarray(t[0], dtype=np.float32) for t in taps(image, training=False)]

    tensors = {"input": outputs[0]}
    for k in range(1, BLOCKS + 1):
        dw = model.get_layer(f"conv_dw_{k}")
        pw = model.get_layer(f"conv_pw_{k}")
        assert not dw.use_bias and not pw.use_bias
        tensors[f"conv_dw_{k}/depthwise_kernel"] = dw.get_weights()[0]
        tensors[f"conv_pw_{k}/kernel"] = pw.get_weights()[0]
        for bn in (f"conv_dw_{k}_bn", f"conv_pw_{k}_bn"):
            gamma, beta, mean, var = model.get_layer(bn).get_weights()
            for name, value in zip(
                ("gamma", "beta", "moving_mean", "moving_variance"), (gamma, beta, mean, var)
            ):
                tensors[f"{bn}/{name}"] = value
        tensors[f"conv_pw_{k}_relu/output"] = outputs[k]
        y = outputs[k]
        print(
            f"block {k:2}: {tuple(outputs[k - 1].shape)} -> {tuple(y.shape)}, "
            f"output mean {y.mean():.3f}, zeros {np.mean(y == 0):.0%}, at 6 {np.mean(y == 6):.0%}"
        )
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        tensors,
        str(out),
        metadata={
            "model": "keras.applications.MobileNet(alpha=0.25, input_shape=(128, 128, 3))",
            "keras": keras.__version__,
            "seed": str(SEED),
            "batch_norm_eps": "1e-3",
        },
    )
    size = out.stat().st_size
    print(f"wrote {out} ({size / 1e6:.2f} MB, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
