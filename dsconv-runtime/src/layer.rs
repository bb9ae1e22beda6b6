//! Argument validation and weight packing shared by every generated layer.
//!
//! Generated code calls these functions; they are public so that it can, but they are an
//! implementation detail of `#[separable_conv]` (re-exported as `dsconv::__private`).

pub use crate::aligned::AlignedArray;
pub use crate::drive::{fused_tiles, PlanarScratch, RowEdges, RowRun, RowRuns};
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

/// Transposes a row-major `rows x cols` matrix into a row-major `cols x rows` one.
///
/// Packs PyTorch's `(M*DM, 1, DK, DK)` depthwise weights tap-major (`[tap][channel]`) and
/// `(N, M*DM, 1, 1)` pointwise weights channel-major (`[in][out]`), the layouts the kernels
/// stream through.
pub fn transpose(src: &[f32], rows: usize, cols: usize) -> Box<[f32]> {
    assert_eq!(src.len(), rows * cols, "transpose: length");
    let mut out = vec![0.0f32; src.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = src[r * cols + c];
        }
    }
    out.into_boxed_slice()
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

/// Copies `src` (`rows x cols`, row-major) into a zero-padded `rows x padded_cols` matrix.
pub fn pad_columns(src: &[f32], rows: usize, cols: usize, padded_cols: usize) -> Box<[f32]> {
    assert!(
        src.len() == rows * cols && padded_cols >= cols,
        "pad_columns: shape"
    );
    let mut out = vec![0.0f32; rows * padded_cols];
    for r in 0..rows {
        out[r * padded_cols..r * padded_cols + cols]
            .copy_from_slice(&src[r * cols..(r + 1) * cols]);
    }
    out.into_boxed_slice()
}

/// Packs PyTorch `(N, K, 1, 1)` pointwise weights into panels of `panel_width` output
/// channels: `[panel][k][lane]`, the last panel zero-padded to `last_panel_width`. This is
/// the layout a pointwise micro-kernel streams: for each `k`, one contiguous row of the panel.
pub fn pack_pointwise_panels(
    src: &[f32],
    n: usize,
    k: usize,
    panel_width: usize,
    last_panel_width: usize,
) -> Box<[f32]> {
    assert_eq!(src.len(), n * k, "pack_pointwise_panels: length");
    let full = n / panel_width;
    let rest = n - full * panel_width;
    let total = full * panel_width * k + if rest > 0 { last_panel_width * k } else { 0 };
    let mut out = vec![0.0f32; total];
    let mut offset = 0;
    for panel in 0..full + usize::from(rest > 0) {
        let width = if panel < full {
            panel_width
        } else {
            last_panel_width
        };
        for kk in 0..k {
            for lane in 0..width {
                let col = panel * panel_width + lane;
                if col < n {
                    out[offset + kk * width + lane] = src[col * k + kk];
                }
            }
        }
        offset += width * k;
    }
    out.into_boxed_slice()
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
    fn panels_hold_each_k_row_contiguously_and_pad_the_last_panel() {
        // n = 3 output channels, k = 2: weights[n][k] = 10 n + k.
        let src = [0., 1., 10., 11., 20., 21.];
        let p = pack_pointwise_panels(&src, 3, 2, 2, 2);
        assert_eq!(&*p, &[0., 10., 1., 11., 20., 0., 21., 0.]);
    }

    #[test]
    fn scratch_is_reused_without_reallocation() {
        let first = with_scratch(64, |b| b.as_ptr() as usize);
        let second = with_scratch(32, |b| b.as_ptr() as usize);
        assert_eq!(first, second);
    }

    #[test]
    fn transpose_swaps_rows_and_columns() {
        let t = transpose(&[1., 2., 3., 4., 5., 6.], 2, 3);
        assert_eq!(&*t, &[1., 4., 2., 5., 3., 6.]);
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
