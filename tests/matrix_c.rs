//! Property matrix, tails (channel counts around every vector width), depth multipliers and per-stage activations (hard-swish and SiLU included): every layer against the f64 reference on random inputs and
//! weights (random sizes 1..=40 unless declared), on every backend this CPU has
//! (`dsconv_testkit::matrix`). The matrix is split over several test crates so that they
//! build in parallel. Cases: `DSCONV_CASES`; seed: printed, `DSCONV_SEED` reproduces it.

dsconv_testkit::matrix_layers! {
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
    // Depth multipliers 2..=8 and 16, every one on expanded channel vectors: where DM
    // divides the lanes one permute serves every vector; elsewhere (3, 5, 6, 7; 16 on AVX2;
    // 8 and 16 on NEON) each vector has its own load offset and permute from the plan's
    // table. Tails of M * DM channels, loads wider than M (masked), a single input channel
    // (a broadcast), and many vectors (the table's period) included.
    D01: (dk = 3, m = 5, n = 9, depth_multiplier = 4);
    D02: (dk = 5, m = 3, n = 7, depth_multiplier = 8, stride = 2, activation = "relu");
    D03: (dk = 3, m = 3, n = 5, depth_multiplier = 3, bias = true);
    D04: (dk = 3, m = 2, n = 16, depth_multiplier = 16, stride = 2, bias = true, activation = "relu6");
    D05: (dk = 3, m = 35, n = 8, depth_multiplier = 2, padding = "valid");
    D06: (dk = 5, m = 9, n = 3, depth_multiplier = 4, stride = 2, h = 11, w = 13);
    D07: (dk = 3, m = 6, n = 5, depth_multiplier = 2, stride = 2, activation = "relu6");
    D08: (dk = 3, m = 11, n = 4, depth_multiplier = 4, bias = true);
    D09: (dk = 3, m = 13, n = 6, depth_multiplier = 5, stride = 2);
    D10: (dk = 5, m = 7, n = 9, depth_multiplier = 6, bias = true);
    D11: (dk = 3, m = 19, n = 5, depth_multiplier = 7, padding = "valid", activation = "relu6");
    D12: (dk = 3, m = 40, n = 8, depth_multiplier = 3, dilation = 2);
    D13: (dk = 3, m = 1, n = 4, depth_multiplier = 5, h = 6, w = 17);
    // Per-stage activations: the MobileNetV2 pattern (ReLU6 after the depthwise stage, a
    // linear 1x1), and the reverse, on channel vectors, width vectors and expanded loads.
    P01MobileNetV2: (dk = 3, m = 24, n = 16, bias = true, dw_activation = "relu6");
    P02: (dk = 3, m = 3, n = 8, bias = true, pw_activation = "relu");
    P03: (dk = 5, m = 4, n = 9, depth_multiplier = 2, stride = 2, dw_activation = "relu", pw_activation = "relu6");
    P04: (dk = 3, m = 5, n = 7, depth_multiplier = 3, bias = true, dw_activation = "relu6", pw_activation = "none");
    // Hard-swish and SiLU (MobileNetV3, EfficientNet) on the same four depthwise kernels.
    P05MobileNetV3: (dk = 3, m = 24, n = 16, bias = true, dw_activation = "hardswish");
    P06: (dk = 3, m = 3, n = 19, dw_activation = "silu", pw_activation = "silu");
    P07: (dk = 5, m = 4, n = 9, depth_multiplier = 2, stride = 2, activation = "hardswish");
    P08: (dk = 3, m = 5, n = 7, depth_multiplier = 3, bias = true, dw_activation = "silu", pw_activation = "hardswish");
}

fn main() {
    dsconv_testkit::matrix::run(layer_trials())
}
