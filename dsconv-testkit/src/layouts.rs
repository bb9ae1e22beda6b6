//! PyTorch-layout weights rewritten in another framework's layout, each by walking that
//! framework's own dimensions (independently of `dsconv::frameworks`, which reads them).

use dsconv_runtime::WeightLayout;

/// PyTorch `(M*DM, 1, k, k)` written out as TensorFlow's `(k, k, M, DM)` and TFLite's
/// `(1, k, k, M*DM)` by walking each framework's own dimensions.
pub fn depthwise_as(layout: WeightLayout, pt: &[f32], k: usize, m: usize, dm: usize) -> Vec<f32> {
    let mut out = Vec::new();
    match layout {
        WeightLayout::PyTorch => out.extend_from_slice(pt),
        WeightLayout::TensorFlow => {
            for ky in 0..k {
                for kx in 0..k {
                    for ci in 0..m {
                        for j in 0..dm {
                            out.push(pt[((ci * dm + j) * k + ky) * k + kx]);
                        }
                    }
                }
            }
        }
        WeightLayout::TfLite => {
            for ky in 0..k {
                for kx in 0..k {
                    for o in 0..m * dm {
                        out.push(pt[(o * k + ky) * k + kx]);
                    }
                }
            }
        }
    }
    out
}

/// PyTorch `(N, C, 1, 1)` as TensorFlow's `(1, 1, C, N)` and TFLite's `(N, 1, 1, C)`.
pub fn pointwise_as(layout: WeightLayout, pt: &[f32], c: usize, n: usize) -> Vec<f32> {
    match layout {
        WeightLayout::PyTorch | WeightLayout::TfLite => pt.to_vec(),
        WeightLayout::TensorFlow => (0..c)
            .flat_map(|ci| (0..n).map(move |o| (ci, o)))
            .map(|(ci, o)| pt[o * c + ci])
            .collect(),
    }
}
