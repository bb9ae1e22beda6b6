//! Layers as trait objects (`dyn Layer`) and `Chain`: a chain computes, bit for bit, what its
//! layers compute called one after the other, on every backend; its construction checks every
//! layer's input against the previous layer's output, naming the layer; a call with buffers
//! of the wrong length is an `Err` that leaves the output untouched.

use dsconv::{separable_conv, Backend, Chain, Error, Layer, SeparableConv, Tensor, CHAIN_NAME};
use dsconv_testkit::{values, OwnedWeights};

#[separable_conv(dk = 3, m = 4, n = 8, stride = 2, bias = true, activation = "relu6")]
struct Down;

#[separable_conv(
    dk = 5,
    m = 8,
    n = 12,
    depth_multiplier = 2,
    padding = "same_upper",
    bias = true,
    dw_activation = "hardswish"
)]
struct Wide;

#[separable_conv(dk = 3, m = 12, n = 6, padding = "valid")]
struct Narrow;

#[separable_conv(dk = 3, m = 4, n = 4, h = 9, w = 7)]
struct Fixed;

fn load<L: SeparableConv>(seed: u32) -> L {
    L::load(&OwnedWeights::for_layer::<L>(seed).view()).unwrap()
}

fn three_layers() -> Vec<Box<dyn Layer>> {
    vec![
        Box::new(load::<Down>(1)),
        Box::new(load::<Wide>(2)),
        Box::new(load::<Narrow>(3)),
    ]
}

/// The chain's output equals its layers run one by one through `Vec`s, bit for bit.
fn chain_is_its_layers_in_turn(backend: Backend) {
    for (h, w) in [(17, 13), (8, 8), (31, 6)] {
        let layers = three_layers();
        let input = values(h * w * 4, (h * 31 + w) as u32);
        let mut expected = input.clone();
        let (mut eh, mut ew) = (h, w);
        for layer in &layers {
            let (ho, wo) = layer.output_dims(eh, ew).unwrap();
            let mut out = vec![f32::NAN; ho * wo * layer.output_channels()];
            layer.run_on(backend, &expected, eh, ew, &mut out).unwrap();
            (expected, eh, ew) = (out, ho, wo);
        }
        let mut chain = Chain::new(h, w, layers).unwrap();
        assert_eq!(chain.input_dims(), (h, w, 4));
        assert_eq!(chain.output_dims(), (eh, ew, 6));
        let mut output = vec![f32::NAN; expected.len()];
        chain.forward_on(backend, &input, &mut output).unwrap();
        assert_eq!(
            output.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            expected.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "{h}x{w}"
        );
        // Run again: the buffers' old contents change nothing.
        chain.forward_on(backend, &input, &mut output).unwrap();
        assert_eq!(output, expected);
    }
}

/// One layer is a chain too (no buffer), and `Layer::run_on` is `forward_on`.
fn single_layer_chain(backend: Backend) {
    let layer = load::<Down>(5);
    let input = values(10 * 10 * 4, 9);
    let mut direct = vec![0.0; 5 * 5 * 8];
    layer
        .forward_on(backend, &input, 10, 10, &mut direct)
        .unwrap();
    let mut chain = Chain::new(10, 10, vec![Box::new(layer)]).unwrap();
    assert_eq!(chain.buffer_floats(), 0);
    let mut out = vec![0.0; 5 * 5 * 8];
    chain.forward_on(backend, &input, &mut out).unwrap();
    assert_eq!(out, direct);
}

fn construction_checks_each_layer() {
    assert_eq!(Chain::new(8, 8, vec![]).unwrap_err(), Error::EmptyChain);
    // Narrow takes 12 channels; Down gives 8.
    let err = Chain::new(
        8,
        8,
        vec![Box::new(load::<Down>(1)), Box::new(load::<Narrow>(3))],
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::ChainChannels {
            index: 1,
            layer: "Narrow",
            expected: 12,
            actual: 8
        }
    );
    assert!(err.to_string().contains("chain layer 1 (Narrow)"), "{err}");
    // 5x5 -> Down -> 3x3 -> Wide -> 3x3 -> Narrow ("valid" 3x3) -> 1x1 fits; 4x4 does not.
    assert!(Chain::new(5, 5, three_layers()).is_ok());
    let err = Chain::new(3, 3, three_layers()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ImageSmallerThanKernel {
                layer: "Narrow",
                h: 2,
                w: 2,
                ..
            }
        ),
        "{err:?}"
    );
    // A fixed-size layer checks the size it is given inside the chain.
    let err = Chain::new(9, 8, vec![Box::new(load::<Fixed>(4))]).unwrap_err();
    assert!(
        matches!(err, Error::FixedSizeMismatch { layer: "Fixed", .. }),
        "{err:?}"
    );
    assert!(Chain::new(9, 7, vec![Box::new(load::<Fixed>(4))]).is_ok());
}

fn wrong_lengths_leave_the_output_untouched() {
    let mut chain = Chain::new(9, 9, three_layers()).unwrap();
    let (ho, wo, n) = chain.output_dims();
    let input = values(9 * 9 * 4, 3);
    let mut out = vec![7.0; ho * wo * n];
    let err = chain.forward(&input[1..], &mut out).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Length {
                layer: CHAIN_NAME,
                tensor: Tensor::Input,
                ..
            }
        ),
        "{err:?}"
    );
    let mut short = vec![7.0; ho * wo * n - 1];
    let err = chain.forward(&input, &mut short).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Length {
                layer: CHAIN_NAME,
                tensor: Tensor::Output,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(out.iter().chain(&short).all(|&x| x == 7.0));
    // The two buffers hold the two intermediate images: 5x5x8 and 5x5x12.
    assert_eq!(chain.buffer_floats(), 5 * 5 * 8 + 5 * 5 * 12);
    let names: Vec<_> = chain.layers().map(|l| l.name()).collect();
    assert_eq!(names, ["Down", "Wide", "Narrow"]);
    let muls = chain.multiplications();
    let expected = Down::multiplications(9, 9).depthwise
        + Wide::multiplications(5, 5).depthwise
        + Narrow::multiplications(5, 5).depthwise;
    assert_eq!(muls.depthwise, expected);
}

fn main() {
    let mut args = libtest_mimic::Arguments::from_args();
    args.test_threads = Some(1);
    let mut trials = Vec::new();
    for backend in Backend::ALL {
        for (name, test) in [
            (
                "chain_is_its_layers_in_turn",
                chain_is_its_layers_in_turn as fn(Backend),
            ),
            ("single_layer_chain", single_layer_chain),
        ] {
            trials.push(dsconv_testkit::backend_trial(backend, name, move |b| {
                test(b);
                Ok(())
            }));
        }
    }
    for (name, test) in [
        (
            "construction_checks_each_layer",
            construction_checks_each_layer as fn(),
        ),
        (
            "wrong_lengths_leave_the_output_untouched",
            wrong_lengths_leave_the_output_untouched,
        ),
    ] {
        trials.push(libtest_mimic::Trial::test(name, move || {
            test();
            Ok(())
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}
