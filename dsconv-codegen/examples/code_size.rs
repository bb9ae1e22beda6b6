//! The size of the code `#[separable_conv]` generates for each layer of the property matrix
//! (`tests/matrix_*.rs`), as token text: what the build of those suites compiles.
//!
//! `cargo run -p dsconv-codegen --example code_size [-- --each]`

use std::str::FromStr;

use dsconv_codegen::model::Kind;
use proc_macro2::TokenStream;

#[path = "../tests/support/matrix_layers.rs"]
mod matrix_layers;

fn main() {
    let each = std::env::args().any(|a| a == "--each");
    let layers = matrix_layers::matrix_layers();
    let mut total = 0;
    for (name, args) in &layers {
        let attr = TokenStream::from_str(args).expect("attribute tokens");
        let item = TokenStream::from_str(&format!("pub struct {name};")).expect("a struct");
        let size = dsconv_codegen::expand(Kind::Separable, attr, item)
            .to_string()
            .len();
        if each {
            println!("{name}: {size} bytes");
        }
        total += size;
    }
    println!("{} layers: {total} bytes", layers.len());
}
