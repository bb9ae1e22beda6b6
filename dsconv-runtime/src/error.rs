//! The error type of every fallible dsconv call.

use crate::frameworks::{BatchNormParam, StageName, WeightLayout};
use crate::Backend;
use std::fmt;

/// Which tensor a length or value error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tensor {
    /// The input image (HWC).
    Input,
    /// The output buffer (HWC).
    Output,
    /// The skip input a residual layer adds (HWC, the output's shape).
    Skip,
    /// Depthwise weights, PyTorch layout `(M*DM, 1, DK, DK)`.
    DepthwiseWeights,
    /// Depthwise bias, `M*DM` values.
    DepthwiseBias,
    /// Pointwise weights, PyTorch layout `(N, M*DM, 1, 1)`.
    PointwiseWeights,
    /// Pointwise bias, `N` values.
    PointwiseBias,
    /// A stage's kernel as a framework lays it out ([`SeparableConv::load_from`](crate::SeparableConv::load_from)).
    Kernel(StageName, WeightLayout),
    /// One of a stage's BatchNorm tensors, one value per output channel of the stage.
    BatchNorm(StageName, BatchNormParam),
}

impl Tensor {
    /// The names of the tensor's dimensions, outermost first, in the layout dsconv takes it
    /// (PyTorch for weights, NHWC for images, the framework's for a [`Tensor::Kernel`]).
    pub const fn dim_names(self) -> &'static [&'static str] {
        match self {
            Tensor::Input => &["batch", "H", "W", "C"],
            Tensor::Output => &["batch", "Ho", "Wo", "C"],
            Tensor::Skip => &["batch", "Ho", "Wo", "C"],
            Tensor::DepthwiseWeights => &["M*DM", "1", "DK", "DK"],
            Tensor::DepthwiseBias => &["M*DM"],
            Tensor::PointwiseWeights => &["N", "M*DM", "1", "1"],
            Tensor::PointwiseBias => &["N"],
            Tensor::Kernel(StageName::Depthwise, layout) => layout.depthwise_dim_names(),
            Tensor::Kernel(StageName::Pointwise, layout) => layout.pointwise_dim_names(),
            Tensor::BatchNorm(StageName::Depthwise, _) => &["M*DM"],
            Tensor::BatchNorm(StageName::Pointwise, _) => &["N"],
        }
    }
}

/// The shape a tensor was expected to have, outermost dimension first (at most four).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dims {
    sizes: [usize; 4],
    rank: usize,
}

impl Dims {
    /// The shape `sizes` (only the first four are kept).
    pub const fn new(sizes: &[usize]) -> Self {
        let mut out = [0; 4];
        let mut i = 0;
        while i < sizes.len() && i < 4 {
            out[i] = sizes[i];
            i += 1;
        }
        Dims {
            sizes: out,
            rank: i,
        }
    }

    /// The sizes, outermost first.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes[..self.rank]
    }
}

impl fmt::Debug for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.sizes())
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tensor::Kernel(stage, layout) => {
                return write!(f, "{} kernel ({} layout)", stage.name(), layout.name())
            }
            Tensor::BatchNorm(stage, param) => {
                return write!(f, "{} BatchNorm {}", stage.name(), param.name())
            }
            _ => {}
        }
        f.write_str(match self {
            Tensor::Input => "input",
            Tensor::Output => "output",
            Tensor::Skip => "skip input",
            Tensor::DepthwiseWeights => "depthwise weights",
            Tensor::DepthwiseBias => "depthwise bias",
            Tensor::PointwiseWeights => "pointwise weights",
            Tensor::PointwiseBias => "pointwise bias",
            Tensor::Kernel(..) | Tensor::BatchNorm(..) => unreachable!("written above"),
        })
    }
}

