// Layers declared by a user's `macro_rules!`: its fragments (`$m:literal`, `$pad:tt`, an
// `expr` inside the padding array) reach the attribute wrapped in invisible groups.
use dsconv::{separable_conv, SeparableConv};

macro_rules! layer {
    ($name:ident, $m:literal, $n:expr, $pad:tt, $bottom:literal) => {
        #[separable_conv(dk = 3, m = $m, n = $n, padding = $pad, bias = true)]
        struct $name;

        #[separable_conv(dk = 3, m = $m, n = $n, padding = [0, 0, $bottom, 1])]
        struct Padded;
    };
}

layer!(FromMacro, 8, 16, "same_upper", 1);

fn main() {
    assert_eq!(<FromMacro as SeparableConv>::M, 8);
    assert_eq!(<FromMacro as SeparableConv>::N, 16);
    assert_eq!(<Padded as SeparableConv>::SHAPE.pads(8, 8).bottom, 1);
}
