use dsconv::pointwise_conv;

#[pointwise_conv(m = 16, n = 96, residul = true)]
struct Expand;

fn main() {}
