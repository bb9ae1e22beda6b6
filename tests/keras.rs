//! Checked against TensorFlow, not against ourselves: single Keras layers
//! (`DepthwiseConv2D` with its activation, then a 1x1 `Conv2D` with its activation), their
//! inputs, weights and outputs as Keras computed them, written by `scripts/keras_cases.py`
//! into `tests/keras/*.txt`. Each case is declared here with the attribute a Keras user
//! would write, its weights converted from the Keras layouts (depthwise `(k, k, M, DM)`,
//! pointwise `(1, 1, M*DM, N)`) to dsconv's, and run on every backend; the output must match
//! Keras' within the tolerance rule of `dsconv_testkit::assert_close` (both sides round, so
//! the rule's factor 2 covers the two), and so must dsconv's own f64 reference.

use dsconv::{separable_conv, Backend, SeparableConv, Weights};
use dsconv_testkit::{activation_terms, assert_close, oracle, OwnedWeights};
use std::collections::HashMap;

#[separable_conv(
    dk = 3,
    m = 4,
    n = 8,
    stride = 2,
    padding = "same_upper",
    bias = true,
    dw_activation = "relu6"
)]
struct K3S2SameEven;
#[separable_conv(
    dk = 3,
    m = 4,
    n = 8,
    stride = 2,
    padding = "same_upper",
    bias = true,
    activation = "relu"
)]
struct K3S2SameOdd;
#[separable_conv(
    dk = 5,
    m = 3,
    n = 6,
    stride = 2,
    padding = "same_upper",
    bias = true,
    dw_activation = "hardswish"
)]
struct K5S2SameRect;
#[separable_conv(
    dk = 3,
    m = 4,
    n = 8,
    dilation = 2,
    padding = "same_upper",
    bias = true,
    activation = "relu6"
)]
struct K3D2Same;
#[separable_conv(
    dk = 3,
    m = 3,
    n = 8,
    depth_multiplier = 2,
    padding = "same_upper",
    bias = true,
    activation = "silu"
)]
struct K3Dm2Silu;
#[separable_conv(
    dk = 3,
    m = 4,
    n = 4,
    padding = "valid",
    bias = true,
    activation = "hardswish"
)]
struct K3ValidHswish;
#[separable_conv(
    dk = 4,
    m = 4,
    n = 4,
    padding = "same_upper",
    bias = true,
    pw_activation = "silu"
)]
struct K4SameEvenKernel;
#[separable_conv(dk = 3, m = 4, n = 8, stride = 2, padding = [0, 0, 1, 1], bias = true, activation = "relu6")]
struct K3S2Zeropad;
#[separable_conv(
    dk = 3,
    m = 4,
    n = 8,
    dilation = 2,
    padding = "valid",
    bias = true,
    pw_activation = "relu"
)]
struct K3D2Valid;
#[separable_conv(
    dk = 3,
    m = 2,
    n = 4,
    depth_multiplier = 2,
    stride = 2,
    padding = "same_upper",
    bias = true,
    dw_activation = "relu6"
)]
struct K3S2SameEvenDm2;

/// One case file: `key value...` lines.
struct Case {
    fields: HashMap<String, Vec<String>>,
}

impl Case {
    fn load(name: &str) -> Case {
        let path = format!("{}/tests/keras/{name}.txt", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let fields = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let mut words = l.split_whitespace().map(str::to_string);
                let key = words.next().expect("a key");
                (key, words.collect())
            })
            .collect();
        Case { fields }
    }

    fn text(&self, key: &str) -> &str {
        &self.fields[key][0]
    }

    fn int(&self, key: &str) -> usize {
        self.text(key).parse().expect(key)
    }

    fn floats(&self, key: &str) -> Vec<f32> {
        self.fields[key]
            .iter()
            .map(|v| v.parse().expect(key))
            .collect()
    }
}

