#!/usr/bin/env bash
# Cross-builds the test suite for aarch64-unknown-linux-gnu and runs it under qemu-user,
# where the NEON kernels run. Installs what is missing (idempotent): the Rust target, the
# cross linker and qemu-user-static. qemu 7.2 hangs on programs that start threads, so every
# suite here is a `harness = false` target run on the main thread, and tests that start
# threads are skipped (DSCONV_NO_THREADS). trybuild snapshots stay host-only.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
export DSCONV_NO_THREADS=1
# One thread: dsconv's pool then starts none.
export DSCONV_THREADS=1
# Emulation is slow: fewer random cases per layer than natively (still every layer, backend,
# tail and image size: the matrix's 130-pixel images included).
export DSCONV_CASES=${DSCONV_CASES:-5}
# Release: the NEON kernels as phones and boards run them (opt-level 3), and under emulation
# the optimised kernels run the suite several times faster than the test profile's.
cargo test --release --target aarch64-unknown-linux-gnu --features safetensors \
  --test matrix_a --test matrix_b --test matrix_c --test matrix_d --test matrix_e --test counts --test errors --test nonfinite --test activations --test keras --test frameworks --test network --test residual --test threads --test safetensors --test mobilenet --test miri --test alloc --test large --test alignment --test backend_env \
  -- --test-threads=1 2>&1 | tee /tmp/dsconv-aarch64.log
grep -q "default backend (Backend::detect): neon" /tmp/dsconv-aarch64.log \
  || { echo "NEON was not the backend under emulation"; exit 1; }
echo "aarch64: suite passed under qemu with the NEON backend"
