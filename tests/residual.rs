//! `#[pointwise_conv]` layers and `residual = true`: 1x1 layers against the f64 reference over
//! shapes that cover every tail of the pointwise kernels (lanes, register tiles, panels,
//! chunks), with every activation; residual layers of both kinds add their skip after the
//! activation (`out = act(..) + skip`, the reference's result plus the skip, within the
//! tolerance rule with one more term); their errors; and a MobileNetV2 inverted-residual
//! block as a `Chain`, bit for bit the layers run by hand.

use dsconv::{
    pointwise_conv, separable_conv, Activation, Backend, Chain, Error, Layer, PointwiseConv,
    SeparableConv, Tensor,
};
use dsconv_testkit::{
    activation_terms, assert_close, oracle, pointwise_oracle, values, OwnedWeights,
};

#[pointwise_conv(m = 3, n = 5)]
struct P3x5;
#[pointwise_conv(m = 8, n = 16, bias = true, activation = "relu")]
struct P8x16;
#[pointwise_conv(m = 17, n = 40, bias = true, activation = "relu6")]
struct P17x40;
#[pointwise_conv(m = 32, n = 96, bias = true, activation = "hardswish")]
struct P32x96;
#[pointwise_conv(m = 64, n = 24, activation = "silu", h = 7, w = 9)]
struct P64x24Fixed;
#[pointwise_conv(m = 24, n = 24, bias = true, residual = true)]
struct P24Residual;
#[pointwise_conv(m = 40, n = 13, bias = true, activation = "relu6", residual = true)]
struct P40x13Residual;

#[separable_conv(
    dk = 3,
    m = 24,
    n = 24,
    bias = true,
    dw_activation = "relu6",
    residual = true
)]
struct S24Residual;
#[separable_conv(
    dk = 5,
    m = 6,
    n = 11,
    stride = 2,
    padding = "same_upper",
    bias = true,
    activation = "silu",
    residual = true
)]
struct S6x11Residual;

// The MobileNetV2 block: 1x1 expand (x6) + ReLU6, 3x3 depthwise + ReLU6, 1x1 project
// (linear), plus the block's input.
#[pointwise_conv(m = 16, n = 96, bias = true, activation = "relu6")]
struct Expand;
#[separable_conv(
    dk = 3,
    m = 96,
    n = 16,
    bias = true,
    dw_activation = "relu6",
    residual = true
)]
struct DepthwiseProject;

/// `(weights, bias)` of a 1x1 layer in PyTorch layout, deterministic.
fn pw_weights<L: PointwiseConv>(seed: u32) -> OwnedWeights {
    OwnedWeights {
        depthwise: Vec::new(),
        depthwise_bias: None,
        pointwise: values(L::N * L::M, seed),
        pointwise_bias: L::BIAS.then(|| values(L::N, seed + 1)),
    }
}

fn load_pw<L: PointwiseConv>(w: &OwnedWeights) -> L {
    L::load(&w.pointwise, w.pointwise_bias.as_deref()).unwrap()
}

/// `exact + skip` and `magnitude + |skip|`.
fn plus_skip((exact, magnitude): (Vec<f64>, Vec<f64>), skip: &[f32]) -> (Vec<f64>, Vec<f64>) {
    (
        exact.iter().zip(skip).map(|(e, &s)| e + s as f64).collect(),
        magnitude
            .iter()
            .zip(skip)
            .map(|(m, &s)| m + (s as f64).abs())
            .collect(),
    )
}

/// One 1x1 layer on sizes from one pixel to several chunks, against the reference.
fn check_pointwise<L: PointwiseConv>(backend: Backend, sizes: &[(usize, usize)]) {
    let w = pw_weights::<L>(3);
    let layer = load_pw::<L>(&w);
    for &(h, wd) in sizes {
        let pixels = h * wd;
        let input = values(pixels * L::M, (pixels + L::M) as u32);
        let (exact, magnitude) = pointwise_oracle(L::ACTIVATION, &input, pixels, L::M, L::N, &w);
        let terms = activation_terms(L::M, L::ACTIVATION);
        let mut out = vec![f32::NAN; pixels * L::N];
        if L::RESIDUAL {
            let skip = values(pixels * L::N, 99);
            let (exact, magnitude) = plus_skip((exact, magnitude), &skip);
            layer
                .forward_residual_on(backend, &input, &skip, h, wd, &mut out)
                .unwrap();
            let what = format!("{} {h}x{wd} on {backend} + skip", L::NAME);
            assert_close(&what, &out, &exact, &magnitude, terms + 1).unwrap();
        } else {
            layer.forward_on(backend, &input, h, wd, &mut out).unwrap();
            let what = format!("{} {h}x{wd} on {backend}", L::NAME);
            assert_close(&what, &out, &exact, &magnitude, terms).unwrap();
        }
    }
}

const SIZES: &[(usize, usize)] = &[(1, 1), (1, 5), (3, 7), (13, 11), (40, 41)];

