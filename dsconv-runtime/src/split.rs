//! How one call's work is divided into the thread pool's work items: a rule the planner
//! gives every layer and backend ([`SplitRule`], in its [`PlanSummary`](crate::PlanSummary)),
//! applied to the image size at the call ([`SplitRule::split`]).
//!
//! The split depends on the layer, the backend and the image size, never on the thread
//! count, and no split reorders a reduction (an output value is computed by the same
//! instructions whatever item holds it): outputs are bit-identical for every thread count.
//!
//! - Too little work to pay for a dispatch: one item, on the calling thread.
//! - Enough pixels: `forward`'s fused tiles (depthwise into per-thread scratch, then the
//!   pointwise stage while it is in cache) are the items, at least [`BALANCED_ITEMS`] of
//!   them: the plan's tile, shrunk (to whole micro-kernel row blocks) when the image has too
//!   few of them.
//! - Few pixels (the 14x14 and 7x7 layers): in stages: the depthwise stage of the whole
//!   image in runs of pixels, then the pointwise stage in chunks of pixels times groups of
//!   weight panels.

use std::fmt;

/// The work items a split aims for. Equal items divide evenly among 2, 3, 4, 6 and 8
/// threads; with 5, 7 or more than 8 the last round leaves some idle (see
/// [`Split::balance`]).
pub const BALANCED_ITEMS: usize = 24;

/// Below this many multiplications a call is one item, run on the calling thread: a
/// dispatch costs about 0.5 µs with the workers awake and tens of µs waking them, and 2^18
/// multiply-adds take 3-10 µs on one core.
pub const MIN_PARALLEL_MULTIPLICATIONS: u64 = 1 << 18;

/// A fused tile shrunk for balance keeps at least this many row blocks of the pointwise
/// micro-kernel (fewer would make the pointwise stage reload each weight panel for a few
/// rows); below it the split goes in stages.
pub const MIN_BALANCE_TILE_BLOCKS: usize = 4;

/// A depthwise run of a staged split has at least this many pixels (shorter runs would
/// leave the interior kernel's blocks to the edge code).
pub const MIN_RUN_PIXELS: usize = 8;

/// The planner's rule for one layer and backend: the plan's constants the split is made
/// from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitRule {
    /// Pixels per fused tile (1x1 layers: per chunk) chosen for the caches: the largest
    /// tile a split uses, and what the depthwise scratch is sized for.
    pub tile_pixels: usize,
    /// Rows (output pixels) of the pointwise micro-kernel: tiles and chunks are multiples.
    pub rows: usize,
    /// Weight panels of the pointwise stage (the partial tail panel included).
    pub panels: usize,
    /// Multiplications per output pixel, both stages.
    pub multiplications_per_pixel: u64,
    /// Whether the layer has a depthwise stage (`false` for `#[pointwise_conv]` layers).
    pub depthwise: bool,
}

/// One call's work items ([`SplitRule::split`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// One item: the whole call on the calling thread, in tiles of `tile_pixels`.
    Inline {
        /// Pixels per fused tile (per chunk for a 1x1 layer).
        tile_pixels: usize,
        /// Output pixels.
        pixels: usize,
    },
    /// The fused tiles (a 1x1 layer's chunks of pixels) are the items.
    Tiles {
        /// Pixels per tile (the last may be shorter).
        tile_pixels: usize,
        /// Output pixels.
        pixels: usize,
    },
    /// The depthwise stage of the whole image in runs of pixels (the first items), then,
    /// once every run is done, the pointwise stage in chunks of pixels times groups of weight
    /// panels.
    Staged {
        /// Pixels per depthwise run (0 for a 1x1 layer: no depthwise stage).
        run_pixels: usize,
        /// Pixels per pointwise chunk.
        chunk_pixels: usize,
        /// Weight panels per group.
        group_panels: usize,
        /// Weight panels in all.
        panels: usize,
        /// Output pixels.
        pixels: usize,
    },
}

