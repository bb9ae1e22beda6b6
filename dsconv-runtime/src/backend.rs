//! Backends (instruction sets a layer has kernels for), CPU detection and selection.
//!
//! Every fact about an instruction set — its name, lanes, vector registers, architecture,
//! whether stable Rust has a prefetch for it, the target features its kernels are compiled
//! with, the cargo feature that builds it, and which other backends it implies — is one row
//! of the table in [`isa_table!`]. The `#[target_feature(enable = ..)]` string written into
//! every generated kernel ([`Backend::target_features`]) and the run-time check made before
//! one runs ([`Backend::is_available`]) are both generated from the same list of features,
//! so they cannot drift.

use crate::Error;
use std::fmt;
use std::sync::OnceLock;

/// Whether every listed target feature is detected on this CPU, for the architecture named
/// by the first token (`is_x86_feature_detected!` and friends need literals, so the check
/// is generated from the table's literals).
macro_rules! detected {
    (portable; $($feature:tt),*) => {
        true
    };
    (x86_64; $($feature:tt),*) => {{
        #[cfg(target_arch = "x86_64")]
        let found = true $(&& std::arch::is_x86_feature_detected!($feature))*;
        #[cfg(not(target_arch = "x86_64"))]
        let found = false;
        found
    }};
    (aarch64; $($feature:tt),*) => {{
        #[cfg(target_arch = "aarch64")]
        let found = true $(&& std::arch::is_aarch64_feature_detected!($feature))*;
        #[cfg(not(target_arch = "aarch64"))]
        let found = false;
        found
    }};
}

/// The architecture's name as `target_arch` spells it (`None` for portable code).
macro_rules! arch_name {
    (portable) => {
        None
    };
    ($arch:ident) => {
        Some(stringify!($arch))
    };
}

/// Whether this build has the backend's kernels: always for portable code, else when its
/// cargo feature is on.
macro_rules! built {
    (None) => {
        true
    };
    ($cargo:literal) => {
        cfg!(feature = $cargo)
    };
}

/// The ISA table: one row per backend, best last. Generates [`Backend`] and every method
/// that answers a question about one.
macro_rules! isa_table {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident {
            name: $name:literal,
            arch: $arch:ident,
            lanes: $lanes:literal,
            vector_registers: $registers:literal,
            prefetch: $prefetch:literal,
            features: [$($feature:tt),*],
            cargo_feature: $cargo:tt,
            implies: [$($implied:ident),*],
        }
    )*) => {
        /// The instruction set a layer's kernels run on.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Backend {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Backend {
            /// Every backend, best last.
            pub const ALL: [Backend; [$(stringify!($variant)),*].len()] = [$(Backend::$variant),*];

            /// Lower-case name, as accepted by `DSCONV_BACKEND`.
            pub const fn name(self) -> &'static str {
                match self { $(Backend::$variant => $name,)* }
            }

            /// The variant's identifier (`Avx512`), for code that names it.
            pub const fn variant_name(self) -> &'static str {
                match self { $(Backend::$variant => stringify!($variant),)* }
            }

            /// f32 lanes per vector register (1 for scalar).
            pub const fn lanes(self) -> usize {
                match self { $(Backend::$variant => $lanes,)* }
            }

            /// Architectural vector registers the kernels may plan for.
            pub const fn vector_registers(self) -> usize {
                match self { $(Backend::$variant => $registers,)* }
            }

            /// The `target_arch` the backend's kernels compile on (`None`: every target).
            pub const fn arch(self) -> Option<&'static str> {
                match self { $(Backend::$variant => arch_name!($arch),)* }
            }

            /// Whether stable Rust has a cache prefetch instruction for this backend.
            pub const fn has_prefetch(self) -> bool {
                match self { $(Backend::$variant => $prefetch,)* }
            }

            /// The target features its kernels are compiled with (`#[target_feature]`) and
            /// that [`Backend::is_available`] checks before one runs.
            pub const fn target_features(self) -> &'static [&'static str] {
                match self { $(Backend::$variant => &[$($feature),*],)* }
            }

            /// The backends whose kernels this one's may call: every CPU that runs this
            /// backend runs those (its target features include theirs).
            pub const fn implies(self) -> &'static [Backend] {
                match self { $(Backend::$variant => &[$(Backend::$implied),*],)* }
            }

            /// Whether this build has kernels for the backend (its cargo feature is on).
            pub const fn is_built(self) -> bool {
                match self { $(Backend::$variant => built!($cargo),)* }
            }

            /// Whether this CPU can run the backend and this build has kernels for it.
            pub fn is_available(self) -> bool {
                match self {
                    $(Backend::$variant => built!($cargo) && detected!($arch; $($feature),*),)*
                }
            }
        }
    };
}

