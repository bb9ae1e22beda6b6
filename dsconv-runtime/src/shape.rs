//! Shape rules: padding geometry, output sizes and multiplication counts.
//!
//! This module is the single place that decides these rules. The `#[separable_conv]` macro
//! calls the same `const fn`s at compile time (for its constants and its overflow errors)
//! that generated layers and the runtime call at run time.

/// How the border of the image is treated. Every rule pads zeros; they differ in how many,
/// on which side. `window` below is the dilated kernel extent, `dk_eff = (dk - 1) * d + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Pad `(dk_eff - 1) / 2` zeros on every side (symmetric, PyTorch's
    /// `padding = (dk - 1) // 2 * dilation`). For odd `dk` the output is
    /// `ceil(H / stride) x ceil(W / stride)`. An even `dk` with `Same` is rejected at
    /// compile time by `#[separable_conv]`: no symmetric padding keeps the size for an even
    /// kernel (use `SameUpper`).
    Same,
    /// No padding: the output is `floor((H - dk_eff) / stride) + 1`, and an input smaller
    /// than the kernel is an error.
    Valid,
    /// TensorFlow / Keras / TFLite "SAME", ONNX `SAME_UPPER`: the output is
    /// `ceil(H / stride)`; `total = max((out - 1) * stride + dk_eff - H, 0)` zeros, `total / 2`
    /// (rounded down) before and the rest after. The pads depend on the input size (at
    /// stride 2 on an even size, 3x3: 0 before, 1 after).
    SameUpper,
    /// ONNX `SAME_LOWER`: as [`SameUpper`](Self::SameUpper) with `ceil(total / 2)` before.
    SameLower,
    /// Explicit zeros per side (PyTorch's `padding = (ph, pw)` is `[ph, pw, ph, pw]`; Keras'
    /// `ZeroPadding2D(((0, 1), (0, 1)))` then "valid" is `[0, 0, 1, 1]`); the output is
    /// `floor((H + top + bottom - dk_eff) / stride) + 1`.
    Explicit(Pads),
}

/// Zeros padded on each side of the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Pads {
    /// Rows above the image.
    pub top: usize,
    /// Columns left of it.
    pub left: usize,
    /// Rows below it.
    pub bottom: usize,
    /// Columns right of it.
    pub right: usize,
}

