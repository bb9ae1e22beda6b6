//! The planner's report, shared by the code generator (which fills it at compile time) and
//! users (`PLAN_<BACKEND>` constants, `SeparableConv::PLANS`): typed strategies and one
//! `Display`.

use crate::Backend;
use std::fmt;

/// How the depthwise stage is vectorised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepthwiseStrategy {
    /// One lane: channels in a loop, taps unrolled.
    Scalar,
    /// Channels across vector lanes (NHWC), a block of output pixels along the row per
    /// channel vector, each input vector loaded once per kernel row and reused for every tap
    /// it meets; when the channels do not fill the last vector, it overlaps the one before
    /// (or, alone, is masked).
    ChannelVectors,
    /// [`DepthwiseStrategy::ChannelVectors`] for a depth multiplier `DM > 1`: output channel
    /// `o` reads input channel `o / DM`, so the `lanes` output channels of a vector read a
    /// short run of consecutive input channels; each input load takes those (a narrower
    /// load) and one permute repeats every channel up to `DM` times. When `DM` does not
    /// divide the lanes, a vector starts mid-way through a channel's copies: each vector has
    /// its own load offset and permute, from a table the plan computes.
    ExpandedChannelVectors,
    /// Few channels (channel vectors would leave most lanes idle, as for the seed's m = 3):
    /// the input rows a pixel run reads are copied once into a zero-padded planar scratch
    /// (`[channel][row][column phase][column / stride]`), then each vector holds `lanes`
    /// consecutive output columns of one channel, every tap one unaligned load and one FMA
    /// with the channel's weights held in registers; no border cases remain.
    WidthVectors,
}

impl DepthwiseStrategy {
    /// In words, for plans.
    pub fn describe(self) -> &'static str {
        match self {
            DepthwiseStrategy::Scalar => "scalar",
            DepthwiseStrategy::ChannelVectors => "channel vectors, sliding window along the row",
            DepthwiseStrategy::ExpandedChannelVectors => {
                "channel vectors, sliding window along the row; each input load \
                 holds the few input channels a vector reads, repeated DM times by one permute"
            }
            DepthwiseStrategy::WidthVectors => {
                "width vectors (output columns across lanes) over a planar copy"
            }
        }
    }
}

/// The order in which the pointwise stage walks its register tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointwiseOrder {
    /// For each block of pixel rows, every panel of weights: the rows' inputs stay in L1
    /// while the weights stream from L2, and each block's output is written in one
    /// contiguous run. Chosen when the weights fit in L2 beside a tile and the register
    /// tile has at least `MIN_ROWS_FOR_ROWS_OUTER` (12, in the planner) rows.
    RowsOuter,
    /// For each panel of weights, every block of rows of a tile: a panel is read from memory
    /// once per tile and stays in L1 or L2 across the blocks. Chosen otherwise (weights too
    /// large for L2, or short register tiles such as AVX2's 6 rows and scalar's 1).
    PanelsOuter,
}

impl PointwiseOrder {
    /// Words for the plan's description.
    pub fn describe(self) -> &'static str {
        match self {
            PointwiseOrder::RowsOuter => "pixel rows outer",
            PointwiseOrder::PanelsOuter => "weight panels outer",
        }
    }
}

/// What the pointwise micro-kernel prefetches while it computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointwisePrefetch {
    /// Nothing: no stable prefetch intrinsic (NEON, scalar), or a reduction short enough
    /// for the weights to sit in registers.
    Nothing,
    /// Rows outer: the first panel's call brings the next block's input rows (one
    /// contiguous run of `rows * k` floats) into L1.
    NextRowsToL1,
    /// Panels outer: the calls of the last two full blocks of rows bring the next weight
    /// panel into L2, so it is not read from memory by the next panel's first block.
    NextPanelToL2,
}

impl PointwisePrefetch {
    /// Words for the plan's description.
    pub fn describe(self) -> &'static str {
        match self {
            PointwisePrefetch::Nothing => "no prefetch",
            PointwisePrefetch::NextRowsToL1 => "next rows prefetched to L1",
            PointwisePrefetch::NextPanelToL2 => "next weight panel prefetched to L2",
        }
    }
}

