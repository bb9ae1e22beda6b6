//! Argument validation and weight packing shared by every generated layer.
//!
//! Generated code calls these functions; they are public so that it can, but they are an
//! implementation detail of `#[separable_conv]` (re-exported as `dsconv::__private`).

pub use crate::aligned::AlignedArray;
pub use crate::drive::{
    fused_tiles, next_tile_rows, realign_shift, tap_range, windows_inside_rows, PassRuns,
    PixelChunks, PlanarScratch, RowEdges, RowRun, RowRuns,
};
pub use crate::packing::{
    depthwise_bias, pack_depthwise, pack_pointwise_panels, pack_realigned, pad_columns,
    realigned_copy, transpose, CHANNEL_PAD, PANEL_WIDTH,
};
pub use crate::pointwise::output_dims as pointwise_output_dims;
use crate::{AlignedBuf, Dims, Error, LayerShape, Tensor};
use std::cell::RefCell;

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
    layer: &'static str,
    batch: usize,
    h: usize,
    w: usize,
    m: usize,
}

impl Geometry {
    /// Validates an `h x w` image size (and batch) against `shape`, for errors naming
    /// `layer`.
    pub fn new(
        layer: &'static str,
        shape: &LayerShape,
        batch: usize,
        h: usize,
        w: usize,
    ) -> Result<Self, Error> {
        if h == 0 || w == 0 {
            return Err(Error::EmptyImage { layer, h, w });
        }
        if let Some(fixed) = shape.fixed_size {
            if fixed != (h, w) {
                return Err(Error::FixedSizeMismatch {
                    layer,
                    expected: fixed,
                    actual: (h, w),
                });
            }
        }
        let min = shape.min_input();
        if h < min.0 || w < min.1 {
            return Err(Error::ImageSmallerThanKernel {
                layer,
                h,
                w,
                min,
                window: shape.window(),
            });
        }
        let overflow = Error::SizeOverflow { layer, h, w, batch };
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
            layer,
            batch,
            h,
            w,
            m: shape.m,
        })
    }

    /// Checks the input length (`batch * h * w * m`) and the output length
    /// (`batch * ho * wo * out_channels`).
    pub fn check(&self, input: usize, output: usize, out_channels: usize) -> Result<(), Error> {
        let overflow = || Error::SizeOverflow {
            layer: self.layer,
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
        let in_dims = Dims::new(&[self.batch, self.h, self.w, self.m]);
        let out_dims = Dims::new(&[self.batch, self.ho, self.wo, out_channels]);
        check_length(self.layer, Tensor::Input, in_len, in_dims, input)?;
        check_length(self.layer, Tensor::Output, out_len, out_dims, output)
    }
}

/// Checks the buffers of a pointwise-stage call on `h x w` pixels (which has no kernel-size
/// rules): `h * w * in_channels` input and `h * w * out_channels` output floats. Returns
/// the pixel count.
pub fn check_pointwise(
    layer: &'static str,
    h: usize,
    w: usize,
    (in_channels, input): (usize, usize),
    (out_channels, output): (usize, usize),
) -> Result<usize, Error> {
    if h == 0 || w == 0 {
        return Err(Error::EmptyImage { layer, h, w });
    }
    let overflow = Error::SizeOverflow {
        layer,
        h,
        w,
        batch: 1,
    };
    let pixels = h.checked_mul(w).ok_or(overflow.clone())?;
    let in_len = pixels.checked_mul(in_channels).ok_or(overflow.clone())?;
    let out_len = pixels.checked_mul(out_channels).ok_or(overflow)?;
    let in_dims = Dims::new(&[1, h, w, in_channels]);
    let out_dims = Dims::new(&[1, h, w, out_channels]);
    check_length(layer, Tensor::Input, in_len, in_dims, input)?;
    check_length(layer, Tensor::Output, out_len, out_dims, output)?;
    Ok(pixels)
}

/// `Err(Error::Length)` unless `actual == expected` (`expected` being the product of
/// `dims`).
pub fn check_length(
    layer: &'static str,
    tensor: Tensor,
    expected: usize,
    dims: Dims,
    actual: usize,
) -> Result<(), Error> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::Length {
            layer,
            tensor,
            expected,
            actual,
            dims,
        })
    }
}

/// Checks a skip input's length against the output's `(ho, wo, n)`.
pub fn check_skip(
    layer: &'static str,
    (ho, wo, n): (usize, usize, usize),
    actual: usize,
) -> Result<(), Error> {
    check_length(
        layer,
        Tensor::Skip,
        ho * wo * n,
        Dims::new(&[1, ho, wo, n]),
        actual,
    )
}

/// Checks a weight or bias tensor's length against its shape `dims` and that every value is
/// finite.
pub fn check_weights(
    layer: &'static str,
    tensor: Tensor,
    dims: &[usize],
    values: &[f32],
) -> Result<(), Error> {
    let expected = dims.iter().product();
    check_length(layer, tensor, expected, Dims::new(dims), values.len())?;
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFiniteWeight {
            layer,
            tensor,
            index,
        }),
        None => Ok(()),
    }
}

/// Checks an optional bias against the layer's declaration: required (and `len` finite
/// values) when `declared`, absent otherwise.
pub fn check_bias(
    layer: &'static str,
    tensor: Tensor,
    declared: bool,
    len: usize,
    bias: Option<&[f32]>,
) -> Result<(), Error> {
    match (declared, bias) {
        (true, Some(b)) => check_weights(layer, tensor, &[len], b),
        (true, None) => check_length(layer, tensor, len, Dims::new(&[len]), 0),
        (false, Some(b)) => check_length(layer, tensor, 0, Dims::new(&[0]), b.len()),
        (false, None) => Ok(()),
    }
}

/// Runs `f` on a scratch buffer of `len` floats (contents unspecified) owned by the calling
/// thread, 64-byte aligned. The buffer grows once and is reused, so steady-state calls
/// allocate nothing.
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
    }
    with_buffer(&SCRATCH, len, f)
}

/// Runs `f` on the calling thread's stage buffer of `len` floats (as [`with_scratch`], a
/// second buffer): a staged `forward` keeps its whole depthwise output there while the
/// pool's threads compute runs of it, each depthwise kernel using its own thread's
/// [`with_scratch`] buffer meanwhile.
pub fn with_stage_buffer<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static STAGE: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
    }
    with_buffer(&STAGE, len, f)
}

fn with_buffer<R>(
    key: &'static std::thread::LocalKey<RefCell<AlignedBuf>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
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
pub fn to_array<const L: usize>(
    layer: &'static str,
    tensor: Tensor,
    values: &[f32],
) -> Result<AlignedArray<L>, Error> {
    AlignedArray::from_slice(values).ok_or(Error::Length {
        layer,
        tensor,
        expected: L,
        actual: values.len(),
        dims: Dims::new(&[L]),
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
        let e = check_weights("L", Tensor::PointwiseBias, &[3], &[0.0, f32::NAN, 1.0]).unwrap_err();
        assert_eq!(
            e,
            Error::NonFiniteWeight {
                layer: "L",
                tensor: Tensor::PointwiseBias,
                index: 1
            }
        );
    }
}
