//! The planner: pure functions from a [`LayerShape`] and an [`Backend`] to a [`Plan`] — the
//! decisions (vector strategy, register tiles, unrolling, fusion tiles, packing) that the
//! emitters turn into code. Everything here is plain data, unit-tested without a compiler.

use dsconv_runtime::drive::{PlanarScratch, RowEdges};
pub use dsconv_runtime::report::{DepthwiseStrategy, PointwiseOrder, PointwisePrefetch};
pub use dsconv_runtime::Backend;
use dsconv_runtime::LayerShape;
use dsconv_runtime::PlanSummary;
pub use dsconv_runtime::SplitRule;

pub use dsconv_runtime::packing::{CHANNEL_PAD, PANEL_WIDTH};

/// Floats per 64-byte cache line: the step between the lines the pointwise micro-kernel
/// prefetches.
pub const CACHE_LINE_FLOATS: usize = 16;
/// Bytes of depthwise output a fused tile aims for: the tile stays in L2 while the
/// pointwise stage consumes it.
pub const FUSION_TILE_BYTES: usize = 96 * 1024;
/// Fewest pixels per fused tile: each tile re-streams the pointwise weights, so a tile must
/// amortise them over enough pixels (at 48 pixels, 2/48 bytes per flop).
pub const MIN_TILE_PIXELS: usize = 48;
/// Pointwise weights larger than this do not stay in a 2 MiB L2 beside a tile.
pub const BIG_WEIGHTS_BYTES: usize = 1024 * 1024;
/// Pointwise weights at least this large take the cold walk on a thread's first item (see
/// [`PointwisePlan::cold_first_chunk`]): fetching them from L3 or memory costs as much as
/// several blocks of rows compute.
pub const COLD_WEIGHTS_BYTES: usize = 128 * 1024;
/// Fewest rows in the pointwise register tile for which the rows-outer order pays (see
/// [`PointwiseOrder`]).
pub const MIN_ROWS_FOR_ROWS_OUTER: usize = 12;
/// Most pixels per fused tile.
pub const MAX_TILE_PIXELS: usize = 512;

/// Fewest whole channel vectors for which the depthwise vectors follow the input's address
/// ([`ChannelVectorPlan::realign`]): with fewer, the extra masked pass costs more than the
/// aligned loads save.
pub const MIN_REALIGN_VECTORS: usize = 8;
/// Most taps a depthwise kernel unrolls: up to 9x9 every tap of a block is straight-line
/// code; past it the kernel loops over the kernel rows at run time and unrolls one row's
/// taps ([`DepthwisePlan::row_loop`]), so a 31x31 kernel costs 31 taps of code, not 961.
pub const MAX_UNROLLED_TAPS: usize = 81;
/// Most output pixels the interior depthwise kernel computes together when the weights do
/// not fit in registers (each FMA then takes its weight from memory): a pixel's accumulator
/// gets one FMA per tap in a dependent chain, so more pixels keep more chains in flight.
/// Measured on AVX2 (Zen, 16 registers; depthwise stage, medians of 3 runs of 3
/// interleaved rounds, µs) against 4 pixels: dk 5 on 56x56x128 400 -> 355, on 28x28x256
/// 220 -> 203; dk 7 906 -> 766 and 517 -> 377; dk 9 1630 -> 1184 and 820 -> 593. Twelve
/// pixels were better on the 28x28 layers (185, 302, 566) and worse on the 56x56 ones
/// (407, 918, 1386). Loading each weight once per block for every pixel instead
/// (weight-stationary, the block's input columns in registers) measured no better than 4
/// pixels this way.
pub const MAX_DEPTHWISE_BLOCK_MEMORY_WEIGHTS: usize = 8;
/// Bytes of weights and input window a pass of the channel-vector depthwise kernel over a
/// row keeps in L1 (half of a 32 KiB L1): the channel vectors are taken in groups this
/// size allows ([`ChannelVectorPlan::group`]).
pub const DEPTHWISE_L1_BYTES: usize = 16 * 1024;
/// The same budget for the kernels that keep their tap weights in registers: a channel
/// vector's weights and bias (loaded once per block), a block's input window and its output.
/// Stride 1 only (strided layers stream their input; see `plan_channel_vectors`). Measured
/// on an AVX-512 Xeon (depthwise stage alone, 11 interleaved rounds, 1 thread, against one
/// pass over all the vectors): passes of 16 vectors (32 KiB) took L7 and L9 0.95x the time;
/// of 8 (16 KiB), L5 1.04x; 48 KiB (L9 in 3 passes of 22) 1.00x. On AVX2 it leaves L5's 32
/// vectors in one pass, the order measured fastest there.
pub const DEPTHWISE_L1_BYTES_REGISTER_WEIGHTS: usize = 32 * 1024;
/// Most output pixels the interior depthwise kernel computes together. Measured on an
/// AVX-512 Xeon: blocks of 6 and 8 (fewer loads per FMA on paper) ran 30-45% slower than 4
/// on L3 (56x56x128), the larger live set of input vectors costing more than it saves;
/// measured again (docs/benchmarks.md, seventh session), 8 and 12 took L3's depthwise stage
/// 1.25x and 1.30x the time, and no layer ran faster.
pub const MAX_DEPTHWISE_BLOCK: usize = 4;

/// Output width of `shape` for input width `w` (the runtime crate's rule).
pub fn output_width(shape: &LayerShape, w: usize) -> usize {
    let p = shape.pads(w, w);
    dsconv_runtime::output_extent(w, shape.window(), shape.stride, p.left, p.right).unwrap_or(0)
}

/// The input widths the planner enumerates to find every edge case a kernel can meet: all
/// of them up to where the cases repeat (they depend on `w` only through `w mod stride`
/// once a block fits), or the fixed width alone.
fn widths(shape: &LayerShape, span: usize) -> Vec<usize> {
    match shape.fixed_size {
        Some((_, w)) => vec![w],
        None => (1..=4 * (span + shape.stride)).collect(),
    }
}

/// `x` rounded up to a multiple of `m`.
pub fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// How the depthwise stage is computed: what every strategy shares, and the kernel with its
/// own payload.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthwisePlan {
    /// `dk * dk`.
    pub taps: usize,
    /// Whether the kernel rows run as a loop, each row's `dk` taps unrolled (more than
    /// [`MAX_UNROLLED_TAPS`] taps); else every tap is unrolled.
    pub row_loop: bool,
    /// The kernel and its decisions.
    pub kernel: DepthwiseKernel,
    /// Loads per multiply-add in the interior inner loop.
    pub loads_per_fma: f64,
    /// Useful multiplications / lane-multiplications issued.
    pub lane_utilisation: f64,
}

/// The depthwise kernel, with the decisions of its strategy.
#[derive(Clone, Debug, PartialEq)]
pub enum DepthwiseKernel {
    /// One lane: channels in a loop, taps unrolled.
    Scalar,
    /// Channels across lanes, a sliding window of pixel blocks along each row.
    ChannelVectors(ChannelVectorPlan),
    /// Output columns across lanes over a planar copy.
    WidthVectors(WidthVectorPlan),
}

/// [`DepthwiseStrategy::ChannelVectors`] and [`DepthwiseStrategy::ExpandedChannelVectors`].
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelVectorPlan {
    /// Lanes per vector.
    pub lanes: usize,
    /// Whole vectors of output channels per pixel.
    pub full_vectors: usize,
    /// Channels past the whole vectors (`None` when the channels fill whole vectors): a
    /// masked last vector, unless [`overlapped_tail`](Self::overlapped_tail).
    pub tail_lanes: Option<usize>,
    /// Whether that last vector is instead a whole one over the last `lanes` channels,
    /// `C - lanes..C`, overlapping the vector before it: each lane's sum is its own, so
    /// the overlapped channels are computed again to the same bits and stored again, and no
    /// load or store is masked. Then one body of code serves every vector (a masked tail
    /// is a second copy of the unrolled kernels). Taken where there is a whole vector
    /// before the tail and the loads are not expanded (a depth multiplier's table fixes
    /// each vector's lanes).
    pub overlapped_tail: bool,
    /// With a depth multiplier `DM > 1`: how each input load is made and permuted into a
    /// vector of output channels (`None` for `DM = 1`).
    pub expand: Option<Expansion>,
    /// Floats per input pixel (`M`).
    pub input_channels: usize,
    /// Interior block sizes, largest first: the planned block, then halves down to 1, so a
    /// short interior still runs blocked code.
    pub blocks: Vec<usize>,
    /// The edge blocks at the ends of a row.
    pub edges: EdgePlan,
    /// Whether the tap weights are loaded into registers once per channel vector (else each
    /// FMA takes its weight from memory).
    pub weights_in_registers: bool,
    /// Channel vectors per pass over a row's pixel blocks: a group's tap weights and the
    /// input window of a block (kernel rows x window columns) fit in
    /// [`DEPTHWISE_L1_BYTES`] (with the weights in registers, which are loaded again for
    /// each block, also its bias and output, in
    /// [`DEPTHWISE_L1_BYTES_REGISTER_WEIGHTS`]), so walking the row's blocks reuses them
    /// from L1; the next group then walks the row again. All the vectors (one pass) when
    /// they fit.
    pub group: usize,
    /// When the passes may walk every row run in turn (passes outer) instead of each row
    /// taking every pass: the runtime ([`PassRuns`](dsconv_runtime::drive::PassRuns))
    /// takes them outer where a pass's input rows for one output row fit the budget at the
    /// call's width, so the next row finds them in L1. Stride 1, weights in registers and
    /// several passes only.
    pub pass_rows: Option<PassRows>,
    /// Whether two consecutive whole output rows run together where both windows lie
    /// inside the image vertically: a block of `blocks[0]` pixels in each row, fed by
    /// `dk + 1` input rows loaded once (the middle rows serve both), each pixel's taps in
    /// the one-row order (the same bits). Stride 1 without dilation, weights in registers,
    /// and registers for both rows' accumulators.
    pub row_pairs: bool,
    /// The columns each emitted block loads (every interior block size, every left and
    /// right edge variant).
    pub block_columns: Vec<BlockColumns>,
    /// Whether the channel vectors follow the input's address: where the input starts
    /// `off` floats past a vector boundary (a `Vec` from `malloc`), every pixel does (the
    /// channels fill whole vectors), so the vectors start `lanes - off` channels in, their
    /// loads aligned, and the channels left at the two ends run as one masked vector each.
    /// Each channel takes the same FMAs in the same order: the same bits. Without it every
    /// input load of such a call straddles two cache lines (L3's depthwise stage measured
    /// 1.34-1.64x slower with the input 16 bytes off). AVX-512; one input channel per
    /// output channel (no expansion), whole vectors (at least [`MIN_REALIGN_VECTORS`]),
    /// weights in registers (loaded for each block, masked for the end vectors; from the
    /// layer's copy for the shift, `packing::pack_realigned`, where one exists) and
    /// unrolled taps: the emitter relies on each of these. The kernel realigns only when the
    /// output is as far off as the input (its stores aligned too), by the runtime's rule
    /// (`drive::realign_shift`): a standalone depthwise call on two `Vec`s, not `forward`'s
    /// aligned scratch. Such a call runs one vector more per pixel (the two masked ends).
    pub realign: bool,
}

