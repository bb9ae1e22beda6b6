//! Checked against TensorFlow, not against ourselves: the 13 separable blocks of Keras'
//! `MobileNet(alpha = 0.25, input_shape = (128, 128, 3))` with random weights and BatchNorm
//! statistics, as `scripts/keras_mobilenet.py` wrote them (TensorFlow layout, BatchNorm
//! unfolded, with the input of the first block and every block's output as Keras computed
//! them) into `tests/keras/mobilenet_025_128.safetensors`.
//!
//! Each block is loaded from the file by its Keras names (`load` with the TensorFlow layout
//! folds each BatchNorm in f64) and run, on every backend, on Keras' own input of that
//! block; its output must match Keras' within the tolerance rule of
//! `dsconv_testkit::assert_close`. The exact values and the magnitudes the rule scales by
//! come from an f64 computation written here the way Keras computes a block — depthwise
//! convolution, BatchNorm unfolded, ReLU6, 1x1 convolution, BatchNorm, ReLU6 — reading the
//! kernels in their TensorFlow layout, independently of dsconv's conversion. Its reduction
//! length is `9 + M` terms plus 3 operations per BatchNorm and 1 for the folding's
//! rounding, per stage.

#[path = "mobilenet/body.rs"]
mod body;

use body::{keras_names, load_body, output_name, DEFAULT_FILE};
use dsconv::safetensors::{self, WeightFile};
use dsconv::{Backend, Chain, Error, Layer};
use dsconv_testkit::assert_close;

fn file_bytes() -> Vec<u8> {
    safetensors::read(DEFAULT_FILE).unwrap()
}

/// A tensor of the file (shape checked), as f64.
fn tensor(file: &WeightFile<'_>, name: &str, dims: &[usize]) -> Vec<f64> {
    let v = file.tensor("test", name, dims).unwrap();
    v.iter().map(|&x| x as f64).collect()
}

/// `(exact, magnitude)` of BatchNorm then ReLU6 on a stage's `(value, magnitude)`.
fn batch_norm_relu6(
    file: &WeightFile<'_>,
    bn: &str,
    c: usize,
    (y, mag): (Vec<f64>, Vec<f64>),
) -> (Vec<f64>, Vec<f64>) {
    let get = |p: &str| tensor(file, &format!("{bn}/{p}"), &[c]);
    let (gamma, beta, mean, var) = (
        get("gamma"),
        get("beta"),
        get("moving_mean"),
        get("moving_variance"),
    );
    let mut out = (Vec::with_capacity(y.len()), Vec::with_capacity(y.len()));
    for (i, (v, m)) in y.iter().zip(&mag).enumerate() {
        let ch = i % c;
        let s = gamma[ch] / (var[ch] + 1e-3).sqrt();
        out.0.push(((v - mean[ch]) * s + beta[ch]).clamp(0.0, 6.0));
        out.1.push((m + mean[ch].abs()) * s.abs() + beta[ch].abs());
    }
    out
}

/// Block `k` computed as Keras does, in f64: `(exact, magnitude)` of its output.
#[allow(clippy::too_many_arguments)]
fn keras_block_f64(
    file: &WeightFile<'_>,
    k: usize,
    input: &[f32],
    (h, w, m): (usize, usize, usize),
    (ho, wo, n): (usize, usize, usize),
    stride: usize,
    (top, left): (usize, usize),
) -> (Vec<f64>, Vec<f64>) {
    let dw = tensor(
        file,
        &format!("conv_dw_{k}/depthwise_kernel"),
        &[3, 3, m, 1],
    );
    let mut y = vec![0.0; ho * wo * m];
    let mut mag = vec![0.0; ho * wo * m];
    for oy in 0..ho {
        for ox in 0..wo {
            for ky in 0..3 {
                for kx in 0..3 {
                    let (iy, ix) = (
                        (oy * stride + ky) as isize - top as isize,
                        (ox * stride + kx) as isize - left as isize,
                    );
                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                        continue;
                    }
                    for c in 0..m {
                        let t = input[(iy as usize * w + ix as usize) * m + c] as f64
                            * dw[(ky * 3 + kx) * m + c];
                        y[(oy * wo + ox) * m + c] += t;
                        mag[(oy * wo + ox) * m + c] += t.abs();
                    }
                }
            }
        }
    }
    let (a, amag) = batch_norm_relu6(file, &format!("conv_dw_{k}_bn"), m, (y, mag));
    let pw = tensor(file, &format!("conv_pw_{k}/kernel"), &[1, 1, m, n]);
    let mut u = vec![0.0; ho * wo * n];
    let mut umag = vec![0.0; ho * wo * n];
    for p in 0..ho * wo {
        for c in 0..m {
            let (x, xm) = (a[p * m + c], amag[p * m + c]);
            for o in 0..n {
                u[p * n + o] += x * pw[c * n + o];
                umag[p * n + o] += xm * pw[c * n + o].abs();
            }
        }
    }
    batch_norm_relu6(file, &format!("conv_pw_{k}_bn"), n, (u, umag))
}

/// The reduction length of a block with `m` input channels (see the file's docs).
fn reduction(m: usize) -> usize {
    9 + m + 2 * (3 + 1)
}

