//! Property matrix, layers L17-L34 of the shape matrix: every layer against the f64 reference on random inputs and
//! weights (random sizes 1..=40 unless declared), on every backend this CPU has
//! (`dsconv_testkit::matrix`). The matrix is split over several test crates so that they
//! build in parallel. Cases: `DSCONV_CASES`; seed: printed, `DSCONV_SEED` reproduces it.

dsconv_testkit::matrix_layers! {
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
    // Rows of 7 (MobileNet's last stage): the left and right edge blocks overlap.
    L34NarrowRows: (dk = 3, m = 48, n = 16, bias = true, h = 9, w = 7);
}

fn main() {
    dsconv_testkit::matrix::run(layer_trials())
}