/// The L1 budget for a depthwise pass's input rows ([`ChannelVectorPlan::pass_rows`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassRows {
    /// Bytes a pass reads per input column of one output row: the window's rows times the
    /// pass's channel vectors.
    pub column_bytes: usize,
    /// Bytes of L1 those rows may take: [`DEPTHWISE_L1_BYTES_REGISTER_WEIGHTS`].
    pub budget: usize,
}

/// How an expanded channel vector's input is loaded: output channel `o` reads input channel
/// `o / DM`, so the `lanes` output channels of vector `v` (channels `v * lanes..`) read a short
/// run of consecutive input channels, each repeated up to `DM` times, starting mid-way
/// through a channel's copies when `DM` does not divide the lanes. Every input load of
/// vector `v` reads `load_floats` floats from input channel `offsets[v]` of a pixel, and one
/// permute puts loaded float `indices[v][l]` in lane `l`. The same code serves every `DM`:
/// only the table differs.
#[derive(Clone, Debug, PartialEq)]
pub struct Expansion {
    /// The depth multiplier.
    pub dm: usize,
    /// Floats per input load: a power of two up to the lanes (a plain load of that width),
    /// at least the most input channels a vector reads and at most `M` (else `M` itself, a
    /// masked load, for inputs narrower than the load).
    pub load_floats: usize,
    /// Per channel vector (the masked tail last): the first input channel its loads read,
    /// at most `M - load_floats`, so no load reads past a pixel's channels.
    pub offsets: Vec<usize>,
    /// Per channel vector: the loaded float each lane takes (the valid lanes of a tail; the
    /// others repeat its last).
    pub indices: Vec<Vec<usize>>,
}

impl Expansion {
    /// Plans the loads of `m * dm` output channels in vectors of `lanes`.
    pub fn new(m: usize, dm: usize, lanes: usize) -> Expansion {
        let channels = m * dm;
        let starts: Vec<usize> = (0..channels.div_ceil(lanes)).map(|v| v * lanes).collect();
        let last = |c0: usize| (c0 + lanes).min(channels) - 1;
        let needed = starts
            .iter()
            .map(|&c0| last(c0) / dm - c0 / dm + 1)
            .max()
            .unwrap_or(1);
        let load_floats = needed.next_power_of_two().min(lanes);
        let load_floats = if load_floats <= m { load_floats } else { m };
        let offsets: Vec<usize> = starts
            .iter()
            .map(|&c0| (c0 / dm).min(m - load_floats))
            .collect();
        let indices = starts
            .iter()
            .zip(&offsets)
            .map(|(&c0, &off)| {
                (0..lanes)
                    .map(|l| (c0 + l).min(last(c0)) / dm - off)
                    .collect()
            })
            .collect();
        Expansion {
            dm,
            load_floats,
            offsets,
            indices,
        }
    }

    /// Whether every lane takes the load's first float (a broadcast needs no permute).
    pub fn is_broadcast(&self) -> bool {
        self.load_floats == 1
    }
}

/// The window columns one emitted block loads, with the taps each feeds.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockColumns {
    /// Pixels in the block.
    pub block: usize,
    /// Columns left of the image it skips.
    pub skip_lo: usize,
    /// Columns right of the image it skips.
    pub skip_hi: usize,
    /// `(column, [(pixel, kx)])` for every column that feeds a tap ([`used_columns`]).
    pub columns: Vec<(usize, Vec<(usize, usize)>)>,
}

impl ChannelVectorPlan {
    /// The columns of the block of `block` pixels skipping `skip_lo` and `skip_hi` columns.
    ///
    /// # Panics
    /// If the plan has no such block (the emitter asked for one the planner did not plan).
    pub fn columns(
        &self,
        block: usize,
        skip_lo: usize,
        skip_hi: usize,
    ) -> &[(usize, Vec<(usize, usize)>)] {
        &self
            .block_columns
            .iter()
            .find(|b| (b.block, b.skip_lo, b.skip_hi) == (block, skip_lo, skip_hi))
            .expect("the plan lists every emitted block")
            .columns
    }
}

/// The edge blocks of a row: the first and last `block` pixels run as one block that skips
/// the columns outside the image. The run-time check is the runtime's `RowEdges`; the
/// planner enumerates it to find which right-edge variants are reachable.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgePlan {
    /// Pixels per edge block.
    pub block: usize,
    /// Input columns a block's window spans, `(block - 1) * stride + window`.
    pub span: usize,
    /// The left paddings a row can have (over every input width the layer accepts), one
    /// left edge variant each (empty without left padding).
    pub left_misses: Vec<usize>,
    /// The counts of columns the last block can find right of the image, one emitted
    /// variant each (empty without right padding).
    pub right_misses: Vec<usize>,
}

/// [`DepthwiseStrategy::WidthVectors`].
#[derive(Clone, Debug, PartialEq)]
pub struct WidthVectorPlan {
    /// Output columns per vector.
    pub lanes: usize,
    /// Independent accumulators per output vector (taps alternate between them, shortening
    /// the dependent FMA chain).
    pub accumulators: usize,
    /// Whether a channel's tap weights are splatted into registers once per channel (else
    /// each FMA broadcasts its weight from memory).
    pub weights_in_registers: bool,
    /// Rows narrow enough for a narrower backend's kernel, which runs them.
    pub narrow_rows: Option<NarrowRows>,
    /// The scratch layout: its size and every offset the kernel uses.
    pub scratch: PlanarScratch,
}

impl DepthwisePlan {
    /// The strategy, for reports.
    pub fn strategy(&self) -> DepthwiseStrategy {
        match &self.kernel {
            DepthwiseKernel::Scalar => DepthwiseStrategy::Scalar,
            DepthwiseKernel::ChannelVectors(cv) if cv.expand.is_some() => {
                DepthwiseStrategy::ExpandedChannelVectors
            }
            DepthwiseKernel::ChannelVectors(_) => DepthwiseStrategy::ChannelVectors,
            DepthwiseKernel::WidthVectors(_) => DepthwiseStrategy::WidthVectors,
        }
    }

    /// The scratch the kernel needs beside its output (`None`: none).
    pub fn scratch(&self) -> Option<PlanarScratch> {
        match &self.kernel {
            DepthwiseKernel::WidthVectors(wv) => Some(wv.scratch),
            _ => None,
        }
    }

    /// Output pixels a block of the interior kernel computes (for width vectors: the output
    /// columns one vector holds; 1 for scalar).
    pub fn pixels_per_block(&self) -> usize {
        match &self.kernel {
            DepthwiseKernel::Scalar => 1,
            DepthwiseKernel::ChannelVectors(cv) => cv.blocks[0],
            DepthwiseKernel::WidthVectors(wv) => wv.lanes,
        }
    }

    /// Vectors (or, for width vectors and scalar, channels) covering the channels of a pixel.
    pub fn channel_vectors(&self, channels: usize) -> usize {
        match &self.kernel {
            DepthwiseKernel::ChannelVectors(cv) => {
                cv.full_vectors + usize::from(cv.tail_lanes.is_some())
            }
            _ => channels,
        }
    }
}

/// Where the width-vector depthwise kernel sends rows too narrow for its vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NarrowRows {
    /// The backend whose depthwise kernel runs them (implied by the planned one).
    pub backend: Backend,
    /// Rows of at most this many output columns go there (its lanes: half the planned
    /// backend's vector or less, so the planned kernel would leave half its lanes idle).
    pub max_output_columns: usize,
}

/// The narrowest-but-one vector backend `isa` implies whose vectors are at most half as
/// wide, if its kernels are built: where rows of width-vector depthwise go when they would
/// fill at most half of `isa`'s vectors.
fn narrow_rows(isa: Backend) -> Option<NarrowRows> {
    isa.implies()
        .iter()
        .copied()
        .filter(|b| b.lanes() > 1 && 2 * b.lanes() <= isa.lanes() && b.is_built())
        .max_by_key(|b| b.lanes())
        .map(|backend| NarrowRows {
            backend,
            max_output_columns: backend.lanes(),
        })
}

/// One block of output channels a pointwise micro-kernel computes: `vectors` vectors
/// starting at column `col` of the panel at float offset `panel_offset` (times K).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnBlock {
    /// Index of the panel.
    pub panel: usize,
    /// First column of the block within its panel.
    pub col: usize,
    /// Vectors in the block.
    pub vectors: usize,
    /// Valid lanes of the last vector (`lanes` when full): the rest is masked on store.
    pub last_lanes: usize,
}

/// How the pointwise stage is computed.
#[derive(Clone, Debug, PartialEq)]
pub struct PointwisePlan {
    /// Reduction length `M * DM`.
    pub k: usize,
    /// Output channels.
    pub n: usize,
    /// Output pixels per micro-kernel (rows of the register tile).
    pub rows: usize,
    /// Vectors of output channels per micro-kernel (columns of the register tile).
    pub vectors: usize,
    /// Panels of [`PANEL_WIDTH`] columns that are full.
    pub full_panels: usize,
    /// Column blocks of a full panel (the same for every full panel).
    pub full_panel_blocks: Vec<ColumnBlock>,
    /// Column blocks of the last, partial panel (empty when `n` fills whole panels).
    pub tail_blocks: Vec<ColumnBlock>,
    /// Width of the last panel in floats (0 if none).
    pub tail_panel_width: usize,
    /// Loads per multiply-add of the full micro-kernel.
    pub loads_per_fma: f64,
    /// Useful multiplications / lane-multiplications issued.
    pub lane_utilisation: f64,
    /// Loop order over register tiles.
    pub order: PointwiseOrder,
    /// What the usual walk's micro-kernel calls prefetch, one line per step of the
    /// reduction (the cold walk's: [`Self::cold_first_chunk`]).
    pub prefetch: PointwisePrefetch,
    /// The walk of a chunk whose weights may not be in this core's caches (the first item
    /// of a thread's share of a call, or of a panel group: `drive::cold_item`):
    /// `Some(prefetch)` where rows outer would fetch every weight
    /// from L3 or memory during the first block of rows alone, with nothing to hide the
    /// fetch behind; that chunk walks weight panels outer instead, each panel fetched once
    /// and kept for every block of rows, with `prefetch` (the next panel into L2, where the
    /// CPU has a prefetch). `None`: the chunk takes `order` like every other. Both walks
    /// call the same micro-kernels on the same blocks, so the output bits are the same.
    pub cold_first_chunk: Option<PointwisePrefetch>,
    /// Floats from one prefetched line to the next ([`CACHE_LINE_FLOATS`]: a line per
    /// reduction step).
    pub prefetch_step: usize,
    /// With [`PointwisePrefetch::NextPanelToL2`], how many blocks of rows (the last full
    /// ones) share the next panel's prefetch: the panel is `k * PANEL_WIDTH` floats, that is
    /// `k * PANEL_WIDTH / prefetch_step` lines, and each block's first call fetches `k` of
    /// them (one per reduction step), so block `j` fetches lines `j * k .. (j + 1) * k`.
    pub panel_prefetch_blocks: usize,
    /// Whether the reduction is short enough (`k * vectors` at most half the vector
    /// registers) that the micro-kernel loads a block's weights into registers once and
    /// then finishes one row of accumulators at a time.
    pub weights_in_registers: bool,
}

