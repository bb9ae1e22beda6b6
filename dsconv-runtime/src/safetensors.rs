//! Layers from `.safetensors` files (cargo feature `safetensors`): tensors found by name,
//! checked against the shape the layout gives them, then loaded as
//! [`SeparableConv::load_from`] loads a framework's tensors (BatchNorm folded in `f64`).
//!
//! The default names are those of a PyTorch block
//! `nn.Sequential(Conv2d(M, M*DM, k, groups = M, bias = False), BatchNorm2d, act,
//! Conv2d(M*DM, N, 1, bias = False), BatchNorm2d, act)` ([`TensorNames::pytorch_sequential`]);
//! [`TensorNames::keras`] names a Keras `DepthwiseConv2D` / `Conv2D` pair with their
//! `BatchNormalization`s; every field is public for any other naming.

use crate::frameworks::{BatchNorm, FrameworkWeights, StageWeights, WeightLayout};
use crate::{Dims, Error, PointwiseConv, SeparableConv};
use std::path::Path;

/// The names of one BatchNorm's tensors, and its `eps` (which files do not hold).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormNames {
    /// Gamma (PyTorch `weight`).
    pub gamma: String,
    /// Beta (PyTorch `bias`).
    pub beta: String,
    /// Running (moving) mean.
    pub mean: String,
    /// Running (moving) variance.
    pub variance: String,
    /// Added to the variance: PyTorch's default is `1e-5`, Keras' `1e-3`.
    pub eps: f64,
}

impl BatchNormNames {
    /// PyTorch `BatchNorm2d` at `module` (e.g. `"1"` or `"features.3.1"`), `eps = 1e-5`.
    pub fn pytorch(module: &str) -> Self {
        BatchNormNames {
            gamma: format!("{module}.weight"),
            beta: format!("{module}.bias"),
            mean: format!("{module}.running_mean"),
            variance: format!("{module}.running_var"),
            eps: 1e-5,
        }
    }

    /// Keras `BatchNormalization` named `layer`, `eps = 1e-3`.
    pub fn keras(layer: &str) -> Self {
        BatchNormNames {
            gamma: format!("{layer}/gamma"),
            beta: format!("{layer}/beta"),
            mean: format!("{layer}/moving_mean"),
            variance: format!("{layer}/moving_variance"),
            eps: 1e-3,
        }
    }
}

/// The names of one stage's tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct StageNames {
    /// The kernel.
    pub kernel: String,
    /// The convolution's own bias, if the file has one for this stage.
    pub bias: Option<String>,
    /// The BatchNorm after the convolution, if any.
    pub batch_norm: Option<BatchNormNames>,
}

impl StageNames {
    /// A PyTorch `Conv2d` at `conv` (e.g. `"0"`; `"{conv}.weight"`, no bias) followed by the
    /// `BatchNorm2d` at `bn` (`eps = 1e-5`): a `#[pointwise_conv]` layer's tensors in a
    /// `state_dict`.
    pub fn pytorch_conv_bn(conv: &str, bn: &str) -> Self {
        StageNames {
            kernel: format!("{conv}.weight"),
            bias: None,
            batch_norm: Some(BatchNormNames::pytorch(bn)),
        }
    }

    /// A Keras `Conv2D` named `conv` (`"{conv}/kernel"`, `use_bias = False`) followed by the
    /// `BatchNormalization` named `bn` (`eps = 1e-3`).
    pub fn keras_conv_bn(conv: &str, bn: &str) -> Self {
        StageNames {
            kernel: format!("{conv}/kernel"),
            bias: None,
            batch_norm: Some(BatchNormNames::keras(bn)),
        }
    }
}

impl StageNames {
    /// The same names with the BatchNorm's `eps` (if any) set to `eps`.
    pub fn with_eps(mut self, eps: f64) -> Self {
        if let Some(bn) = &mut self.batch_norm {
            bn.eps = eps;
        }
        self
    }
}

