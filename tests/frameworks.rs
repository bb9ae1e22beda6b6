//! Loading from a framework's tensors (`SeparableConv::load_from`): the TensorFlow/Keras
//! and TFLite layouts give the very layer the PyTorch layout gives (bit for bit), BatchNorm
//! after either stage folds into the weights and biases (checked against the stages run
//! unfolded in f64), and every mistake is an `Err` naming the tensor.

use dsconv::reference::{self, activate};
use dsconv::{
    separable_conv, Backend, BatchNorm, BatchNormParam, Error, FrameworkWeights, SeparableConv,
    StageName, StageWeights, Tensor, WeightLayout,
};
use dsconv_testkit::layouts::{depthwise_as, pointwise_as};
use dsconv_testkit::{activation_terms, assert_close, lcg_values, values, OwnedWeights};

#[separable_conv(
    dk = 3,
    m = 3,
    n = 5,
    depth_multiplier = 2,
    stride = 2,
    bias = true,
    dw_activation = "relu6",
    pw_activation = "silu"
)]
struct Block;

#[separable_conv(dk = 3, m = 4, n = 6)]
struct NoBias;

fn stage<'a>(
    kernel: &'a [f32],
    bias: Option<&'a [f32]>,
    bn: Option<BatchNorm<'a>>,
) -> StageWeights<'a> {
    StageWeights {
        kernel,
        bias,
        batch_norm: bn,
    }
}

fn layouts_give_the_same_layer() {
    let w = OwnedWeights::for_layer::<Block>(5);
    let pytorch = Block::load(&w.view()).unwrap();
    let (h, wd) = (9, 8);
    let input = values(h * wd * Block::M, 3);
    let (ho, wo) = Block::output_size(h, wd);
    let mut expected = vec![0.0; ho * wo * Block::N];
    pytorch
        .forward_on(Backend::Scalar, &input, h, wd, &mut expected)
        .unwrap();
    let (k, m, dm, n) = (3, 3, 2, 5);
    for layout in [
        WeightLayout::PyTorch,
        WeightLayout::TensorFlow,
        WeightLayout::TfLite,
    ] {
        let dw = depthwise_as(layout, &w.depthwise, k, m, dm);
        let pw = pointwise_as(layout, &w.pointwise, m * dm, n);
        let fw = FrameworkWeights {
            layout,
            depthwise: stage(&dw, w.depthwise_bias.as_deref(), None),
            pointwise: stage(&pw, w.pointwise_bias.as_deref(), None),
        };
        let layer = Block::load_from(&fw).unwrap();
        for backend in Backend::available() {
            let mut out = vec![f32::NAN; expected.len()];
            let mut base = vec![f32::NAN; expected.len()];
            layer.forward_on(backend, &input, h, wd, &mut out).unwrap();
            pytorch
                .forward_on(backend, &input, h, wd, &mut base)
                .unwrap();
            assert_eq!(out, base, "{layout:?} on {backend}");
        }
        // Given as PyTorch, a TensorFlow kernel (same length) loads and computes something
        // else: the layout must be stated, as the API makes the caller do.
        if layout == WeightLayout::TensorFlow {
            let wrong = FrameworkWeights {
                layout: WeightLayout::PyTorch,
                ..fw
            };
            let mut out = vec![0.0; expected.len()];
            Block::load_from(&wrong)
                .unwrap()
                .forward_on(Backend::Scalar, &input, h, wd, &mut out)
                .unwrap();
            assert_ne!(out, expected);
        }
    }
}

struct Bn {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    mean: Vec<f32>,
    variance: Vec<f32>,
    eps: f64,
}

impl Bn {
    fn new(channels: usize, seed: u32, eps: f64) -> Bn {
        let v = |s, scale| lcg_values(channels, seed * 10 + s, scale);
        Bn {
            gamma: v(1, 2.0),
            beta: v(2, 1.0),
            mean: v(3, 0.5),
            variance: v(4, 1.0).iter().map(|x| x.abs() + 0.05).collect(),
            eps,
        }
    }