isa_table! {
    /// Portable Rust: every target, every CPU.
    Scalar {
        name: "scalar",
        arch: portable,
        lanes: 1,
        vector_registers: 16,
        prefetch: false,
        features: [],
        cargo_feature: None,
        implies: [],
    }
    /// aarch64 NEON (128-bit, 4 lanes, 32 registers, no masked memory operations).
    Neon {
        name: "neon",
        arch: aarch64,
        lanes: 4,
        vector_registers: 32,
        // `core::arch::aarch64`'s prefetch is unstable.
        prefetch: false,
        features: ["neon"],
        cargo_feature: "neon",
        implies: [Scalar],
    }
    /// x86_64 AVX2 with FMA3 (256-bit, 8 lanes, 16 registers, masked loads and stores).
    Avx2 {
        name: "avx2",
        arch: x86_64,
        lanes: 8,
        vector_registers: 16,
        prefetch: true,
        features: ["avx2", "fma"],
        cargo_feature: "avx2",
        implies: [Scalar],
    }
    /// x86_64 AVX-512F (512-bit, 16 lanes, 32 registers, mask registers). Its kernels are
    /// compiled with AVX2 and FMA too, and only run where all three are detected, so they
    /// may hand narrow work to the AVX2 kernels.
    Avx512 {
        name: "avx512",
        arch: x86_64,
        lanes: 16,
        vector_registers: 32,
        prefetch: true,
        features: ["avx512f", "avx2", "fma"],
        cargo_feature: "avx512",
        implies: [Avx2, Scalar],
    }
}

/// The environment variable that forces a backend for every call that does not name one
/// (`scalar`, `avx2`, `avx512`, `neon`, or `auto` for the default: the best this CPU has).
pub const BACKEND_ENV: &str = "DSCONV_BACKEND";

impl Backend {
    /// Parses a name as accepted by `DSCONV_BACKEND` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The `#[target_feature(enable = ..)]` string of the backend's kernels (empty for
    /// scalar): [`Backend::target_features`] joined by commas.
    pub fn target_feature_list(self) -> String {
        self.target_features().join(",")
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

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn a_backend_implies_only_backends_whose_features_it_has() {
        for b in Backend::ALL {
            for implied in b.implies() {
                for f in implied.target_features() {
                    assert!(
                        b.target_features().contains(f),
                        "{b} implies {implied}, but is not compiled with its feature {f}"
                    );
                }
                assert!(implied.arch().is_none() || implied.arch() == b.arch());
            }
        }
    }

    #[test]
    fn the_feature_string_is_the_table_row() {
        assert_eq!(Backend::Avx2.target_feature_list(), "avx2,fma");
        assert_eq!(Backend::Avx512.target_feature_list(), "avx512f,avx2,fma");
        assert_eq!(Backend::Scalar.target_feature_list(), "");
        assert_eq!(Backend::Avx512.variant_name(), "Avx512");
        assert_eq!(Backend::ALL.last(), Some(&Backend::Avx512));
    }
}
