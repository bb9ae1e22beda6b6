use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 4, n = 8, padding = [0, 3, 1, 1])]
pub struct Layer;

fn main() {}
