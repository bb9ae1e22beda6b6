//! Drivers: the loops and layouts of the generated kernels that do not depend on the layer's
//! shape, as plain generic Rust (unit-tested and Miri-checked on their own, compiled once
//! here instead of copied as tokens into every layer and backend). Generated per-ISA
//! kernels call them with their shape's constants; `#[inline(always)]` puts them inside the
//! caller's `#[target_feature]` function, so they cost nothing across that boundary.
//!
//! - [`fused_tiles`]: `forward`'s walk over output tiles (depthwise into a scratch tile,
//!   then the pointwise stage while it is in cache).
//! - [`PixelChunks`]: the pointwise stage's chunks of pixels.
//! - [`RowRuns`]: a run of output pixels split at row ends (the depthwise row segmentation).
//! - [`tap_range`]: the taps of a window that read the image, not padding.
//! - [`RowEdges`]: which blocks at the ends of a row run the edge code (the run-time edge
//!   check; the planner enumerates the same function to decide which variants to emit).
//! - [`PlanarScratch`]: the width-vector depthwise's scratch layout (its size and offsets)
//!   and the planar copy into it.

use crate::layer::{with_scratch, with_stage_buffer};
use crate::{LayerShape, Pads, Split, SplitRule};

/// `forward`'s walk over its output (`pixels * n` floats), as the plan's `rule` splits it
/// ([`SplitRule::split`]) into the current [`Pool`](crate::Pool)'s work items:
///
/// - tiles ([`Split::Inline`], [`Split::Tiles`]): for each, `depthwise(first_pixel, tile,
///   scratch)` fills `tile` (`pixels * c` floats of per-thread scratch, reused: no allocation
///   in steady state) and `pointwise(first_pixel, tile, pixels, out_rows, panels, next,
///   cold)` consumes it while it is in cache, writing every weight panel of the `pixels * n`
///   floats at `out_rows`; `next` is the next tile's `(first_pixel, pixels)`, whose input
///   the pointwise stage may prefetch ([`next_tile_rows`]), and `cold` is
///   [`cold_item`];
/// - [`Split::Staged`]: the depthwise stage of every pixel into one buffer (of the calling
///   thread) in runs, then the pointwise stage by chunks of pixels times groups of panels,
///   each item writing only its panels' columns of its rows (`next` is `None`).
///
/// `scratch_floats` of per-thread scratch follow each tile (the depthwise kernel's own).
/// The split depends on the layer, the image size and the pool's thread count, but an
/// output value does not depend on the item or thread that computes it: outputs are
/// bit-identical for every thread count.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn fused_tiles(
    output: &mut [f32],
    n: usize,
    c: usize,
    rule: SplitRule,
    scratch_floats: usize,
    depthwise: impl Fn(usize, &mut [f32], &mut [f32]) + Sync,
    pointwise: impl Fn(usize, &[f32], usize, *mut f32, (usize, usize), Option<(usize, usize)>, bool)
        + Sync,
) {
    let (pixels, panels) = (output.len() / n, rule.panels);
    let split = rule.split(pixels, crate::Pool::current(|pool| pool.job_threads()));
    let out = SharedOut(output.as_mut_ptr());
    if !matches!(split, Split::Staged { .. }) {
        let tile_floats = split.longest_tile() * c;
        let tiles = split.tiles();
        let threads = if split.parallel() {
            crate::Pool::current(|pool| pool.threads())
        } else {
            1
        };
        let run_tile = |t: usize| {
            let (first_pixel, pixels) = split.tile(t);
            // Tile t writes output floats first_pixel * n .. (first_pixel + pixels) * n,
            // inside `output` and disjoint from every other tile's.
            let out_rows = out.at(first_pixel * n);
            with_scratch(tile_floats + scratch_floats, |buffer| {
                let (tile, scratch) = buffer.split_at_mut(tile_floats);
                let dw_tile = &mut tile[..pixels * c];
                depthwise(first_pixel, dw_tile, scratch);
                let next = (t + 1 < tiles).then(|| split.tile(t + 1));
                let cold = cold_item(&split, t, threads);
                pointwise(
                    first_pixel,
                    dw_tile,
                    pixels,
                    out_rows,
                    (0, panels),
                    next,
                    cold,
                );
            })
        };
        if split.parallel() {
            crate::Pool::current(|pool| pool.run(tiles, &run_tile));
        } else {
            (0..tiles).for_each(run_tile);
        }
        return;
    }
    // In stages: the whole depthwise output in the calling thread's stage buffer, written
    // by runs (disjoint pixels), read by the pointwise items once every run is done.
    with_stage_buffer(pixels * c, |stage| {
        let dw_out = SharedOut(stage.as_mut_ptr());
        let run = |r: usize| {
            let (first_pixel, len) = split.run(r);
            // SAFETY: run r covers pixels first_pixel..first_pixel + len of the buffer's
            // `pixels * c` floats, disjoint from every other run's; the buffer outlives the
            // pool's run.
            let part =
                unsafe { std::slice::from_raw_parts_mut(dw_out.at(first_pixel * c), len * c) };
            with_scratch(scratch_floats, |scratch| {
                depthwise(first_pixel, part, scratch)
            });
        };
        crate::Pool::current(|pool| pool.run(split.runs(), &run));
        let stage: &[f32] = stage;
        let threads = crate::Pool::current(|pool| pool.threads());
        let item = |i: usize| {
            let ((first_pixel, len), range) = split.chunk(i);
            let rows = &stage[first_pixel * c..(first_pixel + len) * c];
            let cold = cold_item(&split, i, threads);
            pointwise(
                first_pixel,
                rows,
                len,
                out.at(first_pixel * n),
                range,
                None,
                cold,
            );
        };
        crate::Pool::current(|pool| pool.run(split.items(), &item));
    });
}

