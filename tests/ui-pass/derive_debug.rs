// A user's own derives below the attribute compile: the generated Debug and Clone step aside
// and the derives apply to the generated struct (its packed tensors print as summaries).
use dsconv::{separable_conv, SeparableConv};

#[separable_conv(dk = 3, m = 4, n = 8)]
#[derive(Debug, Clone)]
pub struct Layer;

fn main() {
    let layer = Layer::from_weights(&[0.5; 4 * 9], &[0.25; 8 * 4]).unwrap();
    let text = format!("{:?}", layer.clone());
    assert!(text.starts_with("Layer { dw: AlignedArray<"), "{text}");
    assert_eq!(Layer::N, 8);
}
