//! Property matrix, layers L01-L16 of the shape matrix: every layer against the f64 reference on random inputs and
//! weights (random sizes 1..=40 unless declared), on every backend this CPU has
//! (`dsconv_testkit::matrix`). The matrix is split over several test crates so that they
//! build in parallel. Cases: `DSCONV_CASES`; seed: printed, `DSCONV_SEED` reproduces it.

dsconv_testkit::matrix_layers! {
    L01Seed: (dk = 5, m = 3, n = 256);
    L02Tiny: (dk = 3, m = 1, n = 1);
    L03: (dk = 3, m = 2, n = 3, stride = 2);
    L04Pointwise1x1: (dk = 1, m = 4, n = 8);
    L05: (dk = 7, m = 7, n = 16, padding = "valid");
    L06: (dk = 3, m = 8, n = 17, bias = true, activation = "relu");
    L07: (dk = 5, m = 9, n = 64, stride = 2, activation = "relu6");
    L08: (dk = 3, m = 15, n = 16, depth_multiplier = 2);
    L09: (dk = 3, m = 16, n = 64, bias = true, activation = "relu6");
    L10: (dk = 3, m = 17, n = 8, stride = 2, padding = "valid");
    L11: (dk = 5, m = 31, n = 17, bias = true);
    L12: (dk = 3, m = 32, n = 64, activation = "relu");
    L13: (dk = 7, m = 33, n = 3, stride = 2, bias = true, activation = "relu");
    L14: (dk = 3, m = 64, n = 256, stride = 2);
    L15Fixed: (dk = 3, m = 3, n = 8, h = 8, w = 8);
    L16FixedValid: (dk = 5, m = 4, n = 16, padding = "valid", h = 9, w = 12, activation = "relu6");
}

fn main() {
    dsconv_testkit::matrix::run(layer_trials())
}
