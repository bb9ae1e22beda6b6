//! Weights as frameworks store them: the layout named explicitly (never guessed from the
//! lengths — a Keras kernel has exactly the length of the PyTorch one and loads without a
//! word in the wrong layout), and BatchNorm after either stage folded into that stage's
//! weights and bias at load, in `f64`. [`SeparableConv::load_from`](crate::SeparableConv::load_from)
//! takes a [`FrameworkWeights`]; [`convert`] is the conversion alone.

use crate::layer::check_length;
use crate::{Dims, Error, LayerShape, Tensor, Weights};

/// How a framework lays out a separable layer's two kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightLayout {
    /// PyTorch (dsconv's own): `Conv2d(groups = M)` weight `(M*DM, 1, k, k)`, 1x1 `Conv2d`
    /// weight `(N, M*DM, 1, 1)`.
    PyTorch,
    /// TensorFlow / Keras: `DepthwiseConv2D` kernel `(k, k, M, DM)`, `Conv2D` kernel
    /// `(1, 1, M*DM, N)`.
    TensorFlow,
    /// TFLite: `DEPTHWISE_CONV_2D` filter `(1, k, k, M*DM)`, `CONV_2D` filter
    /// `(N, 1, 1, M*DM)`.
    TfLite,
}

impl WeightLayout {
    /// The layout's name.
    pub const fn name(self) -> &'static str {
        match self {
            WeightLayout::PyTorch => "PyTorch",
            WeightLayout::TensorFlow => "TensorFlow",
            WeightLayout::TfLite => "TFLite",
        }
    }

    /// The names of the depthwise kernel's dimensions in this layout.
    pub const fn depthwise_dim_names(self) -> &'static [&'static str] {
        match self {
            WeightLayout::PyTorch => &["M*DM", "1", "DK", "DK"],
            WeightLayout::TensorFlow => &["DK", "DK", "M", "DM"],
            WeightLayout::TfLite => &["1", "DK", "DK", "M*DM"],
        }
    }

    /// The names of the pointwise kernel's dimensions in this layout.
    pub const fn pointwise_dim_names(self) -> &'static [&'static str] {
        match self {
            WeightLayout::PyTorch => &["N", "M*DM", "1", "1"],
            WeightLayout::TensorFlow => &["1", "1", "M*DM", "N"],
            WeightLayout::TfLite => &["N", "1", "1", "M*DM"],
        }
    }

    /// The depthwise kernel's shape in this layout.
    pub const fn depthwise_dims(self, shape: &LayerShape) -> [usize; 4] {
        let (k, m, dm) = (shape.dk, shape.m, shape.depth_multiplier);
        match self {
            WeightLayout::PyTorch => [m * dm, 1, k, k],
            WeightLayout::TensorFlow => [k, k, m, dm],
            WeightLayout::TfLite => [1, k, k, m * dm],
        }
    }

    /// The pointwise kernel's shape in this layout.
    pub const fn pointwise_dims(self, shape: &LayerShape) -> [usize; 4] {
        self.dims_1x1(shape.m * shape.depth_multiplier, shape.n)
    }

    /// The shape of a 1x1 convolution's kernel from `c` to `n` channels in this layout.
    pub const fn dims_1x1(self, c: usize, n: usize) -> [usize; 4] {
        match self {
            WeightLayout::PyTorch => [n, c, 1, 1],
            WeightLayout::TensorFlow => [1, 1, c, n],
            WeightLayout::TfLite => [n, 1, 1, c],
        }
    }
}

/// Which of a BatchNorm's four tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BatchNormParam {
    /// The scale, gamma (PyTorch `weight`).
    Gamma,
    /// The shift, beta (PyTorch `bias`).
    Beta,
    /// The running mean.
    Mean,
    /// The running variance.
    Variance,
}

impl BatchNormParam {
    /// The parameter's name.
    pub const fn name(self) -> &'static str {
        match self {
            BatchNormParam::Gamma => "gamma",
            BatchNormParam::Beta => "beta",
            BatchNormParam::Mean => "running mean",
            BatchNormParam::Variance => "running variance",
        }
    }
}

/// A BatchNorm after a stage, one value per channel of the stage's output: folded at load
/// into `w' = w * s`, `b' = (b - mean) * s + beta` with `s = gamma / sqrt(variance + eps)`,
/// in `f64`. `eps` has no default, because the frameworks differ: PyTorch's is `1e-5`,
/// Keras' `1e-3`.
#[derive(Clone, Copy, Debug)]
pub struct BatchNorm<'a> {
    /// Gamma.
    pub gamma: &'a [f32],
    /// Beta.
    pub beta: &'a [f32],
    /// Running mean.
    pub mean: &'a [f32],
    /// Running variance.
    pub variance: &'a [f32],
    /// Added to the variance (state the framework's: PyTorch `1e-5`, Keras `1e-3`).
    pub eps: f64,
}

