//! Property matrix, the holes: even kernels with "valid", 7x7 over few channels with "same", pointwise weights over 1 MiB (panels outer) and over 128 KiB (the cold walk), images up to 130x130 (several blocks and fused tiles per row), channels whose packed depthwise weights are skewed by a cache line: every layer against the f64 reference on random inputs and
//! weights (random sizes 1..=40 unless declared), on every backend this CPU has
//! (`dsconv_testkit::matrix`). The matrix is split over several test crates so that they
//! build in parallel. Cases: `DSCONV_CASES`; seed: printed, `DSCONV_SEED` reproduces it.

dsconv_testkit::matrix_layers! {
    // Even kernels: any dk with "valid".
    H01: (dk = 2, m = 8, n = 16, padding = "valid");
    H02: (dk = 4, m = 17, n = 9, stride = 2, padding = "valid");
    H03: (dk = 6, m = 3, n = 5, padding = "valid", bias = true);
    // 7x7 over few channels with "same": width vectors with a wide planar copy.
    H04: (dk = 7, m = 3, n = 8);
    H05: (dk = 7, m = 2, n = 5, stride = 2, activation = "relu");
    // Pointwise weights over 1 MiB (512 x 520 floats): panels outer on AVX-512 and NEON.
    H06: (dk = 3, m = 512, n = 520, h = 3, w = 5);
    // Images up to 130: several depthwise blocks, edge blocks and fused tiles per row.
    H07: (dk = 3, m = 16, n = 24, h = 130, w = 97);
    H08: (dk = 5, m = 3, n = 40, stride = 2, h = 129, w = 130, activation = "relu6");
    H09: (dk = 3, m = 32, n = 64, stride = 2, bias = true, h = 127, w = 130);
    // Channels spanning a multiple of 2 KiB: each tap's packed weights one cache line past
    // the padded channels (the plan's weight stride), on every kind of kernel: weights in
    // registers, weights from memory, expanded loads.
    H10: (dk = 3, m = 512, n = 8, bias = true, h = 3, w = 11);
    H11: (dk = 5, m = 512, n = 8, stride = 2, h = 5, w = 11);
    H12: (dk = 3, m = 256, n = 8, depth_multiplier = 2, h = 3, w = 6);
    // Pointwise weights of 140 KiB (136 x 264, a tail panel), walked rows outer: a call's
    // first items take the cold walk, panels outer. 13x15 runs in stages (items of one
    // panel by 70 pixels: five full blocks, the last two prefetching the next panel); 2x3
    // as one tile (a partial block over every panel).
    H13: (dk = 3, m = 136, n = 264, bias = true, h = 13, w = 15);
    H14: (dk = 3, m = 136, n = 264, activation = "relu", h = 2, w = 3);
}

fn main() {
    dsconv_testkit::matrix::run(layer_trials())
}
