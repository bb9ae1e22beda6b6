//! Inputs at every offset from a vector boundary (0..16 floats: a `Vec` starts wherever
//! `malloc` puts it), for the layers whose depthwise channel vectors follow the input's
//! address (the plan's `realign`, AVX-512: when the output is as far off as the input, the
//! vectors start part-way into each pixel and the two end runs of channels are masked).
//! Each offset's outputs, of the depthwise stage (its output at the input's offset, where
//! the kernel realigns, and at another, where it does not) and of `forward`, must be
//! bit-identical to the aligned call's, which must match the reference (tolerance of
//! `dsconv_testkit::assert_close`). The input sits between NaN guards, so a vector reading
//! past it poisons what it computes; outputs sit between canaries (both at every offset,
//! 0 included).

use dsconv::{separable_conv, AlignedBuf, Backend, SeparableConv};
use dsconv_testkit::{assert_close, depthwise_oracle, oracle, values, OwnedWeights};

/// Eight AVX-512 vectors; stride 1: two-row blocks, edges, borders.
#[separable_conv(dk = 3, m = 128, n = 16, bias = true, activation = "relu6")]
struct Eight;
/// Nine AVX-512 vectors, stride 2, TensorFlow's "same" (padding at the bottom and right).
#[separable_conv(dk = 3, m = 144, n = 8, stride = 2, padding = "same")]
struct Strided;
/// A 5x5 kernel dilated by 2 (the window spans 9 columns).
#[separable_conv(dk = 5, m = 128, n = 8, dilation = 2, padding = "same_upper")]
struct Dilated;
/// Two AVX-512 vectors: too few to realign (the plan keeps it off).
#[separable_conv(dk = 3, m = 32, n = 8)]
struct Two;

/// Floats of NaN before and after the input, and of canary around each output.
const GUARD: usize = 32;
const CANARY: f32 = -7.25e30;

/// `data` at `GUARD + offset` floats past a 64-byte boundary (`GUARD` is whole vectors, so
/// `offset` floats off one), NaN on both sides.
fn placed(data: &[f32], offset: usize) -> AlignedBuf {
    let mut buf = AlignedBuf::zeroed(GUARD + data.len() + 2 * GUARD);
    buf.fill(f32::NAN);
    buf[GUARD + offset..GUARD + offset + data.len()].copy_from_slice(data);
    buf
}

/// A call's output: `len` floats written at `GUARD + offset` inside canaries, checked
/// intact.
fn output(len: usize, offset: usize, call: impl FnOnce(&mut [f32])) -> Vec<f32> {
    let mut buf = AlignedBuf::zeroed(GUARD + len + 2 * GUARD);
    buf.fill(CANARY);
    let at = GUARD + offset;
    call(&mut buf[at..at + len]);
    assert!(
        buf[..at]
            .iter()
            .chain(&buf[at + len..])
            .all(|&v| v == CANARY),
        "a call wrote outside its output"
    );
    buf[at..at + len].to_vec()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check<L: SeparableConv>(backend: Backend, h: usize, w: usize) {
    let weights = OwnedWeights::for_layer::<L>(5);
    let layer = L::load(&weights.view()).unwrap();
    let data = values(h * w * L::M, 17);
    let (ho, wo) = L::output_size(h, w);
    let (mid, out) = (ho * wo * L::M, ho * wo * L::N);
    let run = |offset: usize, out_offset: usize| {
        let input = placed(&data, offset);
        let input = &input[GUARD + offset..GUARD + offset + data.len()];
        let dw = output(mid, out_offset, |o| {
            layer.depthwise_on(backend, input, h, w, o).unwrap()
        });
        let fw = output(out, out_offset, |o| {
            layer.forward_on(backend, input, h, w, o).unwrap()
        });
        (dw, fw)
    };
    let (dw, fw) = run(0, 0);
    let (exact, magnitude) = depthwise_oracle(&L::SHAPE, L::DW_ACTIVATION, &data, h, w, &weights);
    assert_close(
        &format!("{backend} depthwise"),
        &dw,
        &exact,
        &magnitude,
        L::DK * L::DK,
    )
    .unwrap();
    let (exact, magnitude) = oracle(&L::SHAPE, L::ACTIVATIONS, &data, h, w, &weights);
    assert_close(
        &format!("{backend} forward"),
        &fw,
        &exact,
        &magnitude,
        L::DK * L::DK + L::M,
    )
    .unwrap();
    for offset in 1..=16 {
        // Outputs at the input's offset, then at another (aligned once in 16).
        for out_offset in [offset, (offset + 5) % 16] {
            let (dw_at, fw_at) = run(offset, out_offset);
            let at = format!("input {offset} floats off, output {out_offset}");
            assert_eq!(bits(&dw_at), bits(&dw), "{backend}: depthwise, {at}");
            assert_eq!(bits(&fw_at), bits(&fw), "{backend}: forward, {at}");
        }
    }
}

fn eight_vectors(backend: Backend) {
    check::<Eight>(backend, 9, 13);
    check::<Eight>(backend, 2, 3);
}

fn strided(backend: Backend) {
    check::<Strided>(backend, 11, 10);
}

fn dilated(backend: Backend) {
    check::<Dilated>(backend, 12, 11);
}

fn two_vectors(backend: Backend) {
    check::<Two>(backend, 7, 9);
}

/// Where the plan realigns (and where it must not).
fn the_plan_says_where_it_realigns(backend: Backend) {
    let realigned = |plans: &[dsconv::PlanSummary]| {
        plans
            .iter()
            .find(|p| p.backend == backend)
            .is_some_and(|p| p.depthwise_realigned)
    };
    let avx512 = backend.name() == "avx512";
    assert_eq!(realigned(Eight::PLANS), avx512);
    assert_eq!(realigned(Strided::PLANS), avx512);
    assert!(!realigned(Two::PLANS));
}

fn main() {
    dsconv_testkit::run_backend_tests(dsconv_testkit::backend_tests![
        eight_vectors,
        strided,
        dilated,
        two_vectors,
        the_plan_says_where_it_realigns
    ]);
}
