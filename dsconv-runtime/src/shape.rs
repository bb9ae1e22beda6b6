//! Shape rules: padding geometry, output sizes and multiplication counts.
//!
//! This module is the single place that decides these rules. The `#[separable_conv]` macro
//! calls the same `const fn`s at compile time (for its constants and its overflow errors)
//! that generated layers and the runtime call at run time.

/// How the border of the image is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Pad `(dk - 1) / 2` zeros on every side (symmetric, PyTorch's `padding=(dk-1)//2`).
    /// For odd `dk` the output is `ceil(H / stride) x ceil(W / stride)`. An even `dk` with
    /// `Same` is rejected at compile time by `#[separable_conv]`, because no symmetric
    /// padding keeps the size for an even kernel.
    Same,
    /// No padding: the output is `floor((H - dk) / stride) + 1`, and an input smaller than
    /// the kernel is an error.
    Valid,
}

impl Padding {
    /// The attribute spelling of this padding (`"same"` or `"valid"`).
    pub const fn name(self) -> &'static str {
        match self {
            Padding::Same => "same",
            Padding::Valid => "valid",
        }
    }
}

/// The static shape of a separable layer, as declared by `#[separable_conv]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LayerShape {
    /// Kernel size of the depthwise stage (`dk x dk`).
    pub dk: usize,
    /// Input channels.
    pub m: usize,
    /// Output channels.
    pub n: usize,
    /// Stride of the depthwise stage (1 or 2).
    pub stride: usize,
    /// Border rule.
    pub padding: Padding,
    /// Depthwise output channels per input channel.
    pub depth_multiplier: usize,
    /// Fixed input size `(h, w)`, if the layer was declared with one.
    pub fixed_size: Option<(usize, usize)>,
}

impl LayerShape {
    /// Zeros added before the first row and column (and after the last).
    pub const fn pad(&self) -> usize {
        pad_before(self.dk, self.padding)
    }

    /// Channels of the depthwise output, `m * depth_multiplier` (None on overflow).
    pub const fn depthwise_channels(&self) -> Option<usize> {
        self.m.checked_mul(self.depth_multiplier)
    }

