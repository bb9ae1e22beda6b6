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
}
