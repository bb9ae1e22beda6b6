use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 4, n = 99999999999999999999999)]
pub struct Layer;

fn main() {}
