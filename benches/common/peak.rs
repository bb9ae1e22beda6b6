//! The core's FMA peak, measured inside the benchmark's own process: 12 independent chains
//! of register-only fused multiply-adds (enough to cover the FMA latency on two ports) in
//! the backend's vector width, as the roofline's FMA loop. A ratio to it taken in the same
//! run holds where separate runs do not: this machine's speed drifts by 1.4x from one
//! minute, or one process, to the next.
#![allow(dead_code)]

use dsconv::Backend;

/// Floating-point operations (2 per multiply-add) of one [`fma_loop`] of `iters` iterations
/// on `b`.
pub fn fma_flops(b: Backend, iters: usize) -> f64 {
    (iters * 12 * 2 * lanes(b)) as f64
}

/// Floats per vector of the loop [`fma_loop`] runs for `b` (1: the scalar loop).
fn lanes(b: Backend) -> usize {
    match b.name() {
        "avx512" if cfg!(target_arch = "x86_64") => 16,
        "avx2" if cfg!(target_arch = "x86_64") => 8,
        _ => 1,
    }
}

/// Runs `iters` iterations of 12 chained FMAs in `b`'s vector width (scalar `mul_add` for a
/// backend without a loop here), `12 * iters` FMAs per chain.
pub fn fma_loop(b: Backend, iters: usize) {
    // The vector loops below need the backend's features: refuse a backend this CPU lacks.
    b.require().unwrap();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        #[target_feature(enable = "avx512f")]
        fn zmm(iters: usize) {
            let mut acc = [_mm512_set1_ps(0.0); 12];
            let (x, y) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm512_fmadd_ps(*a, x, y);
                }
            }
            std::hint::black_box(acc);
        }
        #[target_feature(enable = "avx2,fma")]
        fn ymm(iters: usize) {
            let mut acc = [_mm256_set1_ps(0.0); 12];
            let (x, y) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm256_fmadd_ps(*a, x, y);
                }
            }
            std::hint::black_box(acc);
        }
        match lanes(b) {
            // SAFETY: `require` above returned Ok: the CPU has the backend's features
            // (AVX-512F; AVX2 and FMA).
            16 => return unsafe { zmm(iters) },
            8 => return unsafe { ymm(iters) },
            _ => {}
        }
    }
    let mut acc = [0f32; 12];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    std::hint::black_box(acc);
}

/// GFLOP/s of one [`fma_loop`] of 20,000 iterations (about 50 us with AVX-512).
pub fn fma_peak(b: Backend) -> f64 {
    let iters = 20_000;
    let s = std::time::Instant::now();
    fma_loop(b, iters);
    fma_flops(b, iters) / s.elapsed().as_secs_f64() * 1e-9
}