fn pointwise_layers_match_the_reference(backend: Backend) {
    check_pointwise::<P3x5>(backend, SIZES);
    check_pointwise::<P8x16>(backend, SIZES);
    check_pointwise::<P17x40>(backend, SIZES);
    check_pointwise::<P32x96>(backend, SIZES);
    check_pointwise::<P64x24Fixed>(backend, &[(7, 9)]);
    check_pointwise::<P24Residual>(backend, SIZES);
    check_pointwise::<P40x13Residual>(backend, SIZES);
}

/// A residual separable layer: the reference's layer plus the skip; its stages alone run
/// without the skip.
fn check_separable_residual<L: SeparableConv>(backend: Backend, sizes: &[(usize, usize)]) {
    let w = OwnedWeights::for_layer::<L>(5);
    let layer = L::load(&w.view()).unwrap();
    for &(h, wd) in sizes {
        let (ho, wo) = L::output_size(h, wd);
        let input = values(h * wd * L::M, (h * 7 + wd) as u32);
        let skip = values(ho * wo * L::N, 77);
        let (exact, magnitude) =
            plus_skip(oracle(&L::SHAPE, L::ACTIVATIONS, &input, h, wd, &w), &skip);
        let c = L::M * L::DEPTH_MULTIPLIER;
        let terms = activation_terms(L::DK * L::DK, L::DW_ACTIVATION)
            + activation_terms(c, L::PW_ACTIVATION);
        let mut out = vec![f32::NAN; ho * wo * L::N];
        layer
            .forward_residual_on(backend, &input, &skip, h, wd, &mut out)
            .unwrap();
        let what = format!("{} {h}x{wd} on {backend}", L::NAME);
        assert_close(&what, &out, &exact, &magnitude, terms + 1).unwrap();
        // The stages alone: depthwise then pointwise, no skip.
        let mut mid = vec![0.0; ho * wo * c];
        let mut plain = vec![0.0; ho * wo * L::N];
        layer
            .depthwise_on(backend, &input, h, wd, &mut mid)
            .unwrap();
        layer
            .pointwise_on(backend, &mid, ho, wo, &mut plain)
            .unwrap();
        let (exact, magnitude) = oracle(&L::SHAPE, L::ACTIVATIONS, &input, h, wd, &w);
        assert_close(
            &format!("{what}, stages alone"),
            &plain,
            &exact,
            &magnitude,
            terms,
        )
        .unwrap();
    }
}

fn separable_residual_layers_match_the_reference(backend: Backend) {
    check_separable_residual::<S24Residual>(backend, &[(1, 1), (5, 9), (31, 40)]);
    check_separable_residual::<S6x11Residual>(backend, &[(1, 2), (8, 9), (47, 30)]);
}