    /// Output height and width for an `h x w` input, or None when the input yields no
    /// output pixel (a zero size, or `Valid` padding with the input smaller than the kernel).
    pub const fn output_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        match (
            output_extent(h, self.dk, self.stride, self.padding),
            output_extent(w, self.dk, self.stride, self.padding),
        ) {
            (Some(ho), Some(wo)) => Some((ho, wo)),
            _ => None,
        }
    }

    /// Depthwise multiplications per output pixel: `m * depth_multiplier * dk * dk`.
    pub const fn depthwise_muls_per_pixel(&self) -> Option<usize> {
        match self.depthwise_channels() {
            Some(c) => checked_mul3(c, self.dk, self.dk),
            None => None,
        }
    }

    /// Pointwise multiplications per output pixel: `m * depth_multiplier * n`.
    pub const fn pointwise_muls_per_pixel(&self) -> Option<usize> {
        match self.depthwise_channels() {
            Some(c) => c.checked_mul(self.n),
            None => None,
        }
    }

    /// Multiplications per output pixel of the standard `dk x dk` convolution from `m` to
    /// `n` channels that the separable layer replaces: `n * dk * dk * m`.
    pub const fn standard_muls_per_pixel(&self) -> Option<usize> {
        match checked_mul3(self.n, self.dk, self.dk) {
            Some(x) => x.checked_mul(self.m),
            None => None,
        }
    }

    /// Multiplications for a whole `h x w` input (zero when it yields no output pixel),
    /// or None on overflow.
    pub const fn multiplications(&self, h: usize, w: usize) -> Option<MulCount> {
        let pixels = match self.output_size(h, w) {
            Some((ho, wo)) => match ho.checked_mul(wo) {
                Some(p) => p,
                None => return None,
            },
            None => 0,
        };
        match (
            self.depthwise_muls_per_pixel(),
            self.pointwise_muls_per_pixel(),
            self.standard_muls_per_pixel(),
        ) {
            (Some(d), Some(p), Some(s)) => {
                match (
                    d.checked_mul(pixels),
                    p.checked_mul(pixels),
                    s.checked_mul(pixels),
                ) {
                    (Some(depthwise), Some(pointwise), Some(standard)) => {
                        if depthwise.checked_add(pointwise).is_none() {
                            return None;
                        }
                        Some(MulCount {
                            depthwise,
                            pointwise,
                            standard,
                        })
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Multiplication counts of a layer on one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MulCount {
    /// Multiplications of the depthwise stage (padding taps included: a zero-padded tap is
    /// a multiplication in the standard accounting of the seed text and of MobileNet).
    pub depthwise: usize,
    /// Multiplications of the pointwise (1x1) stage.
    pub pointwise: usize,
    /// Multiplications of the standard convolution the layer replaces.
    pub standard: usize,
}

impl MulCount {
    /// Multiplications of the separable layer: `depthwise + pointwise`, saturating at
    /// `usize::MAX` (as every field does when a count overflows).
    pub const fn total(&self) -> usize {
        self.depthwise.saturating_add(self.pointwise)
    }

    /// How many times fewer multiplications the separable layer needs than the standard
    /// convolution (`standard / total`).
    pub fn reduction(&self) -> f64 {
        self.standard as f64 / self.total() as f64
    }
}

/// Zeros padded before the first row/column for kernel size `dk`.
pub const fn pad_before(dk: usize, padding: Padding) -> usize {
    match padding {
        Padding::Same => (dk - 1) / 2,
        Padding::Valid => 0,
    }
}

/// Output extent along one axis: `floor((input + 2 * pad - dk) / stride) + 1`, or None when
/// the axis yields no output (zero input, or an input smaller than the padded kernel).
pub const fn output_extent(
    input: usize,
    dk: usize,
    stride: usize,
    padding: Padding,
) -> Option<usize> {
    if input == 0 || dk == 0 || stride == 0 {
        return None;
    }
    let pad = pad_before(dk, padding);
    // In u128 so that a huge input cannot overflow; the result fits in usize because
    // 2 * pad <= dk - 1 makes it at most `input`.
    let padded = input as u128 + 2 * pad as u128;
    if padded < dk as u128 {
        return None;
    }
    Some(((padded - dk as u128) / stride as u128 + 1) as usize)
}

const fn checked_mul3(a: usize, b: usize, c: usize) -> Option<usize> {
    match a.checked_mul(b) {
        Some(x) => x.checked_mul(c),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_saturates_instead_of_overflowing() {
        let huge = MulCount {
            depthwise: usize::MAX - 1,
            pointwise: 5,
            standard: usize::MAX,
        };
        assert_eq!(huge.total(), usize::MAX);
    }

    fn seed() -> LayerShape {
        LayerShape {
            dk: 5,
            m: 3,
            n: 256,
            stride: 1,
            padding: Padding::Same,
            depth_multiplier: 1,
            fixed_size: None,
        }
    }

    #[test]
    fn seed_counts_match_the_corrected_worked_example() {
        let c = seed().multiplications(8, 8).unwrap();
        assert_eq!(c.standard, 1_228_800);
        assert_eq!(c.depthwise, 4_800);
        assert_eq!(c.pointwise, 49_152);
        assert_eq!(c.total(), 53_952);
    }

    #[test]
    fn same_padding_gives_ceil_of_input_over_stride() {
        for dk in [1, 3, 5, 7] {
            for stride in [1, 2] {
                for h in 1..40 {
                    let e = output_extent(h, dk, stride, Padding::Same).unwrap();
                    assert_eq!(e, h.div_ceil(stride), "dk {dk} s {stride} h {h}");
                }
            }
        }
    }

    #[test]
    fn valid_padding_rejects_inputs_smaller_than_the_kernel() {
        assert_eq!(output_extent(4, 5, 1, Padding::Valid), None);
        assert_eq!(output_extent(5, 5, 1, Padding::Valid), Some(1));
        assert_eq!(output_extent(8, 3, 2, Padding::Valid), Some(3));
        assert_eq!(output_extent(0, 1, 1, Padding::Same), None);
    }

    #[test]
    fn overflowing_counts_are_none() {
        let mut s = seed();
        s.m = usize::MAX / 2;
        assert_eq!(s.depthwise_muls_per_pixel(), None);
        assert_eq!(seed().multiplications(usize::MAX, usize::MAX), None);
    }
}
