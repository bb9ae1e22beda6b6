//! The `#[separable_conv]` attribute. A thin shell: all the work is in `dsconv-codegen`.

use proc_macro::TokenStream;

/// Turns a unit struct (no fields, no generics) into a depthwise separable convolution
/// layer specialised for the declared shape.
///
/// ```text
/// #[separable_conv(dk = 5, m = 3, n = 256)]
/// pub struct Stem;
/// ```
///
/// # Keys
///
/// | key | values | default | meaning |
/// |---|---|---|---|
/// | `dk` | integer >= 1 | required | depthwise kernel size (`dk x dk`) |
/// | `m` | integer >= 1 | required | input channels |
/// | `n` | integer >= 1 | required | output channels of the 1x1 stage |
/// | `stride` | `1` or `2` | `1` | depthwise stride |
/// | `padding` | `"same"`, `"valid"`, `"same_upper"`, `"same_lower"` or `[top, left, bottom, right]` | `"same"` | `"same"`: `(dk_eff - 1) / 2` zeros on every side (odd `dk` only); `"valid"`: none; `"same_upper"`: TensorFlow/Keras/TFLite "SAME" (ONNX `SAME_UPPER`): output `ceil(H / stride)`, the odd zero after; `"same_lower"`: ONNX `SAME_LOWER`, the odd zero before; `[t, l, b, r]`: explicit zeros per side, each below `dk_eff` |
/// | `dilation` | integer >= 1 | `1` | spacing of the depthwise taps: the window is `dk_eff = (dk - 1) * dilation + 1`; the multiplication counts do not change |
/// | `depth_multiplier` | integer >= 1 | `1` | depthwise output channels per input channel (`M * DM` channels reach the 1x1 stage) |
/// | `bias` | `true` or `false` | `false` | whether both stages add a bias (`from_weights_with_bias`) |
/// | `activation` | `"none"`, `"relu"`, `"relu6"`, `"hardswish"`, `"silu"` | `"none"` | applied after both stages: `max(x, 0)`, `min(max(x, 0), 6)`, `x * relu6(x + 3) / 6`, `x / (1 + e^-x)` |
/// | `dw_activation` | as `activation` | `"none"` | after the depthwise stage only (not with `activation`) |
/// | `pw_activation` | as `activation` | `"none"` | after the pointwise stage only (not with `activation`); `out = pw_act(pw(dw_act(dw(x) + b_dw)) + b_pw)` |
/// | `h`, `w` | integers >= 1, both or neither | none | a fixed input size: the layer then has `H`, `W`, `HO`, `WO` and the multiplication counts as constants, and rejects other sizes |
/// | `residual` | `true` or `false` | `false` | the layer adds a skip input of the output's shape after the pointwise activation, in its final store: `out = pw_act(..) + skip` (`forward_residual`; `forward` is then an error) |
///
/// Every mistake is a compile error at the offending token (an unknown key suggests the
/// closest one). What the layer gets — constructors, `forward`, the counts, the plan of
/// each backend — is described in the `dsconv` crate documentation and
/// [`SeparableConv`](../dsconv/trait.SeparableConv.html).
#[proc_macro_attribute]
pub fn separable_conv(attr: TokenStream, item: TokenStream) -> TokenStream {
    dsconv_codegen::expand(
        dsconv_codegen::model::Kind::Separable,
        attr.into(),
        item.into(),
    )
    .into()
}

/// Turns a unit struct into a 1x1 convolution layer (the pointwise stage of a separable
/// layer, alone: MobileNetV2's expand and project layers), run by the same kernels.
///
/// ```text
/// #[pointwise_conv(m = 16, n = 96, bias = true, activation = "relu6")]
/// pub struct Expand;
/// ```
///
/// # Keys
///
/// | key | values | default | meaning |
/// |---|---|---|---|
/// | `m` | integer >= 1 | required | input channels |
/// | `n` | integer >= 1 | required | output channels |
/// | `bias` | `true` or `false` | `false` | whether the layer adds a bias (`from_weights_with_bias`) |
/// | `activation` | `"none"`, `"relu"`, `"relu6"`, `"hardswish"`, `"silu"` | `"none"` | applied after the convolution and its bias |
/// | `residual` | `true` or `false` | `false` | the layer adds a skip input of the output's shape after the activation, in its final store (`forward_residual`) |
/// | `h`, `w` | integers >= 1, both or neither | none | a fixed input size (constants `H`, `W`, `MULS`; other sizes are rejected) |
///
/// The layer implements [`PointwiseConv`](../dsconv/trait.PointwiseConv.html) and
/// [`Layer`](../dsconv/trait.Layer.html); any other key is a compile error that names the
/// keys it takes.
#[proc_macro_attribute]
pub fn pointwise_conv(attr: TokenStream, item: TokenStream) -> TokenStream {
    dsconv_codegen::expand(
        dsconv_codegen::model::Kind::Pointwise,
        attr.into(),
        item.into(),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use dsconv_codegen::model::Kind;

    /// Each attribute's key table documents exactly the keys the parser accepts for it.
    #[test]
    fn every_key_is_documented() {
        let source = include_str!("lib.rs");
        // The docs of each attribute precede its `#[proc_macro_attribute]`.
        let sections: Vec<&str> = source.split("#[proc_macro_attribute]").collect();
        for (kind, section) in [
            (Kind::Separable, sections[0]),
            (Kind::Pointwise, sections[1]),
        ] {
            let rows: Vec<&str> = section
                .lines()
                .filter(|l| l.starts_with("/// | `"))
                .collect();
            for key in kind.keys() {
                let cell = format!("`{}`", key.name());
                assert!(
                    rows.iter()
                        .any(|r| r.split(" | ").nth(1).is_some_and(|c| c.contains(&cell))),
                    "key {cell} is not in the {kind:?} attribute's documentation table"
                );
            }
            let documented = rows
                .iter()
                .map(|r| {
                    r.split(" | ")
                        .nth(1)
                        .map_or(0, |c| c.matches('`').count() / 2)
                })
                .sum::<usize>();
            assert_eq!(documented, kind.keys().count(), "{kind:?}");
        }
    }
}