    fn view(&self) -> BatchNorm<'_> {
        BatchNorm {
            gamma: &self.gamma,
            beta: &self.beta,
            mean: &self.mean,
            variance: &self.variance,
            eps: self.eps,
        }
    }

    /// `|gamma| * (x + |mean|) / sqrt(variance + eps) + |beta|`: the bound of `apply` on a
    /// magnitude `x`.
    fn apply_abs(&self, x: &mut [f64]) {
        let c = self.gamma.len();
        for (i, v) in x.iter_mut().enumerate() {
            let o = i % c;
            *v = (self.gamma[o] as f64).abs() * (*v + (self.mean[o] as f64).abs())
                / (self.variance[o] as f64 + self.eps).sqrt()
                + (self.beta[o] as f64).abs();
        }
    }

    /// `gamma * (x - mean) / sqrt(variance + eps) + beta` on HWC values, in f64.
    fn apply(&self, x: &mut [f64]) {
        let c = self.gamma.len();
        for (i, v) in x.iter_mut().enumerate() {
            let o = i % c;
            *v = self.gamma[o] as f64 * (*v - self.mean[o] as f64)
                / (self.variance[o] as f64 + self.eps).sqrt()
                + self.beta[o] as f64;
        }
    }
}

fn batch_norm_folds_into_each_stage() {
    let w = OwnedWeights::for_layer::<Block>(7);
    let c = Block::M * Block::DEPTH_MULTIPLIER;
    // Keras' eps on one stage, PyTorch's on the other; the depthwise convolution without its
    // own bias (as before a BatchNorm), the pointwise one with.
    let (bn_dw, bn_pw) = (Bn::new(c, 1, 1e-3), Bn::new(Block::N, 2, 1e-5));
    let fw = FrameworkWeights {
        layout: WeightLayout::PyTorch,
        depthwise: stage(&w.depthwise, None, Some(bn_dw.view())),
        pointwise: stage(
            &w.pointwise,
            w.pointwise_bias.as_deref(),
            Some(bn_pw.view()),
        ),
    };
    let layer = Block::load_from(&fw).unwrap();
    let (h, wd) = (10, 7);
    let input = values(h * wd * Block::M, 9);
    // The stages unfolded, in f64: conv, BatchNorm, activation, for each.
    let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (mut mid, ho, wo) = reference::depthwise(
        &Block::SHAPE,
        dsconv::Activation::None,
        &wide(&input),
        h,
        wd,
        &wide(&w.depthwise),
        None,
    );
    bn_dw.apply(&mut mid);
    let mid: Vec<f64> = mid
        .iter()
        .map(|&x| activate(x, Block::DW_ACTIVATION))
        .collect();
    let pwb = wide(w.pointwise_bias.as_deref().unwrap());
    let mut out = reference::pointwise(
        dsconv::Activation::None,
        &mid,
        ho * wo,
        c,
        Block::N,
        &wide(&w.pointwise),
        Some(&pwb),
    );
    bn_pw.apply(&mut out);
    let exact: Vec<f64> = out
        .iter()
        .map(|&x| activate(x, Block::PW_ACTIVATION))
        .collect();
    // The magnitude bound: the same stages on absolute values, each BatchNorm as
    // `|s| * (x + |mean|) + |beta|` (which bounds every partial sum of the folded layer).
    let abs = |v: &[f32]| v.iter().map(|&x| (x as f64).abs()).collect::<Vec<f64>>();
    let (mut mag_mid, _, _) = reference::depthwise(
        &Block::SHAPE,
        dsconv::Activation::None,
        &abs(&input),
        h,
        wd,
        &abs(&w.depthwise),
        None,
    );
    bn_dw.apply_abs(&mut mag_mid);
    let mut magnitude = reference::pointwise(
        dsconv::Activation::None,
        &mag_mid,
        ho * wo,
        c,
        Block::N,
        &abs(&w.pointwise),
        Some(&abs(w.pointwise_bias.as_deref().unwrap())),
    );
    bn_pw.apply_abs(&mut magnitude);
    let terms = activation_terms(
        activation_terms(9, Block::DW_ACTIVATION) + c,
        Block::PW_ACTIVATION,
    );
    for backend in Backend::available() {
        let mut got = vec![f32::NAN; exact.len()];
        layer.forward_on(backend, &input, h, wd, &mut got).unwrap();
        // Folding rounds each weight and bias once more: 4 more terms of the rule.
        assert_close(
            &format!("folded on {backend}"),
            &got,
            &exact,
            &magnitude,
            terms + 4,
        )
        .unwrap();
    }
}

