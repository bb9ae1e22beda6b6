//! Run-time errors: every invalid argument gives a `dsconv::Error` naming what was expected
//! and what was given, never a panic, and leaves the output buffer untouched.

use dsconv::{separable_conv, Backend, Dims, Error, SeparableConv, Tensor, Weights};
use dsconv_testkit::{values, OwnedWeights};

#[separable_conv(dk = 3, m = 4, n = 5)]
struct Free;

#[separable_conv(dk = 5, m = 3, n = 2, padding = "valid")]
struct Valid;

#[separable_conv(dk = 3, m = 2, n = 2, dilation = 2, padding = [0, 1, 1, 0])]
struct DilatedPadded;

#[separable_conv(dk = 3, m = 2, n = 3, h = 6, w = 7)]
struct Fixed;

#[separable_conv(dk = 3, m = 2, n = 3, bias = true, depth_multiplier = 2)]
struct Biased;

const SENTINEL: f32 = 12345.0;

/// Calls `forward` and checks that it failed with `expected` without touching the output.
fn forward_fails<L: SeparableConv>(
    layer: &L,
    input_len: usize,
    h: usize,
    w: usize,
    output_len: usize,
    expected: Error,
) {
    let input = vec![0.5f32; input_len];
    let mut output = vec![SENTINEL; output_len];
    let err = layer.forward(&input, h, w, &mut output).unwrap_err();
    assert_eq!(err, expected);
    assert!(
        output.iter().all(|&v| v == SENTINEL),
        "output touched on error"
    );
    let message = err.to_string();
    assert!(
        message.contains("expected") && message.contains("got"),
        "{message}"
    );
}

fn free() -> Free {
    Free::load(&OwnedWeights::for_layer::<Free>(1).view()).unwrap()
}

fn wrong_input_lengths_are_reported() {
    let l = free();
    let ok_in = 6 * 5 * 4;
    let out = 6 * 5 * 5;
    for bad in [0, ok_in - 1, ok_in + 1, 2 * ok_in] {
        forward_fails(
            &l,
            bad,
            6,
            5,
            out,
            Error::Length {
                layer: "Free",
                tensor: Tensor::Input,
                expected: ok_in,
                actual: bad,
                dims: Dims::new(&[1, 6, 5, 4]),
            },
        );
    }
}

fn wrong_output_lengths_are_reported() {
    let l = free();
    let out = 6 * 5 * 5;
    for bad in [0, out - 1, out + 1] {
        forward_fails(
            &l,
            6 * 5 * 4,
            6,
            5,
            bad,
            Error::Length {
                layer: "Free",
                tensor: Tensor::Output,
                expected: out,
                actual: bad,
                dims: Dims::new(&[1, 6, 5, 5]),
            },
        );
    }
}

fn zero_sizes_are_reported() {
    let l = free();
    forward_fails(
        &l,
        0,
        0,
        5,
        0,
        Error::EmptyImage {
            layer: "Free",
            h: 0,
            w: 5,
        },
    );
    forward_fails(
        &l,
        0,
        3,
        0,
        0,
        Error::EmptyImage {
            layer: "Free",
            h: 3,
            w: 0,
        },
    );
    let mut out = vec![SENTINEL; 4];
    assert_eq!(
        l.pointwise(&[], 0, 1, &mut out).unwrap_err(),
        Error::EmptyImage {
            layer: "Free",
            h: 0,
            w: 1
        }
    );
}

fn fixed_size_mismatch_is_reported() {
    let l = Fixed::load(&OwnedWeights::for_layer::<Fixed>(2).view()).unwrap();
    forward_fails(
        &l,
        7 * 6 * 2,
        7,
        6,
        7 * 6 * 3,
        Error::FixedSizeMismatch {
            layer: "Fixed",
            expected: (6, 7),
            actual: (7, 6),
        },
    );
    let mut out = vec![0.0; 6 * 7 * 3];
    l.forward(&vec![0.0; 6 * 7 * 2], 6, 7, &mut out).unwrap();
}

fn padded_images_smaller_than_the_kernel_window_are_rejected() {
    let l = Valid::load(&OwnedWeights::for_layer::<Valid>(3).view()).unwrap();
    forward_fails(
        &l,
        4 * 9 * 3,
        4,
        9,
        0,
        Error::ImageSmallerThanKernel {
            layer: "Valid",
            h: 4,
            w: 9,
            min: (5, 5),
            window: 5,
        },
    );
    forward_fails(
        &l,
        9 * 4 * 3,
        9,
        4,
        0,
        Error::ImageSmallerThanKernel {
            layer: "Valid",
            h: 9,
            w: 4,
            min: (5, 5),
            window: 5,
        },
    );
    let mut out = vec![0.0; 2];
    l.forward(&vec![0.0; 5 * 5 * 3], 5, 5, &mut out).unwrap();
    // Dilation 2 makes a 5x5 window; one zero below and one left leave 4x4 as the smallest
    // input with an output.
    let d = DilatedPadded::load(&OwnedWeights::for_layer::<DilatedPadded>(3).view()).unwrap();
    let expected = Error::ImageSmallerThanKernel {
        layer: "DilatedPadded",
        h: 3,
        w: 9,
        min: (4, 4),
        window: 5,
    };
    assert_eq!(
        expected.to_string(),
        "layer DilatedPadded: the image with its padding is smaller than the 5x5 kernel window: \
         expected at least 4x4, got 3x9"
    );
    forward_fails(&d, 3 * 9 * 2, 3, 9, 0, expected);
    let mut out = vec![0.0; 2];
    d.forward(&[0.0; 4 * 4 * 2], 4, 4, &mut out).unwrap();
}