/// Runs `check(k, layer, input, dims, keras_output, exact, magnitude)` for every block of
/// `body` on Keras' own input of the block.
fn each_block(
    file: &WeightFile<'_>,
    body: &[Box<dyn Layer>],
    mut check: impl FnMut(usize, &dyn Layer, &[f32], (usize, usize, usize), &[f32], &[f64], &[f64]),
) {
    let mut dims = (64, 64, 8);
    let mut input = file.tensor("test", "input", &[64, 64, 8]).unwrap();
    for (i, layer) in body.iter().enumerate() {
        let k = i + 1;
        let (h, w, _) = dims;
        let (ho, wo) = layer.output_dims(h, w).unwrap();
        let n = layer.output_channels();
        let keras = file.tensor("test", &output_name(k), &[ho, wo, n]).unwrap();
        let stride = h / ho;
        // "same" for stride 1, Keras' ZeroPadding2D(((0, 1), (0, 1))) + "valid" for 2.
        let top_left = if stride == 1 { (1, 1) } else { (0, 0) };
        let (exact, magnitude) =
            keras_block_f64(file, k, &input, dims, (ho, wo, n), stride, top_left);
        check(k, &**layer, &input, dims, &keras, &exact, &magnitude);
        dims = (ho, wo, n);
        input = keras;
    }
    assert_eq!(dims, (4, 4, 256));
}

/// Every block on Keras' own input of it, on `backend`, against Keras' output; Keras'
/// output against the f64 computation.
fn blocks_match_keras(backend: Backend) {
    let bytes = file_bytes();
    let file = WeightFile::parse(&bytes).unwrap();
    let body = load_body(&file).unwrap();
    assert_eq!(body.len(), 13);
    each_block(
        &file,
        &body,
        |k, layer, input, (h, w, m), keras, exact, magnitude| {
            let mut out = vec![f32::NAN; keras.len()];
            layer.run_on(backend, input, h, w, &mut out).unwrap();
            let keras64: Vec<f64> = keras.iter().map(|&x| x as f64).collect();
            let r = reduction(m);
            assert_close(
                &format!("block {k}: dsconv vs Keras"),
                &out,
                &keras64,
                magnitude,
                r,
            )
            .unwrap();
            assert_close(
                &format!("block {k}: dsconv vs f64"),
                &out,
                exact,
                magnitude,
                r,
            )
            .unwrap();
            assert_close(
                &format!("block {k}: Keras vs f64"),
                keras,
                exact,
                magnitude,
                r,
            )
            .unwrap();
        },
    );
}

/// The check can fail: the same file loaded with PyTorch's BatchNorm eps (1e-5) instead of
/// Keras' (1e-3) is outside the tolerance; with the PyTorch layout it does not load.
fn wrong_eps_or_layout_is_caught() {
    let bytes = file_bytes();
    let file = WeightFile::parse(&bytes).unwrap();
    let right = load_body(&file).unwrap();
    let wrong: body::Block1 = file
        .load(
            dsconv::WeightLayout::TensorFlow,
            &keras_names(1).with_eps(1e-5),
        )
        .unwrap();
    let wrong: [Box<dyn Layer>; 1] = [Box::new(wrong)];
    let mut checked = 0;
    each_block(
        &file,
        &right,
        |k, _, input, (h, w, m), keras, _, magnitude| {
            if k == 1 {
                let mut out = vec![0.0; keras.len()];
                wrong[0].run(input, h, w, &mut out).unwrap();
                let keras64: Vec<f64> = keras.iter().map(|&x| x as f64).collect();
                assert!(assert_close("eps 1e-5", &out, &keras64, magnitude, reduction(m)).is_err());
                checked += 1;
            }
        },
    );
    assert_eq!(checked, 1);
    let err = file
        .load::<body::Block1>(dsconv::WeightLayout::PyTorch, &keras_names(1))
        .err()
        .unwrap();
    assert!(matches!(err, Error::TensorShape { .. }), "{err:?}");
}

/// The body as one chain computes what its blocks compute in turn, bit for bit.
fn chain_is_the_blocks_in_turn(backend: Backend) {
    let bytes = file_bytes();
    let file = WeightFile::parse(&bytes).unwrap();
    let input = file.tensor("test", "input", &[64, 64, 8]).unwrap();
    let body = load_body(&file).unwrap();
    let mut x = input.clone();
    let (mut h, mut w) = (64, 64);
    for layer in &body {
        let (ho, wo) = layer.output_dims(h, w).unwrap();
        let mut out = vec![0.0; ho * wo * layer.output_channels()];
        layer.run_on(backend, &x, h, w, &mut out).unwrap();
        (x, h, w) = (out, ho, wo);
    }
    let mut chain = Chain::new(64, 64, body).unwrap();
    let mut out = vec![f32::NAN; 4 * 4 * 256];
    chain.forward_on(backend, &input, &mut out).unwrap();
    assert_eq!(out, x);
}

fn main() {
    let mut args = libtest_mimic::Arguments::from_args();
    args.test_threads = Some(1);
    let mut trials = vec![libtest_mimic::Trial::test(
        "wrong_eps_or_layout_is_caught",
        || {
            wrong_eps_or_layout_is_caught();
            Ok(())
        },
    )];
    for backend in Backend::ALL {
        for (name, test) in [
            ("blocks_match_keras", blocks_match_keras as fn(Backend)),
            ("chain_is_the_blocks_in_turn", chain_is_the_blocks_in_turn),
        ] {
            trials.push(dsconv_testkit::backend_trial(backend, name, move |b| {
                test(b);
                Ok(())
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