/// What the planner decided for one backend of one layer: visible, so that waste is
/// reported rather than hidden. Every generated layer has one per backend it was compiled
/// for ([`crate::SeparableConv::plan`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanSummary {
    /// The backend.
    pub backend: Backend,
    /// The depthwise geometry with its pads per side
    /// ([`LayerShape::describe_geometry`](crate::LayerShape::describe_geometry)).
    pub geometry: &'static str,
    /// The activation after each stage.
    pub activations: crate::Activations,
    /// f32 lanes per vector.
    pub lanes: usize,
    /// Depthwise strategy.
    pub depthwise_strategy: DepthwiseStrategy,
    /// Output pixels computed together by the interior depthwise kernel (the sliding window:
    /// each input vector is loaded once per kernel row and reused for every tap it meets);
    /// for width vectors, the output columns one vector holds.
    pub depthwise_pixels_per_block: usize,
    /// Vectors per pixel covering the depthwise channels (the last one, if partial,
    /// overlapping the one before or masked);
    /// for width vectors, the channel count (each channel in its own vectors).
    pub depthwise_channel_vectors: usize,
    /// Loads (input + weight) per multiply-add in the interior depthwise inner loop.
    pub depthwise_loads_per_fma: f64,
    /// Whether the depthwise kernel loops over the kernel rows at run time, one row's taps
    /// unrolled (large kernels); else every tap is unrolled.
    pub depthwise_row_loop: bool,
    /// Useful depthwise multiplications / lane-multiplications issued.
    pub depthwise_lane_utilisation: f64,
    /// Floats from one tap's packed depthwise weights to the next: the channels padded to
    /// whole vectors, plus one cache line when that spans a multiple of 2 KiB (so the taps'
    /// rows do not all fall in one L1 set).
    pub depthwise_weight_stride: usize,
    /// The channels padded to whole vectors: the weight stride without its skew.
    pub depthwise_padded_channels: usize,
    /// Channel vectors per pass over a row of the channel-vector depthwise kernel (their
    /// weights and a block's window kept in L1 while the pass walks the row's blocks): all
    /// of them when they fit.
    pub depthwise_channel_group: usize,
    /// The widest input (columns) on which those passes each walk the whole run in turn,
    /// their input rows staying in L1 from one output row to the next (else each row takes
    /// every pass); 0 when they never do ([`PassRuns`](crate::drive::PassRuns)).
    pub depthwise_passes_outer_up_to: usize,
    /// Output rows the interior depthwise block covers: 2 where two whole rows whose
    /// windows lie inside the image run together (their middle input rows loaded once), else
    /// 1.
    pub depthwise_rows_per_block: usize,
    /// Whether the depthwise channel vectors may follow the input's address: a depthwise
    /// call whose input and output start equally far into a vector (two `Vec`s from
    /// `malloc`) gets aligned loads and stores, its two end runs of channels as masked
    /// vectors (one vector more per pixel). Not inside `forward`, whose depthwise output is
    /// aligned scratch. The same bits either way.
    pub depthwise_realigned: bool,
    /// Whether the last depthwise channel vector, where the channels do not fill it, is a
    /// whole vector over the last `lanes` channels, overlapping the one before (those
    /// channels computed again, to the same bits), instead of a masked one.
    pub depthwise_overlapped_tail: bool,
    /// Pointwise micro-kernel rows (output pixels).
    pub pointwise_rows: usize,
    /// Pointwise micro-kernel width in output channels (vectors x lanes).
    pub pointwise_cols: usize,
    /// The order the pointwise stage walks its register tiles in.
    pub pointwise_order: PointwiseOrder,
    /// What the pointwise micro-kernel prefetches while it computes.
    pub pointwise_prefetch: PointwisePrefetch,
    /// Where the pointwise stage walks rows outer but its weights are large: each thread's
    /// first item on these weights (the first of its share, or of a panel group; its weights
    /// may come from L3 or memory) walks weight panels outer instead, each panel fetched once
    /// for every block of rows, with this prefetch.
    pub pointwise_cold_first_chunk: Option<PointwisePrefetch>,
    /// Whether the pointwise reduction is short enough that a block's weights are loaded
    /// into registers once and each row of pixels is finished in turn.
    pub pointwise_weights_in_registers: bool,
    /// Whether each fused tile's pointwise stage prefetches into L2 the input rows the next
    /// tile's depthwise stage reads (spread over the micro-kernel's reduction steps).
    pub pointwise_prefetches_next_input: bool,
    /// Loads per multiply-add in the pointwise inner loop.
    pub pointwise_loads_per_fma: f64,
    /// Useful pointwise multiplications / lane-multiplications issued.
    pub pointwise_lane_utilisation: f64,
    /// How a call is divided into the thread pool's work items ([`SplitRule::split`](crate::SplitRule::split) gives
    /// the split of an image size on a thread count): at most `split.tile_pixels` per fused tile of `forward`
    /// (a depthwise tile kept in cache, then consumed by the pointwise stage).
    pub split: crate::SplitRule,
    /// Whether the pointwise store adds a skip input (`residual = true`).
    pub residual: bool,
    /// A `#[pointwise_conv]` layer: no depthwise stage (the depthwise fields describe
    /// nothing), and `split.tile_pixels` is the length of the pointwise stage's chunks.
    pub pointwise_only: bool,
}