/// Whether pointwise item `i` of `split`, run by a pool of `threads` threads, is the first
/// item its thread runs with its weights, which may then still be in L3 or memory (the
/// layers run before filled the core's L2): the first item of the thread's share of the job
/// ([`Pool::run`](crate::Pool::run) gives thread `t` items `t * n / threads..`) or of the
/// items reading the same weights ([`Split::weights_group_start`]), whichever comes later.
/// The pointwise kernels walk such an item `cold` (the plan's `cold_first_chunk`). Only the
/// walk order depends on it, never a value; where items run otherwise (a busy pool, inline,
/// rayon) the walk may just be the other one.
#[inline(always)]
pub fn cold_item(split: &Split, i: usize, threads: usize) -> bool {
    let n = match split {
        Split::Staged { .. } => split.items(),
        _ => split.tiles(),
    };
    i == crate::pool::share_start(i, n, threads.max(1)).max(split.weights_group_start(i))
}

/// The input rows (of `w * shape.m` floats each) that the depthwise stage of the tile
/// `next` reads and that of the tile `current` does not, both `(first_pixel, pixels)` of
/// an `h x w` input's `wo`-wide output grid, the next after the current: what the current
/// tile's pointwise stage prefetches for the next tile. Empty when the next tile reads no
/// new row.
pub fn next_tile_rows<'a>(
    input: &'a [f32],
    shape: &LayerShape,
    (h, w, wo): (usize, usize, usize),
    current: (usize, usize),
    next: (usize, usize),
) -> &'a [f32] {
    if wo == 0 || current.1 == 0 || next.1 == 0 {
        return &[];
    }
    let (top, stride, window) = (shape.pads(h, w).top, shape.stride, shape.window());
    // Output row `oy` reads input rows `oy * stride - top ..= oy * stride - top + window - 1`.
    let current_last = (current.0 + current.1 - 1) / wo;
    let next_last = (next.0 + next.1 - 1) / wo;
    let first = (current_last * stride + window).saturating_sub(top);
    let end = (next_last * stride + window).saturating_sub(top).min(h);
    let row = w * shape.m;
    if first >= end || end * row > input.len() {
        return &[];
    }
    &input[first * row..end * row]
}

/// The output of a parallel walk, shared by the threads that write its disjoint parts.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub(crate) *mut f32);

// SAFETY: threads only write disjoint parts through it (tiles of rows, or the columns of
// disjoint weight panels: see `fused_tiles`), and the walk holds `output`'s mutable borrow
// until every item has run.
unsafe impl Sync for SharedOut {}
unsafe impl Send for SharedOut {}

impl SharedOut {
    /// The pointer `offset` floats in (the method keeps closures capturing the whole
    /// wrapper, not its raw field).
    pub(crate) fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// The pointwise stage's walk: `0..pixels` in chunks of at most `chunk` pixels (small
/// enough that a chunk's inputs stay in L2 while every panel of weights passes over them),
/// as `(first pixel, pixels)`.
#[derive(Clone, Copy, Debug)]
pub struct PixelChunks {
    next: usize,
    end: usize,
    chunk: usize,
}

impl PixelChunks {
    /// The chunks of `0..pixels` (a `chunk` of 0 counts as 1).
    #[inline(always)]
    pub fn new(pixels: usize, chunk: usize) -> Self {
        PixelChunks {
            next: 0,
            end: pixels,
            chunk: chunk.max(1),
        }
    }
}

impl Iterator for PixelChunks {
    type Item = (usize, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.next >= self.end {
            return None;
        }
        let first = self.next;
        let len = (self.end - first).min(self.chunk);
        self.next += len;
        Some((first, len))
    }
}

/// One row's part of a run of output pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowRun {
    /// Output row.
    pub oy: usize,
    /// First output column.
    pub ox0: usize,
    /// One past the last output column.
    pub ox1: usize,
    /// Pixels of the run before this part (its offset in the run's output, in pixels).
    pub offset: usize,
}

/// The pixels `first..end` of a `wo`-wide output grid, split at row ends.
#[derive(Clone, Copy, Debug)]
pub struct RowRuns {
    p: usize,
    first: usize,
    end: usize,
    wo: usize,
}

impl RowRuns {
    /// The runs of pixels `first..end` (row-major, `wo >= 1` columns per row).
    #[inline(always)]
    pub fn new(first: usize, end: usize, wo: usize) -> Self {
        RowRuns {
            p: first,
            first,
            end,
            wo,
        }
    }
}

impl Iterator for RowRuns {
    type Item = RowRun;

