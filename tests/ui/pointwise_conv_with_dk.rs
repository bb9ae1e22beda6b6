use dsconv::pointwise_conv;

#[pointwise_conv(m = 16, n = 96, dk = 3, bias = true)]
struct Expand;

fn main() {}