impl SplitRule {
    /// The split of a call over `pixels` output pixels.
    pub fn split(&self, pixels: usize) -> Split {
        let rows = self.rows.max(1);
        let tile_pixels = self.tile_pixels.max(1);
        let work = (pixels as u64).saturating_mul(self.multiplications_per_pixel);
        if work < MIN_PARALLEL_MULTIPLICATIONS {
            return Split::Inline {
                tile_pixels,
                pixels,
            };
        }
        if pixels.div_ceil(tile_pixels) >= BALANCED_ITEMS {
            return Split::Tiles {
                tile_pixels,
                pixels,
            };
        }
        let balanced = pixels / BALANCED_ITEMS / rows * rows;
        if balanced >= MIN_BALANCE_TILE_BLOCKS * rows {
            return Split::Tiles {
                tile_pixels: balanced,
                pixels,
            };
        }
        // Few pixels: chunks as long as the plan's tile (evened out), then as many panel
        // groups as make the items; too few panels for that, shorter chunks.
        let panels = self.panels.max(1);
        let chunks = pixels.div_ceil(tile_pixels);
        let mut chunk_pixels = round_up(pixels.div_ceil(chunks), rows).min(tile_pixels);
        let group_panels = (panels / BALANCED_ITEMS.div_ceil(chunks)).max(1);
        let groups = panels.div_ceil(group_panels);
        if chunks * groups < BALANCED_ITEMS {
            let want_chunks = BALANCED_ITEMS.div_ceil(groups);
            chunk_pixels = round_up(pixels.div_ceil(want_chunks), rows).min(chunk_pixels);
        }
        let run_pixels = if self.depthwise {
            pixels
                .div_ceil(BALANCED_ITEMS)
                .max(MIN_RUN_PIXELS)
                .min(tile_pixels)
        } else {
            0
        };
        Split::Staged {
            run_pixels,
            chunk_pixels: chunk_pixels.min(pixels),
            group_panels,
            panels,
            pixels,
        }
    }
}

fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// `(first, len)` of item `i` when `total` is cut into pieces of `piece` (the last shorter).
fn piece(i: usize, piece: usize, total: usize) -> (usize, usize) {
    let first = i * piece;
    (first, piece.min(total - first))
}

impl Split {
    /// Whether the items go to the pool (not [`Split::Inline`]).
    pub fn parallel(&self) -> bool {
        !matches!(self, Split::Inline { .. })
    }

    /// `(tile_pixels, pixels)` of an inline or tiled split.
    fn tiling(&self) -> Option<(usize, usize)> {
        match *self {
            Split::Inline {
                tile_pixels,
                pixels,
            }
            | Split::Tiles {
                tile_pixels,
                pixels,
            } => Some((tile_pixels, pixels)),
            Split::Staged { .. } => None,
        }
    }

    /// Tiles of an inline or tiled split (0 for a staged one).
    pub fn tiles(&self) -> usize {
        self.tiling()
            .map_or(0, |(tile, pixels)| pixels.div_ceil(tile))
    }

    /// Depthwise runs of a staged split (0 otherwise).
    pub fn runs(&self) -> usize {
        match *self {
            Split::Staged {
                run_pixels, pixels, ..
            } if run_pixels > 0 => pixels.div_ceil(run_pixels),
            _ => 0,
        }
    }

    /// The pixels `(first, len)` of depthwise run `i` of a staged split.
    pub fn run(&self, i: usize) -> (usize, usize) {
        match *self {
            Split::Staged {
                run_pixels, pixels, ..
            } => piece(i, run_pixels, pixels),
            _ => (0, 0),
        }
    }

    /// Pointwise chunks of a staged split.
    fn chunks(&self) -> usize {
        match *self {
            Split::Staged {
                chunk_pixels,
                pixels,
                ..
            } => pixels.div_ceil(chunk_pixels),
            _ => 0,
        }
    }

    /// Panel groups of a staged split.
    fn groups(&self) -> usize {
        match *self {
            Split::Staged {
                group_panels,
                panels,
                ..
            } => panels.div_ceil(group_panels),
            _ => 0,
        }
    }

    /// The items of the pointwise stage of a staged split, or the tiles.
    pub fn items(&self) -> usize {
        match *self {
            Split::Inline { .. } => 1,
            Split::Tiles { .. } => self.tiles(),
            Split::Staged { .. } => self.chunks() * self.groups(),
        }
    }

    /// Pointwise item `i` of a staged split: its pixels `(first, len)` and its weight panels
    /// `(lo, hi)`. Items of one panel group are consecutive: a thread's share of the items
    /// (see [`Pool`](crate::Pool)) is a few groups of panels over every chunk, so each
    /// thread streams only its part of the weights, which dominate these few-pixel layers.
    pub fn chunk(&self, i: usize) -> ((usize, usize), (usize, usize)) {
        match *self {
            Split::Staged {
                chunk_pixels,
                group_panels,
                panels,
                pixels,
                ..
            } => {
                let chunks = self.chunks();
                let (first, len) = piece(i % chunks, chunk_pixels, pixels);
                let (lo, n) = piece(i / chunks, group_panels, panels);
                ((first, len), (lo, lo + n))
            }
            _ => ((0, 0), (0, 0)),
        }
    }

    /// The first of the consecutive items that read the same weights as pointwise item `i`
    /// (the tile's among the tiles, each reading every panel: 0; a staged item's among the
    /// chunks of its panel group, groups outer and chunks inner). With the pool's shares,
    /// [`cold_item`](crate::drive::cold_item) tells whether a thread meets those weights
    /// first at item `i`.
    pub fn weights_group_start(&self, i: usize) -> usize {
        match *self {
            Split::Staged { .. } => i - i % self.chunks().max(1),
            _ => 0,
        }
    }

