//! How one call's work is divided into the thread pool's work items: a rule the planner
//! gives every layer and backend ([`SplitRule`], in its [`PlanSummary`](crate::PlanSummary)),
//! applied to the image size and the pool's thread count at the call
//! ([`SplitRule::split`]).
//!
//! The items are sized for the threads that run them: at least [`ITEMS_PER_THREAD`] per
//! thread where the pixels allow (else as few as one each), and a multiple of the thread
//! count where the image allows, so 2, 3, 4, 8 or 16
//! threads each get the same share ([`Split::balance`] counts it). No split reorders a
//! reduction (an output value is computed by the same instructions whatever item holds
//! it): outputs are bit-identical for every thread count, whatever the split.
//!
//! - One thread, or too little work to pay for a dispatch: one item, on the calling thread,
//!   in the plan's cache-sized tiles.
//! - Enough pixels: `forward`'s fused tiles (depthwise into per-thread scratch, then the
//!   pointwise stage while it is in cache) are the items: the plan's tile, or shorter so
//!   the threads get equal shares of them.
//! - Few pixels (the 14x14 and 7x7 layers): in stages: the depthwise stage of the whole
//!   image in runs of pixels, then the pointwise stage in chunks of pixels times groups of
//!   weight panels.

use std::fmt;

/// The work items a split gives each thread where the image has the pixels (the plan's
/// tiles, if more): enough that a thread slowed for a while (another process, a cold
/// cache) hands a few items to the others, few enough that the fused tiles stay long.
/// Measured on 2 threads against 24 items for every thread count, and against 2 and 8 per
/// thread: MobileNetV1's L4 and L5 then run as 8 fused tiles rather than in stages, 8%
/// faster (`docs/benchmarks.md`, thirteenth session).
pub const ITEMS_PER_THREAD: usize = 4;

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

/// One call's work items ([`SplitRule::split`]). Pieces of pixels (a tile, a run, a chunk)
/// and groups of weight panels are as equal as their units allow: `parts` pieces of `units`
/// units take `units / parts` or one more each (a piece of pixels is whole micro-kernel
/// row blocks, but for the image's last).
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
        /// Tiles: the items.
        tiles: usize,
        /// Pixels per row block (the pointwise micro-kernel's rows): the unit of a tile.
        rows: usize,
        /// Output pixels.
        pixels: usize,
    },
    /// The depthwise stage of the whole image in runs of pixels (the first items), then,
    /// once every run is done, the pointwise stage in chunks of pixels times groups of weight
    /// panels.
    Staged {
        /// Depthwise runs (0 for a 1x1 layer: no depthwise stage).
        runs: usize,
        /// Pointwise chunks of pixels.
        chunks: usize,
        /// Pixels per row block: the unit of a chunk.
        rows: usize,
        /// Groups of weight panels.
        groups: usize,
        /// Weight panels in all.
        panels: usize,
        /// Output pixels.
        pixels: usize,
    },
}