impl Padding {
    /// The attribute spelling of this padding (`"same"`, `"valid"`, `"same_upper"`,
    /// `"same_lower"`, or `"explicit"` for `[top, left, bottom, right]`).
    pub const fn name(self) -> &'static str {
        match self {
            Padding::Same => "same",
            Padding::Valid => "valid",
            Padding::SameUpper => "same_upper",
            Padding::SameLower => "same_lower",
            Padding::Explicit(_) => "explicit",
        }
    }

    /// Whether the pads depend on the input size (`SameUpper` and `SameLower` with a
    /// stride above 1; at stride 1 their total is always `dk_eff - 1`).
    pub const fn depends_on_size(self, stride: usize) -> bool {
        matches!(self, Padding::SameUpper | Padding::SameLower) && stride > 1
    }

    /// Zeros `(before, after)` along an axis of `input` values for a window of `window`
    /// values at `stride` (`Explicit` pads are per side: see [`LayerShape::pads`]).
    pub const fn axis(self, input: usize, window: usize, stride: usize) -> (usize, usize) {
        match self {
            Padding::Same => ((window - 1) / 2, (window - 1) / 2),
            Padding::Valid => (0, 0),
            Padding::Explicit(_) => (0, 0),
            Padding::SameUpper | Padding::SameLower => {
                if stride == 0 || input == 0 {
                    return (0, 0);
                }
                let out = input.div_ceil(stride);
                let reach = (out - 1).saturating_mul(stride).saturating_add(window);
                let total = reach.saturating_sub(input);
                if matches!(self, Padding::SameUpper) {
                    (total / 2, total - total / 2)
                } else {
                    (total.div_ceil(2), total / 2)
                }
            }
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
    /// Dilation of the depthwise stage: its taps are `dilation` apart (1: adjacent).
    pub dilation: usize,
    /// Border rule.
    pub padding: Padding,
    /// Depthwise output channels per input channel.
    pub depth_multiplier: usize,
    /// Fixed input size `(h, w)`, if the layer was declared with one.
    pub fixed_size: Option<(usize, usize)>,
}

impl LayerShape {
    /// The extent the dilated kernel covers, `(dk - 1) * dilation + 1` (saturating).
    pub const fn window(&self) -> usize {
        self.dk
            .saturating_sub(1)
            .saturating_mul(self.dilation)
            .saturating_add(1)
    }

    /// The zeros padded on each side of an `h x w` input.
    pub const fn pads(&self, h: usize, w: usize) -> Pads {
        if let Padding::Explicit(p) = self.padding {
            return p;
        }
        let window = self.window();
        let (top, bottom) = self.padding.axis(h, window, self.stride);
        let (left, right) = self.padding.axis(w, window, self.stride);
        Pads {
            top,
            left,
            bottom,
            right,
        }
    }

    /// Channels of the depthwise output, `m * depth_multiplier` (None on overflow).
    pub const fn depthwise_channels(&self) -> Option<usize> {
        self.m.checked_mul(self.depth_multiplier)
    }

    /// The depthwise geometry in words, with the pads per side: `"3x3, stride 2, padding
    /// \"same_upper\": (top, left, bottom, right) = (0, 0, 1, 1) on even sizes, ..."`. Used by
    /// the plan reports.
    pub fn describe_geometry(&self) -> String {
        let window = self.window();
        let mut out = format!("{dk}x{dk}, stride {}", self.stride, dk = self.dk);
        if self.dilation > 1 {
            out += &format!(", dilation {} (window {window}x{window})", self.dilation);
        }
        out += &format!(", padding \"{}\"", self.padding.name());
        let sides = |p: Pads| format!("({}, {}, {}, {})", p.top, p.left, p.bottom, p.right);
        match self.fixed_size {
            Some((h, w)) => {
                out += &format!(": (top, left, bottom, right) = {}", sides(self.pads(h, w)))
            }
            None if self.padding.depends_on_size(self.stride) => {
                // The pads along an axis depend on the size modulo the stride.
                let mut cases: Vec<(usize, usize)> = Vec::new();
                for x in window..window + 2 * self.stride {
                    let pair = self.padding.axis(x, window, self.stride);
                    if !cases.contains(&pair) {
                        cases.push(pair);
                    }
                }
                let list: Vec<String> = cases
                    .iter()
                    .map(|(b, a)| format!("{b} before and {a} after"))
                    .collect();
                out += &format!(
                    ": by the input size, along each axis {} (computed per call)",
                    list.join(", or ")
                );
            }
            None => {
                out += &format!(
                    ": (top, left, bottom, right) = {}",
                    sides(self.pads(window, window))
                )
            }
        }
        out
    }

    /// The smallest input height and width with an output pixel (1 for the "same" rules;
    /// the window less the explicit pads; the window for "valid"). Larger sizes all have
    /// one.
    pub const fn min_input(&self) -> (usize, usize) {
        let window = self.window();
        let (mut h, mut w) = (1, 1);
        while h < window && self.output_size(h, window).is_none() {
            h += 1;
        }
        while w < window && self.output_size(window, w).is_none() {
            w += 1;
        }
        (h, w)
    }

    /// Output height and width for an `h x w` input, or None when the input yields no
    /// output pixel (a zero size, or an input smaller than the padded kernel).
    pub const fn output_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let p = self.pads(h, w);
        let window = self.window();
        match (
            output_extent(h, window, self.stride, p.top, p.bottom),
            output_extent(w, window, self.stride, p.left, p.right),
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

/// Output extent along one axis: `floor((input + before + after - window) / stride) + 1`,
/// or None when the axis yields no output (zero input, or an input smaller than the padded
/// window).
pub const fn output_extent(
    input: usize,
    window: usize,
    stride: usize,
    before: usize,
    after: usize,
) -> Option<usize> {
    if input == 0 || window == 0 || stride == 0 {
        return None;
    }
    // In u128 so that a huge input cannot overflow.
    let padded = input as u128 + before as u128 + after as u128;
    if padded < window as u128 {
        return None;
    }
    let out = (padded - window as u128) / stride as u128 + 1;
    if out > usize::MAX as u128 {
        return None;
    }
    Some(out as usize)
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
            dilation: 1,
            padding: Padding::Same,
            depth_multiplier: 1,
            fixed_size: None,
        }
    }

    fn extent(input: usize, dk: usize, stride: usize, padding: Padding) -> Option<usize> {
        let shape = LayerShape {
            dk,
            stride,
            padding,
            fixed_size: None,
            ..seed()
        };
        shape.output_size(input, input).map(|(h, _)| h)
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
                    let e = extent(h, dk, stride, Padding::Same).unwrap();
                    assert_eq!(e, h.div_ceil(stride), "dk {dk} s {stride} h {h}");
                }
            }
        }
    }

    #[test]
    fn valid_padding_rejects_inputs_smaller_than_the_kernel() {
        assert_eq!(extent(4, 5, 1, Padding::Valid), None);
        assert_eq!(extent(5, 5, 1, Padding::Valid), Some(1));
        assert_eq!(extent(8, 3, 2, Padding::Valid), Some(3));
        assert_eq!(extent(0, 1, 1, Padding::Same), None);
    }

    #[test]
    fn same_upper_is_tensorflow_same() {
        // 3x3 stride 2: an even size pads 0 before and 1 after, an odd one 1 and 1.
        let s = LayerShape {
            dk: 3,
            stride: 2,
            padding: Padding::SameUpper,
            ..seed()
        };
        let p = s.pads(8, 9);
        assert_eq!((p.top, p.bottom, p.left, p.right), (0, 1, 1, 1));
        assert_eq!(s.output_size(8, 9), Some((4, 5)));
        let lower = LayerShape {
            padding: Padding::SameLower,
            ..s
        };
        let p = lower.pads(8, 9);
        assert_eq!((p.top, p.bottom, p.left, p.right), (1, 0, 1, 1));
        // Even kernel, stride 1: total 3, one before and two after (TensorFlow's rule).
        let even = LayerShape {
            dk: 4,
            stride: 1,
            ..s
        };
        assert_eq!(even.pads(8, 8).top, 1);
        assert_eq!(even.pads(8, 8).bottom, 2);
        assert_eq!(even.output_size(8, 8), Some((8, 8)));
        // Every size: the output is ceil(H / stride), for both rules and dilations.
        for dk in 1..=6 {
            for stride in 1..=3 {
                for dilation in 1..=3 {
                    for padding in [Padding::SameUpper, Padding::SameLower] {
                        let s = LayerShape {
                            dk,
                            stride,
                            dilation,
                            padding,
                            ..seed()
                        };
                        for h in 1..30 {
                            assert_eq!(
                                s.output_size(h, h),
                                Some((h.div_ceil(stride), h.div_ceil(stride)))
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn dilation_widens_the_window_but_not_the_counts() {
        let s = LayerShape {
            dk: 3,
            dilation: 2,
            padding: Padding::Valid,
            ..seed()
        };
        assert_eq!(s.window(), 5);
        assert_eq!(s.output_size(9, 9), Some((5, 5)));
        let same = LayerShape {
            padding: Padding::Same,
            ..s
        };
        assert_eq!(same.pads(9, 9).top, 2);
        assert_eq!(same.output_size(9, 9), Some((9, 9)));
        let c = same.multiplications(9, 9).unwrap();
        assert_eq!(c.depthwise, 81 * 3 * 9);
    }

    #[test]
    fn explicit_pads_per_side() {
        let s = LayerShape {
            dk: 3,
            stride: 2,
            padding: Padding::Explicit(Pads {
                top: 0,
                left: 0,
                bottom: 1,
                right: 1,
            }),
            ..seed()
        };
        // Keras MobileNet's ZeroPadding2D(((0, 1), (0, 1))) then a valid 3x3 stride 2.
        assert_eq!(s.output_size(8, 8), Some((4, 4)));
        assert_eq!(s.output_size(1, 1), None);
        assert_eq!(s.output_size(2, 2), Some((1, 1)));
    }

    #[test]
    fn overflowing_counts_are_none() {
        let mut s = seed();
        s.m = usize::MAX / 2;
        assert_eq!(s.depthwise_muls_per_pixel(), None);
        assert_eq!(seed().multiplications(usize::MAX, usize::MAX), None);
    }
}
