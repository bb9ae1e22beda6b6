//! The multiplication constants: the seed's worked example, MobileNetV1's 13 separable
//! blocks, and proof that the constants are the multiplications the reference performs
//! (counted by running it with a number type that counts its multiplications).

use dsconv::reference::{self, Element};
use dsconv::{separable_conv, MulCount, SeparableConv};
use std::cell::Cell;
use std::ops::{Add, Mul};

#[separable_conv(dk = 5, m = 3, n = 256, h = 8, w = 8)]
struct Seed;

#[separable_conv(dk = 5, m = 3, n = 256)]
struct SeedFree;

// Usable in const items.
const SEED_TOTAL: usize = Seed::MULS;
const _: () = assert!(Seed::DEPTHWISE_MULS == 4_800 && SEED_TOTAL == 53_952);

fn seed_example_counts_are_exact() {
    assert_eq!(Seed::STANDARD_MULS, 1_228_800);
    assert_eq!(
        Seed::DEPTHWISE_MULS,
        4_800,
        "the seed text misprints this as 3,800"
    );
    assert_eq!(Seed::POINTWISE_MULS, 49_152);
    assert_eq!(Seed::MULS, 53_952);
    assert_eq!(Seed::DEPTHWISE_MULS_PER_PIXEL, 75);
    assert_eq!(Seed::POINTWISE_MULS_PER_PIXEL, 768);
    assert_eq!(Seed::STANDARD_MULS_PER_PIXEL, 19_200);
    let free = SeedFree::multiplications(8, 8);
    assert_eq!(
        free,
        MulCount {
            depthwise: 4_800,
            pointwise: 49_152,
            standard: 1_228_800
        }
    );
    assert_eq!(free.total(), 53_952);
    assert_eq!(format!("{:.1}", free.reduction()), "22.8");
    assert_eq!(SeedFree::output_size(8, 8), (8, 8));
}

// MobileNetV1-224 (Howard et al. 2017, Table 1): the 13 depthwise separable blocks.
#[separable_conv(dk = 3, m = 32, n = 64, h = 112, w = 112)]
struct Mb1;
#[separable_conv(dk = 3, m = 64, n = 128, stride = 2, h = 112, w = 112)]
struct Mb2;
#[separable_conv(dk = 3, m = 128, n = 128, h = 56, w = 56)]
struct Mb3;
#[separable_conv(dk = 3, m = 128, n = 256, stride = 2, h = 56, w = 56)]
struct Mb4;
#[separable_conv(dk = 3, m = 256, n = 256, h = 28, w = 28)]
struct Mb5;
#[separable_conv(dk = 3, m = 256, n = 512, stride = 2, h = 28, w = 28)]
struct Mb6;
#[separable_conv(dk = 3, m = 512, n = 512, h = 14, w = 14)]
struct Mb7to11;
#[separable_conv(dk = 3, m = 512, n = 1024, stride = 2, h = 14, w = 14)]
struct Mb12;
#[separable_conv(dk = 3, m = 1024, n = 1024, h = 7, w = 7)]
struct Mb13;

const MOBILENET_DEPTHWISE: usize = Mb1::DEPTHWISE_MULS
    + Mb2::DEPTHWISE_MULS
    + Mb3::DEPTHWISE_MULS
    + Mb4::DEPTHWISE_MULS
    + Mb5::DEPTHWISE_MULS
    + Mb6::DEPTHWISE_MULS
    + 5 * Mb7to11::DEPTHWISE_MULS
    + Mb12::DEPTHWISE_MULS
    + Mb13::DEPTHWISE_MULS;
const MOBILENET_POINTWISE: usize = Mb1::POINTWISE_MULS
    + Mb2::POINTWISE_MULS
    + Mb3::POINTWISE_MULS
    + Mb4::POINTWISE_MULS
    + Mb5::POINTWISE_MULS
    + Mb6::POINTWISE_MULS
    + 5 * Mb7to11::POINTWISE_MULS
    + Mb12::POINTWISE_MULS
    + Mb13::POINTWISE_MULS;

