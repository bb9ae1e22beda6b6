use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 2.5, n = "8")]
pub struct Layer;

fn main() {}