    #[inline(always)]
    fn next(&mut self) -> Option<RowRun> {
        if self.p >= self.end {
            return None;
        }
        let (oy, ox0) = (self.p / self.wo, self.p % self.wo);
        let ox1 = self.wo.min(ox0 + (self.end - self.p));
        let run = RowRun {
            oy,
            ox0,
            ox1,
            offset: self.p - self.first,
        };
        self.p += ox1 - ox0;
        Some(run)
    }
}

/// [`RowRuns`] with consecutive whole rows taken two at a time when `pairs`: `(run, 2)` for
/// rows `run.oy` and `run.oy + 1` (the second's pixels follow the first's), else `(run, 1)`.
#[derive(Clone, Debug)]
struct PairedRuns {
    runs: RowRuns,
    wo: usize,
    pairs: bool,
    held: Option<RowRun>,
}

impl PairedRuns {
    #[inline(always)]
    fn new(first: usize, end: usize, wo: usize, pairs: bool) -> Self {
        PairedRuns {
            runs: RowRuns::new(first, end, wo),
            wo,
            pairs,
            held: None,
        }
    }
}

impl Iterator for PairedRuns {
    type Item = (RowRun, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<(RowRun, usize)> {
        let run = self.held.take().or_else(|| self.runs.next())?;
        let whole = |r: &RowRun| r.ox0 == 0 && r.ox1 == self.wo;
        if self.pairs && whole(&run) {
            if let Some(next) = self.runs.next() {
                if whole(&next) {
                    return Some((run, 2));
                }
                self.held = Some(next);
            }
        }
        Some((run, 1))
    }
}

/// The channel-vector depthwise kernel's walk over its row runs ([`RowRuns`]) and its
/// passes over the channel vectors (`group` of the `vectors` at a time, so that a pass's
/// weights and a block's window stay in L1): `(g0, g1, run, rows)` for pass `g0..g1` over
/// run `run`, every pair once. With `pairs`, two consecutive whole rows come as one item
/// (`rows == 2`, for the kernel's two-row blocks), else `rows == 1`.
///
/// Row runs outer, passes inner by default: the input rows a run reads are consumed by
/// every pass while they are in L2. Passes outer, rows inner when the input rows one pass
/// reads for a row (`rows_budget = Some((bytes per input column, budget))`: the window's
/// rows times the pass's channel bytes) fit `budget` for this width: the next output row
/// then finds all but one of its input rows in L1 (narrow images with many channels,
/// MobileNet's 7x7x1024).
#[derive(Clone, Debug)]
pub struct PassRuns {
    first: usize,
    end: usize,
    wo: usize,
    vectors: usize,
    group: usize,
    passes_outer: bool,
    pairs: bool,
    runs: PairedRuns,
    run: Option<(RowRun, usize)>,
    g0: usize,
}

impl PassRuns {
    /// The walk over pixels `first..end` of a `wo`-wide output grid from an input `w`
    /// columns wide, and over `vectors` channel vectors in passes of `group` (at least 1).
    #[inline(always)]
    pub fn new(
        (first, end, w, wo): (usize, usize, usize, usize),
        vectors: usize,
        group: usize,
        rows_budget: Option<(usize, usize)>,
        pairs: bool,
    ) -> Self {
        let group = group.max(1);
        let passes_outer = group < vectors
            && rows_budget.is_some_and(|(column_bytes, budget)| {
                w.checked_mul(column_bytes)
                    .is_some_and(|bytes| bytes <= budget)
            });
        PassRuns {
            first,
            end,
            wo,
            vectors,
            group,
            passes_outer,
            pairs,
            runs: PairedRuns::new(first, end, wo, pairs),
            run: None,
            g0: 0,
        }
    }

