use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 4, n = 8, dilation = 0)]
pub struct Layer;

fn main() {}