fn mistakes_are_errors_naming_the_tensor() {
    let w = OwnedWeights::for_layer::<NoBias>(3);
    let bn = Bn::new(4, 1, 1e-5);
    // BatchNorm on a layer without bias.
    let fw = FrameworkWeights {
        layout: WeightLayout::PyTorch,
        depthwise: stage(&w.depthwise, None, Some(bn.view())),
        pointwise: stage(&w.pointwise, None, None),
    };
    let e = NoBias::load_from(&fw).unwrap_err();
    assert_eq!(
        e,
        Error::BatchNormWithoutBias {
            layer: "NoBias",
            stage: StageName::Depthwise
        }
    );
    assert!(e.to_string().contains("`bias = true`"), "{e}");
    // A kernel of the wrong length, named in its layout.
    let short = &w.depthwise[1..];
    let fw = FrameworkWeights {
        layout: WeightLayout::TensorFlow,
        depthwise: stage(short, None, None),
        pointwise: stage(&w.pointwise, None, None),
    };
    let e = NoBias::load_from(&fw).unwrap_err();
    assert_eq!(
        e.to_string(),
        "layer NoBias: depthwise kernel (TensorFlow layout) has the wrong length: expected 36 \
         values (shape [3, 3, 4, 1] as (DK, DK, M, DM)), got 35"
    );
    // BatchNorm tensors: a wrong length, a NaN, a negative variance.
    let w = OwnedWeights::for_layer::<Block>(3);
    let c = Block::M * Block::DEPTH_MULTIPLIER;
    let mut bad = Bn::new(c, 4, 1e-3);
    bad.mean.pop();
    let load = |bn: &Bn| {
        Block::load_from(&FrameworkWeights {
            layout: WeightLayout::PyTorch,
            depthwise: stage(&w.depthwise, None, Some(bn.view())),
            pointwise: stage(&w.pointwise, w.pointwise_bias.as_deref(), None),
        })
    };
    let e = load(&bad).unwrap_err();
    assert!(matches!(
        e,
        Error::Length {
            tensor: Tensor::BatchNorm(StageName::Depthwise, BatchNormParam::Mean),
            expected: 6,
            actual: 5,
            ..
        }
    ));
    let mut bad = Bn::new(c, 4, 1e-3);
    bad.gamma[2] = f32::NAN;
    assert!(load(&bad)
        .unwrap_err()
        .to_string()
        .contains("depthwise BatchNorm gamma at index 2 is not finite"));
    let mut bad = Bn::new(c, 4, 1e-3);
    bad.variance[4] = -1.0;
    assert!(load(&bad)
        .unwrap_err()
        .to_string()
        .contains("depthwise BatchNorm running variance at index 4 plus eps is not positive"));
    // The convolution's own bias is checked even though it is folded.
    let good = Bn::new(c, 4, 1e-3);
    let e = Block::load_from(&FrameworkWeights {
        layout: WeightLayout::PyTorch,
        depthwise: stage(&w.depthwise, Some(&[1.0; 5]), Some(good.view())),
        pointwise: stage(&w.pointwise, w.pointwise_bias.as_deref(), None),
    })
    .unwrap_err();
    assert!(matches!(
        e,
        Error::Length {
            tensor: Tensor::DepthwiseBias,
            expected: 6,
            actual: 5,
            ..
        }
    ));
}

fn main() {
    dsconv_testkit::run_tests(
        dsconv_testkit::tests![
            layouts_give_the_same_layer,
            batch_norm_folds_into_each_stage,
            mistakes_are_errors_naming_the_tensor
        ],
        &[],
    );
}
