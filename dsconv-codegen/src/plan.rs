//! The planner: pure functions from a [`LayerShape`] and an [`Isa`] to a [`Plan`] — the
//! decisions (unrolling, tiling, fusion buffer) that the emitters turn into code.
//!
//! Everything here is plain data, unit-tested without invoking the compiler.

use dsconv_runtime::LayerShape;

/// An instruction set a kernel is emitted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, one lane; compiles on every target.
    Scalar,
}

impl Isa {
    /// Short lower-case name used in generated identifiers and plans.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
        }
    }

    /// f32 lanes per vector register.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Scalar => 1,
        }
    }
}

/// Bytes of the depthwise tile that `forward` keeps hot between the two stages: half of a
/// typical 32 KiB L1 data cache, leaving the other half for weights and output.
pub const FUSION_TILE_BYTES: usize = 16 * 1024;
/// Largest tile (in pixels) `forward` processes at once: beyond it a larger tile gains
/// nothing and only delays the pointwise stage.
pub const MAX_TILE_PIXELS: usize = 256;
/// Largest buffer `forward` puts on the stack; a layer with more depthwise channels than fit
/// uses a heap buffer per call instead.
pub const MAX_STACK_BYTES: usize = 64 * 1024;

/// Where the fused `forward` keeps the depthwise tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileBuffer {
    /// A stack array: no heap allocation per call.
    Stack,
    /// A heap buffer allocated per call (only for layers whose single pixel of depthwise
    /// output exceeds [`MAX_STACK_BYTES`]).
    Heap,
}

/// How the depthwise stage is computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthwisePlan {
    /// `dk * dk`.
    pub taps: usize,
    /// Zeros padded before the first row and column.
    pub pad: usize,
    /// Interior pixels (whose window lies inside the image) run a kernel with every tap
    /// unrolled and no bounds logic; border pixels clip the tap range.
    pub unrolled_interior_taps: usize,
    /// Loads issued per multiply-add in the interior inner loop (input + weight).
    pub loads_per_fma: f64,
}

/// How the pointwise stage is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointwisePlan {
    /// Reduction length `M * DM`.
    pub k: usize,
    /// Output channels.
    pub n: usize,
}

/// How `forward` chains the two stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FusionPlan {
    /// Output pixels per tile: the depthwise output of a tile is computed into a buffer and
    /// consumed by the pointwise stage at once, while it is still in L1.
    pub tile_pixels: usize,
    /// Floats in the tile buffer, `tile_pixels * M * DM`.
    pub buffer_floats: usize,
    /// Where the buffer lives.
    pub buffer: TileBuffer,
}

/// Everything an emitter needs to generate one backend of one layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// Target instruction set.
    pub isa: Isa,
    /// The layer.
    pub shape: LayerShape,
    /// Depthwise output channels, `M * DM`.
    pub channels: usize,
    /// Depthwise strategy.
    pub depthwise: DepthwisePlan,
    /// Pointwise strategy.
    pub pointwise: PointwisePlan,
    /// Fusion strategy.
    pub fusion: FusionPlan,
    /// Useful multiplications / lane-multiplications issued (1.0 for scalar).
    pub lane_utilisation: f64,
}

impl Plan {
    /// Plans `shape` for `isa`. The shape must be valid (as `#[separable_conv]` checks).
    pub fn for_spec(shape: &LayerShape, isa: Isa) -> Plan {
        let channels = shape.m * shape.depth_multiplier;
        let taps = shape.dk * shape.dk;
        let tile_pixels = (FUSION_TILE_BYTES / 4 / channels).clamp(1, MAX_TILE_PIXELS);
        let buffer_floats = tile_pixels * channels;
        let buffer = if buffer_floats * 4 <= MAX_STACK_BYTES {
            TileBuffer::Stack
        } else {
            TileBuffer::Heap
        };
        Plan {
            isa,
            shape: *shape,
            channels,
            depthwise: DepthwisePlan {
                taps,
                pad: shape.pad(),
                unrolled_interior_taps: taps,
                loads_per_fma: 2.0,
            },
            pointwise: PointwisePlan {
                k: channels,
                n: shape.n,
            },
            fusion: FusionPlan {
                tile_pixels,
                buffer_floats,
                buffer,
            },
            lane_utilisation: 1.0,
        }
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.shape;
        write!(
            f,
            "{isa}: dw {dk}x{dk} s{st} {pad} over {c} ch ({taps} taps unrolled in the interior, \
             {lpf} loads/FMA); pw {k}->{n}; fused tiles of {tp} px ({buf:?} buffer of {bf} f32); \
             lane utilisation {lu:.0}%",
            isa = self.isa.name(),
            dk = s.dk,
            st = s.stride,
            pad = s.padding.name(),
            c = self.channels,
            taps = self.depthwise.unrolled_interior_taps,
            lpf = self.depthwise.loads_per_fma,
            k = self.pointwise.k,
            n = self.pointwise.n,
            tp = self.fusion.tile_pixels,
            buf = self.fusion.buffer,
            bf = self.fusion.buffer_floats,
            lu = self.lane_utilisation * 100.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dsconv_runtime::Padding;

    fn shape(dk: usize, m: usize, n: usize, dm: usize) -> LayerShape {
        LayerShape {
            dk,
            m,
            n,
            stride: 1,
            padding: Padding::Same,
            depth_multiplier: dm,
            fixed_size: None,
        }
    }

    #[test]
    fn seed_layer_fits_one_tile_on_the_stack() {
        let p = Plan::for_spec(&shape(5, 3, 256, 1), Isa::Scalar);
        assert_eq!(p.channels, 3);
        assert_eq!(p.depthwise.taps, 25);
        assert_eq!(p.depthwise.pad, 2);
        assert_eq!(p.fusion.tile_pixels, MAX_TILE_PIXELS);
        assert_eq!(p.fusion.buffer, TileBuffer::Stack);
    }

    #[test]
    fn tile_shrinks_with_channels_and_stays_within_l1_budget() {
        let p = Plan::for_spec(&shape(3, 1024, 1024, 1), Isa::Scalar);
        assert_eq!(p.fusion.tile_pixels, 4);
        assert!(p.fusion.buffer_floats * 4 <= FUSION_TILE_BYTES);
        let p = Plan::for_spec(&shape(3, 512, 8, 2), Isa::Scalar);
        assert_eq!(p.channels, 1024);
        assert_eq!(p.fusion.tile_pixels, 4);
    }

    #[test]
    fn huge_channel_counts_move_the_buffer_to_the_heap() {
        let p = Plan::for_spec(&shape(3, 100_000, 1, 1), Isa::Scalar);
        assert_eq!(p.fusion.tile_pixels, 1);
        assert_eq!(p.fusion.buffer, TileBuffer::Heap);
    }

    #[test]
    fn plan_displays_its_decisions() {
        let text = Plan::for_spec(&shape(5, 3, 256, 1), Isa::Scalar).to_string();
        assert!(text.contains("scalar: dw 5x5 s1 same over 3 ch"), "{text}");
        assert!(text.contains("25 taps"), "{text}");
    }
}
