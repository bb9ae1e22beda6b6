//! The compiler behind `#[separable_conv]`: the typed attribute [`model`], the [`plan`]ner and
//! the [`emit`]ters, as plain functions that tests call without invoking rustc.
//! `dsconv-macros` is a thin proc-macro shell over [`expand`].

#![deny(missing_docs)]

pub mod emit;
pub mod model;
pub mod plan;

use proc_macro2::TokenStream;

/// Expands `#[separable_conv(attr)] item` (or `#[pointwise_conv]`, by `kind`): the generated
/// layer, or the compile errors.
///
/// On an attribute error the user's struct is emitted unchanged beside the errors (when it
/// is a plain struct that compiles on its own), so that code naming it reports nothing more
/// than the attribute's mistakes.
pub fn expand(kind: model::Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let original = item.clone();
    match model::parse(kind, attr, item) {
        Ok(spec) => emit::expand(&spec),
        Err(e) => {
            let mut out = e.to_compile_error();
            let plain = syn::parse2::<syn::ItemStruct>(original.clone())
                .is_ok_and(|s| s.generics.params.is_empty());
            if plain {
                out.extend(original);
            }
            out
        }
    }
}