/// The names of a separable layer's tensors in a file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorNames {
    /// The depthwise convolution's.
    pub depthwise: StageNames,
    /// The 1x1 convolution's.
    pub pointwise: StageNames,
}

impl TensorNames {
    /// A PyTorch `nn.Sequential(Conv2d(groups = M, bias = False), BatchNorm2d, act,
    /// Conv2d(1x1, bias = False), BatchNorm2d, act)` whose `state_dict` keys start with
    /// `prefix` (`""` for the block alone, `"features.3."` inside a model): `0.weight`,
    /// `1.weight` / `1.bias` / `1.running_mean` / `1.running_var`, `3.weight`, `4.*`;
    /// BatchNorm `eps = 1e-5`.
    pub fn pytorch_sequential(prefix: &str) -> Self {
        let stage = |conv: usize, bn: usize| StageNames {
            kernel: format!("{prefix}{conv}.weight"),
            bias: None,
            batch_norm: Some(BatchNormNames::pytorch(&format!("{prefix}{bn}"))),
        };
        TensorNames {
            depthwise: stage(0, 1),
            pointwise: stage(3, 4),
        }
    }

    /// Keras layers by name: `DepthwiseConv2D` `dw` (`{dw}/depthwise_kernel`), its
    /// `BatchNormalization` `dw_bn`, `Conv2D` `pw` (`{pw}/kernel`) and `pw_bn`; no conv
    /// biases (`use_bias = False`, as before BatchNorm); `eps = 1e-3`.
    pub fn keras(dw: &str, dw_bn: &str, pw: &str, pw_bn: &str) -> Self {
        TensorNames {
            depthwise: StageNames {
                kernel: format!("{dw}/depthwise_kernel"),
                bias: None,
                batch_norm: Some(BatchNormNames::keras(dw_bn)),
            },
            pointwise: StageNames {
                kernel: format!("{pw}/kernel"),
                bias: None,
                batch_norm: Some(BatchNormNames::keras(pw_bn)),
            },
        }
    }

    /// The same names with every BatchNorm's `eps` set to `eps`.
    pub fn with_eps(self, eps: f64) -> Self {
        TensorNames {
            depthwise: self.depthwise.with_eps(eps),
            pointwise: self.pointwise.with_eps(eps),
        }
    }
}

/// A parsed `.safetensors` buffer.
pub struct WeightFile<'data> {
    tensors: ::safetensors::SafeTensors<'data>,
}

impl<'data> WeightFile<'data> {
    /// Parses the header of a `.safetensors` buffer (the tensors stay where they are).
    ///
    /// # Errors
    /// [`Error::WeightFile`] when `bytes` is not a valid `.safetensors` buffer.
    pub fn parse(bytes: &'data [u8]) -> Result<Self, Error> {
        let tensors =
            ::safetensors::SafeTensors::deserialize(bytes).map_err(|e| Error::WeightFile {
                reason: format!("not a valid .safetensors buffer: {e}"),
            })?;
        Ok(WeightFile { tensors })
    }

