use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 4, n = 8)]
pub struct Layer<T>;

fn main() {}
