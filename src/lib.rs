#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub use dsconv_macros::{pointwise_conv, separable_conv};
pub use dsconv_runtime::{
    frameworks, output_extent, reference, Activation, Activations, AlignedBuf, Backend, BatchNorm,
    BatchNormParam, Chain, ChainBuilder, DepthwiseStrategy, Dims, Error, FrameworkWeights, Layer,
    LayerShape, MulCount, Padding, Pads, PlanSummary, PointwiseConv, PointwiseOrder,
    PointwisePrefetch, Pool, SeparableConv, Split, SplitRule, StageName, StageWeights, Tensor,
    WeightLayout, Weights, BACKEND_ENV, CHAIN_NAME, THREADS_ENV,
};

/// Layers from `.safetensors` files by tensor name (cargo feature `safetensors`).
#[cfg(feature = "safetensors")]
pub use dsconv_runtime::safetensors;

/// Support code for the items `#[separable_conv]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use dsconv_runtime::layer::*;
}
