#!/usr/bin/env bash
# Runs tests/miri.rs under Miri with AVX2+FMA enabled, so the scalar and AVX2 kernels
# (masked loads and stores included) are checked for out-of-bounds accesses and
# uninitialised reads. Installs the nightly toolchain's miri component if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly miri --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal --component miri,rust-src
fi
cargo +nightly miri setup >/dev/null
RUSTFLAGS="-C target-feature=+avx2,+fma" MIRIFLAGS="-Zmiri-strict-provenance" \
  cargo +nightly miri test --test miri -- --nocapture 2>&1 | tee /tmp/dsconv-miri.log
grep -q "^test avx2::.* ok$" /tmp/dsconv-miri.log || { echo "AVX2 did not run under Miri"; exit 1; }
echo "miri: scalar and AVX2 kernels ran without undefined behaviour"