fn residual_errors_leave_the_output_untouched() {
    let s = S24Residual::load(&OwnedWeights::for_layer::<S24Residual>(1).view()).unwrap();
    let p = load_pw::<P24Residual>(&pw_weights::<P24Residual>(2));
    let plain = load_pw::<P8x16>(&pw_weights::<P8x16>(3));
    let input = values(4 * 4 * 24, 1);
    let skip = values(4 * 4 * 24, 2);
    let mut out = vec![7.0; 4 * 4 * 24];
    assert_eq!(
        s.forward(&input, 4, 4, &mut out),
        Err(Error::SkipRequired {
            layer: "S24Residual"
        })
    );
    assert_eq!(
        p.forward(&input, 4, 4, &mut out),
        Err(Error::SkipRequired {
            layer: "P24Residual"
        })
    );
    let err = s
        .forward_residual(&input, &skip[1..], 4, 4, &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Length {
                tensor: Tensor::Skip,
                expected: 384,
                actual: 383,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("skip input"), "{err}");
    let err = p
        .forward_residual(&input, &skip[1..], 4, 4, &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Length {
                tensor: Tensor::Skip,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(out.iter().all(|&x| x == 7.0));
    let mut out16 = vec![7.0; 4 * 4 * 16];
    assert_eq!(
        plain.forward_residual(&values(4 * 4 * 8, 1), &out16.clone(), 4, 4, &mut out16),
        Err(Error::NotResidual { layer: "P8x16" })
    );
    // A fixed-size 1x1 layer refuses another size; the Layer face says so too.
    let fixed = load_pw::<P64x24Fixed>(&pw_weights::<P64x24Fixed>(4));
    let mut o = vec![0.0; 7 * 8 * 24];
    let err = fixed
        .forward(&values(7 * 8 * 64, 1), 7, 8, &mut o)
        .unwrap_err();
    assert!(matches!(err, Error::FixedSizeMismatch { .. }), "{err:?}");
    assert_eq!(fixed.output_dims(7, 8), Err(err));
    assert_eq!(P64x24Fixed::MULS, 7 * 9 * 64 * 24);
    assert_eq!(P17x40::multiplications(3, 4).pointwise, 12 * 17 * 40);
    assert_eq!(P17x40::multiplications(3, 4).depthwise, 0);
}

/// The MobileNetV2 block as a chain: expand, then depthwise + project with the block's
/// input added; two blocks chained share buffers.
fn inverted_residual_block_as_a_chain(backend: Backend) {
    let (h, w) = (14, 13);
    let ew = pw_weights::<Expand>(11);
    let dw = OwnedWeights::for_layer::<DepthwiseProject>(12);
    let ew2 = pw_weights::<Expand>(13);
    let dw2 = OwnedWeights::for_layer::<DepthwiseProject>(14);
    let input = values(h * w * 16, 5);
    // By hand.
    let by_hand = |x: &[f32], e: &OwnedWeights, d: &OwnedWeights| {
        let mut mid = vec![0.0; h * w * 96];
        load_pw::<Expand>(e)
            .forward_on(backend, x, h, w, &mut mid)
            .unwrap();
        let mut out = vec![0.0; h * w * 16];
        DepthwiseProject::load(&d.view())
            .unwrap()
            .forward_residual_on(backend, &mid, x, h, w, &mut out)
            .unwrap();
        out
    };
    let one = by_hand(&input, &ew, &dw);
    let two = by_hand(&one, &ew2, &dw2);
    let mut chain = Chain::builder(h, w)
        .layer(load_pw::<Expand>(&ew))
        .residual(DepthwiseProject::load(&dw.view()).unwrap(), 1)
        .layer(load_pw::<Expand>(&ew2))
        .residual(DepthwiseProject::load(&dw2.view()).unwrap(), 1)
        .build()
        .unwrap();
    let mut out = vec![f32::NAN; h * w * 16];
    chain.forward_on(backend, &input, &mut out).unwrap();
    assert_eq!(out, two);
    // The second block's input stays alive until its skip is added: 2 buffers, not 1.
    assert_eq!(chain.buffer_count(), 2);
    // The skip is really added: the block differs from the same layers without it.
    let mut without = vec![0.0; h * w * 16];
    let e = load_pw::<Expand>(&ew);
    let mut mid = vec![0.0; h * w * 96];
    e.forward_on(backend, &input, h, w, &mut mid).unwrap();
    let d = DepthwiseProject::load(&dw.view()).unwrap();
    let mut dwo = vec![0.0; h * w * 96];
    d.depthwise_on(backend, &mid, h, w, &mut dwo).unwrap();
    d.pointwise_on(backend, &dwo, h, w, &mut without).unwrap();
    let added: Vec<f32> = without.iter().zip(&input).map(|(a, b)| a + b).collect();
    assert_eq!(
        one, added,
        "the store adds the skip after the activation, exactly once"
    );
}

fn chain_skip_errors() {
    let ew = pw_weights::<Expand>(1);
    let dw = OwnedWeights::for_layer::<DepthwiseProject>(2);
    let expand = || load_pw::<Expand>(&ew);
    let project = || DepthwiseProject::load(&dw.view()).unwrap();
    let reason = |r: Result<Chain, Error>| match r {
        Err(Error::ChainSkip { index, reason, .. }) => (index, reason),
        other => panic!("expected ChainSkip, got {other:?}"),
    };
    let (i, r) = reason(
        Chain::builder(8, 8)
            .layer(expand())
            .layer(project())
            .build(),
    );
    assert_eq!(i, 1);
    assert!(r.contains("ChainBuilder::residual"), "{r}");
    let (_, r) = reason(
        Chain::builder(8, 8)
            .layer(expand())
            .residual(project(), 2)
            .build(),
    );
    assert!(r.contains("before the chain's start"), "{r}");
    // back = 0: the skip would be the 96-channel expand output, not the 16-channel output.
    let (_, r) = reason(
        Chain::builder(8, 8)
            .layer(expand())
            .residual(project(), 0)
            .build(),
    );
    assert!(r.contains("(8, 8, 96)") && r.contains("(8, 8, 16)"), "{r}");
    let (_, r) = reason(Chain::builder(8, 8).residual(expand(), 0).build());
    assert!(r.contains("without residual = true"), "{r}");
}

fn main() {
    let mut args = libtest_mimic::Arguments::from_args();
    args.test_threads = Some(1);
    let mut trials = Vec::new();
    for backend in Backend::ALL {
        for (name, test) in [
            (
                "pointwise_layers_match_the_reference",
                pointwise_layers_match_the_reference as fn(Backend),
            ),
            (
                "separable_residual_layers_match_the_reference",
                separable_residual_layers_match_the_reference,
            ),
            (
                "inverted_residual_block_as_a_chain",
                inverted_residual_block_as_a_chain,
            ),
        ] {
            trials.push(dsconv_testkit::backend_trial(backend, name, move |b| {
                test(b);
                Ok(())
            }));
        }
    }
    for (name, test) in [
        (
            "residual_errors_leave_the_output_untouched",
            residual_errors_leave_the_output_untouched as fn(),
        ),
        ("chain_skip_errors", chain_skip_errors),
    ] {
        trials.push(libtest_mimic::Trial::test(name, move || {
            test();
            Ok(())
        }));
    }
    let _ = Activation::None;
    libtest_mimic::run(&args, trials).exit();
}
