use dsconv::separable_conv;

#[separable_conv(dk = 0, m = 4, n = 8)]
pub struct Layer;

fn main() {}