    /// Whether the walk takes the passes outer (each pass walks every row run).
    pub fn passes_outer(&self) -> bool {
        self.passes_outer
    }
}

impl Iterator for PassRuns {
    type Item = (usize, usize, RowRun, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, usize, RowRun, usize)> {
        loop {
            if self.passes_outer {
                if self.g0 >= self.vectors {
                    return None;
                }
                if let Some((run, rows)) = self.runs.next() {
                    let g1 = (self.g0 + self.group).min(self.vectors);
                    return Some((self.g0, g1, run, rows));
                }
                self.g0 += self.group;
                self.runs = PairedRuns::new(self.first, self.end, self.wo, self.pairs);
            } else {
                if let Some((run, rows)) = self.run {
                    if self.g0 < self.vectors {
                        let g0 = self.g0;
                        self.g0 += self.group;
                        return Some((g0, (g0 + self.group).min(self.vectors), run, rows));
                    }
                }
                self.run = Some(self.runs.next()?);
                self.g0 = 0;
            }
        }
    }
}

/// The kernel taps `lo..hi` (of `dk`, `dilation` apart) whose input position
/// `origin + k * dilation - pad` lies in `0..extent`: the taps of an output row (or column)
/// whose window starts at padded position `origin` that read the image, not padding. An
/// empty range is `(hi, hi)`.
#[inline(always)]
pub fn tap_range(
    origin: usize,
    pad: usize,
    extent: usize,
    dk: usize,
    dilation: usize,
) -> (usize, usize) {
    let lo = if pad > origin {
        (pad - origin).div_ceil(dilation)
    } else {
        0
    };
    let hi = if extent + pad > origin {
        (extent + pad - origin).div_ceil(dilation).min(dk)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Channels into each pixel where a realigned depthwise kernel's vectors start (the plan's
/// `realign`; `lanes` floats per vector, the channels a multiple of them): where `input` and
/// `output` start equally far past a vector boundary, `off` floats, and not on it, `lanes -
/// off`, so every pixel's loads and stores are aligned; else 0 (the vectors from channel 0,
/// as an aligned call runs them).
#[inline(always)]
pub fn realign_shift(input: *const f32, output: *const f32, lanes: usize) -> usize {
    match ((input as usize / 4) % lanes, (output as usize / 4) % lanes) {
        (a, b) if a == b => (lanes - a) % lanes,
        _ => 0,
    }
}

/// Whether the windows of output rows `oy..oy + rows` (at `stride`, dilation `d`, `pt` rows
/// of padding on top) lie inside an `h`-row image vertically: every tap of each reads the
/// image ([`tap_range`] gives `0..dk` for each). Two such rows may run the two-row depthwise
/// block, whose loads have no vertical border code.
#[inline(always)]
pub fn windows_inside_rows(
    oy: usize,
    rows: usize,
    stride: usize,
    pt: usize,
    h: usize,
    dk: usize,
    d: usize,
) -> bool {
    rows > 0
        && tap_range(oy * stride, pt, h, dk, d).0 == 0
        && tap_range((oy + rows - 1) * stride, pt, h, dk, d).1 == dk
}

/// The edge blocks of a row of sliding-window depthwise output: `block` pixels whose window
/// spans `span = (block - 1) * stride + window` input columns, the first starting `left`
/// (the row's left padding, given per call: it can depend on the width) left of the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowEdges {
    /// Pixels per edge block.
    pub block: usize,
    /// Input columns a block's window spans.
    pub span: usize,
    /// Depthwise stride.
    pub stride: usize,
}

impl RowEdges {
    /// Whether the first block of a row run `0..ox1` (columns `0..block`) runs as a left
    /// edge block: it lies in the run and its window's in-image columns `0..span - left`
    /// lie in the row. It may overlap the right edge block of a narrow row (7 columns: 0..4
    /// and 3..7), which then computes column 3 again, the same way: two blocks instead of
    /// a block, a pixel through the border code and a smaller block.
    #[inline(always)]
    pub fn left_fits(&self, w: usize, ox1: usize, left: usize) -> bool {
        self.block <= ox1 && self.span.saturating_sub(left) <= w
    }

    /// For a run `ox0..ox1` of a row `wo` wide over an input row `w` wide with `left` zero
    /// columns before it: how many columns the last block (`wo - block..wo`) finds right of
    /// the image when it runs as a right edge block — the run reaches the row's end and the
    /// block starts inside the image — else 0. (At most the right padding: the last window
    /// ends inside it.)
    #[inline(always)]
    pub fn right_missing(&self, w: usize, wo: usize, ox0: usize, ox1: usize, left: usize) -> usize {
        if ox1 != wo || ox1 < ox0 + self.block {
            return 0;
        }
        let first_col = (wo - self.block) * self.stride;
        if first_col < left {
            return 0;
        }
        (first_col - left + self.span).saturating_sub(w)
    }
}

/// The scratch of the width-vector depthwise: for a run of output pixels, the input rows it
/// reads copied into zero-padded planes (`[channel][row][column phase][column / stride]`,
/// each phase row `span` floats), then one planar output row (`[channel][column]`,
/// `wo + lanes` floats per channel). The pads are given per call (they can depend on the
/// input size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanarScratch {
    /// Channels (one plane each).
    pub channels: usize,
    /// The dilated kernel's extent, `(dk - 1) * dilation + 1`.
    pub window: usize,
    /// Stride (phases per row).
    pub stride: usize,
    /// Output columns per vector.
    pub lanes: usize,
}

impl PlanarScratch {
    /// Floats per phase row: every padded input column, `(left + w + right) / stride`, and
    /// every vector load of the last output column's taps, `wo + (window - 1) / stride +
    /// lanes`.
    #[inline(always)]
    pub fn span(&self, w: usize, wo: usize, pads: Pads) -> usize {
        ((w + pads.left + pads.right).div_ceil(self.stride))
            .max(wo + (self.window - 1) / self.stride)
            + self.lanes
    }

    /// Padded input rows read by output rows `oy_first..=oy_last`.
    #[inline(always)]
    pub fn rows(&self, oy_first: usize, oy_last: usize) -> usize {
        (oy_last - oy_first) * self.stride + self.window
    }

    /// Floats of one channel's plane.
    #[inline(always)]
    pub fn plane_len(&self, rows: usize, span: usize) -> usize {
        rows * self.stride * span
    }

    /// Floats per channel of the planar output row.
    #[inline(always)]
    pub fn row_len(&self, wo: usize) -> usize {
        wo + self.lanes
    }

    /// Floats of scratch a run of `pixels` output pixels needs, over any placement of the
    /// run (it spans at most `ceil(pixels / wo) + 1` output rows); saturating.
    pub fn floats(&self, pixels: usize, w: usize, wo: usize, pads: Pads) -> usize {
        let rows = (pixels.div_ceil(wo) * self.stride).saturating_add(self.window);
        let planes = rows
            .saturating_mul(self.stride)
            .saturating_mul(self.span(w, wo, pads));
        self.channels
            .saturating_mul(planes.saturating_add(self.row_len(wo)))
    }