impl PointwisePlan {
    /// Weight panels, the partial tail included: the units a layer with a single fused tile
    /// splits its pointwise stage into, as work items of the thread pool.
    pub fn panels(&self) -> usize {
        self.full_panels + usize::from(self.tail_panel_width > 0)
    }
}

/// How `forward` chains the two stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FusionPlan {
    /// Output pixels per tile: the depthwise output of a tile is computed into a per-thread
    /// scratch buffer (reused: no allocation in steady state) and consumed by the pointwise
    /// stage while it is still in cache (the runtime's `fused_tiles` walk).
    pub tile_pixels: usize,
    /// Whether each tile's pointwise stage prefetches into L2, a line per reduction step of
    /// each micro-kernel call, the input rows the next tile's depthwise stage reads that
    /// this tile's did not: the large layers' depthwise stage streams its input from L3 at
    /// the core's rate, and the pointwise stage leaves that path idle. Measured on an
    /// AVX-512 Xeon (docs/benchmarks.md, seventh session). AVX-512 only (measured no gain
    /// on AVX2), with the streaming micro-kernel (a reduction loop to spread the lines
    /// over).
    pub prefetch_next_input: bool,
}

/// What each stage's store applies to its accumulators: the bias (loaded into the
/// accumulators first) and the activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epilogue {
    /// Whether the stages add a bias.
    pub bias: bool,
    /// The activation after each stage.
    pub activations: dsconv_runtime::Activations,
    /// Whether the pointwise store adds a skip input after the activation (a residual
    /// layer's kernels take an optional skip; without one they store as a plain layer).
    pub residual: bool,
}

impl Default for Epilogue {
    fn default() -> Self {
        Epilogue {
            bias: false,
            residual: false,
            activations: dsconv_runtime::Activations::both(dsconv_runtime::Activation::None),
        }
    }
}

/// Everything an emitter needs to generate one backend of one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Target instruction set.
    pub isa: Backend,
    /// The layer.
    pub shape: LayerShape,
    /// Depthwise output channels, `M * DM`.
    pub channels: usize,
    /// Depthwise channels padded for packing ([`CHANNEL_PAD`]).
    pub padded_channels: usize,
    /// Floats from one tap's packed depthwise weights to the next ([`weight_stride`]): the
    /// padded channels, plus a cache line when they span a multiple of 2 KiB.
    pub weight_stride: usize,
    /// Depthwise strategy.
    pub depthwise: DepthwisePlan,
    /// Pointwise strategy.
    pub pointwise: PointwisePlan,
    /// Fusion strategy.
    pub fusion: FusionPlan,
    /// Bias and activation of each stage's store.
    pub epilogue: Epilogue,
    /// A `#[pointwise_conv]` layer: only the pointwise stage is emitted (the depthwise plan
    /// of its 1x1 "valid" shape is not used), its chunks `fusion.tile_pixels` long.
    pub pointwise_only: bool,
}

impl Plan {
    /// Floats of the packed depthwise weights: every tap's channels at the weight stride.
    pub fn packed_depthwise_len(&self) -> usize {
        self.depthwise.taps * self.weight_stride
    }

    /// The first channel of the last channel vector when it overlaps the one before
    /// ([`ChannelVectorPlan::overlapped_tail`]): `C - lanes`.
    pub fn overlapped_tail_start(&self) -> Option<usize> {
        match &self.depthwise.kernel {
            DepthwiseKernel::ChannelVectors(cv) if cv.overlapped_tail => {
                Some(self.channels - cv.lanes)
            }
            _ => None,
        }
    }

    /// Plans a `#[pointwise_conv]` layer from `m` to `n` channels: the pointwise stage of
    /// the separable shape with a 1x1 "valid" depthwise stage, which is not emitted.
    pub fn for_pointwise_layer(
        m: usize,
        n: usize,
        fixed_size: Option<(usize, usize)>,
        epilogue: Epilogue,
        isa: Backend,
    ) -> Plan {
        let shape = LayerShape {
            dk: 1,
            m,
            n,
            stride: 1,
            dilation: 1,
            padding: dsconv_runtime::Padding::Valid,
            depth_multiplier: 1,
            fixed_size,
        };
        let plan = Plan::for_layer(&shape, epilogue, isa);
        Plan {
            pointwise_only: true,
            // No depthwise stage reads an input ahead of it.
            fusion: FusionPlan {
                prefetch_next_input: false,
                ..plan.fusion
            },
            ..plan
        }
    }

    /// Plans `shape` for `isa`, without bias or activation. The shape must be valid (as
    /// `#[separable_conv]` checks).
    pub fn for_spec(shape: &LayerShape, isa: Backend) -> Plan {
        Plan::for_layer(shape, Epilogue::default(), isa)
    }

    /// Plans a layer: `shape` with `epilogue`, for `isa`.
    pub fn for_layer(shape: &LayerShape, epilogue: Epilogue, isa: Backend) -> Plan {
        let channels = shape.m * shape.depth_multiplier;
        let pointwise = plan_pointwise(channels, shape.n, isa);
        let depthwise = plan_depthwise(shape, isa);
        // Pointwise weights too large to stay in L2 are streamed from memory once per tile:
        // then tiles are as long as allowed, so each weight fetched serves more pixels.
        let per_tile = if shape.n * channels * 4 > BIG_WEIGHTS_BYTES {
            MAX_TILE_PIXELS
        } else {
            (FUSION_TILE_BYTES / 4 / channels).clamp(MIN_TILE_PIXELS, MAX_TILE_PIXELS)
        };
        let tile_pixels = round_up(per_tile, pointwise.rows);
        // Measured (`forward`, 1 thread, interleaved, B/A): on AVX-512, L2 0.843, L1 0.958,
        // L3 0.968, the body 0.960, L5-L9 1.00; on AVX2 (same Xeon), L2 0.963 but L1 1.022
        // and the body 0.998: its pointwise stage has half the FMAs per reduction step to
        // hide the extra prefetch behind, so AVX2 does without.
        let prefetch_next_input = isa == Backend::Avx512 && !pointwise.weights_in_registers;
        Plan {
            isa,
            shape: *shape,
            channels,
            padded_channels: round_up(channels, CHANNEL_PAD),
            weight_stride: weight_stride(round_up(channels, CHANNEL_PAD)),
            depthwise,
            pointwise,
            fusion: FusionPlan {
                tile_pixels,
                prefetch_next_input,
            },
            epilogue,
            pointwise_only: false,
        }
    }
}

/// Floats from one tap's packed depthwise weights to the next, for `padded_channels`: one
/// cache line more when the rows would be a multiple of 2 KiB apart. Then the taps' rows at
/// one channel offset share one or two L1 sets (one at 4 KiB), beside the input pixels,
/// which share them too at those channel counts (their stride is the user's layout).
/// Measured on the depthwise stage (AVX2, 9 interleaved rounds): L9 (1024 channels) 0.63x
/// the time, L7 and L8 (512) 0.85x and 0.84x; at 1 KiB (256 channels) L6 took 1.10x, so
/// rows 1 KiB apart keep the padded channels. The layout is the same for every backend:
/// one packed array serves all.
pub fn weight_stride(padded_channels: usize) -> usize {
    if (padded_channels * 4).is_multiple_of(2048) {
        padded_channels + CACHE_LINE_FLOATS
    } else {
        padded_channels
    }
}

fn plan_depthwise(shape: &LayerShape, isa: Backend) -> DepthwisePlan {
    let lanes = isa.lanes();
    let channels = shape.m * shape.depth_multiplier;
    let taps = shape.dk * shape.dk;
    let row_loop = taps > MAX_UNROLLED_TAPS;
    let strategy = match isa {
        Backend::Scalar => DepthwiseStrategy::Scalar,
        _ if shape.depth_multiplier > 1 => DepthwiseStrategy::ExpandedChannelVectors,
        // Channel vectors would use under half their lanes (width vectors unroll every tap:
        // not for kernels past the unrolling limit).
        _ if channels * 2 <= lanes && !row_loop => DepthwiseStrategy::WidthVectors,
        _ => DepthwiseStrategy::ChannelVectors,
    };
    match strategy {
        DepthwiseStrategy::Scalar => {
            DepthwisePlan {
                taps,
                row_loop,
                kernel: DepthwiseKernel::Scalar,
                // A weight and an input load per multiply-add.
                loads_per_fma: 2.0,
                lane_utilisation: 1.0,
            }
        }
        DepthwiseStrategy::WidthVectors => plan_width_vectors(shape, isa),
        DepthwiseStrategy::ChannelVectors | DepthwiseStrategy::ExpandedChannelVectors => {
            plan_channel_vectors(shape, isa, strategy)
        }
    }
}

/// The depthwise plan with output columns across lanes.
fn plan_width_vectors(shape: &LayerShape, isa: Backend) -> DepthwisePlan {
    let (lanes, registers) = (isa.lanes(), isa.vector_registers());
    let channels = shape.m * shape.depth_multiplier;
    let taps = shape.dk * shape.dk;
    // Lanes are output columns: all useful but the last vector of each row, whose
    // waste depends on the width (exact when the size is fixed; full rows assumed
    // otherwise). Rows narrow enough for a backend this one implies run that
    // backend's kernel and plan (AVX-512 -> AVX2: width vectors of 8 lanes, or
    // channel vectors when the channels fill half of them).
    let narrow = narrow_rows(isa);
    let lane_utilisation = shape.fixed_size.map_or(1.0, |(_, w)| {
        let wo = output_width(shape, w).max(1);
        if let Some(n) = narrow.filter(|n| wo <= n.max_output_columns) {
            plan_depthwise(shape, n.backend).lane_utilisation
        } else {
            wo as f64 / round_up(wo, lanes) as f64
        }
    });
    // The weights, two accumulators and an input vector.
    let weights_in_registers = taps + 3 <= registers;
    DepthwisePlan {
        taps,
        row_loop: false,
        kernel: DepthwiseKernel::WidthVectors(WidthVectorPlan {
            lanes,
            accumulators: 2,
            weights_in_registers,
            narrow_rows: narrow,
            scratch: PlanarScratch {
                channels,
                window: shape.window(),
                stride: shape.stride,
                lanes,
            },
        }),
        // One input load per tap; the weights too when they do not fit in registers.
        loads_per_fma: if weights_in_registers { 1.0 } else { 2.0 },
        lane_utilisation,
    }
}

