use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 4, n = 8, h = 4294967296, w = 4294967296)]
pub struct Layer;

fn main() {}
