//! The compiler behind `#[separable_conv]`: the typed attribute [`model`], the [`plan`]ner and
//! the [`emit`]ters, as plain functions that tests call without invoking rustc.
//! `dsconv-macros` is a thin proc-macro shell over [`expand`].

#![deny(missing_docs)]

pub mod emit;
pub mod model;
pub mod plan;

use proc_macro2::TokenStream;

/// Expands `#[separable_conv(attr)] item`: the generated layer, or the compile errors.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match model::parse(attr, item) {
        Ok(spec) => emit::expand(&spec),
        Err(e) => e.to_compile_error(),
    }
}
