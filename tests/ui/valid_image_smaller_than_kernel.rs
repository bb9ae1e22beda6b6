use dsconv::separable_conv;

#[separable_conv(dk = 5, m = 4, n = 8, padding = "valid", h = 4, w = 9)]
pub struct Layer;

fn main() {}
