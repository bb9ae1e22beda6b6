use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 4, n = 8, dilation = 4, padding = [1, 1, 0, 0], h = 8, w = 6)]
pub struct Layer;

fn main() {}
