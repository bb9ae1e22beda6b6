//! Layers from `.safetensors` buffers and files (cargo feature `safetensors`). The files are
//! written here byte by byte (8-byte header length, JSON header, little-endian data), not by
//! the crate that reads them. A layer loaded by name gives, bit for bit, the layer
//! `load_from` gives from the same tensors; every mistake is an `Err` naming the tensor.

use dsconv::safetensors::{self, StageNames, TensorNames, WeightFile};
use dsconv::{
    pointwise_conv, separable_conv, Backend, BatchNorm, Dims, Error, FrameworkWeights,
    PointwiseConv, SeparableConv, StageWeights, WeightLayout,
};
use dsconv_testkit::layouts::{depthwise_as, pointwise_as};
use dsconv_testkit::{lcg_values, values, OwnedWeights};

#[separable_conv(
    dk = 3,
    m = 3,
    n = 5,
    depth_multiplier = 2,
    stride = 2,
    bias = true,
    activation = "relu6"
)]
struct Block;

#[separable_conv(dk = 3, m = 4, n = 6, bias = true)]
struct Plain;

#[pointwise_conv(m = 6, n = 10, bias = true, activation = "relu6")]
struct Expand;

/// A tensor to write: name, dtype, shape, little-endian bytes.
struct Entry {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn f32s(name: &str, shape: &[usize], v: &[f32]) -> Entry {
    assert_eq!(shape.iter().product::<usize>(), v.len(), "{name}");
    Entry {
        name: name.into(),
        dtype: "F32",
        shape: shape.to_vec(),
        bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn f64s(name: &str, shape: &[usize], v: &[f32]) -> Entry {
    Entry {
        dtype: "F64",
        bytes: v.iter().flat_map(|&x| (x as f64).to_le_bytes()).collect(),
        ..f32s(name, shape, v)
    }
}

/// The safetensors format: `u64` header length, a JSON object of
/// `name: {dtype, shape, data_offsets}`, then the data.
fn write(entries: &[Entry]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut offset = 0;
    for (i, e) in entries.iter().enumerate() {
        let shape: Vec<String> = e.shape.iter().map(|d| d.to_string()).collect();
        header += &format!(
            "{}\"{}\":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            if i > 0 { "," } else { "" },
            e.name,
            e.dtype,
            shape.join(","),
            offset,
            offset + e.bytes.len()
        );
        offset += e.bytes.len();
    }
    header += "}";
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    for e in entries {
        out.extend_from_slice(&e.bytes);
    }
    out
}

struct Bn([Vec<f32>; 4]);

impl Bn {
    fn new(c: usize, seed: u32) -> Bn {
        let positive = lcg_values(c, seed + 3, 1.0)
            .iter()
            .map(|x| 0.5 + x.abs())
            .collect();
        Bn([
            lcg_values(c, seed, 1.5),
            values(c, seed + 1),
            values(c, seed + 2),
            positive,
        ])
    }

    fn view(&self, eps: f64) -> BatchNorm<'_> {
        let [gamma, beta, mean, variance] = &self.0;
        BatchNorm {
            gamma,
            beta,
            mean,
            variance,
            eps,
        }
    }

    fn entries(
        &self,
        names: [String; 4],
        dtype: fn(&str, &[usize], &[f32]) -> Entry,
    ) -> Vec<Entry> {
        names
            .iter()
            .zip(&self.0)
            .map(|(n, v)| dtype(n, &[v.len()], v))
            .collect()
    }
}

fn outputs<L: SeparableConv>(layer: &L) -> Vec<Vec<f32>> {
    let (h, w) = (9, 8);
    let input = values(h * w * L::M, 17);
    let (ho, wo) = L::output_size(h, w);
    Backend::available()
        .into_iter()
        .map(|b| {
            let mut out = vec![f32::NAN; ho * wo * L::N];
            layer.forward_on(b, &input, h, w, &mut out).unwrap();
            out
        })
        .collect()
}

/// A PyTorch `nn.Sequential(Conv2d, BatchNorm2d, ReLU6, Conv2d, BatchNorm2d, ReLU6)` block
/// inside a model (`features.3.`), beside other tensors.
fn pytorch_file(prefix: &str) -> (Vec<u8>, Block) {
    let w = OwnedWeights::for_layer::<Block>(3);
    let (c, n) = (6, 5);
    let (dw_bn, pw_bn) = (Bn::new(c, 10), Bn::new(n, 20));
    let bn_names = |m: usize| {
        ["weight", "bias", "running_mean", "running_var"].map(|t| format!("{prefix}{m}.{t}"))
    };
    let mut entries = vec![
        f32s("features.0.weight", &[2, 2], &[1.0, 2.0, 3.0, 4.0]),
        f32s(&format!("{prefix}0.weight"), &[c, 1, 3, 3], &w.depthwise),
        f32s(&format!("{prefix}3.weight"), &[n, c, 1, 1], &w.pointwise),
    ];
    entries.extend(dw_bn.entries(bn_names(1), f32s));
    entries.extend(pw_bn.entries(bn_names(4), f32s));
    let expected = Block::load_from(&FrameworkWeights {
        layout: WeightLayout::PyTorch,
        depthwise: StageWeights {
            kernel: &w.depthwise,
            bias: None,
            batch_norm: Some(dw_bn.view(1e-5)),
        },
        pointwise: StageWeights {
            kernel: &w.pointwise,
            bias: None,
            batch_norm: Some(pw_bn.view(1e-5)),
        },
    })
    .unwrap();
    (write(&entries), expected)
}

fn pytorch_names_by_default() {
    for prefix in ["", "features.3."] {
        let (bytes, expected) = pytorch_file(prefix);
        let file = WeightFile::parse(&bytes).unwrap();
        let layer: Block = file
            .load(
                WeightLayout::PyTorch,
                &TensorNames::pytorch_sequential(prefix),
            )
            .unwrap();
        assert_eq!(outputs(&layer), outputs(&expected), "prefix {prefix:?}");
        // eps is the caller's: Keras' 1e-3 in place of PyTorch's 1e-5 gives another layer.
        let other: Block = file
            .load(
                WeightLayout::PyTorch,
                &TensorNames::pytorch_sequential(prefix).with_eps(1e-3),
            )
            .unwrap();
        assert_ne!(outputs(&other), outputs(&expected));
    }
}

/// Keras names in the TensorFlow layout, BatchNorm stored as F64, through a file on disk.
fn keras_names_tensorflow_layout_from_a_file() {
    let w = OwnedWeights::for_layer::<Block>(7);
    let (c, n) = (6, 5);
    let (dw_bn, pw_bn) = (Bn::new(c, 30), Bn::new(n, 40));
    let tf_dw = depthwise_as(WeightLayout::TensorFlow, &w.depthwise, 3, 3, 2);
    let tf_pw = pointwise_as(WeightLayout::TensorFlow, &w.pointwise, c, n);
    let bn_names =
        |l: &str| ["gamma", "beta", "moving_mean", "moving_variance"].map(|t| format!("{l}/{t}"));
    let mut entries = vec![
        f32s("conv_dw_2/depthwise_kernel", &[3, 3, 3, 2], &tf_dw),
        f32s("conv_pw_2/kernel", &[1, 1, c, n], &tf_pw),
    ];
    entries.extend(dw_bn.entries(bn_names("conv_dw_2_bn"), f64s));
    entries.extend(pw_bn.entries(bn_names("conv_pw_2_bn"), f64s));
    let path = std::env::temp_dir().join(format!("dsconv-test-{}.safetensors", std::process::id()));
    std::fs::write(&path, write(&entries)).unwrap();
    let bytes = safetensors::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let names = TensorNames::keras("conv_dw_2", "conv_dw_2_bn", "conv_pw_2", "conv_pw_2_bn");
    let layer: Block = WeightFile::parse(&bytes)
        .unwrap()
        .load(WeightLayout::TensorFlow, &names)
        .unwrap();
    let expected = Block::load_from(&FrameworkWeights {
        layout: WeightLayout::TensorFlow,
        depthwise: StageWeights {
            kernel: &tf_dw,
            bias: None,
            batch_norm: Some(dw_bn.view(1e-3)),
        },
        pointwise: StageWeights {
            kernel: &tf_pw,
            bias: None,
            batch_norm: Some(pw_bn.view(1e-3)),
        },
    })
    .unwrap();
    assert_eq!(outputs(&layer), outputs(&expected));
}

/// Names of a plain block without BatchNorm, set field by field: the convs' own biases.
fn custom_names_with_conv_biases() {
    let w = OwnedWeights::for_layer::<Plain>(11);
    let bytes = write(&[
        f32s("dw.w", &[4, 1, 3, 3], &w.depthwise),
        f32s("dw.b", &[4], w.depthwise_bias.as_ref().unwrap()),
        f32s("pw.w", &[6, 4, 1, 1], &w.pointwise),
        f32s("pw.b", &[6], w.pointwise_bias.as_ref().unwrap()),
    ]);
    let stage = |k: &str, b: &str| StageNames {
        kernel: k.into(),
        bias: Some(b.into()),
        batch_norm: None,
    };
    let names = TensorNames {
        depthwise: stage("dw.w", "dw.b"),
        pointwise: stage("pw.w", "pw.b"),
    };
    let file = WeightFile::parse(&bytes).unwrap();
    assert_eq!(file.names(), ["dw.b", "dw.w", "pw.b", "pw.w"]);
    let layer: Plain = file.load(WeightLayout::PyTorch, &names).unwrap();
    let expected = Plain::load(&w.view()).unwrap();
    assert_eq!(outputs(&layer), outputs(&expected));
}

/// A 1x1 layer by its PyTorch and its Keras names: both give the layer `load_from` gives
/// from the same tensors (PyTorch layout), bit for bit.
fn pointwise_layers_by_name() {
    let (c, n) = (6, 10);
    let kernel = values(n * c, 51);
    let bn = Bn::new(n, 60);
    let mut entries = vec![f32s("features.1.0.weight", &[n, c, 1, 1], &kernel)];
    let names =
        ["weight", "bias", "running_mean", "running_var"].map(|t| format!("features.1.1.{t}"));
    entries.extend(bn.entries(names, f32s));
    let tf_kernel = pointwise_as(WeightLayout::TensorFlow, &kernel, c, n);
    entries.push(f32s("expand/kernel", &[1, 1, c, n], &tf_kernel));
    let names =
        ["gamma", "beta", "moving_mean", "moving_variance"].map(|t| format!("expand_bn/{t}"));
    entries.extend(bn.entries(names, f32s));
    let bytes = write(&entries);
    let file = WeightFile::parse(&bytes).unwrap();
    let expected = Expand::load_from(
        WeightLayout::PyTorch,
        &StageWeights {
            kernel: &kernel,
            bias: None,
            batch_norm: Some(bn.view(1e-5)),
        },
    )
    .unwrap();
    let from_pytorch: Expand = file
        .load_pointwise(
            WeightLayout::PyTorch,
            &StageNames::pytorch_conv_bn("features.1.0", "features.1.1"),
        )
        .unwrap();
    let from_keras: Expand = file
        .load_pointwise(
            WeightLayout::TensorFlow,
            &StageNames::keras_conv_bn("expand", "expand_bn").with_eps(1e-5),
        )
        .unwrap();
    let run = |l: &Expand| {
        let input = values(5 * 7 * c, 3);
        Backend::available()
            .into_iter()
            .map(|b| {
                let mut out = vec![f32::NAN; 5 * 7 * n];
                l.forward_on(b, &input, 5, 7, &mut out).unwrap();
                out
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(&from_pytorch), run(&expected));
    assert_eq!(run(&from_keras), run(&expected));
    // The Keras kernel named as PyTorch's: the shape check catches it.
    let err = file
        .load_pointwise::<Expand>(
            WeightLayout::PyTorch,
            &StageNames::keras_conv_bn("expand", "expand_bn"),
        )
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::TensorShape { ref name, .. } if name == "expand/kernel"),
        "{err:?}"
    );
}

fn mistakes_are_errors_naming_the_tensor() {
    let (bytes, _) = pytorch_file("");
    let file = WeightFile::parse(&bytes).unwrap();
    let names = TensorNames::pytorch_sequential("");

    let mut missing = names.clone();
    missing.pointwise.batch_norm.as_mut().unwrap().variance = "4.running_variance".into();
    let err = file
        .load::<Block>(WeightLayout::PyTorch, &missing)
        .unwrap_err();
    assert_eq!(
        err,
        Error::MissingTensor {
            layer: "Block",
            name: "4.running_variance".into()
        }
    );
    assert!(
        err.to_string()
            .contains("\"4.running_variance\" is missing"),
        "{err}"
    );

    // The file holds PyTorch's (6, 1, 3, 3); TensorFlow's layout needs (3, 3, 3, 2).
    let err = file
        .load::<Block>(WeightLayout::TensorFlow, &names)
        .unwrap_err();
    assert_eq!(
        err,
        Error::TensorShape {
            layer: "Block",
            name: "0.weight".into(),
            expected: Dims::new(&[3, 3, 3, 2]),
            actual: vec![6, 1, 3, 3]
        }
    );
    assert!(
        err.to_string()
            .contains("expected [3, 3, 3, 2], got [6, 1, 3, 3]"),
        "{err}"
    );

    // A BatchNorm vector of the wrong length is a shape error too.
    let mut short = names.clone();
    short.depthwise.batch_norm.as_mut().unwrap().gamma = "4.weight".into();
    let err = file
        .load::<Block>(WeightLayout::PyTorch, &short)
        .unwrap_err();
    assert!(
        matches!(err, Error::TensorShape { ref name, .. } if name == "4.weight"),
        "{err:?}"
    );

    // Half precision is not read.
    let half = write(&[Entry {
        name: "0.weight".into(),
        dtype: "F16",
        shape: vec![6, 1, 3, 3],
        bytes: vec![0; 6 * 9 * 2],
    }]);
    let err = WeightFile::parse(&half)
        .unwrap()
        .load::<Block>(WeightLayout::PyTorch, &names)
        .unwrap_err();
    assert_eq!(
        err,
        Error::TensorDtype {
            layer: "Block",
            name: "0.weight".into(),
            dtype: "F16".into()
        }
    );

    // Not a safetensors buffer at all; a file that is not there.
    for bad in [&b"not a weight file"[..], &bytes[..bytes.len() - 1], &[]] {
        let err = WeightFile::parse(bad).err().expect("parse must fail");
        assert!(matches!(err, Error::WeightFile { .. }), "{err:?}");
    }
    let err = safetensors::read("/nonexistent/dsconv.safetensors").unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/dsconv.safetensors"),
        "{err}"
    );
}

fn main() {
    dsconv_testkit::run_tests(
        dsconv_testkit::tests![
            pytorch_names_by_default,
            keras_names_tensorflow_layout_from_a_file,
            custom_names_with_conv_biases,
            pointwise_layers_by_name,
            mistakes_are_errors_naming_the_tensor
        ],
        &[],
    );
}