impl SplitRule {
    /// The split of a call over `pixels` output pixels on `threads` threads (the pool's
    /// [`job_threads`](crate::Pool::job_threads)). No piece of pixels is longer than the
    /// plan's tile.
    pub fn split(&self, pixels: usize, threads: usize) -> Split {
        let tile_pixels = self.tile_pixels.max(1);
        // Tiles and chunks are whole row blocks, so one block must fit in a tile.
        let rows = self.rows.clamp(1, tile_pixels);
        let work = (pixels as u64).saturating_mul(self.multiplications_per_pixel);
        if threads <= 1 || work < MIN_PARALLEL_MULTIPLICATIONS {
            return Split::Inline {
                tile_pixels,
                pixels,
            };
        }
        let want = threads * ITEMS_PER_THREAD;
        let blocks = pixels.div_ceil(rows);
        // The fewest pieces of whole blocks no longer than the plan's tile.
        let fewest = blocks.div_ceil(tile_pixels / rows).max(1);
        // Enough of the plan's tiles: as many, or up to `threads - 1` more (shorter), so that
        // every thread gets as many.
        if fewest >= want {
            return Split::Tiles {
                tiles: round_up(fewest, threads).min(blocks),
                rows,
                pixels,
            };
        }
        // Fewer: `want` shorter tiles, if each keeps enough of the micro-kernel's rows.
        if blocks / want >= MIN_BALANCE_TILE_BLOCKS {
            return Split::Tiles {
                tiles: want,
                rows,
                pixels,
            };
        }
        // Fewer still: the plan's tiles, if the threads can take as many each and the mean
        // is at least 95% of the longest (a thread has few items: none evens it out).
        // Each thread then reads the weights once per tile, as one thread would; shorter
        // tiles would read them more often, which the stages' panel groups avoid. Measured
        // on 2 threads: MobileNetV1's 14x14 layer with stride 2 in its plan's 2 fused
        // tiles, 7% faster than in stages.
        if fewest.is_multiple_of(threads)
            && 20 * pixels >= 19 * fewest * part_lens(fewest, rows, pixels).1
        {
            return Split::Tiles {
                tiles: fewest,
                rows,
                pixels,
            };
        }
        // Few pixels: chunks as long as the plan's tile, then as many panel groups as make
        // the items, each as many panels (the next count that divides them, else one panel
        // each); too few panels for that, more (shorter) chunks, and more again until the
        // items are a multiple of the threads.
        let panels = self.panels.max(1);
        let least_groups = want.div_ceil(fewest).min(panels);
        let groups = (least_groups..panels)
            .find(|&g| panels.is_multiple_of(g))
            .unwrap_or(panels);
        let chunks = want.div_ceil(groups).max(fewest);
        let chunks = round_up(chunks, threads / gcd(groups, threads)).min(blocks);
        let runs = if self.depthwise {
            want.min(pixels / MIN_RUN_PIXELS)
                .max(pixels.div_ceil(tile_pixels))
        } else {
            0
        };
        Split::Staged {
            runs,
            chunks,
            rows,
            groups,
            panels,
            pixels,
        }
    }
}

fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `(first, len)` of piece `i` of `parts` as equal pieces as whole units of `unit` allow
/// of `total` (the last unit may be short; `parts` at most the units): piece `i` starts at
/// unit `i * units / parts`, so the pieces one unit longer are spread out, and every
/// thread's share of consecutive pieces holds as many of them.
fn part(i: usize, parts: usize, unit: usize, total: usize) -> (usize, usize) {
    let units = total.div_ceil(unit);
    let parts = parts.clamp(1, units.max(1));
    // i * units / parts as i * q + i * r / parts (r < parts): no product of the image's
    // size with the piece count.
    let (q, r) = (units / parts, units % parts);
    let start = |i: usize| {
        let i = i.min(parts);
        ((i * q + i * r / parts).saturating_mul(unit)).min(total)
    };
    (start(i), start(i + 1) - start(i))
}

/// The shortest and the longest of `parts` pieces ([`part`]).
fn part_lens(parts: usize, unit: usize, total: usize) -> (usize, usize) {
    let parts = parts.clamp(1, total.div_ceil(unit).max(1));
    (0..parts)
        .map(|i| part(i, parts, unit, total).1)
        .fold((usize::MAX, 0), |(lo, hi), len| (lo.min(len), hi.max(len)))
}

impl Split {
    /// Whether the items go to the pool (not [`Split::Inline`]).
    pub fn parallel(&self) -> bool {
        !matches!(self, Split::Inline { .. })
    }

    /// Tiles of an inline or tiled split (0 for a staged one).
    pub fn tiles(&self) -> usize {
        match *self {
            Split::Inline {
                tile_pixels,
                pixels,
            } => pixels.div_ceil(tile_pixels),
            Split::Tiles { tiles, .. } => tiles,
            Split::Staged { .. } => 0,
        }
    }

    /// The longest tile of an inline or tiled split, in pixels (what its scratch holds);
    /// 0 for a staged split.
    pub fn longest_tile(&self) -> usize {
        match *self {
            Split::Inline {
                tile_pixels,
                pixels,
            } => tile_pixels.min(pixels),
            Split::Tiles {
                tiles,
                rows,
                pixels,
            } => part_lens(tiles, rows, pixels).1,
            Split::Staged { .. } => 0,
        }
    }

    /// Depthwise runs of a staged split (0 otherwise).
    pub fn runs(&self) -> usize {
        match *self {
            Split::Staged { runs, .. } => runs,
            _ => 0,
        }
    }

    /// The pixels `(first, len)` of depthwise run `i` of a staged split.
    pub fn run(&self, i: usize) -> (usize, usize) {
        match *self {
            Split::Staged { runs, pixels, .. } => part(i, runs, 1, pixels),
            _ => (0, 0),
        }
    }

    /// Pointwise chunks of a staged split.
    fn chunks(&self) -> usize {
        match *self {
            Split::Staged { chunks, .. } => chunks,
            _ => 0,
        }
    }

