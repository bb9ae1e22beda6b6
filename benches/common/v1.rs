//! MobileNetV1-224's separable blocks L1..L9 (shared by the benchmarks), deterministic
//! weights, and the 13-block body as trait objects.
#![allow(dead_code)]

use dsconv::{separable_conv, Layer, SeparableConv, Weights};

#[separable_conv(dk = 3, m = 32, n = 64)]
pub struct L1;
#[separable_conv(dk = 3, m = 64, n = 128, stride = 2)]
pub struct L2;
#[separable_conv(dk = 3, m = 128, n = 128)]
pub struct L3;
#[separable_conv(dk = 3, m = 128, n = 256, stride = 2)]
pub struct L4;
#[separable_conv(dk = 3, m = 256, n = 256)]
pub struct L5;
#[separable_conv(dk = 3, m = 256, n = 512, stride = 2)]
pub struct L6;
#[separable_conv(dk = 3, m = 512, n = 512)]
pub struct L7;
#[separable_conv(dk = 3, m = 512, n = 1024, stride = 2)]
pub struct L8;
#[separable_conv(dk = 3, m = 1024, n = 1024)]
pub struct L9;

/// Values in [-0.1, 0.1): activations stay in a realistic range through the 13-block body.
pub fn values(len: usize, seed: u32) -> Vec<f32> {
    dsconv_testkit::lcg_values(len, seed, 0.1)
}

pub fn weights_for<L: SeparableConv>(seed: u32) -> (Vec<f32>, Vec<f32>) {
    let c = L::M * L::DEPTH_MULTIPLIER;
    (values(c * L::DK * L::DK, seed), values(L::N * c, seed + 1))
}

pub fn layer<L: SeparableConv>(seed: u32) -> L {
    let (dw, pw) = weights_for::<L>(seed);
    L::load(&Weights {
        depthwise: &dw,
        depthwise_bias: None,
        pointwise: &pw,
        pointwise_bias: None,
    })
    .unwrap()
}

/// The 13 MobileNetV1 blocks (L1..L6, L7 five times, L8, L9) as trait objects.
pub fn body_layers() -> Vec<Box<dyn Layer>> {
    let mut v: Vec<Box<dyn Layer>> = vec![
        Box::new(layer::<L1>(1)),
        Box::new(layer::<L2>(2)),
        Box::new(layer::<L3>(3)),
        Box::new(layer::<L4>(4)),
        Box::new(layer::<L5>(5)),
        Box::new(layer::<L6>(6)),
    ];
    v.extend((0..5).map(|i| Box::new(layer::<L7>(70 + i)) as Box<dyn Layer>));
    v.push(Box::new(layer::<L8>(8)));
    v.push(Box::new(layer::<L9>(9)));
    v
}
