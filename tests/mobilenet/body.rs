//! The 13 separable blocks of Keras' `MobileNet(alpha = 0.25, input_shape = (128, 128, 3))`
//! declared as dsconv layers, and their weights loaded from the file
//! `scripts/keras_mobilenet.py` writes (Keras names, TensorFlow layout, BatchNorm unfolded,
//! Keras' eps 1e-3). Shared by `tests/mobilenet.rs` and `examples/mobilenet.rs`.
//!
//! Keras pads the strided blocks with `ZeroPadding2D(((0, 1), (0, 1)))` and convolves
//! "valid": `padding = [0, 0, 1, 1]` (top, left, bottom, right). The others are "same".

use dsconv::safetensors::{TensorNames, WeightFile};
use dsconv::{separable_conv, Error, Layer, WeightLayout};

macro_rules! blocks {
    ($($name:ident: $m:literal -> $n:literal, stride $s:literal, $pad:tt, $hw:literal;)*) => {
        $(
            #[separable_conv(
                dk = 3,
                m = $m,
                n = $n,
                stride = $s,
                padding = $pad,
                bias = true,
                activation = "relu6",
                h = $hw,
                w = $hw
            )]
            pub struct $name;
        )*

        /// Every block loaded from `file`, in order.
        pub fn load_body(file: &WeightFile<'_>) -> Result<Vec<Box<dyn Layer>>, Error> {
            let mut k = 0;
            Ok(vec![$({
                k += 1;
                let layer: $name = file.load(WeightLayout::TensorFlow, &keras_names(k))?;
                Box::new(layer) as Box<dyn Layer>
            }),*])
        }
    };
}

blocks! {
    Block1: 8 -> 16, stride 1, "same", 64;
    Block2: 16 -> 32, stride 2, [0, 0, 1, 1], 64;
    Block3: 32 -> 32, stride 1, "same", 32;
    Block4: 32 -> 64, stride 2, [0, 0, 1, 1], 32;
    Block5: 64 -> 64, stride 1, "same", 16;
    Block6: 64 -> 128, stride 2, [0, 0, 1, 1], 16;
    Block7: 128 -> 128, stride 1, "same", 8;
    Block8: 128 -> 128, stride 1, "same", 8;
    Block9: 128 -> 128, stride 1, "same", 8;
    Block10: 128 -> 128, stride 1, "same", 8;
    Block11: 128 -> 128, stride 1, "same", 8;
    Block12: 128 -> 256, stride 2, [0, 0, 1, 1], 8;
    Block13: 256 -> 256, stride 1, "same", 4;
}

/// The Keras names of block `k`'s tensors (`conv_dw_k`, `conv_dw_k_bn`, `conv_pw_k`,
/// `conv_pw_k_bn`).
pub fn keras_names(k: usize) -> TensorNames {
    TensorNames::keras(
        &format!("conv_dw_{k}"),
        &format!("conv_dw_{k}_bn"),
        &format!("conv_pw_{k}"),
        &format!("conv_pw_{k}_bn"),
    )
}

/// The name of block `k`'s output as Keras computed it, in the file.
pub fn output_name(k: usize) -> String {
    format!("conv_pw_{k}_relu/output")
}

/// The file checked into the repository.
pub const DEFAULT_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/keras/mobilenet_025_128.safetensors"
);
