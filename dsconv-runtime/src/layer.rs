//! Argument validation and weight packing shared by every generated layer.
//!
//! Generated code calls these functions; they are public so that it can, but they are an
//! implementation detail of `#[separable_conv]` (re-exported as `dsconv::__private`).

pub use crate::aligned::AlignedArray;
pub use crate::drive::{fused_tiles, PlanarScratch, RowEdges, RowRun, RowRuns};
pub use crate::packing::{
    pack_depthwise, pack_pointwise_panels, pad_columns, transpose, CHANNEL_PAD, PANEL_WIDTH,
};
use crate::{AlignedBuf, Error, LayerShape, Padding, Tensor};

/// Validated sizes of one `forward`-like call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Output height.
    pub ho: usize,
    /// Output width.
    pub wo: usize,
    /// Output pixels per image, `ho * wo`.
    pub pixels: usize,
    /// Input floats per image, `h * w * m`.
    pub input_len: usize,
    batch: usize,
    h: usize,
    w: usize,
}

impl Geometry {
    /// Validates an `h x w` image size (and batch) against `shape`.
    pub fn new(shape: &LayerShape, batch: usize, h: usize, w: usize) -> Result<Self, Error> {
        if h == 0 || w == 0 {
            return Err(Error::EmptyImage { h, w });
        }
        if let Some(fixed) = shape.fixed_size {
            if fixed != (h, w) {
                return Err(Error::FixedSizeMismatch {
                    expected: fixed,
                    actual: (h, w),
                });
            }
        }
        if shape.padding == Padding::Valid && (h < shape.dk || w < shape.dk) {
            return Err(Error::ImageSmallerThanKernel { h, w, dk: shape.dk });
        }
        let overflow = Error::SizeOverflow { h, w, batch };
        let (ho, wo) = shape.output_size(h, w).ok_or(overflow.clone())?;
        let pixels = ho.checked_mul(wo).ok_or(overflow.clone())?;
        let input_len = h
            .checked_mul(w)
            .and_then(|x| x.checked_mul(shape.m))
            .ok_or(overflow)?;
        Ok(Geometry {
            ho,
            wo,
            pixels,
            input_len,
            batch,
            h,
            w,
        })
    }

    /// Checks the input length (`batch * h * w * m`) and the output length
    /// (`batch * ho * wo * out_channels`).
    pub fn check(&self, input: usize, output: usize, out_channels: usize) -> Result<(), Error> {
        let overflow = || Error::SizeOverflow {
            h: self.h,
            w: self.w,
            batch: self.batch,
        };
        let in_len = self
            .input_len
            .checked_mul(self.batch)
            .ok_or_else(overflow)?;
        let out_len = self
            .pixels
            .checked_mul(out_channels)
            .and_then(|x| x.checked_mul(self.batch))
            .ok_or_else(overflow)?;
        check_length(Tensor::Input, in_len, input)?;
        check_length(Tensor::Output, out_len, output)
    }
}

/// Pixels of an `h x w` grid given to a pointwise stage (which has no kernel-size rules).
pub fn pointwise_pixels(h: usize, w: usize) -> Result<usize, Error> {
    if h == 0 || w == 0 {
        return Err(Error::EmptyImage { h, w });
    }
    h.checked_mul(w)
        .ok_or(Error::SizeOverflow { h, w, batch: 1 })
}

/// `pixels * channels`, or `SizeOverflow` naming the image size.
pub fn mul(pixels: usize, channels: usize, h: usize, w: usize) -> Result<usize, Error> {
    pixels
        .checked_mul(channels)
        .ok_or(Error::SizeOverflow { h, w, batch: 1 })
}

/// `Err(Error::Length)` unless `actual == expected`.
pub fn check_length(tensor: Tensor, expected: usize, actual: usize) -> Result<(), Error> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::Length {
            tensor,
            expected,
            actual,
        })
    }
}

/// Checks a weight or bias tensor's length and that every value is finite.
pub fn check_weights(tensor: Tensor, expected: usize, values: &[f32]) -> Result<(), Error> {
    check_length(tensor, expected, values.len())?;
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFiniteWeight { tensor, index }),
        None => Ok(()),
    }
}

/// Checks an optional bias against the layer's declaration: required (and `len` finite
/// values) when `declared`, absent otherwise.
pub fn check_bias(
    tensor: Tensor,
    declared: bool,
    len: usize,
    bias: Option<&[f32]>,
) -> Result<(), Error> {
    match (declared, bias) {
        (true, Some(b)) => check_weights(tensor, len, b),
        (true, None) => check_length(tensor, len, 0),
        (false, Some(b)) => check_length(tensor, 0, b.len()),
        (false, None) => Ok(()),
    }
}

/// Runs `f` on a scratch buffer of `len` floats (contents unspecified) owned by the calling
/// thread, 64-byte aligned. The buffer grows once and is reused, so steady-state calls
/// allocate nothing.
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    use std::cell::RefCell;
    thread_local! {
        static SCRATCH: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.grow_to(len);
            f(&mut buf[..len])
        }
        // Re-entered (a kernel never calls back into user code, so this is only defensive).
        Err(_) => f(&mut AlignedBuf::zeroed(len)),
    })
}

/// Copies packed values into the 64-byte aligned array of the length a kernel indexes with
/// constants. Fails (with `Error::Length` for `tensor`) only if the length differs, which
/// validated callers rule out.
pub fn to_array<const L: usize>(tensor: Tensor, values: &[f32]) -> Result<AlignedArray<L>, Error> {
    AlignedArray::from_slice(values).ok_or(Error::Length {
        tensor,
        expected: L,
        actual: values.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_is_reused_without_reallocation() {
        let first = with_scratch(64, |b| b.as_ptr() as usize);
        let second = with_scratch(32, |b| b.as_ptr() as usize);
        assert_eq!(first, second);
    }

    #[test]
    fn non_finite_weight_reports_its_index() {
        let e = check_weights(Tensor::PointwiseBias, 3, &[0.0, f32::NAN, 1.0]).unwrap_err();
        assert_eq!(
            e,
            Error::NonFiniteWeight {
                tensor: Tensor::PointwiseBias,
                index: 1
            }
        );
    }
}
