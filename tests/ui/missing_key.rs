use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 4)]
pub struct Layer;

fn main() {}