fn overflowing_sizes_are_reported() {
    let l = free();
    let big = usize::MAX / 2;
    forward_fails(
        &l,
        0,
        big,
        big,
        0,
        Error::SizeOverflow {
            layer: "Free",
            h: big,
            w: big,
            batch: 1,
        },
    );
    let input = vec![0.0; 6 * 5 * 4];
    let mut output = vec![SENTINEL; 6 * 5 * 5];
    let err = l
        .forward_batch(&input, usize::MAX, 6, 5, &mut output)
        .unwrap_err();
    assert_eq!(
        err,
        Error::SizeOverflow {
            layer: "Free",
            h: 6,
            w: 5,
            batch: usize::MAX
        }
    );
    assert!(output.iter().all(|&v| v == SENTINEL));
}

fn batch_lengths_are_checked_against_the_batch() {
    let l = free();
    let input = vec![0.0; 2 * 6 * 5 * 4];
    let mut output = vec![SENTINEL; 3 * 6 * 5 * 5];
    let err = l.forward_batch(&input, 3, 6, 5, &mut output).unwrap_err();
    assert_eq!(
        err,
        Error::Length {
            layer: "Free",
            tensor: Tensor::Input,
            expected: 3 * 120,
            actual: 240,
            dims: Dims::new(&[3, 6, 5, 4]),
        }
    );
    assert!(output.iter().all(|&v| v == SENTINEL));
    // An empty batch with empty buffers is a no-op.
    l.forward_batch(&[], 0, 6, 5, &mut []).unwrap();
}

fn stage_lengths_are_checked() {
    let l = free();
    let mut out = vec![SENTINEL; 6 * 5 * 4 - 1];
    assert_eq!(
        l.depthwise(&vec![0.0; 6 * 5 * 4], 6, 5, &mut out)
            .unwrap_err(),
        Error::Length {
            layer: "Free",
            tensor: Tensor::Output,
            expected: 120,
            actual: 119,
            dims: Dims::new(&[1, 6, 5, 4]),
        }
    );
    let mut out = vec![SENTINEL; 10];
    assert_eq!(
        l.pointwise(&[0.0; 7], 1, 2, &mut out).unwrap_err(),
        Error::Length {
            layer: "Free",
            tensor: Tensor::Input,
            expected: 8,
            actual: 7,
            dims: Dims::new(&[1, 1, 2, 4]),
        }
    );
    assert!(out.iter().all(|&v| v == SENTINEL));
}

fn weight_lengths_are_checked() {
    let dw = values(4 * 9, 1);
    let pw = values(5 * 4, 2);
    assert!(Free::from_weights(&dw, &pw).is_ok());
    for bad in [0, 35, 37] {
        assert_eq!(
            Free::from_weights(&values(bad, 1), &pw).unwrap_err(),
            Error::Length {
                layer: "Free",
                tensor: Tensor::DepthwiseWeights,
                expected: 36,
                actual: bad,
                dims: Dims::new(&[4, 1, 3, 3]),
            }
        );
    }
    for bad in [0, 19, 21] {
        assert_eq!(
            Free::from_weights(&dw, &values(bad, 1)).unwrap_err(),
            Error::Length {
                layer: "Free",
                tensor: Tensor::PointwiseWeights,
                expected: 20,
                actual: bad,
                dims: Dims::new(&[5, 4, 1, 1]),
            }
        );
    }
}

fn bias_lengths_and_presence_are_checked() {
    // Biased: M*DM = 4 depthwise channels, N = 3.
    let (dw, dwb, pw, pwb) = (values(36, 1), values(4, 2), values(12, 3), values(3, 4));
    assert!(Biased::from_weights_with_bias(&dw, &dwb, &pw, &pwb).is_ok());
    assert_eq!(
        Biased::from_weights_with_bias(&dw, &values(3, 2), &pw, &pwb).unwrap_err(),
        Error::Length {
            layer: "Biased",
            tensor: Tensor::DepthwiseBias,
            expected: 4,
            actual: 3,
            dims: Dims::new(&[4]),
        }
    );
    assert_eq!(
        Biased::from_weights_with_bias(&dw, &dwb, &pw, &[]).unwrap_err(),
        Error::Length {
            layer: "Biased",
            tensor: Tensor::PointwiseBias,
            expected: 3,
            actual: 0,
            dims: Dims::new(&[3]),
        }
    );
    let missing = Weights {
        depthwise: &dw,
        depthwise_bias: None,
        pointwise: &pw,
        pointwise_bias: Some(&pwb),
    };
    assert_eq!(
        Biased::load(&missing).unwrap_err(),
        Error::Length {
            layer: "Biased",
            tensor: Tensor::DepthwiseBias,
            expected: 4,
            actual: 0,
            dims: Dims::new(&[4]),
        }
    );
    let unexpected = Weights {
        depthwise: &values(36, 1),
        depthwise_bias: Some(&dwb),
        pointwise: &values(20, 2),
        pointwise_bias: None,
    };
    assert_eq!(
        Free::load(&unexpected).unwrap_err(),
        Error::Length {
            layer: "Free",
            tensor: Tensor::DepthwiseBias,
            expected: 0,
            actual: 4,
            dims: Dims::new(&[0]),
        }
    );
}