/// One stage's tensors as a framework stores them.
#[derive(Clone, Copy, Debug)]
pub struct StageWeights<'a> {
    /// The kernel, in the [`FrameworkWeights::layout`].
    pub kernel: &'a [f32],
    /// The convolution's own bias, if it has one (a convolution followed by BatchNorm
    /// usually has none).
    pub bias: Option<&'a [f32]>,
    /// The BatchNorm after the convolution, if any.
    pub batch_norm: Option<BatchNorm<'a>>,
}

/// A separable layer's tensors in a framework's layout, with BatchNorm unfolded.
#[derive(Clone, Copy, Debug)]
pub struct FrameworkWeights<'a> {
    /// How the two kernels are laid out.
    pub layout: WeightLayout,
    /// The depthwise convolution (and its BatchNorm).
    pub depthwise: StageWeights<'a>,
    /// The 1x1 convolution (and its BatchNorm).
    pub pointwise: StageWeights<'a>,
}

/// Weights converted to dsconv's (PyTorch) layout with BatchNorm folded.
#[derive(Clone, Debug, PartialEq)]
pub struct Converted {
    /// `(M*DM, 1, DK, DK)`.
    pub depthwise: Vec<f32>,
    /// `M*DM` values, when the stage has a bias or a BatchNorm.
    pub depthwise_bias: Option<Vec<f32>>,
    /// `(N, M*DM, 1, 1)`.
    pub pointwise: Vec<f32>,
    /// `N` values, when the stage has a bias or a BatchNorm.
    pub pointwise_bias: Option<Vec<f32>>,
}

impl Converted {
    /// The weights as [`SeparableConv::load`](crate::SeparableConv::load) takes them.
    pub fn view(&self) -> Weights<'_> {
        Weights {
            depthwise: &self.depthwise,
            depthwise_bias: self.depthwise_bias.as_deref(),
            pointwise: &self.pointwise,
            pointwise_bias: self.pointwise_bias.as_deref(),
        }
    }
}

/// Which stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StageName {
    /// The depthwise convolution.
    Depthwise,
    /// The 1x1 convolution.
    Pointwise,
}

impl StageName {
    /// `"depthwise"` or `"pointwise"`.
    pub const fn name(self) -> &'static str {
        match self {
            StageName::Depthwise => "depthwise",
            StageName::Pointwise => "pointwise",
        }
    }
}

/// Converts `weights` for the layer `layer` of shape `shape` (declared with a bias when
/// `declared_bias`): the kernels permuted to dsconv's layout, BatchNorm folded in `f64`.
///
/// # Errors
/// [`Error::Length`] for a kernel or BatchNorm tensor of the wrong length (named in the
/// framework's layout), [`Error::BatchNormWithoutBias`] when a stage has BatchNorm but the
/// layer was declared without `bias = true`, [`Error::InvalidBatchNorm`] for a BatchNorm
/// value that is not finite, or a variance plus `eps` that is not positive. (Lengths of the
/// convolutions' own biases, and finiteness of the result, are checked by `load`.)
pub fn convert(
    layer: &'static str,
    shape: &LayerShape,
    declared_bias: bool,
    weights: &FrameworkWeights<'_>,
) -> Result<Converted, Error> {
    let layout = weights.layout;
    let (k, c, n) = (shape.dk, shape.m * shape.depth_multiplier, shape.n);
    let taps = k * k;
    let dw_dims = layout.depthwise_dims(shape);
    check_length(
        layer,
        Tensor::Kernel(StageName::Depthwise, layout),
        dw_dims.iter().product(),
        Dims::new(&dw_dims),
        weights.depthwise.kernel.len(),
    )?;
    let pw_dims = layout.pointwise_dims(shape);
    check_length(
        layer,
        Tensor::Kernel(StageName::Pointwise, layout),
        pw_dims.iter().product(),
        Dims::new(&pw_dims),
        weights.pointwise.kernel.len(),
    )?;
    check_stage(
        layer,
        StageName::Depthwise,
        c,
        declared_bias,
        &weights.depthwise,
    )?;
    // Permute to (M*DM, 1, k, k). TensorFlow's (k, k, M, DM) and TFLite's (1, k, k, M*DM)
    // hold tap (ky, kx) of channel o = m * DM + j at the same flat index, (ky * k + kx) * C + o.
    let dw_src = weights.depthwise.kernel;
    let depthwise: Vec<f32> = match layout {
        WeightLayout::PyTorch => dw_src.to_vec(),
        WeightLayout::TensorFlow | WeightLayout::TfLite => (0..c * taps)
            .map(|i| {
                let (o, t) = (i / taps, i % taps);
                dw_src[t * c + o]
            })
            .collect(),
    };
    let (depthwise, depthwise_bias) = fold(depthwise, taps, &weights.depthwise);
    let (pointwise, pointwise_bias) =
        convert_pointwise(layer, (c, n), declared_bias, layout, &weights.pointwise)?;
    Ok(Converted {
        depthwise,
        depthwise_bias,
        pointwise,
        pointwise_bias,
    })
}