/// Everything that can go wrong when loading weights into or running a layer.
///
/// When a call returns `Err`, it has written nothing to its output buffer.
///
/// `Debug` prints the same sentence as `Display` (and the variant's name), so that
/// `fn main() -> Result<(), dsconv::Error>` reports a readable message.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A slice has the wrong number of elements.
    Length {
        /// The layer's name (its struct's identifier).
        layer: &'static str,
        /// The slice concerned.
        tensor: Tensor,
        /// Elements the call needs.
        expected: usize,
        /// Elements it was given.
        actual: usize,
        /// The shape behind `expected`, in the layout of `tensor` ([`Tensor::dim_names`]).
        dims: Dims,
    },
    /// The image height or width is zero.
    EmptyImage {
        /// The layer's name (its struct's identifier).
        layer: &'static str,
        /// Given height.
        h: usize,
        /// Given width.
        w: usize,
    },
    /// The layer was declared with a fixed `h`/`w` and was called with another size.
    FixedSizeMismatch {
        /// The layer's name (its struct's identifier).
        layer: &'static str,
        /// The declared `(h, w)`.
        expected: (usize, usize),
        /// The given `(h, w)`.
        actual: (usize, usize),
    },
    /// The image with its padding is smaller than the (dilated) kernel window, so there is
    /// no output pixel.
    ImageSmallerThanKernel {
        /// The layer's name (its struct's identifier).
        layer: &'static str,
        /// Given height.
        h: usize,
        /// Given width.
        w: usize,
        /// The smallest height and width with an output ([`LayerShape::min_input`](crate::LayerShape::min_input)).
        min: (usize, usize),
        /// The kernel window, `(dk - 1) * dilation + 1`.
        window: usize,
    },
    /// The sizes given make a buffer length that does not fit in `usize`.
    SizeOverflow {
        /// The layer's name (its struct's identifier).
        layer: &'static str,
        /// Given height.
        h: usize,
        /// Given width.
        w: usize,
        /// Given batch size (1 for single-image calls).
        batch: usize,
    },
    /// A weight or bias is NaN or infinite. Weights must be finite: a kernel skips the taps
    /// that fall on padding while the reference multiplies them by zero, and `0 * inf` is NaN.
    NonFiniteWeight {
        /// The layer's name (its struct's identifier).
        layer: &'static str,
        /// The tensor holding the value.
        tensor: Tensor,
        /// Index of the first non-finite value in the caller's (PyTorch) layout.
        index: usize,
    },
    /// BatchNorm was given for a stage of a layer declared without `bias = true`: folding it
    /// makes a bias the layer has no room for.
    BatchNormWithoutBias {
        /// The layer's name (its struct's identifier).
        layer: &'static str,
        /// The stage the BatchNorm follows.
        stage: StageName,
    },
    /// A BatchNorm value is not finite, or a variance plus `eps` is not positive.
    InvalidBatchNorm {
        /// The layer's name (its struct's identifier).
        layer: &'static str,
        /// The BatchNorm tensor.
        tensor: Tensor,
        /// Index of the first bad value.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The backend asked for cannot run on this CPU (or has no kernels on this target).
    BackendUnavailable {
        /// The backend asked for.
        backend: Backend,
    },
    /// `DSCONV_BACKEND` holds a name that is no backend.
    UnknownBackend {
        /// The variable's value.
        value: String,
    },
    /// A weight file could not be read or is not a `.safetensors` buffer.
    WeightFile {
        /// What went wrong.
        reason: String,
    },
    /// A tensor a layer needs is not in the weight file.
    MissingTensor {
        /// The layer being loaded.
        layer: &'static str,
        /// The tensor's name in the file.
        name: String,
    },
    /// A tensor in the weight file has another shape than the layer needs.
    TensorShape {
        /// The layer being loaded.
        layer: &'static str,
        /// The tensor's name in the file.
        name: String,
        /// The shape the layer needs (in the layout it was loaded with).
        expected: Dims,
        /// The shape in the file.
        actual: Vec<usize>,
    },
    /// A tensor in the weight file has an element type dsconv does not read (it reads `F32`
    /// and `F64`).
    TensorDtype {
        /// The layer being loaded.
        layer: &'static str,
        /// The tensor's name in the file.
        name: String,
        /// The file's element type.
        dtype: String,
    },
    /// A layer declared with `residual = true` was called without its skip input.
    SkipRequired {
        /// The layer's name.
        layer: &'static str,
    },
    /// A skip input was given to a layer declared without `residual = true`.
    NotResidual {
        /// The layer's name.
        layer: &'static str,
    },
    /// A [`Chain`](crate::Chain) step's skip input is wrong.
    ChainSkip {
        /// The layer's position in the chain, from 0.
        index: usize,
        /// The layer's name.
        layer: &'static str,
        /// What is wrong, and the fix.
        reason: String,
    },
    /// A [`Chain`](crate::Chain) was given no layers.
    EmptyChain,
    /// A layer of a [`Chain`](crate::Chain) takes other channels than the previous layer
    /// produces (or, for the first, than the chain's input has).
    ChainChannels {
        /// The layer's position in the chain, from 0.
        index: usize,
        /// The layer's name.
        layer: &'static str,
        /// Channels the layer takes.
        expected: usize,
        /// Channels the previous layer produces.
        actual: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Length {
                layer,
                tensor,
                expected,
                actual,
                dims,
            } => {
                write!(
                    f,
                    "layer {layer}: {tensor} has the wrong length: expected {expected} values (shape {:?}",
                    dims.sizes()
                )?;
                let names = tensor.dim_names();
                if names.len() == dims.sizes().len() {
                    write!(f, " as ({})", names.join(", "))?;
                }
                write!(f, "), got {actual}")
            }
            Error::EmptyImage { layer, h, w } => write!(
                f,
                "layer {layer}: image is empty: expected height and width >= 1, got {h}x{w}"
            ),
            Error::FixedSizeMismatch {
                layer,
                expected,
                actual,
            } => write!(
                f,
                "layer {layer}: input size differs from the layer's declared size: expected {}x{}, got {}x{}",
                expected.0, expected.1, actual.0, actual.1
            ),
            Error::ImageSmallerThanKernel {
                layer,
                h,
                w,
                min,
                window,
            } => write!(
                f,
                "layer {layer}: the image with its padding is smaller than the {window}x{window} kernel window: expected at least {}x{}, got {h}x{w}",
                min.0, min.1
            ),
            Error::SizeOverflow { layer, h, w, batch } => write!(
                f,
                "layer {layer}: sizes overflow usize: expected buffer lengths that fit in memory, got batch {batch} of {h}x{w}"
            ),
            Error::NonFiniteWeight {
                layer,
                tensor,
                index,
            } => write!(
                f,
                "layer {layer}: {tensor} must be finite: expected a finite value at index {index}, got NaN or infinity"
            ),
            Error::BatchNormWithoutBias { layer, stage } => write!(
                f,
                "layer {layer}: BatchNorm after the {} stage folds into a bias: expected a layer declared with `bias = true`, got one without",
                stage.name()
            ),
            Error::InvalidBatchNorm {
                layer,
                tensor,
                index,
                reason,
            } => write!(
                f,
                "layer {layer}: {tensor} at index {index} {reason}: expected finite values and a positive variance plus eps"
            ),
            Error::BackendUnavailable { backend } => write!(
                f,
                "backend {backend} is unavailable: expected one this CPU supports ({}), got {backend}",
                Backend::available()
                    .iter()
                    .map(|b| b.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Error::UnknownBackend { value } => write!(
                f,
                "DSCONV_BACKEND names no backend: expected scalar, avx2, avx512, neon or auto, got {value:?}"
            ),
            Error::WeightFile { reason } => write!(f, "weight file: {reason}"),
            Error::MissingTensor { layer, name } => write!(
                f,
                "layer {layer}: tensor {name:?} is missing from the weight file: expected it present, got no tensor of that name"
            ),
            Error::TensorShape {
                layer,
                name,
                expected,
                actual,
            } => write!(
                f,
                "layer {layer}: tensor {name:?} has the wrong shape: expected {expected:?}, got {actual:?}"
            ),
            Error::TensorDtype { layer, name, dtype } => write!(
                f,
                "layer {layer}: tensor {name:?} has an unsupported element type: expected F32 or F64, got {dtype}"
            ),
            Error::SkipRequired { layer } => write!(
                f,
                "layer {layer} is declared with residual = true: expected a skip input (call forward_residual), got none"
            ),
            Error::NotResidual { layer } => write!(
                f,
                "layer {layer} is declared without residual = true: expected no skip input (call forward, or declare residual = true), got one"
            ),
            Error::ChainSkip {
                index,
                layer,
                reason,
            } => write!(f, "chain layer {index} ({layer}): {reason}"),
            Error::EmptyChain => write!(f, "chain has no layers: expected at least one, got 0"),
            Error::ChainChannels {
                index,
                layer,
                expected,
                actual,
            } => write!(
                f,
                "chain layer {index} ({layer}) has the wrong input channels: expected {expected} (what it takes), got {actual} (what the previous layer produces)"
            ),
        }
    }
}

impl Error {
    /// The variant's name, for `Debug`.
    fn variant(&self) -> &'static str {
        match self {
            Error::Length { .. } => "Length",
            Error::EmptyImage { .. } => "EmptyImage",
            Error::FixedSizeMismatch { .. } => "FixedSizeMismatch",
            Error::ImageSmallerThanKernel { .. } => "ImageSmallerThanKernel",
            Error::SizeOverflow { .. } => "SizeOverflow",
            Error::NonFiniteWeight { .. } => "NonFiniteWeight",
            Error::BatchNormWithoutBias { .. } => "BatchNormWithoutBias",
            Error::InvalidBatchNorm { .. } => "InvalidBatchNorm",
            Error::BackendUnavailable { .. } => "BackendUnavailable",
            Error::UnknownBackend { .. } => "UnknownBackend",
            Error::WeightFile { .. } => "WeightFile",
            Error::MissingTensor { .. } => "MissingTensor",
            Error::TensorShape { .. } => "TensorShape",
            Error::TensorDtype { .. } => "TensorDtype",
            Error::SkipRequired { .. } => "SkipRequired",
            Error::NotResidual { .. } => "NotResidual",
            Error::ChainSkip { .. } => "ChainSkip",
            Error::EmptyChain => "EmptyChain",
            Error::ChainChannels { .. } => "ChainChannels",
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} (dsconv::Error::{})", self.variant())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_reads_like_display() {
        let e = Error::UnknownBackend {
            value: "avx3".into(),
        };
        assert_eq!(
            format!("{e:?}"),
            format!("{e} (dsconv::Error::UnknownBackend)")
        );
        assert!(format!("{e:?}").contains("got \"avx3\""));
    }

    #[test]
    fn length_names_the_layer_tensor_and_shape() {
        let e = Error::Length {
            layer: "Stem",
            tensor: Tensor::DepthwiseWeights,
            expected: 75,
            actual: 74,
            dims: Dims::new(&[3, 1, 5, 5]),
        };
        assert_eq!(
            e.to_string(),
            "layer Stem: depthwise weights has the wrong length: expected 75 values \
             (shape [3, 1, 5, 5] as (M*DM, 1, DK, DK)), got 74"
        );
        assert_eq!(Dims::new(&[1, 2, 3, 4, 5]).sizes(), &[1, 2, 3, 4]);
    }
}
