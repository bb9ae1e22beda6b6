use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 4, n = 8)]
pub struct Layer {
    weights: Vec<f32>,
}

fn main() {}
