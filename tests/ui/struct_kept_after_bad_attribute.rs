use dsconv::separable_conv;

#[separable_conv(dk = 3, m = 4, n = 8, strde = 2)]
pub struct Layer;

// Only the attribute's mistake is reported: the struct still exists for code that names it.
fn take(_layer: Layer) {}

fn main() {
    take(Layer);
}