    /// The pixels `(first, len)` of tile `i` of a tiled or inline split (of a staged one,
    /// every pixel).
    pub fn tile(&self, i: usize) -> (usize, usize) {
        match (self.tiling(), *self) {
            (Some((tile, pixels)), _) => piece(i, tile, pixels),
            (None, Split::Staged { pixels, .. }) => (0, pixels),
            (None, _) => (0, 0),
        }
    }

    /// Each item's share of the work, in pixel-panels (the depthwise runs, cheap next to
    /// the pointwise stage, left out), in claiming order.
    fn costs(&self) -> Vec<usize> {
        match *self {
            Split::Inline { pixels, .. } => vec![pixels],
            Split::Tiles { .. } => (0..self.items()).map(|i| self.tile(i).1).collect(),
            Split::Staged { .. } => (0..self.items())
                .map(|i| {
                    let ((_, len), (lo, hi)) = self.chunk(i);
                    len * (hi - lo)
                })
                .collect(),
        }
    }

    /// How well `threads` threads share the items, as the pool claims them (each thread its
    /// own share of consecutive items, then, whenever it is free, the next item of the
    /// first share after its own with any left): the work over `threads` times the busiest
    /// thread's (1.0 = no thread idles; an inline split counts as one thread's work).
    pub fn balance(&self, threads: usize) -> f64 {
        let threads = if self.parallel() { threads.max(1) } else { 1 };
        let costs = self.costs();
        let total: usize = costs.iter().sum();
        let shares: Vec<(usize, usize)> = (0..threads)
            .map(|t| crate::pool::share(t, costs.len(), threads))
            .collect();
        let mut next: Vec<usize> = shares.iter().map(|s| s.0).collect();
        let mut busy = vec![0usize; threads];
        loop {
            let me = (0..threads).min_by_key(|&t| busy[t]).expect("a thread");
            let Some(owner) = (me..threads).chain(0..me).find(|&o| next[o] < shares[o].1) else {
                break;
            };
            busy[me] += costs[next[owner]];
            next[owner] += 1;
        }
        let makespan = busy.into_iter().max().unwrap_or(0).max(1);
        total as f64 / (threads * makespan) as f64
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Split::Inline {
                tile_pixels,
                pixels,
            } => write!(
                f,
                "one item on the calling thread (too little work to pay for a dispatch): {} \
                 tile(s) of {tile_pixels} px",
                pixels.div_ceil(tile_pixels)
            ),
            Split::Tiles { tile_pixels, .. } => {
                write!(f, "{} items: tiles of {tile_pixels} px", self.items())
            }
            Split::Staged {
                run_pixels,
                chunk_pixels,
                group_panels,
                ..
            } => {
                if run_pixels > 0 {
                    write!(
                        f,
                        "in stages: depthwise in {} runs of {run_pixels} px, then ",
                        self.runs()
                    )?;
                }
                write!(
                    f,
                    "{} items: {} chunk(s) of {chunk_pixels} px x {} group(s) of {group_panels} \
                     weight panel(s)",
                    self.items(),
                    self.chunks(),
                    self.groups()
                )
            }
        }
    }
}

