//! The size of the code `#[separable_conv]` generates for each layer of the property matrix
//! (`tests/matrix_*.rs`), as token text: what the build of those suites compiles.
//!
//! `cargo run -p dsconv-codegen --example code_size [-- --each]`

use std::str::FromStr;

use dsconv_codegen::model::Kind;
use proc_macro2::TokenStream;

fn main() {
    let each = std::env::args().any(|a| a == "--each");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests");
    let (mut layers, mut total) = (0, 0);
    for suite in ["matrix_a", "matrix_b", "matrix_c", "matrix_d", "matrix_e"] {
        let src = std::fs::read_to_string(format!("{root}/{suite}.rs")).expect("a matrix suite");
        let mut bytes = 0;
        // Each layer is a line `Name: (attribute arguments);` of `matrix_layers!`.
        for line in src.lines().map(str::trim) {
            if line.starts_with("//") || !line.contains(": (") {
                continue;
            }
            let name = line.split(':').next().unwrap_or_default().trim();
            let (open, close) = (line.find('('), line.rfind(')'));
            let (Some(open), Some(close)) = (open, close) else {
                continue;
            };
            let attr = TokenStream::from_str(&line[open + 1..close]).expect("attribute tokens");
            let item = TokenStream::from_str(&format!("pub struct {name};")).expect("a struct");
            let size = dsconv_codegen::expand(Kind::Separable, attr, item)
                .to_string()
                .len();
            if each {
                println!("{suite} {name}: {size} bytes");
            }
            bytes += size;
            layers += 1;
        }
        println!("{suite}: {bytes} bytes");
        total += bytes;
    }
    println!("{layers} layers: {total} bytes");
}
