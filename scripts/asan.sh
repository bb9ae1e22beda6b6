#!/usr/bin/env bash
# Runs the holes of the property matrix (matrix_d: even kernels, 7x7 over few channels,
# pointwise weights over 1 MiB, 130-pixel images), the large-image suite and the Miri cases
# (every tail, border, depth-multiplier and width-vector path) natively under
# AddressSanitizer (nightly, -Zsanitizer=address), on every backend this CPU has: Miri has
# no AVX-512 intrinsics, so this is what checks the AVX-512 kernels (and AVX2 on images too
# large for Miri) for out-of-bounds accesses. Installs the nightly toolchain if missing.
# The build targets the host triple explicitly so that proc-macros and build scripts are
# built without the sanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=address"
export ASAN_OPTIONS="detect_leaks=0"
export CARGO_TARGET_DIR=target/asan
# Fewer random cases than the plain run (the sanitizer slows every access); the 130-pixel
# images of matrix_d run with their own reduced case count. matrix_a/b/c are left to the
# plain run (their paths are the Miri cases' paths on larger shapes): building them
# instrumented took most of this step's time, and CI must stay under 30 minutes.
export DSCONV_CASES=${DSCONV_CASES:-8}
cargo +nightly test --target "$host" \
  --test matrix_d --test large --test miri \
  -- --test-threads=1 2>&1 | tee /tmp/dsconv-asan.log
grep -q "^backends run: .*avx2" /tmp/dsconv-asan.log \
  || grep -q "^backends run: scalar; " /tmp/dsconv-asan.log \
  || { echo "no backend ran under ASan"; exit 1; }
echo "asan: $(grep -m1 '^backends run' /tmp/dsconv-asan.log) — no out-of-bounds access"
