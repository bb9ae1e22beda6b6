//! Deterministic pseudo-random data for tests and benches (a 32-bit LCG; no dependency
//! needed). Included by path where `tests/common` is not a module. The example carries its
//! own copy so that it stands alone.

/// `len` values in `[-scale, scale)`, the same for the same `seed`.
pub fn lcg_values(len: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((state >> 8) as f32 / (1u32 << 23) as f32 - 1.0) * scale
        })
        .collect()
}
