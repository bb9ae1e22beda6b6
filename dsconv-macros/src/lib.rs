//! The `#[separable_conv]` attribute. A thin shell: all the work is in `dsconv-codegen`.

use proc_macro::TokenStream;

/// Turns a unit struct into a depthwise separable convolution layer specialised for the
/// declared shape. See the `dsconv` crate documentation for the keys and what is generated.
#[proc_macro_attribute]
pub fn separable_conv(attr: TokenStream, item: TokenStream) -> TokenStream {
    dsconv_codegen::expand(attr.into(), item.into()).into()
}