/// The depthwise plan with channels across lanes (`expanded` by the depth multiplier when
/// the strategy says so).
fn plan_channel_vectors(
    shape: &LayerShape,
    isa: Backend,
    strategy: DepthwiseStrategy,
) -> DepthwisePlan {
    let (lanes, registers) = (isa.lanes(), isa.vector_registers());
    let channels = shape.m * shape.depth_multiplier;
    let taps = shape.dk * shape.dk;
    let vectors = channels.div_ceil(lanes);
    let tail = channels % lanes;
    // Registers: accumulators for the block, one input temporary, one spare (mask,
    // permute index of an expanded load, or activation constant), and the tap
    // weights when they all fit. The weights of a channel vector are loaded once per
    // block (the channel loop is innermost, for cache locality).
    let weights_in_registers = taps + 3 <= registers;
    let block = if weights_in_registers {
        (registers - taps - 2).clamp(1, MAX_DEPTHWISE_BLOCK)
    } else {
        (registers - 4).min(MAX_DEPTHWISE_BLOCK_MEMORY_WEIGHTS)
    };
    let mut blocks = vec![block];
    let mut half = block.next_power_of_two() / 2;
    while half >= 1 {
        if half < blocks[blocks.len() - 1] {
            blocks.push(half);
        }
        half /= 2;
    }
    let span = block_span(shape, block);
    // Edge blocks run at most twice a row, yet each reachable variant is unrolled code of
    // its own: they keep the register-weights size (4) when the interior runs 8, so the
    // unrolled code does not double with the interior block.
    let edge_block = block.min(MAX_DEPTHWISE_BLOCK);
    let edge_span = block_span(shape, edge_block);
    let edges = RowEdges {
        block: edge_block,
        span: edge_span,
        stride: shape.stride,
    };
    // With dilation some columns of the window feed no tap: they are not loaded.
    let fmas = block * taps;
    let input_loads = shape.dk * used_columns(shape, block, 0, 0).len();
    let weight_loads = if weights_in_registers { taps } else { fmas };
    // L1 bytes per channel vector: its tap weights and a block's input window; with the
    // weights in registers, also the bias and the block's output (a pass over the row loads
    // every vector's weights again for each block: they must stay in L1 between blocks).
    let window_bytes = (taps + shape.dk * span) * lanes * 4;
    let group = if weights_in_registers && shape.stride > 1 {
        // Strided layers read several input pixels per output and are bound by streaming
        // them (L6 ran at L2's copy rate); passes measured 1.02-1.07x slower on L6 and L8.
        vectors
    } else if weights_in_registers {
        let vector_bytes = window_bytes + (1 + block) * lanes * 4;
        let most = (DEPTHWISE_L1_BYTES_REGISTER_WEIGHTS / vector_bytes).clamp(1, vectors);
        // Passes of equal size.
        vectors.div_ceil(vectors.div_ceil(most))
    } else {
        (DEPTHWISE_L1_BYTES / window_bytes).clamp(1, vectors)
    };
    // Passes outer where their rows fit L1: measured on an AVX-512 Xeon (depthwise stage
    // alone, 11 interleaved rounds, 1 thread), L9 (7 columns, 4 passes of 16 vectors: 21 KiB
    // of rows) 0.95x the time of rows outer. Taking them outer regardless of the width
    // (passes sized to the rows instead) took L3 1.35x and L5 1.10x: a pass reads only part
    // of each pixel, and larger images stream.
    let pass_rows =
        (weights_in_registers && shape.stride == 1 && group < vectors).then(|| PassRows {
            column_bytes: shape.window() * group * lanes * 4,
            budget: DEPTHWISE_L1_BYTES_REGISTER_WEIGHTS,
        });
    // Two rows' accumulators, the weights, an input temporary, the bias and a spare.
    let row_pairs = weights_in_registers
        && strategy != DepthwiseStrategy::ExpandedChannelVectors
        && taps <= MAX_UNROLLED_TAPS
        && shape.stride == 1
        && shape.dilation == 1
        && 2 * block + taps + 3 <= registers;
    // A two-row block loads dk + 1 input rows for both rows' FMAs.
    let loads_per_fma = if row_pairs {
        let input_loads = (shape.dk + 1) * used_columns(shape, block, 0, 0).len();
        (input_loads + weight_loads) as f64 / (2 * fmas) as f64
    } else {
        (input_loads + weight_loads) as f64 / fmas as f64
    };
    let (left_misses, right_misses) = (
        left_edge_misses(shape, edge_span),
        right_edge_misses(shape, &edges),
    );
    let emitted = blocks
        .iter()
        .map(|&n| (n, 0, 0))
        .chain(left_misses.iter().map(|&m| (edge_block, m, 0)))
        .chain(right_misses.iter().map(|&m| (edge_block, 0, m)));
    let block_columns = emitted
        .map(|(n, skip_lo, skip_hi)| BlockColumns {
            block: n,
            skip_lo,
            skip_hi,
            columns: used_columns(shape, n, skip_lo, skip_hi),
        })
        .collect();
    // Measured on an AVX-512 Xeon, the depthwise stage with input and output 16 bytes off
    // (9 interleaved rounds, realigned / not): L3 (8 vectors) 0.81, L5 (16) 0.61, L7 (32)
    // 0.66, L9 (64) 0.62, but L2 (4) 1.01 and L1 (2) 1.06: the end vectors' extra pass
    // costs what aligned loads save. AVX2's 32-byte loads split a line half as often:
    // not measured, not taken.
    let realign = isa == Backend::Avx512
        && strategy != DepthwiseStrategy::ExpandedChannelVectors
        && tail == 0
        && channels / lanes >= MIN_REALIGN_VECTORS
        && weights_in_registers;
    DepthwisePlan {
        taps,
        row_loop: taps > MAX_UNROLLED_TAPS,
        kernel: DepthwiseKernel::ChannelVectors(ChannelVectorPlan {
            lanes,
            full_vectors: channels / lanes,
            tail_lanes: (tail > 0).then_some(tail),
            overlapped_tail: tail > 0
                && channels >= lanes
                && strategy != DepthwiseStrategy::ExpandedChannelVectors,
            expand: (strategy == DepthwiseStrategy::ExpandedChannelVectors)
                .then(|| Expansion::new(shape.m, shape.depth_multiplier, lanes)),
            input_channels: shape.m,
            blocks,
            edges: EdgePlan {
                block: edge_block,
                span: edge_span,
                left_misses,
                right_misses,
            },
            weights_in_registers,
            group,
            pass_rows,
            row_pairs,
            block_columns,
            realign,
        }),
        loads_per_fma,
        lane_utilisation: channels as f64 / (vectors * lanes) as f64,
    }
}

/// Input columns the window of a block of `n` output pixels spans,
/// `(n - 1) * stride + window`.
fn block_span(shape: &LayerShape, n: usize) -> usize {
    (n - 1) * shape.stride + shape.window()
}

/// The columns `j` of a block of `n` pixels' window (`0..span`, skipping `skip_lo` on the
/// left and `skip_hi` on the right) that feed a tap, with the `(pixel, kx)` taps each feeds:
/// pixel `i`'s tap `kx` reads column `i * stride + kx * dilation`.
pub fn used_columns(
    shape: &LayerShape,
    n: usize,
    skip_lo: usize,
    skip_hi: usize,
) -> Vec<(usize, Vec<(usize, usize)>)> {
    let span = block_span(shape, n);
    (skip_lo..span - skip_hi)
        .map(|j| {
            let taps: Vec<(usize, usize)> = (0..n)
                .filter_map(|i| {
                    let off = j.checked_sub(i * shape.stride)?;
                    (off.is_multiple_of(shape.dilation) && off / shape.dilation < shape.dk)
                        .then_some((i, off / shape.dilation))
                })
                .collect();
            (j, taps)
        })
        .filter(|(_, taps)| !taps.is_empty())
        .collect()
}

/// The left paddings a row can start with, over every input width (the runtime's
/// `LayerShape::pads`): one left edge variant each. Empty without left padding.
fn left_edge_misses(shape: &LayerShape, span: usize) -> Vec<usize> {
    let mut misses: Vec<usize> = widths(shape, span)
        .into_iter()
        .map(|w| shape.pads(w, w).left)
        .filter(|&l| l > 0)
        .collect();
    misses.sort_unstable();
    misses.dedup();
    misses
}

/// How many columns the last block of a row can find past the right edge of the image, over
/// every input width (the runtime's own check, [`RowEdges::right_missing`], enumerated): the
/// counts that need an edge variant. Symmetric padding, stride 1 and odd `dk`: exactly the
/// pad; stride 2: the pad or one less, by the parity of the width. Empty without padding.
fn right_edge_misses(shape: &LayerShape, edges: &RowEdges) -> Vec<usize> {
    let mut misses = Vec::new();
    for w in widths(shape, edges.span) {
        let wo = output_width(shape, w);
        let left = shape.pads(w, w).left;
        let missing = edges.right_missing(w, wo, 0, wo, left);
        if missing > 0 && !misses.contains(&missing) {
            misses.push(missing);
        }
    }
    misses.sort_unstable();
    misses
}