    /// Panel groups of a staged split.
    fn groups(&self) -> usize {
        match *self {
            Split::Staged { groups, .. } => groups,
            _ => 0,
        }
    }

    /// The items of the pointwise stage of a staged split, or the tiles.
    pub fn items(&self) -> usize {
        match *self {
            Split::Inline { .. } => 1,
            Split::Tiles { tiles, .. } => tiles,
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
                chunks,
                rows,
                groups,
                panels,
                pixels,
                ..
            } => {
                let (lo, n) = part(i / chunks, groups, 1, panels);
                (part(i % chunks, chunks, rows, pixels), (lo, lo + n))
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
        match *self {
            Split::Inline {
                tile_pixels,
                pixels,
            } => {
                let first = (i * tile_pixels).min(pixels);
                (first, tile_pixels.min(pixels - first))
            }
            Split::Tiles {
                tiles,
                rows,
                pixels,
            } => part(i, tiles, rows, pixels),
            Split::Staged { pixels, .. } => (0, pixels),
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

/// `a px` or `a-b px`.
fn lens(f: &mut fmt::Formatter<'_>, (lo, hi): (usize, usize), what: &str) -> fmt::Result {
    if lo == hi {
        write!(f, "{hi} {what}")
    } else {
        write!(f, "{lo}-{hi} {what}")
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
                "one item on the calling thread (one thread, or too little work to pay for a \
                 dispatch): {} tile(s) of {tile_pixels} px",
                pixels.div_ceil(tile_pixels)
            ),
            Split::Tiles {
                tiles,
                rows,
                pixels,
            } => {
                write!(f, "{tiles} items: tiles of ")?;
                lens(f, part_lens(tiles, rows, pixels), "px")
            }
            Split::Staged {
                runs,
                chunks,
                rows,
                groups,
                panels,
                pixels,
            } => {
                if runs > 0 {
                    write!(f, "in stages: depthwise in {runs} runs of ")?;
                    lens(f, part_lens(runs, 1, pixels), "px")?;
                    write!(f, ", then ")?;
                }
                write!(f, "{} items: {chunks} chunk(s) of ", self.items())?;
                lens(f, part_lens(chunks, rows, pixels), "px")?;
                write!(f, " x {groups} group(s) of ")?;
                lens(f, part_lens(groups, 1, panels), "weight panel(s)")
            }
        }
    }
}

impl fmt::Display for SplitRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "threads: one item on one thread or under {MIN_PARALLEL_MULTIPLICATIONS} \
             multiplications, else about {ITEMS_PER_THREAD} items per thread: {} of at most {} \
             px, fewer pixels in stages by {} weight panel(s)",
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

    /// Every output pixel and panel once; every piece non-empty, at most the plan's tile,
    /// and whole row blocks but for the image's last.
    fn covers_once(split: &Split, rule: &SplitRule, pixels: usize) {
        let mut seen = vec![0u32; pixels * rule.panels];
        let rows = rule.rows.clamp(1, rule.tile_pixels);
        let piece = |(first, len): (usize, usize), whole_blocks: bool| {
            assert!(len > 0 && len <= rule.tile_pixels, "{split:?}");
            if whole_blocks && first + len < pixels {
                assert!(
                    first.is_multiple_of(rows) && len.is_multiple_of(rows),
                    "{split:?}"
                );
            }
        };
        match split {
            Split::Inline { .. } | Split::Tiles { .. } => {
                let longest = (0..split.tiles()).map(|i| split.tile(i).1).max();
                assert_eq!(longest.unwrap_or(0), split.longest_tile(), "{split:?}");
                for i in 0..split.tiles() {
                    let (first, len) = split.tile(i);
                    piece((first, len), matches!(split, Split::Tiles { .. }));
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
                    piece((first, len), false);
                    dw[first..first + len].iter_mut().for_each(|d| *d += 1);
                }
                assert!(
                    dw.iter().all(|&d| d == u32::from(rule.depthwise)),
                    "{split:?}"
                );
                for i in 0..split.items() {
                    let ((first, len), (lo, hi)) = split.chunk(i);
                    piece((first, len), true);
                    assert!(hi > lo && hi <= rule.panels, "{split:?}");
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
        for (tile, rows) in [
            (6, 6),
            (48, 6),
            (96, 6),
            (516, 6),
            (98, 14),
            (100, 14),
            (5, 1),
        ] {
            for panels in [1, 2, 5, 16, 32] {
                for depthwise in [true, false] {
                    for mpp in [1, 1000, 100_000] {
                        let rule = SplitRule {
                            tile_pixels: tile,
                            rows,
                            panels,
                            multiplications_per_pixel: mpp,
                            depthwise,
                        };
                        for pixels in [1, 5, 7, 49, 196, 784, 3136, 12544] {
                            for threads in [1, 2, 3, 4, 5, 8, 16, 64] {
                                covers_once(&rule.split(pixels, threads), &rule, pixels);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn mobilenet_layers_split_into_balanced_items() {
        for (name, rule, pixels) in v1() {
            let mut line = format!("{name}:");
            for threads in [2, 3, 4, 8, 16] {
                let split = rule.split(pixels, threads);
                assert!(split.parallel(), "{name}");
                // Every thread has work; the large layers' tiles are many per thread.
                let least = if pixels >= 56 * 56 {
                    threads * ITEMS_PER_THREAD
                } else {
                    threads
                };
                assert!(
                    split.items() >= least,
                    "{name} on {threads} threads: {split}"
                );
                let b = split.balance(threads);
                // Each layer's items share out within 5% on every count here.
                let floor = 0.95;
                assert!(b >= floor, "{name} on {threads} threads: {b:.2} ({split})");
                // The scaling estimate (`--nocapture`): the share of thread time spent working.
                line += &format!(" {threads}: {split}, balance {b:.2};");
            }
            eprintln!("{line}");
        }
        let split = |layer: usize, threads: usize| {
            let (_, rule, pixels) = v1()[layer];
            rule.split(pixels, threads)
        };
        // On 2 threads L4 (28x28 out) runs as 8 fused tiles, L6 and L7 (14x14 out) as 8 of
        // 4 row blocks, L8 (7x7 out) in stages by weight panels; on 16, L4 in stages too.
        assert_eq!(
            split(3, 2),
            Split::Tiles {
                tiles: 8,
                rows: 6,
                pixels: 784
            }
        );
        assert_eq!(split(5, 2).to_string(), "8 items: tiles of 24-28 px");
        assert_eq!(split(6, 2).to_string(), "8 items: tiles of 24-28 px");
        // L6 on AVX-512 (14-row micro-kernel, a plan tile of 98 px): too few pixels for 8
        // tiles of 4 blocks, so its plan's 2 tiles, one a thread; on 3 threads, in stages.
        let l6 = SplitRule {
            tile_pixels: 98,
            rows: 14,
            ..v1()[5].1
        };
        assert_eq!(l6.split(196, 2).to_string(), "2 items: tiles of 98 px");
        assert!(l6.split(196, 3).to_string().starts_with("in stages"));
        assert_eq!(
            split(7, 2).to_string(),
            "in stages: depthwise in 6 runs of 8-9 px, then 8 items: 1 chunk(s) of 49 px x 8 \
             group(s) of 4 weight panel(s)"
        );
        assert!(split(3, 16).to_string().starts_with("in stages"));
        assert_eq!(
            split(7, 16).to_string(),
            "in stages: depthwise in 6 runs of 8-9 px, then 64 items: 2 chunk(s) of 24-25 px \
             x 32 group(s) of 1 weight panel(s)"
        );
        // The large layers keep their cache-sized tiles, rounded to a multiple of the threads.
        assert_eq!(
            split(0, 2),
            Split::Tiles {
                tiles: 26,
                rows: 6,
                pixels: 112 * 112
            }
        );
        assert_eq!(split(0, 16).items(), 64);
    }

    #[test]
    fn one_thread_runs_the_plans_tiles_inline() {
        for (name, rule, pixels) in v1() {
            assert_eq!(
                rule.split(pixels, 1),
                Split::Inline {
                    tile_pixels: rule.tile_pixels,
                    pixels
                },
                "{name}"
            );
        }
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
        let split = seed.split(64, 8);
        assert!(!split.parallel());
        assert_eq!(split.items(), 1);
        assert_eq!(split.balance(8), 1.0);
        assert!(split.to_string().contains("calling thread"));
    }

    #[test]
    fn balance_counts_the_idle_threads_of_the_last_round() {
        let five = Split::Tiles {
            tiles: 5,
            rows: 10,
            pixels: 50,
        };
        assert_eq!(five.balance(1), 1.0);
        // 5 equal tiles on 2 threads: 3 rounds for 2.5 of work.
        assert!((five.balance(2) - 2.5 / 3.0).abs() < 1e-12);
        assert_eq!(five.balance(5), 1.0);
    }
}
