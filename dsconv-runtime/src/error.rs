//! The error type of every fallible dsconv call.

use crate::Backend;
use std::fmt;

/// Which tensor a length or value error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tensor {
    /// The input image (HWC).
    Input,
    /// The output buffer (HWC).
    Output,
    /// Depthwise weights, PyTorch layout `(M*DM, 1, DK, DK)`.
    DepthwiseWeights,
    /// Depthwise bias, `M*DM` values.
    DepthwiseBias,
    /// Pointwise weights, PyTorch layout `(N, M*DM, 1, 1)`.
    PointwiseWeights,
    /// Pointwise bias, `N` values.
    PointwiseBias,
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tensor::Input => "input",
            Tensor::Output => "output",
            Tensor::DepthwiseWeights => "depthwise weights",
            Tensor::DepthwiseBias => "depthwise bias",
            Tensor::PointwiseWeights => "pointwise weights",
            Tensor::PointwiseBias => "pointwise bias",
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
        /// The slice concerned.
        tensor: Tensor,
        /// Elements the call needs.
        expected: usize,
        /// Elements it was given.
        actual: usize,
    },
    /// The image height or width is zero.
    EmptyImage {
        /// Given height.
        h: usize,
        /// Given width.
        w: usize,
    },
    /// The layer was declared with a fixed `h`/`w` and was called with another size.
    FixedSizeMismatch {
        /// The declared `(h, w)`.
        expected: (usize, usize),
        /// The given `(h, w)`.
        actual: (usize, usize),
    },
    /// `padding = "valid"` and the image is smaller than the kernel.
    ImageSmallerThanKernel {
        /// Given height.
        h: usize,
        /// Given width.
        w: usize,
        /// The kernel size.
        dk: usize,
    },
    /// The sizes given make a buffer length that does not fit in `usize`.
    SizeOverflow {
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
        /// The tensor holding the value.
        tensor: Tensor,
        /// Index of the first non-finite value in the caller's (PyTorch) layout.
        index: usize,
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Length {
                tensor,
                expected,
                actual,
            } => write!(
                f,
                "{tensor} has the wrong length: expected {expected} values, got {actual}"
            ),
            Error::EmptyImage { h, w } => write!(
                f,
                "image is empty: expected height and width >= 1, got {h}x{w}"
            ),
            Error::FixedSizeMismatch { expected, actual } => write!(
                f,
                "input size differs from the layer's declared size: expected {}x{}, got {}x{}",
                expected.0, expected.1, actual.0, actual.1
            ),
            Error::ImageSmallerThanKernel { h, w, dk } => write!(
                f,
                "padding \"valid\" needs an image at least as large as the kernel: expected at least {dk}x{dk}, got {h}x{w}"
            ),
            Error::SizeOverflow { h, w, batch } => write!(
                f,
                "sizes overflow usize: expected buffer lengths that fit in memory, got batch {batch} of {h}x{w}"
            ),
            Error::NonFiniteWeight { tensor, index } => write!(
                f,
                "{tensor} must be finite: expected a finite value at index {index}, got NaN or infinity"
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
            Error::BackendUnavailable { .. } => "BackendUnavailable",
            Error::UnknownBackend { .. } => "UnknownBackend",
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
}
