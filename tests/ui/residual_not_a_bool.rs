use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 16, n = 16, residual = 1)]
struct Block;

fn main() {}