impl PlanSummary {
    /// The pointwise stage's part of the report.
    fn pointwise_part(&self) -> String {
        format!(
            "activation {}{}: {}x{} register tile{}, {}, {}{}{}, {:.2} loads/FMA, lane utilisation {:.1}%",
            self.activations.pointwise.name(),
            if self.residual { " then + skip" } else { "" },
            self.pointwise_rows,
            self.pointwise_cols,
            if self.pointwise_weights_in_registers {
                " (weights in registers)"
            } else {
                ""
            },
            self.pointwise_order.describe(),
            self.pointwise_prefetch.describe(),
            match self.pointwise_cold_first_chunk {
                Some(prefetch) => format!(
                    " (each thread's first item on these weights: weight panels outer, {})",
                    prefetch.describe()
                ),
                None => String::new(),
            },
            if self.pointwise_prefetches_next_input {
                ", the next tile's input prefetched to L2"
            } else {
                ""
            },
            self.pointwise_loads_per_fma,
            self.pointwise_lane_utilisation * 100.0,
        )
    }
}

impl fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointwise_only {
            return write!(
                f,
                "{} ({} lanes): 1x1 convolution, {}; {}",
                self.backend,
                self.lanes,
                self.pointwise_part(),
                self.split
            );
        }
        // Width vectors hold output columns of one channel; channel vectors, channels of
        // one pixel.
        let blocking = if self.depthwise_strategy == DepthwiseStrategy::WidthVectors {
            format!(
                "{} output columns per vector, one channel at a time ({} channels)",
                self.depthwise_pixels_per_block, self.depthwise_channel_vectors
            )
        } else {
            let passes = if self.depthwise_channel_group < self.depthwise_channel_vectors {
                let outer = if self.depthwise_passes_outer_up_to > 0 {
                    format!(
                        " (passes outer up to {} columns)",
                        self.depthwise_passes_outer_up_to
                    )
                } else {
                    String::new()
                };
                format!(
                    ", {} per pass over a row{outer}",
                    self.depthwise_channel_group
                )
            } else {
                String::new()
            };
            let rows = if self.depthwise_rows_per_block > 1 {
                format!(" in each of {} rows", self.depthwise_rows_per_block)
            } else {
                String::new()
            };
            let realigned = if self.depthwise_realigned {
                " (realigned to the input's address, ends masked)"
            } else if self.depthwise_overlapped_tail {
                " (the last overlapping the one before, unmasked)"
            } else {
                ""
            };
            format!(
                "{} px/block{rows}, {} channel vector(s){realigned}{passes}",
                self.depthwise_pixels_per_block, self.depthwise_channel_vectors
            )
        };
        // Only a skewed layout is worth a word: else the taps' rows are simply contiguous.
        let skew = self
            .depthwise_weight_stride
            .saturating_sub(self.depthwise_padded_channels);
        let weights = if skew == 0 {
            String::new()
        } else {
            format!(
                ", tap weight rows {} floats apart ({} + {skew}: skewed off one L1 set)",
                self.depthwise_weight_stride, self.depthwise_padded_channels
            )
        };
        write!(
            f,
            "{} ({} lanes): depthwise {}, activation {}: {}, {}, {}, {:.2} loads/FMA, lane utilisation {:.1}%{}; \
             pointwise {}; {}",
            self.backend,
            self.lanes,
            self.geometry,
            self.activations.depthwise.name(),
            self.depthwise_strategy.describe(),
            if self.depthwise_row_loop {
                "kernel rows looped, one row's taps unrolled"
            } else {
                "taps unrolled"
            },
            blocking,
            self.depthwise_loads_per_fma,
            self.depthwise_lane_utilisation * 100.0,
            weights,
            self.pointwise_part(),
            self.split,
        )
    }
}
