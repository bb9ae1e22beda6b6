//! Backends (instruction sets a layer has kernels for), CPU detection and selection.

use crate::Error;
use std::fmt;
use std::sync::OnceLock;

/// The instruction set a layer's kernels run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// Portable Rust: every target, every CPU.
    Scalar,
    /// x86_64 AVX2 with FMA3 (256-bit, 8 lanes).
    Avx2,
    /// x86_64 AVX-512F (512-bit, 16 lanes, masks).
    Avx512,
    /// aarch64 NEON (128-bit, 4 lanes).
    Neon,
}

/// The environment variable that forces a backend for every call that does not name one
/// (`scalar`, `avx2`, `avx512`, `neon`, or `auto` for the default: the best this CPU has).
pub const BACKEND_ENV: &str = "DSCONV_BACKEND";

impl Backend {
    /// Every backend, best last.
    pub const ALL: [Backend; 4] = [
        Backend::Scalar,
        Backend::Neon,
        Backend::Avx2,
        Backend::Avx512,
    ];

    /// Lower-case name, as accepted by `DSCONV_BACKEND`.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Neon => "neon",
        }
    }

    /// Parses a name as accepted by `DSCONV_BACKEND` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this CPU can run the backend (and this build has kernels for it).
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Backend::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// `Ok(self)` if available, else [`Error::BackendUnavailable`].
    pub fn require(self) -> Result<Backend, Error> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(Error::BackendUnavailable { backend: self })
        }
    }

    /// The backends this CPU can run, best last.
    pub fn available() -> Vec<Backend> {
        Backend::ALL
            .into_iter()
            .filter(|b| b.is_available())
            .collect()
    }

    /// The best backend this CPU can run (probed once).
    pub fn detect() -> Backend {
        static BEST: OnceLock<Backend> = OnceLock::new();
        *BEST.get_or_init(|| {
            Backend::ALL
                .into_iter()
                .rev()
                .find(|b| b.is_available())
                .unwrap_or(Backend::Scalar)
        })
    }

    /// The backend used by calls that do not name one: `DSCONV_BACKEND` if set (read once),
    /// else [`Backend::detect`].
    ///
    /// # Errors
    /// [`Error::UnknownBackend`] if `DSCONV_BACKEND` names no backend, and
    /// [`Error::BackendUnavailable`] if it names one this CPU lacks.
    pub fn active() -> Result<Backend, Error> {
        static FORCED: OnceLock<Result<Option<Backend>, Error>> = OnceLock::new();
        let forced = FORCED.get_or_init(|| match std::env::var(BACKEND_ENV) {
            Err(_) => Ok(None),
            Ok(v) if v.trim().is_empty() || v.trim().eq_ignore_ascii_case("auto") => Ok(None),
            Ok(v) => Backend::from_name(&v)
                .map(Some)
                .ok_or(Error::UnknownBackend { value: v }),
        });
        match forced {
            Ok(Some(b)) => b.require(),
            Ok(None) => Ok(Backend::detect()),
            Err(e) => Err(e.clone()),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the planner decided for one backend of one layer: visible, so that waste is
/// reported rather than hidden. Every generated layer has one per backend it was compiled
/// for ([`crate::SeparableConv::plan`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanSummary {
    /// The backend.
    pub backend: Backend,
    /// f32 lanes per vector.
    pub lanes: usize,
    /// Depthwise strategy, in words.
    pub depthwise_strategy: &'static str,
    /// Output pixels computed together by the interior depthwise kernel (the sliding window:
    /// each input vector is loaded once per kernel row and reused for every tap it meets);
    /// for width vectors, the output columns one vector holds.
    pub depthwise_pixels_per_block: usize,
    /// Vectors per pixel covering the depthwise channels (the last one masked if partial);
    /// for width vectors, the channel count (each channel in its own vectors).
    pub depthwise_channel_vectors: usize,
    /// Loads (input + weight) per multiply-add in the interior depthwise inner loop.
    pub depthwise_loads_per_fma: f64,
    /// Useful depthwise multiplications / lane-multiplications issued.
    pub depthwise_lane_utilisation: f64,
    /// Pointwise micro-kernel rows (output pixels).
    pub pointwise_rows: usize,
    /// Pointwise micro-kernel width in output channels (vectors x lanes).
    pub pointwise_cols: usize,
    /// The order the pointwise stage walks its register tiles in, in words ("pixel rows
    /// outer": each block of pixels meets every weight panel while its inputs sit in L1;
    /// "weight panels outer": each panel meets every pixel of a tile, for weights too large
    /// for L2).
    pub pointwise_order: &'static str,
    /// What the pointwise micro-kernel prefetches while it computes, in words ("next rows
    /// prefetched to L1", "next weight panel prefetched to L2", or "no prefetch").
    pub pointwise_prefetch: &'static str,
    /// Whether the pointwise reduction is short enough that a block's weights are loaded
    /// into registers once and each row of pixels is finished in turn.
    pub pointwise_weights_in_registers: bool,
    /// Loads per multiply-add in the pointwise inner loop.
    pub pointwise_loads_per_fma: f64,
    /// Useful pointwise multiplications / lane-multiplications issued.
    pub pointwise_lane_utilisation: f64,
    /// Output pixels per fused tile of `forward` (depthwise tile kept in cache, then consumed
    /// by the pointwise stage).
    pub fused_tile_pixels: usize,
}

impl fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Width vectors hold output columns of one channel; channel vectors, channels of
        // one pixel.
        let blocking = if self.depthwise_strategy.starts_with("width") {
            format!(
                "{} output columns per vector, one channel at a time ({} channels)",
                self.depthwise_pixels_per_block, self.depthwise_channel_vectors
            )
        } else {
            format!(
                "{} px/block, {} channel vector(s)",
                self.depthwise_pixels_per_block, self.depthwise_channel_vectors
            )
        };
        write!(
            f,
            "{} ({} lanes): depthwise {}, {}, {:.2} loads/FMA, lane utilisation {:.1}%; \
             pointwise {}x{} micro-kernel{}, {}, {}, {:.2} loads/FMA, lane utilisation {:.1}%; fused \
             tiles of {} px",
            self.backend,
            self.lanes,
            self.depthwise_strategy,
            blocking,
            self.depthwise_loads_per_fma,
            self.depthwise_lane_utilisation * 100.0,
            self.pointwise_rows,
            self.pointwise_cols,
            if self.pointwise_weights_in_registers {
                " (weights in registers)"
            } else {
                ""
            },
            self.pointwise_order,
            self.pointwise_prefetch,
            self.pointwise_loads_per_fma,
            self.pointwise_lane_utilisation * 100.0,
            self.fused_tile_pixels,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(Backend::from_name(b.name()), Some(b));
        }
        assert_eq!(Backend::from_name(" AVX2 "), Some(Backend::Avx2));
        assert_eq!(Backend::from_name("sse"), None);
    }

    #[test]
    fn scalar_is_always_available_and_detect_is_available() {
        assert!(Backend::Scalar.is_available());
        assert!(Backend::detect().is_available());
        assert!(Backend::available().contains(&Backend::detect()));
    }
}