fn plan_pointwise(k: usize, n: usize, isa: Backend) -> PointwisePlan {
    let lanes = isa.lanes();
    let full_panels = n / PANEL_WIDTH;
    let rest = n - full_panels * PANEL_WIDTH;
    let tail_panel_width = if rest > 0 {
        round_up(rest, CHANNEL_PAD)
    } else {
        0
    };
    let (rows, vectors) = match isa {
        Backend::Scalar => (1, PANEL_WIDTH),
        _ => {
            // Two vectors per row when N has them; rows fill the register file, keeping
            // one register per column vector and one for the broadcast input.
            let total_vectors = n.div_ceil(lanes);
            let vectors = total_vectors.clamp(1, 2);
            let rows = ((isa.vector_registers() - vectors - 1) / vectors).min(14);
            (rows, vectors)
        }
    };
    // Split a panel of `width` floats (of which `valid` are real channels) into blocks.
    let blocks = |panel: usize, valid: usize| -> Vec<ColumnBlock> {
        let step = if isa == Backend::Scalar { 1 } else { lanes };
        let mut out = Vec::new();
        let mut col = 0;
        while col < valid {
            let remaining_vectors = (valid - col).div_ceil(step);
            let v = if isa == Backend::Scalar {
                valid - col
            } else {
                remaining_vectors.min(vectors)
            };
            let end = (col + v * step).min(valid);
            let last_lanes = end - (col + (v - 1) * step);
            out.push(ColumnBlock {
                panel,
                col,
                vectors: v,
                last_lanes,
            });
            col += v * step;
        }
        out
    };
    let full_panel_blocks = if full_panels > 0 {
        blocks(0, PANEL_WIDTH)
    } else {
        Vec::new()
    };
    let tail_blocks = if rest > 0 {
        blocks(full_panels, rest)
    } else {
        Vec::new()
    };
    let issued_per_row: usize = if isa == Backend::Scalar {
        n
    } else {
        full_panels * full_panel_blocks.iter().map(|b| b.vectors).sum::<usize>() * lanes
            + tail_blocks.iter().map(|b| b.vectors).sum::<usize>() * lanes
    };
    let loads_per_fma = if isa == Backend::Scalar {
        2.0
    } else {
        (rows + vectors) as f64 / (rows * vectors) as f64
    };
    // Rows outer streams every weight from L2 once per block of rows: one vector load per
    // `rows` FMAs. Measured on an AVX-512 Xeon (2 MiB L2): with 14 rows that order was 1-11%
    // faster than panels outer (L1 288 -> 256 us, L3 503 -> 488 us, E5 218 -> 213 us); with
    // AVX2's 6 rows it was 6-9% slower (L3 801 -> 876 us, L5 794 -> 847 us); with 4 MiB of
    // weights (L9) 490 -> 619 us.
    let order = if rows >= MIN_ROWS_FOR_ROWS_OUTER && k * n * 4 <= BIG_WEIGHTS_BYTES {
        PointwiseOrder::RowsOuter
    } else {
        PointwiseOrder::PanelsOuter
    };
    // With rows outer the next block's inputs, `rows * k` floats, are one contiguous run
    // that the first panel's micro-kernel fetches a line per reduction step (14 rows need
    // 14k/16 < k lines). Measured on an AVX-512 Xeon, pointwise stage, best of 5 rounds: L1
    // 259 -> 225 us, L3 491 -> 446 us, E5 214 -> 193 us, L5 440 -> 432 us, L7 438 -> 433
    // us. With panels outer the next block's rows gain nothing (AVX2 L1 398 -> 414 us, L5
    // 790 -> 839 us), but the next weight panel (2k lines), fetched into L2 by the last two
    // full blocks, does: L9 481 -> 451 us, L8 229 -> 223 us (AVX-512), L9 1013 -> 929 us
    // (AVX2); the other AVX2 layers moved within 1%.
    // Measured on the seed's layer (K = 3, AVX-512): the streaming kernel fully unrolled
    // spilled accumulators (1.26 us pointwise; 1.07 us with weights in registers, and the
    // whole layer 1.74 -> 1.54 us); see the emitter.
    let weights_in_registers = isa != Backend::Scalar && k * vectors <= isa.vector_registers() / 2;
    let prefetch = match (isa, order) {
        // A short reduction has nothing to prefetch ahead of.
        _ if weights_in_registers => PointwisePrefetch::Nothing,
        _ if !isa.has_prefetch() => PointwisePrefetch::Nothing,
        (_, PointwiseOrder::RowsOuter) => PointwisePrefetch::NextRowsToL1,
        (_, PointwiseOrder::PanelsOuter) => PointwisePrefetch::NextPanelToL2,
    };
    // The next-panel prefetch addresses the panel after the current one, which only the
    // panels-outer walk has at hand.
    debug_assert!(
        prefetch != PointwisePrefetch::NextPanelToL2 || order == PointwiseOrder::PanelsOuter
    );
    // Measured in the MobileNetV1 body (AVX-512, 1 thread, each layer timed inside the
    // chain and alone): with rows outer, every 1 MiB L7 took 1.11-1.15x its time alone, the
    // whole excess being its weights coming cold from L3 (with one L7's weights shared by
    // the five, the later four took 0.98-1.03x); walking panels outer brought it to
    // 1.04-1.07x, and alone panels outer took the same time as rows outer.
    let cold_first_chunk = (order == PointwiseOrder::RowsOuter
        && !weights_in_registers
        && k * n * 4 >= COLD_WEIGHTS_BYTES)
        .then(|| {
            if isa.has_prefetch() {
                PointwisePrefetch::NextPanelToL2
            } else {
                PointwisePrefetch::Nothing
            }
        });
    PointwisePlan {
        order,
        prefetch,
        cold_first_chunk,
        prefetch_step: CACHE_LINE_FLOATS,
        panel_prefetch_blocks: PANEL_WIDTH.div_ceil(CACHE_LINE_FLOATS),
        weights_in_registers,
        k,
        n,
        rows,
        vectors,
        full_panels,
        full_panel_blocks,
        tail_blocks,
        tail_panel_width,
        loads_per_fma,
        lane_utilisation: n as f64 / issued_per_row as f64,
    }
}

impl Plan {
    /// How a call's work is divided into the thread pool's work items, by image size and
    /// thread count (`SplitRule::split`): fused tiles of at most the fusion plan's size (a 1x1 layer's
    /// chunks), or for few pixels the stages in turn, the pointwise stage by weight panels.
    pub fn split_rule(&self) -> SplitRule {
        let (c, s) = (self.channels as u64, &self.shape);
        let per_pixel = if self.pointwise_only {
            c * s.n as u64
        } else {
            c * (s.dk * s.dk) as u64 + c * s.n as u64
        };
        SplitRule {
            tile_pixels: self.fusion.tile_pixels,
            rows: self.pointwise.rows,
            panels: self.pointwise.panels(),
            multiplications_per_pixel: per_pixel,
            depthwise: !self.pointwise_only,
        }
    }

    /// The report of this plan that users see (`PLAN_<BACKEND>`, `SeparableConv::PLANS`).
    pub fn summary(&self) -> PlanSummary {
        let d = &self.depthwise;
        let p = &self.pointwise;
        PlanSummary {
            backend: self.isa,
            // Leaked once per plan, at compile time (the macro embeds it as a literal).
            geometry: Box::leak(self.shape.describe_geometry().into_boxed_str()),
            activations: self.epilogue.activations,
            lanes: self.isa.lanes(),
            depthwise_strategy: d.strategy(),
            depthwise_pixels_per_block: d.pixels_per_block(),
            depthwise_channel_vectors: d.channel_vectors(self.channels),
            depthwise_loads_per_fma: d.loads_per_fma,
            depthwise_row_loop: d.row_loop,
            depthwise_lane_utilisation: d.lane_utilisation,
            depthwise_weight_stride: self.weight_stride,
            depthwise_padded_channels: self.padded_channels,
            depthwise_channel_group: match &d.kernel {
                DepthwiseKernel::ChannelVectors(cv) => cv.group,
                _ => d.channel_vectors(self.channels),
            },
            depthwise_realigned: matches!(&d.kernel, DepthwiseKernel::ChannelVectors(cv) if cv.realign),
            depthwise_overlapped_tail: matches!(&d.kernel, DepthwiseKernel::ChannelVectors(cv) if cv.overlapped_tail),
            depthwise_rows_per_block: match &d.kernel {
                DepthwiseKernel::ChannelVectors(cv) if cv.row_pairs => 2,
                _ => 1,
            },
            depthwise_passes_outer_up_to: match &d.kernel {
                DepthwiseKernel::ChannelVectors(ChannelVectorPlan {
                    pass_rows: Some(rows),
                    ..
                }) => rows.budget / rows.column_bytes,
                _ => 0,
            },
            pointwise_rows: p.rows,
            pointwise_cols: p.vectors * self.isa.lanes(),
            pointwise_order: p.order,
            pointwise_prefetch: p.prefetch,
            pointwise_cold_first_chunk: p.cold_first_chunk,
            pointwise_weights_in_registers: p.weights_in_registers,
            pointwise_prefetches_next_input: self.fusion.prefetch_next_input,
            pointwise_loads_per_fma: p.loads_per_fma,
            pointwise_lane_utilisation: p.lane_utilisation,
            split: self.split_rule(),
            residual: self.epilogue.residual,
            pointwise_only: self.pointwise_only,
        }
    }
}

