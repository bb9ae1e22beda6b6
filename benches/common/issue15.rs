//! Issue 15's layers (shared by `benches/layers.rs` and `benches/kernels.rs`): depth
//! multipliers 2, 3, 5, 6 and 7 on 56x56x64 -> 128, kernels of 5, 7 and 9 on 56x56x128 and
//! 28x28x256, and a 31x31 kernel (past the unrolling limit) on 14x14x256.
#![allow(dead_code)]

use dsconv::separable_conv;

/// A depth multiplier of 2: the expanded channel-vector depthwise.
#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 2)]
pub struct Dm2;
#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 3)]
pub struct Dm3;
#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 5)]
pub struct Dm5;
#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 6)]
pub struct Dm6;
#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 7)]
pub struct Dm7;
#[separable_conv(dk = 5, m = 128, n = 128)]
pub struct K5a;
#[separable_conv(dk = 7, m = 128, n = 128)]
pub struct K7a;
#[separable_conv(dk = 9, m = 128, n = 128)]
pub struct K9a;
#[separable_conv(dk = 5, m = 256, n = 256)]
pub struct K5b;
#[separable_conv(dk = 7, m = 256, n = 256)]
pub struct K7b;
#[separable_conv(dk = 9, m = 256, n = 256)]
pub struct K9b;
#[separable_conv(dk = 31, m = 256, n = 256)]
pub struct K31;
