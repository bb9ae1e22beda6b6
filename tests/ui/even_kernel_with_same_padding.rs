use dsconv::separable_conv;

#[separable_conv(dk = 4, m = 4, n = 8)]
pub struct Layer;

fn main() {}
