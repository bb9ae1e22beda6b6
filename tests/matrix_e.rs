//! Property matrix, TensorFlow / ONNX / explicit padding, dilation and large kernels: every layer against
//! the f64 reference (which pads by each framework's definition, written out on its own) on
//! random inputs and weights, random sizes from the smallest with an output to 40 (so both
//! parities of the size-dependent pads), on every backend this CPU has
//! (`dsconv_testkit::matrix`). Cases: `DSCONV_CASES`; seed: printed, `DSCONV_SEED`
//! reproduces it.

dsconv_testkit::matrix_layers! {
    // TensorFlow "SAME" at stride 2: 0 zeros before and 1 after on even sizes, 1 and 1 on odd
    // ones; channel vectors, width vectors, the MobileNetV2 activations.
    E01TfStride2: (dk = 3, m = 16, n = 8, stride = 2, padding = "same_upper");
    E02TfStride2Narrow: (dk = 3, m = 3, n = 8, stride = 2, padding = "same_upper", dw_activation = "relu6");
    // ONNX SAME_LOWER with an even kernel (2 zeros before, 1 after), a channel tail.
    E03LowerEvenKernel: (dk = 4, m = 9, n = 7, padding = "same_lower");
    // Explicit pads: Keras MobileNet's ZeroPadding2D(((0, 1), (0, 1))) + valid, and an
    // uneven set on a bigger kernel.
    E04KerasZeroPad: (dk = 3, m = 16, n = 16, stride = 2, padding = [0, 0, 1, 1]);
    E05Explicit: (dk = 5, m = 33, n = 9, padding = [1, 2, 4, 0], bias = true, activation = "relu");
    // Dilation: symmetric "same" (2 zeros a side for 3x3 at d = 2), TensorFlow-padded at
    // stride 2, width vectors, expanded depth-multiplier loads (DM 2 and 3).
    E06Dilated: (dk = 3, m = 16, n = 8, dilation = 2);
    E07DilatedTfStride2: (dk = 5, m = 16, n = 8, stride = 2, dilation = 2, padding = "same_upper");
    E08DilatedNarrowValid: (dk = 3, m = 3, n = 8, dilation = 3, padding = "valid");
    E09DilatedExpanded: (dk = 3, m = 5, n = 8, depth_multiplier = 2, stride = 2, dilation = 2, padding = "same_lower");
    E10Dm3: (dk = 2, m = 3, n = 5, depth_multiplier = 3, padding = [1, 0, 0, 1]);
    E11FixedTf: (dk = 3, m = 8, n = 8, stride = 2, padding = "same_upper", h = 8, w = 10, pw_activation = "hardswish");
    E12DilatedLower: (dk = 5, m = 16, n = 8, dilation = 2, padding = "same_lower", dw_activation = "silu");
    // Large kernels, past the unrolling limit (9x9): the kernel rows run as a loop, one
    // row's taps unrolled; borders loop over the taps inside the image. Odd and even dk,
    // stride 2, dilation, a depth multiplier, few channels (channel vectors with a tail:
    // width vectors unroll every tap), images smaller than the kernel.
    E13Dk11: (dk = 11, m = 9, n = 8, bias = true);
    E14Dk13Stride2: (dk = 13, m = 9, n = 5, stride = 2, padding = "same_upper", activation = "relu6");
    E15Dk10Valid: (dk = 10, m = 9, n = 4, padding = "valid");
    E16Dk31Stride2: (dk = 31, m = 9, n = 8, stride = 2);
    E17Dk11Dilated: (dk = 11, m = 4, n = 3, dilation = 2, depth_multiplier = 3);
    E18Dk15Few: (dk = 15, m = 2, n = 5, padding = [7, 3, 0, 9]);
}

fn main() {
    dsconv_testkit::matrix::run(layer_trials())
}
