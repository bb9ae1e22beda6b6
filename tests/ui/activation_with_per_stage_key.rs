use dsconv::separable_conv;

// `activation` sets both stages: a per-stage key beside it is an error at the later key.
#[separable_conv(dk = 3, m = 8, n = 16, activation = "relu", pw_activation = "none")]
pub struct Block;

fn main() {}