fn mobilenet_v1_separable_blocks_sum_to_the_paper() {
    assert_eq!(MOBILENET_DEPTHWISE, 17_385_984);
    assert_eq!(MOBILENET_POINTWISE, 539_492_352);
    // The stem (3x3 conv, 3 -> 32, stride 2, on 224x224) and the FC layer complete the
    // paper's 569M mult-adds.
    let stem = 112 * 112 * 3 * 3 * 3 * 32;
    let fc = 1024 * 1000;
    assert_eq!(stem, 10_838_016);
    assert_eq!(
        MOBILENET_DEPTHWISE + MOBILENET_POINTWISE + stem + fc,
        568_740_352
    );
    assert_eq!(Mb12::HO, 7);
    assert_eq!(Mb13::HO, 7);
}

thread_local! {
    static MULTIPLICATIONS: Cell<usize> = const { Cell::new(0) };
}

/// A number that counts every multiplication performed on it.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
struct Counted(f64);

impl Add for Counted {
    type Output = Counted;
    fn add(self, o: Counted) -> Counted {
        Counted(self.0 + o.0)
    }
}

impl Mul for Counted {
    type Output = Counted;
    #[allow(clippy::suspicious_arithmetic_impl)] // the `+ 1` counts the multiplication
    fn mul(self, o: Counted) -> Counted {
        MULTIPLICATIONS.with(|c| c.set(c.get() + 1));
        Counted(self.0 * o.0)
    }
}

impl Element for Counted {
    fn zero() -> Self {
        Counted(0.0)
    }
    fn relu(self) -> Self {
        Counted(self.0.relu())
    }
    fn relu6(self) -> Self {
        Counted(self.0.relu6())
    }
    fn hardswish(self) -> Self {
        Counted(self.0.hardswish())
    }
    fn silu(self) -> Self {
        Counted(self.0.silu())
    }
}

fn counted<T>(f: impl FnOnce() -> T) -> usize {
    MULTIPLICATIONS.with(|c| c.set(0));
    f();
    MULTIPLICATIONS.with(|c| c.get())
}

/// Runs the reference stages with `Counted` and compares the counts with `L`'s constants.
fn measured_counts<L: SeparableConv>(h: usize, w: usize) -> MulCount {
    let shape = L::SHAPE;
    let c = L::M * L::DEPTH_MULTIPLIER;
    let one = Counted(1.0);
    let input = vec![one; h * w * L::M];
    let dw = vec![one; c * L::DK * L::DK];
    let dwb = vec![one; c];
    let bias = L::BIAS.then_some(&dwb[..]);
    let (ho, wo) = L::output_size(h, w);
    let depthwise =
        counted(|| reference::depthwise(&shape, L::DW_ACTIVATION, &input, h, w, &dw, bias));
    let mid = vec![one; ho * wo * c];
    let pw = vec![one; L::N * c];
    let pwb = vec![one; L::N];
    let pbias = L::BIAS.then_some(&pwb[..]);
    let pointwise =
        counted(|| reference::pointwise(L::PW_ACTIVATION, &mid, ho * wo, c, L::N, &pw, pbias));
    let dense = vec![one; L::N * L::M * L::DK * L::DK];
    let standard = counted(|| reference::standard(&shape, &input, h, w, &dense));
    MulCount {
        depthwise,
        pointwise,
        standard,
    }
}

#[separable_conv(dk = 3, m = 7, n = 17, stride = 2)]
struct Odd;
#[separable_conv(
    dk = 7,
    m = 3,
    n = 8,
    padding = "valid",
    bias = true,
    activation = "relu6"
)]
struct ValidBias;
#[separable_conv(
    dk = 5,
    m = 9,
    n = 3,
    depth_multiplier = 2,
    stride = 2,
    padding = "valid"
)]
struct Multiplier;
#[separable_conv(dk = 1, m = 16, n = 1)]
struct OneByOne;
// TensorFlow padding, explicit pads, dilation (which changes the window, not the counts).
#[separable_conv(dk = 3, m = 4, n = 8, stride = 2, padding = "same_upper")]
struct Tf;
#[separable_conv(dk = 4, m = 3, n = 5, padding = [2, 0, 1, 1])]
struct Explicit;
#[separable_conv(dk = 3, m = 5, n = 6, dilation = 2, padding = "valid")]
struct Dilated;
#[separable_conv(dk = 3, m = 4, n = 8, stride = 2, padding = "same_upper", h = 8, w = 9)]
struct TfFixed;
const _: () = assert!(TfFixed::HO == 4 && TfFixed::WO == 5);
const _: () = assert!(TfFixed::DEPTHWISE_MULS == 4 * 5 * 4 * 9);