/// Converts a 1x1 convolution's tensors from `c` to `n` channels (a separable layer's
/// pointwise stage, or a `#[pointwise_conv]` layer declared with a bias when
/// `declared_bias`): the kernel, in `layout`, to `(N, C, 1, 1)`, its BatchNorm folded in
/// `f64`. Returns the kernel and the bias (`None` without a bias or BatchNorm).
///
/// # Errors
/// As [`convert`], for this stage.
pub fn convert_pointwise(
    layer: &'static str,
    (c, n): (usize, usize),
    declared_bias: bool,
    layout: WeightLayout,
    stage: &StageWeights<'_>,
) -> Result<(Vec<f32>, Option<Vec<f32>>), Error> {
    let dims = layout.dims_1x1(c, n);
    check_length(
        layer,
        Tensor::Kernel(StageName::Pointwise, layout),
        n * c,
        Dims::new(&dims),
        stage.kernel.len(),
    )?;
    check_stage(layer, StageName::Pointwise, n, declared_bias, stage)?;
    // Permute to (N, C, 1, 1); TFLite's (N, 1, 1, C) is that already.
    let src = stage.kernel;
    let kernel: Vec<f32> = match layout {
        WeightLayout::PyTorch | WeightLayout::TfLite => src.to_vec(),
        WeightLayout::TensorFlow => (0..n * c)
            .map(|i| {
                let (o, ci) = (i / c, i % c);
                src[ci * n + o]
            })
            .collect(),
    };
    Ok(fold(kernel, c, stage))
}

/// A stage's BatchNorm (allowed only with a declared bias) and, when it has one, the
/// convolution's own bias, which is folded too and so is checked here (`load` only sees the
/// folded one).
fn check_stage(
    layer: &'static str,
    stage: StageName,
    channels: usize,
    declared_bias: bool,
    s: &StageWeights<'_>,
) -> Result<(), Error> {
    if let Some(bn) = &s.batch_norm {
        if !declared_bias {
            return Err(Error::BatchNormWithoutBias { layer, stage });
        }
        check_batch_norm(layer, stage, bn, channels)?;
        if let Some(b) = s.bias {
            let tensor = match stage {
                StageName::Depthwise => Tensor::DepthwiseBias,
                StageName::Pointwise => Tensor::PointwiseBias,
            };
            check_length(layer, tensor, channels, Dims::new(&[channels]), b.len())?;
        }
    }
    Ok(())
}

fn check_batch_norm(
    layer: &'static str,
    stage: StageName,
    bn: &BatchNorm<'_>,
    channels: usize,
) -> Result<(), Error> {
    for (param, values) in [
        (BatchNormParam::Gamma, bn.gamma),
        (BatchNormParam::Beta, bn.beta),
        (BatchNormParam::Mean, bn.mean),
        (BatchNormParam::Variance, bn.variance),
    ] {
        let tensor = Tensor::BatchNorm(stage, param);
        check_length(
            layer,
            tensor,
            channels,
            Dims::new(&[channels]),
            values.len(),
        )?;
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidBatchNorm {
                layer,
                tensor,
                index,
                reason: "is not finite",
            });
        }
    }
    if !bn.eps.is_finite() || bn.eps < 0.0 {
        return Err(Error::InvalidBatchNorm {
            layer,
            tensor: Tensor::BatchNorm(stage, BatchNormParam::Variance),
            index: 0,
            reason: "has an eps that is negative or not finite",
        });
    }
    if let Some(index) = bn.variance.iter().position(|&v| v as f64 + bn.eps <= 0.0) {
        return Err(Error::InvalidBatchNorm {
            layer,
            tensor: Tensor::BatchNorm(stage, BatchNormParam::Variance),
            index,
            reason: "plus eps is not positive",
        });
    }
    Ok(())
}

/// Folds a stage's BatchNorm (if any) into its kernel (`per_channel` values per output
/// channel, in dsconv's layout) and bias, in `f64`; without BatchNorm, the bias as given.
fn fold(
    mut kernel: Vec<f32>,
    per_channel: usize,
    stage: &StageWeights<'_>,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let Some(bn) = &stage.batch_norm else {
        return (kernel, stage.bias.map(<[f32]>::to_vec));
    };
    let bias: Vec<f32> = (0..bn.gamma.len())
        .map(|o| {
            let s = bn.gamma[o] as f64 / (bn.variance[o] as f64 + bn.eps).sqrt();
            for w in &mut kernel[o * per_channel..(o + 1) * per_channel] {
                *w = (*w as f64 * s) as f32;
            }
            // `convert` checked the bias's length.
            let b = stage.bias.map_or(0.0, |b| b[o] as f64);
            ((b - bn.mean[o] as f64) * s + bn.beta[o] as f64) as f32
        })
        .collect();
    (kernel, Some(bias))
}
