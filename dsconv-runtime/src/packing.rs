//! Weight packing: the layouts the kernels stream (constants and functions in one place).
//! The planner sizes its plans from these constants; generated `load` functions call these
//! functions with the layer's sizes.

/// Depthwise weights and bias are packed tap-major with the channel count padded to a
/// multiple of this (the widest vector), so every backend reads whole vectors of weights.
pub const CHANNEL_PAD: usize = 16;

/// Pointwise weights are packed in panels of this many output channels (`[panel][k][col]`);
/// the last panel is padded to a multiple of [`CHANNEL_PAD`]. One layout serves every
/// backend: a micro-kernel covers one or more vectors of a panel.
pub const PANEL_WIDTH: usize = 32;

/// Packs PyTorch `(C, 1, DK, DK)` depthwise weights (`taps = DK * DK`) tap-major, each
/// tap's `c` channels followed by zeros up to `stride` floats (the plan's weight stride):
/// `[tap][channel]`.
pub fn pack_depthwise(src: &[f32], c: usize, taps: usize, stride: usize) -> Box<[f32]> {
    pad_columns(&transpose(src, c, taps), taps, c, stride)
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

/// The depthwise bias padded to `padded_cols` columns ([`pad_columns`]), each -0.0 made
/// +0.0 (the same value), so that a -0.0 bias gives the zeros a +0.0 bias gives. (Bit
/// identity across splits does not rest on it: each depthwise kernel computes a pixel the
/// same way wherever the tiles cut, the channel-vector codes adding exactly the taps that
/// read the image in one order and the width-vector code running every pixel through the
/// same instructions; `tests/threads.rs` checks it with sums that underflow to -0.0.)
pub fn depthwise_bias(src: &[f32], cols: usize, padded_cols: usize) -> Box<[f32]> {
    let mut out = pad_columns(src, 1, cols, padded_cols);
    out.iter_mut().for_each(|b| *b += 0.0);
    out
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

/// Realigned copies (see the plan's `realign`) are kept for the shifts of buffers that start
/// a multiple of this many floats (16 bytes, what `malloc` returns) off a vector boundary.
pub const REALIGN_COPY_STEP: usize = 4;

/// Floats of one realigned copy of a layer's packed depthwise weights (`weights` floats,
/// a whole number of vectors) and bias (`bias` floats): a vector of lead-in, then both.
const fn realigned_copy_len(weights: usize, bias: usize, lanes: usize) -> usize {
    lanes + weights + bias
}

/// Where the copy for `shift` starts its weights in [`pack_realigned`]'s array (its bias
/// follows them), or `None` for a shift without a copy (0, or not a multiple of
/// [`REALIGN_COPY_STEP`]: such a call reads the layer's own weights, its loads unaligned).
///
/// A realigned kernel reads tap `t`'s vector `cv` at `t * stride + shift + cv * lanes`; in
/// the copy for `shift` that lands on a vector boundary (when `stride` and `bias` are
/// multiples of `lanes`), so its weight and bias loads are aligned as its input
/// loads are.
#[inline(always)]
pub fn realigned_copy(shift: usize, weights: usize, bias: usize, lanes: usize) -> Option<usize> {
    if shift == 0 || shift >= lanes || !shift.is_multiple_of(REALIGN_COPY_STEP) {
        return None;
    }
    let copy = shift / REALIGN_COPY_STEP - 1;
    Some(copy * realigned_copy_len(weights, bias, lanes) + lanes - shift)
}

/// Copies of packed depthwise `weights` and padded `bias` for every shift
/// [`realigned_copy`] serves (`lanes / REALIGN_COPY_STEP - 1` of them: 3 for 16 lanes),
/// each placed so that the realigned kernel's loads at that shift are aligned (see there).
/// The floats between copies are zeros and never read.
pub fn pack_realigned(weights: &[f32], bias: &[f32], lanes: usize) -> Box<[f32]> {
    assert!(
        lanes > REALIGN_COPY_STEP
            && lanes.is_multiple_of(REALIGN_COPY_STEP)
            && weights.len().is_multiple_of(lanes)
            && bias.len().is_multiple_of(lanes),
        "pack_realigned: whole vectors of weights and bias, lanes a multiple of the step"
    );
    let copies = lanes / REALIGN_COPY_STEP - 1;
    let len = realigned_copy_len(weights.len(), bias.len(), lanes);
    let mut out = vec![0.0f32; copies * len];
    for shift in (1..=copies).map(|k| k * REALIGN_COPY_STEP) {
        let at = realigned_copy(shift, weights.len(), bias.len(), lanes)
            .expect("a multiple of the step below the lanes has a copy");
        out[at..at + weights.len()].copy_from_slice(weights);
        out[at + weights.len()..at + weights.len() + bias.len()].copy_from_slice(bias);
    }
    out.into_boxed_slice()
}

/// Floats of [`pack_realigned`]'s array.
pub const fn realigned_len(weights: usize, bias: usize, lanes: usize) -> usize {
    (lanes / REALIGN_COPY_STEP - 1) * realigned_copy_len(weights, bias, lanes)
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
    fn transpose_swaps_rows_and_columns() {
        let t = transpose(&[1., 2., 3., 4., 5., 6.], 2, 3);
        assert_eq!(&*t, &[1., 4., 2., 5., 3., 6.]);
    }

    #[test]
    fn depthwise_weights_go_tap_major_with_padded_channels() {
        // 2 channels, 2 taps: weights[c][t] = 10 c + t.
        let p = pack_depthwise(&[0., 1., 10., 11.], 2, 2, 4);
        assert_eq!(&*p, &[0., 10., 0., 0., 1., 11., 0., 0.]);
    }

    #[test]
    fn realigned_copies_put_each_shifts_vectors_on_vector_boundaries() {
        // 2 taps of 32 channels padded to a stride of 48, a bias of 32, 16 lanes.
        let (lanes, stride, taps, c) = (16, 48, 2, 32);
        let weights: Vec<f32> = (0..taps * stride).map(|i| i as f32).collect();
        let bias: Vec<f32> = (0..c).map(|i| 1000.0 + i as f32).collect();
        let copies = pack_realigned(&weights, &bias, lanes);
        assert_eq!(
            copies.len(),
            realigned_len(weights.len(), bias.len(), lanes)
        );
        let mut starts = Vec::new();
        for shift in 0..lanes {
            let Some(at) = realigned_copy(shift, weights.len(), bias.len(), lanes) else {
                assert!(
                    !shift.is_multiple_of(REALIGN_COPY_STEP) || shift == 0,
                    "shift {shift}"
                );
                continue;
            };
            starts.push(at);
            // The copy holds the weights, then the bias.
            assert_eq!(&copies[at..at + weights.len()], &weights[..]);
            let b = at + weights.len();
            assert_eq!(&copies[b..b + bias.len()], &bias[..]);
            // Each tap's first whole vector (channel `shift`) and the bias's start on a
            // vector boundary of the array (which the layer allocates 64-byte aligned).
            for t in 0..taps {
                assert_eq!(
                    (at + t * stride + shift) % lanes,
                    0,
                    "shift {shift}, tap {t}"
                );
            }
            assert_eq!((b + shift) % lanes, 0, "shift {shift}: bias");
        }
        // One copy per 16-byte step: shifts 4, 8 and 12, apart from each other.
        assert_eq!(starts.len(), 3);
        assert!(starts
            .windows(2)
            .all(|w| w[1] >= w[0] + weights.len() + bias.len()));
    }
}