/// The layer's shape, then the user-facing report ([`PlanSummary`]'s one `Display`).
impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.shape;
        if self.pointwise_only {
            return write!(f, "pointwise {}->{}; {}", s.m, s.n, self.summary());
        }
        write!(
            f,
            "depthwise over {c} channels, pointwise {c}->{n}; {summary}",
            c = self.channels,
            n = s.n,
            summary = self.summary(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dsconv_runtime::Padding;

    fn shape(dk: usize, m: usize, n: usize, stride: usize, dm: usize) -> LayerShape {
        LayerShape {
            dk,
            m,
            n,
            stride,
            dilation: 1,
            padding: Padding::Same,
            depth_multiplier: dm,
            fixed_size: None,
        }
    }

    #[test]
    fn few_channels_go_across_the_width() {
        let strategy = |m, isa| {
            Plan::for_spec(&shape(5, m, 256, 1, 1), isa)
                .depthwise
                .strategy()
        };
        // The seed's m = 3 would use 3 of 8 (AVX2) or 16 (AVX-512) lanes as channel vectors.
        assert_eq!(strategy(3, Backend::Avx2), DepthwiseStrategy::WidthVectors);
        assert_eq!(
            strategy(3, Backend::Avx512),
            DepthwiseStrategy::WidthVectors
        );
        assert_eq!(
            strategy(8, Backend::Avx2),
            DepthwiseStrategy::ChannelVectors
        );
        assert_eq!(
            strategy(8, Backend::Avx512),
            DepthwiseStrategy::WidthVectors
        );
        assert_eq!(strategy(2, Backend::Neon), DepthwiseStrategy::WidthVectors);
        assert_eq!(
            strategy(3, Backend::Neon),
            DepthwiseStrategy::ChannelVectors
        );
        // A fixed 8x8 image: 8 output columns fill one AVX2 vector (AVX-512 runs its AVX2
        // kernel on rows this narrow); 12 columns fill 12 of 16 AVX-512 lanes.
        let lu = |w, isa| {
            let mut fixed = shape(5, 3, 256, 1, 1);
            fixed.fixed_size = Some((8, w));
            Plan::for_spec(&fixed, isa).depthwise.lane_utilisation
        };
        assert!((lu(8, Backend::Avx2) - 1.0).abs() < 1e-12);
        assert!((lu(8, Backend::Avx512) - 1.0).abs() < 1e-12);
        assert!((lu(12, Backend::Avx512) - 0.75).abs() < 1e-12);
        assert!((lu(12, Backend::Avx2) - 0.75).abs() < 1e-12);
        // 6 channels on an 8-wide image: AVX-512 hands the rows to AVX2's channel vectors.
        let mut six = shape(3, 6, 8, 1, 1);
        six.fixed_size = Some((8, 8));
        let p = Plan::for_spec(&six, Backend::Avx512).depthwise;
        assert_eq!(p.strategy(), DepthwiseStrategy::WidthVectors);
        // The hand-off is the ISA table's: AVX-512 implies AVX2, half its lanes.
        let narrow_of = |p: &DepthwisePlan| match &p.kernel {
            DepthwiseKernel::WidthVectors(wv) => wv.narrow_rows,
            _ => None,
        };
        let narrow = narrow_of(&p).expect("AVX-512 hands narrow rows on");
        assert_eq!(
            (narrow.backend, narrow.max_output_columns),
            (Backend::Avx2, 8)
        );
        assert!(Backend::Avx512.implies().contains(&narrow.backend));
        assert_eq!(
            narrow_of(&Plan::for_spec(&six, Backend::Avx2).depthwise),
            None
        );
        assert!((p.lane_utilisation - 6.0 / 8.0).abs() < 1e-12);
    }

    /// A tail after whole vectors is a whole vector over the last `lanes` channels; alone
    /// (fewer channels than lanes) or with expanded loads it stays masked.
    #[test]
    fn a_tail_after_whole_vectors_overlaps_them_unmasked() {
        let cv_of = |p: &Plan| match &p.depthwise.kernel {
            DepthwiseKernel::ChannelVectors(cv) => {
                (cv.full_vectors, cv.tail_lanes, cv.overlapped_tail)
            }
            _ => panic!("channel vectors"),
        };
        let p = Plan::for_spec(&shape(3, 31, 8, 1, 1), Backend::Avx2);
        assert_eq!(cv_of(&p), (3, Some(7), true));
        assert_eq!(p.depthwise.channel_vectors(31), 4);
        assert!(p
            .summary()
            .to_string()
            .contains("4 channel vector(s) (the last overlapping the one before, unmasked)"));
        let p = Plan::for_spec(&shape(3, 24, 8, 1, 1), Backend::Avx512);
        assert_eq!(cv_of(&p), (1, Some(8), true));
        // Whole vectors: nothing to overlap.
        assert_eq!(
            cv_of(&Plan::for_spec(&shape(3, 32, 8, 1, 1), Backend::Avx2)),
            (4, None, false)
        );
        // One partial vector: masked.
        assert_eq!(
            cv_of(&Plan::for_spec(&shape(3, 5, 8, 1, 1), Backend::Avx2)),
            (0, Some(5), false)
        );
        // A depth multiplier's expanded loads: each vector's lanes come from the table.
        let p = Plan::for_spec(&shape(3, 17, 8, 1, 2), Backend::Avx512);
        assert_eq!(
            p.depthwise.strategy(),
            DepthwiseStrategy::ExpandedChannelVectors
        );
        assert_eq!(cv_of(&p), (2, Some(2), false));
    }

    #[test]
    fn five_channels_on_avx2_waste_three_of_eight_depthwise_lanes_and_say_so() {
        let p = Plan::for_spec(&shape(5, 5, 256, 1, 1), Backend::Avx2);
        assert_eq!(p.depthwise.strategy(), DepthwiseStrategy::ChannelVectors);
        let DepthwiseKernel::ChannelVectors(cv) = &p.depthwise.kernel else {
            panic!("channel vectors")
        };
        assert_eq!((cv.full_vectors, cv.tail_lanes), (0, Some(5)));
        assert_eq!(p.depthwise.channel_vectors(5), 1);
        assert!((p.depthwise.lane_utilisation - 5.0 / 8.0).abs() < 1e-12);
        // 25 weights do not fit with the accumulators in 16 registers.
        assert!(!cv.weights_in_registers);
        assert_eq!(p.pointwise.lane_utilisation, 1.0);
        assert_eq!((p.pointwise.rows, p.pointwise.vectors), (6, 2));
    }

    #[test]
    fn depthwise_3x3_keeps_weights_in_registers_and_blocks_pixels() {
        let p = Plan::for_spec(&shape(3, 128, 128, 1, 1), Backend::Avx2);
        let DepthwiseKernel::ChannelVectors(cv) = &p.depthwise.kernel else {
            panic!("channel vectors")
        };
        assert!(cv.weights_in_registers);
        assert_eq!(cv.blocks, vec![4, 2, 1]);
        // Weights in registers: a vector takes 9 weights, a bias, 3 x 6 inputs and 4 outputs,
        // 32 vectors of 32 bytes = 1 KiB, so passes of 32 KiB / 1 KiB = 32 vectors: L3's 16
        // in one pass, L9's 128 in 4. AVX-512's vectors take twice the bytes: passes of 16.
        assert_eq!(cv.group, 16);
        let group = |m, isa| {
            let p = Plan::for_spec(&shape(3, m, m, 1, 1), isa);
            let DepthwiseKernel::ChannelVectors(cv) = &p.depthwise.kernel else {
                panic!("channel vectors")
            };
            (cv.group, p.summary().depthwise_channel_group)
        };
        assert_eq!(group(1024, Backend::Avx2), (32, 32));
        assert_eq!(group(256, Backend::Avx2), (32, 32));
        assert_eq!(group(1024, Backend::Avx512), (16, 16));
        assert_eq!(group(256, Backend::Avx512), (16, 16));
        assert_eq!(group(128, Backend::Avx512), (8, 8));
        // Strided layers stream their input: one pass (L8's 32 vectors).
        let p8 = Plan::for_spec(&shape(3, 512, 1024, 2, 1), Backend::Avx512);
        let DepthwiseKernel::ChannelVectors(cv8) = &p8.depthwise.kernel else {
            panic!("channel vectors")
        };
        assert_eq!(cv8.group, 32);
        // Passes outer on images up to 32 KiB / (3 rows x 16 vectors x 64 bytes) = 10
        // columns wide (L9's 7), not at stride 2 nor in a single pass.
        let rows = |m, stride, isa| {
            let p = Plan::for_spec(&shape(3, m, m, stride, 1), isa);
            let DepthwiseKernel::ChannelVectors(cv) = &p.depthwise.kernel else {
                panic!("channel vectors")
            };
            (cv.pass_rows, p.summary().depthwise_passes_outer_up_to)
        };
        let l9 = PassRows {
            column_bytes: 3 * 16 * 64,
            budget: 32 * 1024,
        };
        assert_eq!(rows(1024, 1, Backend::Avx512), (Some(l9), 10));
        assert_eq!(rows(1024, 2, Backend::Avx512), (None, 0));
        assert_eq!(rows(256, 1, Backend::Avx512), (None, 0));
        assert_eq!(rows(1024, 1, Backend::Avx2).1, 10);
        // The report names the passes only where there are several.
        let report = |m| {
            Plan::for_spec(&shape(3, m, m, 1, 1), Backend::Avx512)
                .summary()
                .to_string()
        };
        assert!(report(1024).contains(
            "64 channel vector(s) (realigned to the input's address, ends masked), 16 per pass over a row (passes outer up to 10 columns),"
        ));
        assert!(report(128).contains("8 channel vector(s) (realigned"));
        assert!(!report(128).contains("per pass"));
        assert!(report(1024).contains("passes outer up to 10 columns"));
        assert_eq!(p.depthwise.pixels_per_block(), 4);
        // 4 outputs: 9 weight loads and 3 rows x 6 input loads for 36 FMAs.
        assert!((p.depthwise.loads_per_fma - 27.0 / 36.0).abs() < 1e-12);
        let p = Plan::for_spec(&shape(3, 128, 128, 2, 1), Backend::Avx512);
        assert_eq!(p.depthwise.pixels_per_block(), 4);
        // Stride 2: 3 rows x 9 input loads and 9 weight loads for 36 FMAs.
        assert!((p.depthwise.loads_per_fma - 36.0 / 36.0).abs() < 1e-12);
        assert_eq!(p.depthwise.channel_vectors(128), 8);
    }

    #[test]
    fn depthwise_3x3_stride_1_pairs_rows_below_half_a_load_per_fma() {
        let pairs = |s: &LayerShape, isa| {
            let p = Plan::for_spec(s, isa);
            let DepthwiseKernel::ChannelVectors(cv) = &p.depthwise.kernel else {
                panic!("channel vectors")
            };
            (cv.row_pairs, p.depthwise.loads_per_fma)
        };
        // 32 registers: two rows of 4 pixels, 9 weights. 4 input rows x 6 columns and 9
        // weight loads for 72 FMAs: 0.46 loads per FMA, against 0.75 for one row.
        for isa in [Backend::Avx512, Backend::Neon] {
            let (paired, loads) = pairs(&shape(3, 256, 256, 1, 1), isa);
            assert!(paired, "{isa:?}");
            assert!((loads - 33.0 / 72.0).abs() < 1e-12, "{isa:?}: {loads}");
            assert!(loads <= 0.5);
        }
        // 16 registers hold one row's accumulators only.
        assert_eq!(
            pairs(&shape(3, 256, 256, 1, 1), Backend::Avx2),
            (false, 27.0 / 36.0)
        );
        // Stride 2 and dilation share no input rows between two output rows; a 5x5's 25
        // weights leave no room for 8 accumulators.
        assert!(!pairs(&shape(3, 256, 256, 2, 1), Backend::Avx512).0);
        let mut dilated = shape(3, 256, 256, 1, 1);
        dilated.dilation = 2;
        assert!(!pairs(&dilated, Backend::Avx512).0);
        assert!(!pairs(&shape(5, 256, 256, 1, 1), Backend::Avx512).0);
        // The report states it.
        let report = Plan::for_spec(&shape(3, 256, 256, 1, 1), Backend::Avx512)
            .summary()
            .to_string();
        assert!(report.contains("4 px/block in each of 2 rows"), "{report}");
        assert!(report.contains("0.46 loads/FMA"), "{report}");
    }

    #[test]
    fn every_depth_multiplier_expands_channel_vectors() {
        use DepthwiseStrategy::{ExpandedChannelVectors, Scalar};
        let strategy = |dm, isa| {
            Plan::for_spec(&shape(3, 9, 17, 1, dm), isa)
                .depthwise
                .strategy()
        };
        for isa in [Backend::Avx2, Backend::Avx512, Backend::Neon] {
            for dm in (2..=8).chain([16]) {
                assert_eq!(strategy(dm, isa), ExpandedChannelVectors, "{isa} dm {dm}");
            }
        }
        assert_eq!(strategy(2, Backend::Scalar), Scalar);
        // Few channels do not switch to width vectors when DM > 1 (their planar copy reads
        // input channel `ch`, not `ch / DM`).
        let p = Plan::for_spec(&shape(3, 1, 17, 1, 2), Backend::Avx512);
        assert_eq!(p.depthwise.strategy(), ExpandedChannelVectors);
        // M * DM = 2 channels: one vector, its 2 lanes a tail.
        assert_eq!(
            match &p.depthwise.kernel {
                DepthwiseKernel::ChannelVectors(cv) => (cv.full_vectors, cv.tail_lanes),
                _ => panic!("channel vectors"),
            },
            (0, Some(2))
        );
    }

    /// Kernels whose weights stay in memory run 8-pixel interior blocks, but their edge
    /// blocks (one unrolled variant per reachable miss) stay at the register-weights size,
    /// with the span and misses of that size.
    #[test]
    fn only_the_scalar_backend_gets_the_scalar_kernel() {
        // The vector emitters have no scalar arm: every vector plan vectorises.
        for isa in Backend::ALL {
            for dk in [1, 3, 5, 7, 9, 11] {
                for m in [1, 3, 8, 17, 64, 1024] {
                    for dm in [1, 2, 3, 5, 7, 8, 16] {
                        for stride in [1, 2] {
                            let plan = Plan::for_spec(&shape(dk, m, 8, stride, dm), isa);
                            let scalar = plan.depthwise.kernel == DepthwiseKernel::Scalar;
                            assert_eq!(scalar, isa == Backend::Scalar, "{isa:?} {dk} {m} {dm}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn channel_vectors_realign_to_the_input_where_whole_vectors_allow() {
        let realign =
            |dk, m, stride, dm, isa| match Plan::for_spec(&shape(dk, m, 8, stride, dm), isa)
                .depthwise
                .kernel
            {
                DepthwiseKernel::ChannelVectors(cv) => cv.realign,
                _ => false,
            };
        // MobileNet's layers of 128 channels and more (8 vectors), stride 1 and 2.
        for (m, stride) in [(128, 1), (128, 2), (256, 1), (512, 2), (1024, 1)] {
            assert!(realign(3, m, stride, 1, Backend::Avx512), "{m}");
        }
        // Fewer vectors (L1's 32 channels, L2's 64), a masked tail already (136 channels),
        // expanded loads (a depth multiplier), looped kernel rows (dk 31): none.
        assert!(!realign(3, 32, 1, 1, Backend::Avx512));
        assert!(!realign(3, 64, 2, 1, Backend::Avx512));
        assert!(!realign(3, 136, 1, 1, Backend::Avx512));
        assert!(!realign(3, 64, 1, 2, Backend::Avx512));
        assert!(!realign(31, 256, 1, 1, Backend::Avx512));
        // Not measured on AVX2 (half its loads split); NEON, scalar: none.
        for isa in [Backend::Avx2, Backend::Neon, Backend::Scalar] {
            assert!(!realign(3, 128, 1, 1, isa), "{isa:?}");
        }
        // The report says so.
        let text = Plan::for_spec(&shape(3, 128, 128, 1, 1), Backend::Avx512)
            .summary()
            .to_string();
        assert!(
            text.contains("8 channel vector(s) (realigned to the input's address, ends masked)"),
            "{text}"
        );
    }

    #[test]
    fn weight_rows_a_multiple_of_2_kib_apart_are_skewed_by_a_line() {
        // 512 padded channels are 2 KiB: every tap's row one line further.
        assert_eq!(weight_stride(512), 512 + CACHE_LINE_FLOATS);
        assert_eq!(weight_stride(1024), 1024 + CACHE_LINE_FLOATS);
        assert_eq!(weight_stride(1536), 1536 + CACHE_LINE_FLOATS);
        // Others keep the padded channels (1 KiB apart was measured slower skewed).
        for cp in [16, 32, 64, 128, 144, 256, 272, 768, 1040] {
            assert_eq!(weight_stride(cp), cp, "{cp}");
        }
        // The one layout every backend of a layer reads: the same stride on each, and the
        // rows no longer a multiple of 2 KiB apart.
        for m in [512, 1024, 2048] {
            let shape = shape(3, m, 64, 1, 1);
            let strides: Vec<usize> = Backend::ALL
                .into_iter()
                .map(|b| Plan::for_spec(&shape, b).weight_stride)
                .collect();
            assert!(strides.iter().all(|&s| s == strides[0]), "{strides:?}");
            let bytes = strides[0] * 4;
            assert!(!bytes.is_multiple_of(2048), "m = {m}");
        }
        // The report says so, for skewed layouts only.
        let skewed = Plan::for_spec(&shape(3, 1024, 64, 1, 1), Backend::Avx2).to_string();
        assert!(
            skewed.contains("tap weight rows 1040 floats apart (1024 + 16"),
            "{skewed}"
        );
        let plain = Plan::for_spec(&shape(3, 256, 64, 1, 1), Backend::Avx2).to_string();
        assert!(!plain.contains("tap weight rows"), "{plain}");
    }

    #[test]
    fn edge_blocks_stay_small_when_the_interior_grows() {
        for (dk, stride) in [(5, 1), (7, 1), (9, 2), (11, 1)] {
            let s = shape(dk, 64, 16, stride, 1);
            let p = Plan::for_spec(&s, Backend::Avx2);
            let DepthwiseKernel::ChannelVectors(cv) = &p.depthwise.kernel else {
                panic!("channel vectors")
            };
            assert!(!cv.weights_in_registers);
            // Weights from memory: the 8 vectors in groups that fit in L1.
            assert!(cv.group < 8, "dk {dk}: group {}", cv.group);
            assert_eq!(cv.blocks[0], MAX_DEPTHWISE_BLOCK_MEMORY_WEIGHTS, "dk {dk}");
            assert_eq!(cv.edges.block, MAX_DEPTHWISE_BLOCK, "dk {dk}");
            assert_eq!(cv.edges.span, (MAX_DEPTHWISE_BLOCK - 1) * stride + dk);
            assert!(!cv.edges.right_misses.is_empty() && !cv.edges.left_misses.is_empty());
            for b in &cv.block_columns {
                if b.skip_lo > 0 || b.skip_hi > 0 {
                    assert_eq!(b.block, MAX_DEPTHWISE_BLOCK, "dk {dk}");
                }
            }
        }
    }

    /// Up to 9x9 every tap is unrolled; past it the kernel rows loop (on every backend),
    /// few channels take channel vectors (width vectors unroll every tap), and the plan's
    /// text says so.
    #[test]
    fn kernels_past_9x9_loop_over_their_rows() {
        for isa in Backend::ALL {
            for (dk, m) in [(3, 64), (9, 64), (9, 2), (10, 64), (31, 256), (31, 2)] {
                let p = Plan::for_spec(&shape(dk, m, 16, 1, 1), isa);
                assert_eq!(
                    p.depthwise.row_loop,
                    dk * dk > MAX_UNROLLED_TAPS,
                    "{isa} dk {dk}"
                );
                let text = p.to_string();
                if p.depthwise.row_loop {
                    assert!(text.contains("kernel rows looped"), "{text}");
                    assert_ne!(p.depthwise.strategy(), DepthwiseStrategy::WidthVectors);
                } else {
                    assert!(text.contains("taps unrolled"), "{text}");
                }
            }
        }
        assert_eq!(
            Plan::for_spec(&shape(9, 2, 16, 1, 1), Backend::Avx2)
                .depthwise
                .strategy(),
            DepthwiseStrategy::WidthVectors
        );
    }

    /// The expanded-load table, for every depth multiplier 2..=16, many `M` and every
    /// vector width: each lane of each vector (the tail's valid lanes) takes input channel
    /// `o / DM` of its output channel `o`, no load reads past the pixel's `M` channels, and
    /// the load is a width the emitter has (a power of two up to the lanes, or `M`).
    #[test]
    fn expanded_loads_take_each_output_channels_input() {
        for lanes in [4, 8, 16] {
            for dm in 2..=16 {
                for m in (1..=40).chain([64, 127, 256]) {
                    let e = Expansion::new(m, dm, lanes);
                    let channels = m * dm;
                    assert_eq!(e.offsets.len(), channels.div_ceil(lanes));
                    let w = e.load_floats;
                    assert!(
                        (w.is_power_of_two() && w <= lanes) || w == m,
                        "lanes {lanes} dm {dm} m {m}: {w}"
                    );
                    for (v, (&off, idx)) in e.offsets.iter().zip(&e.indices).enumerate() {
                        assert!(off + w <= m, "lanes {lanes} dm {dm} m {m} v {v}");
                        assert_eq!(idx.len(), lanes);
                        for (l, &i) in idx.iter().enumerate() {
                            assert!(i < w);
                            let o = v * lanes + l;
                            if o < channels {
                                assert_eq!(off + i, o / dm, "lanes {lanes} dm {dm} m {m} o {o}");
                            }
                        }
                    }
                    // A depth multiplier dividing the lanes reads lanes / DM floats a load
                    // (one: a broadcast, no permute), as before the table.
                    if lanes % dm == 0 && m * dm >= lanes && (lanes / dm) <= m {
                        assert_eq!(w, lanes / dm, "lanes {lanes} dm {dm} m {m}");
                        assert_eq!(e.is_broadcast(), dm == lanes);
                    }
                }
            }
        }
        // DM 3 on AVX2: vector 1 (outputs 8..16) starts at input channel 2, its third copy.
        let e = Expansion::new(16, 3, 8);
        assert_eq!(e.load_floats, 4);
        assert_eq!(e.offsets[..3], [0, 2, 5]);
        assert_eq!(e.indices[1], [0, 1, 1, 1, 2, 2, 2, 3]);
    }

    #[test]
    fn pointwise_blocks_cover_every_channel_once() {
        for isa in Backend::ALL {
            for n in [1, 3, 8, 16, 17, 31, 32, 33, 40, 64, 100, 256, 1024] {
                let p = Plan::for_spec(&shape(3, 8, n, 1, 1), isa);
                let lanes = if isa == Backend::Scalar {
                    1
                } else {
                    isa.lanes()
                };
                let mut covered = vec![0; n];
                let panels = (0..p.pointwise.full_panels)
                    .flat_map(|panel| {
                        p.pointwise
                            .full_panel_blocks
                            .iter()
                            .map(move |b| ColumnBlock { panel, ..*b })
                    })
                    .chain(p.pointwise.tail_blocks.iter().copied());
                for b in panels {
                    assert!(b.vectors <= p.pointwise.vectors.max(1) || isa == Backend::Scalar);
                    let start = b.panel * PANEL_WIDTH + b.col;
                    let len = (b.vectors - 1) * lanes + b.last_lanes;
                    for c in &mut covered[start..start + len] {
                        *c += 1;
                    }
                }
                assert!(covered.iter().all(|&c| c == 1), "{isa:?} n={n}");
            }
        }
    }

    #[test]
    fn register_tiles_fit_the_register_file() {
        for isa in [Backend::Avx2, Backend::Avx512, Backend::Neon] {
            let p = Plan::for_spec(&shape(3, 64, 256, 1, 1), isa).pointwise;
            assert!(
                p.rows * p.vectors + p.vectors < isa.vector_registers(),
                "{isa:?}"
            );
        }
        let p = Plan::for_spec(&shape(3, 64, 256, 1, 1), Backend::Avx512).pointwise;
        assert_eq!((p.rows, p.vectors), (14, 2));
    }

    #[test]
    fn pointwise_order_streams_weights_only_when_they_fit_l2_and_the_tile_is_tall() {
        let order = |m, n, isa| Plan::for_spec(&shape(3, m, n, 1, 1), isa).pointwise.order;
        // L3 (64 KiB of weights) and L7 (1 MiB, the limit): 14-row tiles walk rows outer.
        assert_eq!(order(128, 128, Backend::Avx512), PointwiseOrder::RowsOuter);
        assert_eq!(order(512, 512, Backend::Avx512), PointwiseOrder::RowsOuter);
        assert_eq!(order(32, 64, Backend::Neon), PointwiseOrder::RowsOuter);
        // 2 and 4 MiB of weights (L8, L9) are read once per tile instead.
        assert_eq!(
            order(512, 1024, Backend::Avx512),
            PointwiseOrder::PanelsOuter
        );
        assert_eq!(
            order(1024, 1024, Backend::Avx512),
            PointwiseOrder::PanelsOuter
        );
        // AVX2's 6-row tile would load a weight vector per 6 FMAs from L2.
        assert_eq!(order(128, 128, Backend::Avx2), PointwiseOrder::PanelsOuter);
        assert_eq!(
            order(128, 128, Backend::Scalar),
            PointwiseOrder::PanelsOuter
        );
        // Rows outer prefetches the next rows, panels outer the next panel, and only where
        // stable Rust has a prefetch (x86).
        let prefetch = |m, n, isa| {
            Plan::for_spec(&shape(3, m, n, 1, 1), isa)
                .pointwise
                .prefetch
        };
        use PointwisePrefetch::*;
        assert_eq!(prefetch(128, 128, Backend::Avx512), NextRowsToL1);
        assert_eq!(prefetch(1024, 1024, Backend::Avx512), NextPanelToL2);
        assert_eq!(prefetch(128, 128, Backend::Avx2), NextPanelToL2);
        assert_eq!(prefetch(32, 64, Backend::Neon), Nothing);
        assert_eq!(prefetch(32, 64, Backend::Scalar), Nothing);
    }

    #[test]
    fn large_weights_walked_rows_outer_take_panels_outer_when_cold() {
        let plan = |m, n, isa| Plan::for_spec(&shape(3, m, n, 1, 1), isa);
        let cold = |m, n, isa| plan(m, n, isa).pointwise.cold_first_chunk;
        use PointwisePrefetch::*;
        // L4 (128 KiB, the limit), L5 (256 KiB), L6 (512 KiB), L7 (1 MiB) walk rows
        // outer; their cold chunk walks panels outer and fetches the next panel into L2.
        assert_eq!(cold(128, 256, Backend::Avx512), Some(NextPanelToL2));
        assert_eq!(cold(256, 256, Backend::Avx512), Some(NextPanelToL2));
        assert_eq!(cold(256, 512, Backend::Avx512), Some(NextPanelToL2));
        assert_eq!(cold(512, 512, Backend::Avx512), Some(NextPanelToL2));
        // Just under the limit: 127 x 256 floats.
        assert_eq!(cold(127, 256, Backend::Avx512), None);
        // NEON walks rows outer too but has no stable prefetch: panels outer alone.
        assert_eq!(cold(256, 256, Backend::Neon), Some(Nothing));
        // L3's 64 KiB come in as fast as the first block computes.
        assert_eq!(cold(128, 128, Backend::Avx512), None);
        // Panels outer already (L9; AVX2's 6-row tile; scalar): nothing to change.
        assert_eq!(cold(1024, 1024, Backend::Avx512), None);
        assert_eq!(cold(512, 512, Backend::Avx2), None);
        assert_eq!(cold(512, 512, Backend::Scalar), None);
        // Weights in registers (a reduction of 3): nothing streams.
        assert_eq!(cold(3, 256, Backend::Avx512), None);
        // The report says so.
        let text = plan(512, 512, Backend::Avx512).summary().to_string();
        assert!(
            text.contains(
                "(each thread's first item on these weights: weight panels outer, next weight panel prefetched to L2)"
            ),
            "{text}"
        );
        assert!(!plan(128, 128, Backend::Avx512)
            .summary()
            .to_string()
            .contains("first item"));
    }

    fn edge_misses(plan: &Plan) -> Vec<usize> {
        match &plan.depthwise.kernel {
            DepthwiseKernel::ChannelVectors(cv) => cv.edges.right_misses.clone(),
            _ => panic!("channel vectors"),
        }
    }

    #[test]
    fn right_edge_blocks_exist_for_every_reachable_miss() {
        let misses = |dk, stride| {
            let plan = Plan::for_spec(&shape(dk, 64, 64, stride, 1), Backend::Avx512);
            edge_misses(&plan)
        };
        assert_eq!(misses(3, 1), vec![1]);
        assert_eq!(misses(3, 2), vec![1]);
        assert_eq!(misses(5, 1), vec![2]);
        assert_eq!(misses(5, 2), vec![1, 2]);
        assert_eq!(misses(7, 1), vec![3]);
        assert_eq!(misses(7, 2), vec![2, 3]);
        let mut valid = shape(3, 64, 64, 1, 1);
        valid.padding = Padding::Valid;
        assert!(edge_misses(&Plan::for_spec(&valid, Backend::Avx512)).is_empty());
    }

    #[test]
    fn short_reductions_keep_the_weights_in_registers() {
        let wir = |m, n, isa| {
            Plan::for_spec(&shape(5, m, n, 1, 1), isa)
                .pointwise
                .weights_in_registers
        };
        // The seed (K = 3, two vectors per block): 6 weight vectors.
        assert!(wir(3, 256, Backend::Avx512));
        assert!(wir(3, 256, Backend::Avx2));
        assert!(wir(8, 256, Backend::Avx512));
        assert!(!wir(8, 256, Backend::Avx2));
        assert!(!wir(128, 128, Backend::Avx512));
        assert!(!wir(3, 256, Backend::Scalar));
        let text = Plan::for_spec(&shape(5, 3, 256, 1, 1), Backend::Avx512).to_string();
        assert!(text.contains("weights in registers"), "{text}");
        let p = Plan::for_spec(&shape(5, 3, 256, 1, 1), Backend::Avx512).pointwise;
        assert_eq!(p.prefetch, PointwisePrefetch::Nothing);
        let text = Plan::for_spec(&shape(3, 128, 128, 1, 1), Backend::Avx512).to_string();
        assert!(
            text.contains("14x32 register tile, pixel rows outer"),
            "{text}"
        );
    }

    #[test]
    fn the_pointwise_stage_prefetches_the_next_tiles_input_where_it_can() {
        // Fused layers whose pointwise micro-kernel has a reduction loop, on AVX-512 (where
        // it was measured to pay).
        for (m, n) in [(32, 64), (64, 128), (256, 256), (1024, 1024)] {
            let plan = Plan::for_spec(&shape(3, m, n, 1, 1), Backend::Avx512);
            assert!(plan.fusion.prefetch_next_input, "{m}->{n}");
            assert!(plan
                .to_string()
                .contains("the next tile's input prefetched to L2"));
            for isa in [Backend::Scalar, Backend::Avx2, Backend::Neon] {
                assert!(
                    !Plan::for_spec(&shape(3, m, n, 1, 1), isa)
                        .fusion
                        .prefetch_next_input
                );
            }
        }
        // The seed's layer (K = 3): weights in registers, no reduction loop to spread over.
        let seed = Plan::for_spec(&shape(5, 3, 256, 1, 1), Backend::Avx512);
        assert!(seed.pointwise.weights_in_registers);
        assert!(!seed.fusion.prefetch_next_input);
        assert!(!seed.to_string().contains("next tile's input"));
        // A 1x1 layer has no depthwise stage to read ahead for.
        let one = Plan::for_pointwise_layer(256, 256, None, Epilogue::default(), Backend::Avx512);
        assert!(!one.fusion.prefetch_next_input);
    }

    #[test]
    fn fused_tiles_hold_enough_pixels_to_amortise_weights() {
        let big = Plan::for_spec(&shape(3, 1024, 1024, 1, 1), Backend::Avx2);
        assert!(big.fusion.tile_pixels >= MIN_TILE_PIXELS);
        assert_eq!(big.fusion.tile_pixels % big.pointwise.rows, 0);
        let small = Plan::for_spec(&shape(3, 32, 64, 1, 1), Backend::Avx2);
        assert!(small.fusion.tile_pixels * small.channels * 4 <= FUSION_TILE_BYTES + 4 * 32 * 6);
    }

    #[test]
    fn plan_displays_its_decisions() {
        let text = Plan::for_spec(&shape(5, 5, 256, 1, 1), Backend::Avx2).to_string();
        assert!(
            text.starts_with(
                "depthwise over 5 channels, pointwise 5->256; avx2 (8 lanes): depthwise 5x5, \
                 stride 1, padding \"same\": (top, left, bottom, right) = (2, 2, 2, 2), \
                 activation none: channel vectors"
            ),
            "{text}"
        );
        assert!(text.contains("lane utilisation 62.5%"), "{text}");
        let seed = Plan::for_spec(&shape(5, 3, 256, 1, 1), Backend::Avx2).to_string();
        assert!(seed.contains("width vectors"), "{seed}");
        // Pads per side, by size when the rule depends on it, and each stage's activation.
        let mut tf = shape(3, 8, 16, 2, 1);
        tf.padding = Padding::SameUpper;
        let epilogue = Epilogue {
            bias: false,
            residual: false,
            activations: dsconv_runtime::Activations {
                depthwise: dsconv_runtime::Activation::Relu6,
                pointwise: dsconv_runtime::Activation::None,
            },
        };
        let text = Plan::for_layer(&tf, epilogue, Backend::Avx2).to_string();
        assert!(
            text.contains(
                "padding \"same_upper\": by the input size, along each axis 1 before and 1 \
                 after, or 0 before and 1 after (computed per call), activation relu6"
            ),
            "{text}"
        );
        assert!(text.contains("pointwise activation none: 6x16"), "{text}");
        tf.fixed_size = Some((8, 9));
        tf.dilation = 2;
        let text = Plan::for_spec(&tf, Backend::Avx2).to_string();
        assert!(
            text.contains(
                "3x3, stride 2, dilation 2 (window 5x5), padding \"same_upper\": (top, left, \
                 bottom, right) = (1, 2, 2, 2)"
            ),
            "{text}"
        );
    }
}