fn constants_equal_the_multiplications_the_reference_performs() {
    assert_eq!(measured_counts::<Seed>(8, 8), Seed::multiplications(8, 8));
    assert_eq!(
        measured_counts::<Seed>(8, 8).depthwise,
        Seed::DEPTHWISE_MULS
    );
    assert_eq!(measured_counts::<Seed>(8, 8).standard, Seed::STANDARD_MULS);
    for (h, w) in [(1, 1), (1, 9), (8, 1), (7, 7), (13, 10), (16, 16)] {
        assert_eq!(
            measured_counts::<SeedFree>(h, w),
            SeedFree::multiplications(h, w)
        );
        assert_eq!(
            measured_counts::<Odd>(h, w),
            Odd::multiplications(h, w),
            "{h}x{w}"
        );
        assert_eq!(
            measured_counts::<OneByOne>(h, w),
            OneByOne::multiplications(h, w)
        );
    }
    for (h, w) in [(1, 1), (2, 3), (8, 8), (9, 7), (16, 15)] {
        assert_eq!(
            measured_counts::<Tf>(h, w),
            Tf::multiplications(h, w),
            "{h}x{w}"
        );
        assert_eq!(Tf::output_size(h, w), (h.div_ceil(2), w.div_ceil(2)));
        assert_eq!(
            measured_counts::<Explicit>(h, w),
            Explicit::multiplications(h, w),
            "{h}x{w}"
        );
        // floor((H + 2 + 1 - 4) / 1) + 1 = H rows; floor((W + 0 + 1 - 4) / 1) + 1 = W - 2.
        if w >= 3 {
            assert_eq!(Explicit::output_size(h, w), (h, w - 2));
        }
    }
    for (h, w) in [(5, 5), (9, 7), (12, 9)] {
        let counts = Dilated::multiplications(h, w);
        assert_eq!(measured_counts::<Dilated>(h, w), counts, "{h}x{w}");
        assert_eq!(Dilated::output_size(h, w), (h - 4, w - 4));
        assert_eq!(counts.depthwise, (h - 4) * (w - 4) * 5 * 9);
    }
    assert_eq!(
        measured_counts::<TfFixed>(8, 9),
        TfFixed::multiplications(8, 9)
    );
    for (h, w) in [(7, 7), (8, 11), (12, 9)] {
        assert_eq!(
            measured_counts::<ValidBias>(h, w),
            ValidBias::multiplications(h, w)
        );
        assert_eq!(
            measured_counts::<Multiplier>(h, w),
            Multiplier::multiplications(h, w)
        );
    }
}

fn per_pixel_constants_follow_their_formulas() {
    assert_eq!(Multiplier::DEPTHWISE_MULS_PER_PIXEL, 9 * 2 * 5 * 5);
    assert_eq!(Multiplier::POINTWISE_MULS_PER_PIXEL, 9 * 2 * 3);
    assert_eq!(Multiplier::STANDARD_MULS_PER_PIXEL, 3 * 5 * 5 * 9);
    assert_eq!(Multiplier::output_size(12, 9), (4, 3));
    assert_eq!(Odd::output_size(13, 10), (7, 5));
    assert_eq!(Odd::STRIDE, 2);
    assert_eq!(
        ValidBias::output_size(6, 9),
        (0, 0),
        "smaller than the kernel"
    );
    assert_eq!(ValidBias::multiplications(6, 9).total(), 0);
    assert_eq!(
        Odd::multiplications(usize::MAX, 3).depthwise,
        usize::MAX,
        "saturates"
    );
}

fn main() {
    dsconv_testkit::run_tests(
        dsconv_testkit::tests![
            seed_example_counts_are_exact,
            mobilenet_v1_separable_blocks_sum_to_the_paper,
            constants_equal_the_multiplications_the_reference_performs,
            per_pixel_constants_follow_their_formulas
        ],
        &[],
    );
}