/// The case's weights in dsconv's (PyTorch) layouts, checked against the layer's shape.
fn weights<L: SeparableConv>(case: &Case) -> OwnedWeights {
    let (k, m, dm, n) = (case.int("dk"), case.int("m"), case.int("dm"), case.int("n"));
    assert_eq!(
        (k, m, dm, n),
        (L::DK, L::M, L::DEPTH_MULTIPLIER, L::N),
        "declared shape"
    );
    assert_eq!(case.int("stride"), L::SHAPE.stride, "declared stride");
    assert_eq!(case.int("dilation"), L::SHAPE.dilation, "declared dilation");
    let c = m * dm;
    // Keras (k, k, M, DM) -> (M*DM, 1, k, k): output channel c*DM + j, tap (ky, kx).
    let keras_dw = case.floats("dw_kernel");
    let mut dw = vec![0.0; c * k * k];
    for ky in 0..k {
        for kx in 0..k {
            for ci in 0..m {
                for j in 0..dm {
                    dw[((ci * dm + j) * k + ky) * k + kx] =
                        keras_dw[((ky * k + kx) * m + ci) * dm + j];
                }
            }
        }
    }
    // Keras (1, 1, M*DM, N) -> (N, M*DM).
    let keras_pw = case.floats("pw_kernel");
    let mut pw = vec![0.0; n * c];
    for i in 0..c {
        for o in 0..n {
            pw[o * c + i] = keras_pw[i * n + o];
        }
    }
    OwnedWeights {
        depthwise: dw,
        depthwise_bias: Some(case.floats("dw_bias")),
        pointwise: pw,
        pointwise_bias: Some(case.floats("pw_bias")),
    }
}

fn check<L: SeparableConv>(name: &str, backend: Backend) {
    let case = Case::load(name);
    assert_eq!(
        case.text("dw_activation"),
        L::DW_ACTIVATION.name(),
        "{name}"
    );
    assert_eq!(
        case.text("pw_activation"),
        L::PW_ACTIVATION.name(),
        "{name}"
    );
    let weights = weights::<L>(&case);
    let (h, w) = (case.int("h"), case.int("w"));
    assert_eq!(
        L::output_size(h, w),
        (case.int("ho"), case.int("wo")),
        "{name}: output size"
    );
    let input = case.floats("input");
    let keras: Vec<f64> = case.floats("output").iter().map(|&v| v as f64).collect();
    let layer = L::load(&Weights {
        depthwise: &weights.depthwise,
        depthwise_bias: weights.depthwise_bias.as_deref(),
        pointwise: &weights.pointwise,
        pointwise_bias: weights.pointwise_bias.as_deref(),
    })
    .unwrap();
    let mut out = vec![f32::NAN; keras.len()];
    layer.forward_on(backend, &input, h, w, &mut out).unwrap();
    let (exact, magnitude) = oracle(&L::SHAPE, L::ACTIVATIONS, &input, h, w, &weights);
    let terms = activation_terms(
        activation_terms(L::DK * L::DK, L::DW_ACTIVATION) + L::M * L::DEPTH_MULTIPLIER,
        L::PW_ACTIVATION,
    );
    assert_close(
        &format!("{name} on {backend} vs Keras"),
        &out,
        &keras,
        &magnitude,
        terms,
    )
    .unwrap();
    // The reference agrees with Keras too (its padding rules are written out on their own).
    let reference: Vec<f32> = exact.iter().map(|&v| v as f32).collect();
    assert_close(
        &format!("{name}: reference vs Keras"),
        &reference,
        &keras,
        &magnitude,
        terms,
    )
    .unwrap();
}

macro_rules! cases {
    ($($file:literal => $layer:ident),* $(,)?) => {
        fn main() {
            let mut args = dsconv_testkit::libtest_mimic::Arguments::from_args();
            args.test_threads = Some(1);
            let mut trials = Vec::new();
            for backend in Backend::ALL {
                $(
                    trials.push(dsconv_testkit::backend_trial(backend, $file, |b| {
                        check::<$layer>($file, b);
                        Ok(())
                    }));
                )*
            }
            dsconv_testkit::libtest_mimic::run(&args, trials).exit();
        }
    };
}

cases! {
    "k3_s2_same_even" => K3S2SameEven,
    "k3_s2_same_odd" => K3S2SameOdd,
    "k5_s2_same_rect" => K5S2SameRect,
    "k3_d2_same" => K3D2Same,
    "k3_dm2_silu" => K3Dm2Silu,
    "k3_valid_hswish" => K3ValidHswish,
    "k4_same_even_kernel" => K4SameEvenKernel,
    "k3_s2_zeropad" => K3S2Zeropad,
    "k3_d2_valid" => K3D2Valid,
    "k3_s2_same_even_dm2" => K3S2SameEvenDm2,
}