    /// The names of every tensor in the file, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names = self.tensors.names();
        names.sort_unstable();
        names
    }

    /// Tensor `name` as `f32`s (from `F32`, or `F64` rounded), checked to have shape
    /// `expected`; errors name `layer`.
    ///
    /// # Errors
    /// [`Error::MissingTensor`], [`Error::TensorShape`], [`Error::TensorDtype`].
    pub fn tensor(
        &self,
        layer: &'static str,
        name: &str,
        expected: &[usize],
    ) -> Result<Vec<f32>, Error> {
        let view = self
            .tensors
            .tensor(name)
            .map_err(|_| Error::MissingTensor {
                layer,
                name: name.to_string(),
            })?;
        if view.shape() != expected {
            return Err(Error::TensorShape {
                layer,
                name: name.to_string(),
                expected: Dims::new(expected),
                actual: view.shape().to_vec(),
            });
        }
        let data = view.data();
        match view.dtype() {
            ::safetensors::Dtype::F32 => Ok(data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            ::safetensors::Dtype::F64 => Ok(data
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8")) as f32)
                .collect()),
            other => Err(Error::TensorDtype {
                layer,
                name: name.to_string(),
                dtype: format!("{other:?}"),
            }),
        }
    }

    /// Loads layer `L` from the tensors `names`, its kernels in `layout`, BatchNorm folded.
    ///
    /// # Errors
    /// Those of [`tensor`](Self::tensor) for each tensor named (kernels checked against the
    /// layout's shape, biases and BatchNorm tensors against `[channels]`), then those of
    /// [`SeparableConv::load_from`].
    pub fn load<L: SeparableConv>(
        &self,
        layout: WeightLayout,
        names: &TensorNames,
    ) -> Result<L, Error> {
        let (c, n) = (L::M * L::DEPTH_MULTIPLIER, L::N);
        let dw = Stage::read(
            self,
            L::NAME,
            &names.depthwise,
            &layout.depthwise_dims(&L::SHAPE),
            c,
        )?;
        let pw = Stage::read(
            self,
            L::NAME,
            &names.pointwise,
            &layout.pointwise_dims(&L::SHAPE),
            n,
        )?;
        L::load_from(&FrameworkWeights {
            layout,
            depthwise: dw.view(),
            pointwise: pw.view(),
        })
    }
}

impl WeightFile<'_> {
    /// Loads the `#[pointwise_conv]` layer `L` from the tensors `names` (its kernel in
    /// `layout`: PyTorch `(N, M, 1, 1)`, TensorFlow `(1, 1, M, N)`, TFLite `(N, 1, 1, M)`),
    /// BatchNorm folded.
    ///
    /// # Errors
    /// As [`load`](Self::load), for the one stage.
    pub fn load_pointwise<L: PointwiseConv>(
        &self,
        layout: WeightLayout,
        names: &StageNames,
    ) -> Result<L, Error> {
        let stage = Stage::read(self, L::NAME, names, &layout.dims_1x1(L::M, L::N), L::N)?;
        L::load_from(layout, &stage.view())
    }
}

/// Reads a whole file, for [`WeightFile::parse`].
///
/// # Errors
/// [`Error::WeightFile`] naming the path and the reason.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<u8>, Error> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|e| Error::WeightFile {
        reason: format!("cannot read {}: {e}", path.display()),
    })
}

/// One stage's tensors read from a file.
struct Stage {
    kernel: Vec<f32>,
    bias: Option<Vec<f32>>,
    batch_norm: Option<([Vec<f32>; 4], f64)>,
}

impl Stage {
    fn read(
        file: &WeightFile<'_>,
        layer: &'static str,
        names: &StageNames,
        kernel_dims: &[usize],
        channels: usize,
    ) -> Result<Stage, Error> {
        let vector = |name: &str| file.tensor(layer, name, &[channels]);
        let kernel = file.tensor(layer, &names.kernel, kernel_dims)?;
        let bias = names.bias.as_deref().map(vector).transpose()?;
        let batch_norm = match &names.batch_norm {
            Some(bn) => Some((
                [
                    vector(&bn.gamma)?,
                    vector(&bn.beta)?,
                    vector(&bn.mean)?,
                    vector(&bn.variance)?,
                ],
                bn.eps,
            )),
            None => None,
        };
        Ok(Stage {
            kernel,
            bias,
            batch_norm,
        })
    }

    fn view(&self) -> StageWeights<'_> {
        StageWeights {
            kernel: &self.kernel,
            bias: self.bias.as_deref(),
            batch_norm: self
                .batch_norm
                .as_ref()
                .map(|([gamma, beta, mean, variance], eps)| BatchNorm {
                    gamma,
                    beta,
                    mean,
                    variance,
                    eps: *eps,
                }),
        }
    }
}