    /// Copies input rows `row_lo..row_lo + rows` of the padded image (`h x w`, `channels`
    /// per pixel, HWC, with `pads.top` rows and `pads.left` columns of zeros before it) into
    /// `planar` (zeroed first; `channels` planes of [`plane_len`](Self::plane_len) floats).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn copy_rows(
        &self,
        input: &[f32],
        (h, w): (usize, usize),
        pads: Pads,
        row_lo: usize,
        rows: usize,
        span: usize,
        planar: &mut [f32],
    ) {
        let (c, stride) = (self.channels, self.stride);
        let plane_len = self.plane_len(rows, span);
        planar.fill(0.0);
        for r in 0..rows {
            let Some(iy) = (row_lo + r).checked_sub(pads.top).filter(|&iy| iy < h) else {
                continue;
            };
            let src = &input[iy * w * c..(iy + 1) * w * c];
            for (x, px) in src.chunks_exact(c).enumerate() {
                let xp = x + pads.left;
                let at = (r * stride + xp % stride) * span + xp / stride;
                for (ch, &v) in px.iter().enumerate() {
                    planar[ch * plane_len + at] = v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_runs_split_at_row_ends_and_cover_the_run_once() {
        let runs: Vec<RowRun> = RowRuns::new(3, 12, 5).collect();
        assert_eq!(
            runs,
            vec![
                RowRun {
                    oy: 0,
                    ox0: 3,
                    ox1: 5,
                    offset: 0
                },
                RowRun {
                    oy: 1,
                    ox0: 0,
                    ox1: 5,
                    offset: 2
                },
                RowRun {
                    oy: 2,
                    ox0: 0,
                    ox1: 2,
                    offset: 7
                },
            ]
        );
        assert_eq!(RowRuns::new(4, 4, 3).count(), 0);
    }

    #[test]
    fn pixel_chunks_cover_every_pixel_once() {
        let chunks: Vec<_> = PixelChunks::new(10, 4).collect();
        assert_eq!(chunks, vec![(0, 4), (4, 4), (8, 2)]);
        assert_eq!(PixelChunks::new(0, 4).count(), 0);
        assert_eq!(PixelChunks::new(3, 0).count(), 3);
        assert_eq!(PixelChunks::new(8, 4).last(), Some((4, 4)));
    }

    #[test]
    fn realigned_vectors_start_where_input_and_output_are_aligned() {
        let buf = crate::AlignedBuf::zeroed(64);
        let at = |k: usize| buf[k..].as_ptr();
        // Both 4 floats (16 bytes) past a 64-byte boundary: start 12 channels in.
        assert_eq!(realign_shift(at(4), at(4), 16), 12);
        assert_eq!(realign_shift(at(20), at(36), 16), 12);
        // Every offset: input + shift lands on a boundary.
        for k in 1..16 {
            let shift = realign_shift(at(k), at(k + 16), 16);
            assert_eq!((at(k) as usize / 4 + shift) % 16, 0, "{k}");
        }
        // Aligned, or off by different amounts (an aligned scratch): from channel 0.
        assert_eq!(realign_shift(at(0), at(16), 16), 0);
        assert_eq!(realign_shift(at(4), at(0), 16), 0);
        assert_eq!(realign_shift(at(4), at(5), 16), 0);
        // Eight lanes: 16 bytes off is 4 floats, 4 channels in.
        assert_eq!(realign_shift(at(4), at(12), 8), 4);
    }

    #[test]
    fn fused_tiles_visit_every_pixel_once_in_order() {
        // On one thread the items run in order, inline; on three, each still runs once with
        // the same extent, into its own part of the output. 7 pixels of 100 multiplications
        // each: under the dispatch threshold, one item of three tiles. Of 10^5 each on two
        // threads: too few pixels for 8 tiles of 4 row blocks, and the plan's 3 tiles are not
        // a multiple of 2, so in stages: 3 depthwise runs, then 4 chunks by 2 single panels.
        let (n, c) = (2, 3);
        for (per_pixel, threads) in [(100, 1), (100, 3), (100_000, 1), (100_000, 2)] {
            let staged = per_pixel == 100_000 && threads == 2;
            let rule = SplitRule {
                tile_pixels: 3,
                rows: 1,
                panels: 2,
                multiplications_per_pixel: per_pixel,
                depthwise: true,
            };
            {
                let mut out = vec![0.0f32; 7 * n];
                let firsts = std::sync::Mutex::new(Vec::new());
                let written = std::sync::Mutex::new(Vec::new());
                crate::Pool::new(threads).install(|| {
                    fused_tiles(
                        &mut out,
                        n,
                        c,
                        rule,
                        5,
                        |first, tile, scratch| {
                            assert_eq!(scratch.len(), 5);
                            firsts.lock().unwrap().push((first, tile.len() / c));
                            tile.fill(first as f32);
                        },
                        |first, tile, pixels, out_rows, panels, next, cold| {
                            assert_eq!(tile.len(), pixels * c);
                            // Inline (one thread, or under the dispatch threshold): only
                            // the first tile is cold. Staged: 8 items, chunks of pixels 0,
                            // 1..3, 3..5 and 5..7 by one panel, panels outer; cold where a
                            // panel or a thread's share (both items 0 and 4) starts.
                            let item = panels.0 * 4 + first.div_ceil(2);
                            let expected: &[usize] = if staged { &[0, 4] } else { &[0] };
                            assert_eq!(cold, expected.contains(&item), "item {item}");
                            written.lock().unwrap().push((first, pixels, panels));
                            // Tiles name the tile after them (none after the last);
                            // staged items name none.
                            let after = (first + pixels < 7)
                                .then(|| (first + pixels, 3.min(7 - first - pixels)));
                            assert_eq!(next, if staged { None } else { after });
                            // Panels of one column here (n = 2, two panels).
                            for p in 0..pixels {
                                for col in panels.0..panels.1 {
                                    // SAFETY: the walk hands each item its rows and panels.
                                    unsafe { *out_rows.add(p * n + col) = tile[p * c] + 1.0 };
                                }
                            }
                        },
                    )
                });
                let mut firsts = firsts.into_inner().unwrap();
                let mut written = written.into_inner().unwrap();
                if threads > 1 {
                    firsts.sort_unstable();
                    written.sort_unstable();
                }
                if staged {
                    // Depthwise runs as equal as they come, as many as the tile the
                    // scratch is sized for needs (runs of 8 pixels would be fewer).
                    assert_eq!(firsts, vec![(0, 2), (2, 2), (4, 3)]);
                    assert!(written.iter().all(|w| w.2 .1 - w.2 .0 == 1));
                    assert_eq!(written.len(), 4 * 2);
                    // Each pixel holds its run's first pixel (+1).
                    assert_eq!(
                        out,
                        [1., 1., 1., 1., 3., 3., 3., 3., 5., 5., 5., 5., 5., 5.]
                    );
                } else {
                    assert_eq!(firsts, vec![(0, 3), (3, 3), (6, 1)]);
                    assert_eq!(
                        written,
                        vec![(0, 3, (0, 2)), (3, 3, (0, 2)), (6, 1, (0, 2))]
                    );
                    assert_eq!(
                        out,
                        [1., 1., 1., 1., 1., 1., 4., 4., 4., 4., 4., 4., 7., 7.]
                    );
                }
            }
        }
    }

    #[test]
    fn windows_inside_rows_need_every_tap_of_the_first_and_last_row() {
        // 3x3 "same" (pad 1) on 5 rows: row 0 reads padding above, row 4 below.
        let inside = |oy, rows| windows_inside_rows(oy, rows, 1, 1, 5, 3, 1);
        assert!(!inside(0, 2));
        assert!(inside(1, 2) && inside(2, 2) && inside(1, 3));
        assert!(!inside(3, 2));
        assert!(!inside(1, 0));
        // Stride 2 without padding on 7 rows: output rows 0..=2 read rows 0..=6.
        assert!(windows_inside_rows(0, 3, 2, 0, 7, 3, 1));
        assert!(!windows_inside_rows(0, 4, 2, 0, 7, 3, 1));
        // Dilation 2 (window 5) with pad 2 on 6 rows: rows 2 and 3 only.
        let dilated = |oy, rows| windows_inside_rows(oy, rows, 1, 2, 6, 3, 2);
        assert!(dilated(2, 2) && !dilated(1, 2) && !dilated(3, 2));
    }

    #[test]
    fn cold_items_start_a_threads_share_or_a_panel_group() {
        let cold = |split: &Split, threads: usize| -> Vec<usize> {
            (0..split.items().max(split.tiles()))
                .filter(|&i| cold_item(split, i, threads))
                .collect()
        };
        // 28 tiles (784 pixels in row blocks of 14): the first of each thread's share.
        let tiles = Split::Tiles {
            tiles: 28,
            rows: 14,
            pixels: 784,
        };
        assert_eq!(cold(&tiles, 1), [0]);
        assert_eq!(cold(&tiles, 2), [0, 14]);
        assert_eq!(cold(&tiles, 3), [0, 9, 18]);
        // Staged, 4 chunks by 8 groups of panels (L7: 196 pixels, 16 panels by 2): each
        // group's first chunk, and each share's first item.
        let staged = Split::Staged {
            runs: 4,
            chunks: 4,
            rows: 14,
            groups: 8,
            panels: 16,
            pixels: 196,
        };
        assert_eq!(staged.items(), 32);
        assert_eq!(cold(&staged, 1), [0, 4, 8, 12, 16, 20, 24, 28]);
        // Three threads: shares 0..10, 10..21, 21..32 start inside groups 2 and 5.
        assert_eq!(cold(&staged, 3), [0, 4, 8, 10, 12, 16, 20, 21, 24, 28]);
        // Inline tiles run on the calling thread: only the first is cold.
        let inline = Split::Inline {
            tile_pixels: 3,
            pixels: 7,
        };
        assert_eq!(cold(&inline, 1), [0]);
    }

    #[test]
    fn the_next_tiles_new_input_rows_are_prefetched() {
        // 3x3 "same" on 6x4 (pad 1): output row oy reads input rows oy-1..=oy+1. A row of
        // input is 4 * 2 floats; `input[i]` holds i, so a slice names its rows.
        let shape = |stride, padding| LayerShape {
            dk: 3,
            m: 2,
            n: 1,
            stride,
            dilation: 1,
            padding,
            depth_multiplier: 1,
            fixed_size: None,
        };
        let input: Vec<f32> = (0..6 * 4 * 2).map(|i| i as f32).collect();
        let rows = |s: &[f32]| -> Vec<usize> { s.chunks(8).map(|r| r[0] as usize / 8).collect() };
        let same = shape(1, crate::Padding::Same);
        // Tiles of 8 pixels (two output rows): rows 0-1 read input 0..=2, rows 2-3 read
        // 1..=4, new: 3, 4.
        let next = next_tile_rows(&input, &same, (6, 4, 4), (0, 8), (8, 8));
        assert_eq!(rows(next), vec![3, 4]);
        // The last tile (rows 4-5) reads 3..=5 (row 6 would be padding): new 5.
        let next = next_tile_rows(&input, &same, (6, 4, 4), (8, 8), (16, 8));
        assert_eq!(rows(next), vec![5]);
        // A tile ending inside an output row: its row's window is read already.
        let next = next_tile_rows(&input, &same, (6, 4, 4), (0, 6), (6, 6));
        assert_eq!(rows(next), vec![3]);
        // Stride 2, "valid" on 6 rows: output rows 0, 1 read 0..=2, 2..=4; one output row
        // per tile (wo = 1): the second tile reads 3, 4 anew.
        let valid = shape(2, crate::Padding::Valid);
        let next = next_tile_rows(&input, &valid, (6, 4, 1), (0, 1), (1, 1));
        assert_eq!(rows(next), vec![3, 4]);
        // Nothing new, or nothing at all.
        assert!(next_tile_rows(&input, &same, (6, 4, 4), (0, 2), (2, 2)).is_empty());
        assert!(next_tile_rows(&input, &same, (6, 4, 4), (0, 0), (0, 8)).is_empty());
        assert!(next_tile_rows(&[], &same, (6, 4, 4), (0, 8), (8, 8)).is_empty());
    }

    #[test]
    fn pass_runs_visit_every_pass_and_run_once_in_the_chosen_order() {
        let all = |walk: PassRuns| -> Vec<(usize, usize, usize, usize)> {
            walk.map(|(g0, g1, r, rows)| {
                assert_eq!(rows, 1);
                (g0, g1, r.oy, r.ox0)
            })
            .collect()
        };
        // Pixels 3..12 of a 5-wide grid: runs (0, 3), (1, 0), (2, 0); 5 vectors in passes of 2.
        let rows_outer = PassRuns::new((3, 12, 5, 5), 5, 2, None, false);
        assert!(!rows_outer.passes_outer());
        let rows_outer = all(rows_outer);
        assert_eq!(
            rows_outer,
            vec![
                (0, 2, 0, 3),
                (2, 4, 0, 3),
                (4, 5, 0, 3),
                (0, 2, 1, 0),
                (2, 4, 1, 0),
                (4, 5, 1, 0),
                (0, 2, 2, 0),
                (2, 4, 2, 0),
                (4, 5, 2, 0),
            ]
        );
        // 5 columns of 100 bytes fit 500: the same pairs, each pass walking every run.
        let outer = PassRuns::new((3, 12, 5, 5), 5, 2, Some((100, 500)), false);
        assert!(outer.passes_outer());
        let mut by_pass = rows_outer.clone();
        by_pass.sort_by_key(|&(g0, _, oy, _)| (g0, oy));
        assert_ne!(by_pass, rows_outer);
        assert_eq!(all(outer), by_pass);
        // One byte over the budget, or a single pass: rows outer.
        assert!(!PassRuns::new((3, 12, 5, 5), 5, 2, Some((100, 499)), false).passes_outer());
        assert!(!PassRuns::new((3, 12, 5, 5), 2, 2, Some((100, 500)), false).passes_outer());
        assert!(
            !PassRuns::new((0, 4, usize::MAX, 4), 5, 2, Some((2, usize::MAX)), false)
                .passes_outer()
        );
        // Nothing to walk.
        assert_eq!(
            PassRuns::new((4, 4, 5, 5), 5, 2, Some((1, 500)), false).count(),
            0
        );
        assert_eq!(PassRuns::new((4, 4, 5, 5), 5, 2, None, false).count(), 0);
    }

    #[test]
    fn pass_runs_pair_consecutive_whole_rows() {
        let rows = |first, end, pairs| -> Vec<(usize, usize, usize, usize)> {
            PassRuns::new((first, end, 5, 5), 1, 1, None, pairs)
                .map(|(_, _, r, rows)| (r.oy, r.ox0, r.ox1, rows))
                .collect()
        };
        // Pixels 3..27 of a 5-wide grid: a part row, then rows 1-4 whole, then a part row.
        assert_eq!(
            rows(3, 27, true),
            vec![(0, 3, 5, 1), (1, 0, 5, 2), (3, 0, 5, 2), (5, 0, 2, 1)]
        );
        // An odd count of whole rows: the last alone; without pairs, every row alone.
        assert_eq!(rows(0, 15, true), vec![(0, 0, 5, 2), (2, 0, 5, 1)]);
        assert_eq!(
            rows(0, 15, false),
            vec![(0, 0, 5, 1), (1, 0, 5, 1), (2, 0, 5, 1)]
        );
        // A whole row followed by a part row: each alone.
        assert_eq!(rows(0, 8, true), vec![(0, 0, 5, 1), (1, 0, 3, 1)]);
        // Passes outer: every pass sees the same pairs.
        let outer: Vec<(usize, usize, usize)> =
            PassRuns::new((0, 20, 5, 5), 4, 2, Some((1, 5)), true)
                .map(|(g0, _, r, rows)| (g0, r.oy, rows))
                .collect();
        assert_eq!(outer, vec![(0, 0, 2), (0, 2, 2), (2, 0, 2), (2, 2, 2)]);
    }

    #[test]
    fn right_edges_miss_up_to_pad_columns() {
        // 3x3, pad 1, stride 1, blocks of 4: window of 6 columns.
        let e = RowEdges {
            block: 4,
            span: 6,
            stride: 1,
        };
        // w = wo = 10: the last block starts at column 6 - 1 = 5 and ends at 11: misses 1.
        assert_eq!(e.right_missing(10, 10, 0, 10, 1), 1);
        // A run not reaching the row's end, or too short for a block: no edge block.
        assert_eq!(e.right_missing(10, 10, 0, 9, 1), 0);
        assert_eq!(e.right_missing(10, 10, 8, 10, 1), 0);
        assert!(e.left_fits(10, 10, 1));
        assert!(!e.left_fits(4, 10, 1));
        // A run shorter than a block has no edge block; one of 7 columns has both, 0..4
        // and 3..7 (the right one starts at wo - block).
        assert!(!e.left_fits(10, 3, 1));
        assert!(e.left_fits(7, 7, 1));
        assert_eq!(e.right_missing(7, 7, 0, 7, 1), 1);
        // Valid: the last window ends at the image's edge.
        assert_eq!(e.right_missing(10, 8, 0, 8, 0), 0);
        // TensorFlow SAME at stride 2 on an even width: no zero left, one right.
        let s2 = RowEdges {
            block: 4,
            span: 9,
            stride: 2,
        };
        assert_eq!(s2.right_missing(16, 8, 0, 8, 0), 1);
    }

    #[test]
    fn tap_ranges_skip_the_padding() {
        // 3 taps, pad 1: the first row's window loses its first tap.
        assert_eq!(tap_range(0, 1, 10, 3, 1), (1, 3));
        assert_eq!(tap_range(5, 1, 10, 3, 1), (0, 3));
        // The last row (origin 9 in padded coordinates) loses its last tap.
        assert_eq!(tap_range(9, 1, 10, 3, 1), (0, 2));
        // Dilation 2, pad 2: taps at -2, 0, 2 from origin 0; the first is padding.
        assert_eq!(tap_range(0, 2, 10, 3, 2), (1, 3));
        assert_eq!(tap_range(1, 2, 10, 3, 2), (1, 3));
        assert_eq!(tap_range(8, 2, 10, 3, 2), (0, 2));
        // A window wholly in the padding.
        assert_eq!(tap_range(0, 5, 1, 3, 1), (3, 3));
        // Brute force against the definition.
        for dk in 1..5 {
            for d in 1..4 {
                for pad in 0..6 {
                    for extent in 1..8 {
                        for origin in 0..12 {
                            let (lo, hi) = tap_range(origin, pad, extent, dk, d);
                            let inside: Vec<usize> = (0..dk)
                                .filter(|k| {
                                    let p = origin + k * d;
                                    p >= pad && p - pad < extent
                                })
                                .collect();
                            let got: Vec<usize> = (lo..hi).collect();
                            assert_eq!(got, inside, "{origin} {pad} {extent} {dk} {d}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn planar_copy_puts_each_value_at_its_phase_and_pads_with_zeros() {
        // 2x3 image, 2 channels, 3x3 kernel, pad 1, stride 2, 4 lanes.
        let s = PlanarScratch {
            channels: 2,
            window: 3,
            stride: 2,
            lanes: 4,
        };
        let pads = Pads {
            top: 1,
            left: 1,
            bottom: 1,
            right: 1,
        };
        let (h, w, wo) = (2, 3, 2);
        let input: Vec<f32> = (1..=12).map(|v| v as f32).collect();
        let span = s.span(w, wo, pads);
        let rows = s.rows(0, 0);
        let mut planar = vec![f32::NAN; 2 * s.plane_len(rows, span)];
        s.copy_rows(&input, (h, w), pads, 0, rows, span, &mut planar);
        let plane = s.plane_len(rows, span);
        // Padded row 1 = image row 0; padded column x + 1 at phase (x + 1) % 2.
        let at = |r: usize, xp: usize| (r * 2 + xp % 2) * span + xp / 2;
        assert_eq!(planar[at(1, 1)], 1.0); // (0, 0) channel 0
        assert_eq!(planar[plane + at(1, 1)], 2.0); // (0, 0) channel 1
        assert_eq!(planar[at(1, 3)], 5.0); // (0, 2) channel 0
        assert_eq!(planar[at(2, 2)], 9.0); // (1, 1) channel 0
        assert_eq!(planar[at(0, 1)], 0.0); // padding row
        assert!(planar.iter().all(|v| !v.is_nan()));
        assert!(s.floats(wo, w, wo, pads) >= 2 * plane + 2 * s.row_len(wo));
    }
}