impl fmt::Display for SplitRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "threads: one item under {MIN_PARALLEL_MULTIPLICATIONS} multiplications, else at \
             least {BALANCED_ITEMS} items: {} of at most {} px, fewer pixels in stages by {} \
             weight panel(s)",
            if self.depthwise {
                "fused tiles"
            } else {
                "chunks"
            },
            self.tile_pixels,
            self.panels
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MobileNetV1-224's L1..L9 on AVX2 (6-row micro-kernel, 32-float panels): the plan's
    /// tile, panels, multiplications per pixel (9c + cn), output pixels.
    fn v1() -> Vec<(&'static str, SplitRule, usize)> {
        let layer = |tile: usize, c: u64, n: usize, pixels: usize| {
            let rule = SplitRule {
                tile_pixels: tile,
                rows: 6,
                panels: n.div_ceil(32),
                multiplications_per_pixel: 9 * c + c * n as u64,
                depthwise: true,
            };
            (rule, pixels)
        };
        [
            ("L1", layer(516, 32, 64, 112 * 112)),
            ("L2", layer(384, 64, 128, 56 * 56)),
            ("L3", layer(192, 128, 128, 56 * 56)),
            ("L4", layer(192, 128, 256, 28 * 28)),
            ("L5", layer(96, 256, 256, 28 * 28)),
            ("L6", layer(96, 256, 512, 14 * 14)),
            ("L7", layer(48, 512, 512, 14 * 14)),
            ("L8", layer(516, 512, 1024, 7 * 7)),
            ("L9", layer(516, 1024, 1024, 7 * 7)),
        ]
        .into_iter()
        .map(|(name, (rule, pixels))| (name, rule, pixels))
        .collect()
    }

    fn covers_once(split: &Split, rule: &SplitRule, pixels: usize) {
        let mut seen = vec![0u32; pixels * rule.panels];
        match split {
            Split::Inline { .. } | Split::Tiles { .. } => {
                for i in 0..split.tiles() {
                    let (first, len) = split.tile(i);
                    if len == 0 {
                        continue;
                    }
                    assert!(len <= rule.tile_pixels, "{split:?}");
                    for p in first..first + len {
                        for s in &mut seen[p * rule.panels..(p + 1) * rule.panels] {
                            *s += 1;
                        }
                    }
                }
            }
            Split::Staged { .. } => {
                let mut dw = vec![0u32; pixels];
                for r in 0..split.runs() {
                    let (first, len) = split.run(r);
                    assert!(
                        len <= rule.tile_pixels,
                        "run longer than the scratch: {split:?}"
                    );
                    dw[first..first + len].iter_mut().for_each(|d| *d += 1);
                }
                assert!(
                    dw.iter().all(|&d| d == u32::from(rule.depthwise)),
                    "{split:?}"
                );
                for i in 0..split.items() {
                    let ((first, len), (lo, hi)) = split.chunk(i);
                    assert!(len > 0 && hi > lo && hi <= rule.panels, "{split:?}");
                    for p in first..first + len {
                        for s in &mut seen[p * rule.panels + lo..p * rule.panels + hi] {
                            *s += 1;
                        }
                    }
                }
            }
        }
        assert!(seen.iter().all(|&s| s == 1), "{split:?} misses or repeats");
    }

    #[test]
    fn every_split_covers_every_output_once() {
        for tile in [6, 48, 96, 516] {
            for panels in [1, 2, 5, 16, 32] {
                for depthwise in [true, false] {
                    for mpp in [1, 1000, 100_000] {
                        let rule = SplitRule {
                            tile_pixels: tile,
                            rows: 6,
                            panels,
                            multiplications_per_pixel: mpp,
                            depthwise,
                        };
                        for pixels in [1, 5, 7, 49, 196, 784, 3136, 12544] {
                            covers_once(&rule.split(pixels), &rule, pixels);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn mobilenet_layers_split_into_balanced_items() {
        let mut lines = Vec::new();
        for (name, rule, pixels) in v1() {
            let split = rule.split(pixels);
            assert!(split.parallel(), "{name}");
            assert!(split.items() >= BALANCED_ITEMS - 4, "{name}: {split}");
            for threads in [2, 3, 4] {
                let b = split.balance(threads);
                assert!(b >= 0.85, "{name} on {threads} threads: {b:.2} ({split})");
            }
            lines.push(format!("{name}: {split}"));
            // The scaling estimate (`--nocapture`): the share of thread time spent working.
            let shares: Vec<String> = [2, 3, 4, 8, 16]
                .iter()
                .map(|&t| format!("{t}: {:.2}", split.balance(t)))
                .collect();
            eprintln!("{name}: {split}; balance on {}", shares.join(", "));
        }
        // What the plans print for the 14x14 and 7x7 layers: stages, panels.
        assert!(lines[5].contains("in stages"), "{}", lines[5]);
        assert!(lines[8].contains("32 items"), "{}", lines[8]);
        // The large layers keep their cache-sized tiles.
        assert_eq!(
            v1()[0].1.split(112 * 112),
            Split::Tiles {
                tile_pixels: 516,
                pixels: 112 * 112
            }
        );
    }

    #[test]
    fn small_work_is_not_split() {
        // The seed's layer: 8x8 output, 3 channels, 5x5, 256 outputs.
        let seed = SplitRule {
            tile_pixels: 516,
            rows: 6,
            panels: 8,
            multiplications_per_pixel: 75 + 3 * 256,
            depthwise: true,
        };
        let split = seed.split(64);
        assert!(!split.parallel());
        assert_eq!(split.items(), 1);
        assert_eq!(split.balance(8), 1.0);
        assert!(split.to_string().contains("calling thread"));
    }

    #[test]
    fn balance_counts_the_idle_threads_of_the_last_round() {
        let five = Split::Tiles {
            tile_pixels: 10,
            pixels: 50,
        };
        assert_eq!(five.balance(1), 1.0);
        // 5 equal tiles on 2 threads: 3 rounds for 2.5 of work.
        assert!((five.balance(2) - 2.5 / 3.0).abs() < 1e-12);
        assert_eq!(five.balance(5), 1.0);
    }
}
