use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 4, n = 18446744073709551615)]
pub struct Layer;

fn main() {}