fn non_finite_weights_are_rejected_with_their_index() {
    let mut dw = values(36, 1);
    dw[17] = f32::INFINITY;
    let err = Free::from_weights(&dw, &values(20, 2)).unwrap_err();
    assert_eq!(
        err,
        Error::NonFiniteWeight {
            layer: "Free",
            tensor: Tensor::DepthwiseWeights,
            index: 17
        }
    );
    assert!(err.to_string().contains("index 17"), "{err}");
    let mut pwb = values(3, 4);
    pwb[2] = f32::NAN;
    assert_eq!(
        Biased::from_weights_with_bias(&values(36, 1), &values(4, 2), &values(12, 3), &pwb)
            .unwrap_err(),
        Error::NonFiniteWeight {
            layer: "Biased",
            tensor: Tensor::PointwiseBias,
            index: 2
        }
    );
}

fn errors_are_std_errors_with_readable_messages() {
    // The message a user sees for a wrong input buffer names the layer, the tensor and the
    // shape the layer expected.
    let l = free();
    let mut out = vec![0.0; 6 * 5 * 5];
    let e: Box<dyn std::error::Error + Send + Sync> =
        Box::new(l.forward(&[0.0; 11], 6, 5, &mut out).unwrap_err());
    assert_eq!(
        e.to_string(),
        "layer Free: input has the wrong length: expected 120 values \
         (shape [1, 6, 5, 4] as (batch, H, W, C)), got 11"
    );
    let e = Free::from_weights(&values(35, 1), &values(20, 2)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "layer Free: depthwise weights has the wrong length: expected 36 values \
         (shape [4, 1, 3, 3] as (M*DM, 1, DK, DK)), got 35"
    );
    let e = Error::FixedSizeMismatch {
        layer: "Fixed",
        expected: (6, 7),
        actual: (7, 6),
    };
    assert_eq!(
        e.to_string(),
        "layer Fixed: input size differs from the layer's declared size: expected 6x7, got 7x6"
    );
    assert!(format!("{e:?}").contains("FixedSizeMismatch"));
}

fn a_backend_this_cpu_lacks_is_an_error() {
    let l = free();
    let input = values(6 * 5 * 4, 3);
    let mut lacking = 0;
    for backend in Backend::ALL {
        let mut out = vec![SENTINEL; 150];
        let result = l.forward_on(backend, &input, 6, 5, &mut out);
        if backend.is_available() {
            assert!(result.is_ok(), "{backend}");
        } else {
            lacking += 1;
            let err = result.unwrap_err();
            assert_eq!(err, Error::BackendUnavailable { backend });
            assert!(err.to_string().contains(backend.name()), "{err}");
            assert!(
                out.iter().all(|&v| v == SENTINEL),
                "output touched on error"
            );
            let mut mid = vec![SENTINEL; 120];
            assert!(l.depthwise_on(backend, &input, 6, 5, &mut mid).is_err());
            assert!(l.pointwise_on(backend, &mid, 6, 5, &mut out).is_err());
        }
    }
    // No machine runs both x86 and ARM backends.
    assert!(lacking >= 1);
}

fn layers_are_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Free>();
    shared::<Biased>();
    let l = free();
    let input = values(6 * 5 * 4, 9);
    let mut a = vec![0.0; 150];
    let mut b = vec![0.0; 150];
    std::thread::scope(|s| {
        s.spawn(|| l.forward(&input, 6, 5, &mut a).unwrap());
        s.spawn(|| l.forward(&input, 6, 5, &mut b).unwrap());
    });
    assert_eq!(a, b);
}

fn main() {
    dsconv_testkit::run_tests(
        dsconv_testkit::tests![
            wrong_input_lengths_are_reported,
            wrong_output_lengths_are_reported,
            zero_sizes_are_reported,
            fixed_size_mismatch_is_reported,
            padded_images_smaller_than_the_kernel_window_are_rejected,
            overflowing_sizes_are_reported,
            batch_lengths_are_checked_against_the_batch,
            stage_lengths_are_checked,
            weight_lengths_are_checked,
            bias_lengths_and_presence_are_checked,
            non_finite_weights_are_rejected_with_their_index,
            errors_are_std_errors_with_readable_messages,
            a_backend_this_cpu_lacks_is_an_error,
            layers_are_send_and_sync
        ],
        &["layers_are_send_and_sync"],
    );
}
