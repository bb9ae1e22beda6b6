#!/usr/bin/env bash
# A/B of two commits on the layers of benches/layers.rs (forward, one backend):
# instruction counts (callgrind; deterministic, not for AVX-512) and interleaved timings.
#   scripts/ab_layers.sh BEFORE_REV [AFTER_REV|worktree] [BACKEND] [ROUNDS]
# Builds benches/forward_ab.rs (the copy in the working tree, at both commits) in git
# worktrees under target/ab/.
set -euo pipefail
cd "$(dirname "$0")/.."
before=$1; after=${2:-worktree}; backend=${3:-avx2}; rounds=${4:-15}
root=$PWD; out=$root/target/ab
mkdir -p "$out"
build() { # $1 = rev or "worktree", $2 = name
  local dir=$root
  if [ "$1" != worktree ]; then
    dir=$out/src-$2
    rm -rf "$dir"; git worktree prune
    git worktree add -f --detach "$dir" "$1" >/dev/null
    mkdir -p "$dir/benches/common"
    cp "$root/benches/forward_ab.rs" "$dir/benches/"
    cp "$root/benches/common/peak.rs" "$dir/benches/common/"
    # Before the benchmarks were their own crate (benches/Cargo.toml), they were the root
    # package's: add forward_ab there if the revision lacks it.
    [ -f "$dir/benches/Cargo.toml" ] || grep -q 'name = "forward_ab"' "$dir/Cargo.toml" ||
      printf '\n[[bench]]\nname = "forward_ab"\nharness = false\n' >> "$dir/Cargo.toml"
  fi
  (cd "$dir" && CARGO_TARGET_DIR=$out/target-$2 cargo bench --bench forward_ab --no-run -q)
  cp "$(ls -t "$out"/target-$2/release/deps/forward_ab-* | grep -v '\.d$' | head -1)" "$out/bin-$2"
}
build "$before" a
build "$after" b
if command -v valgrind >/dev/null && [ "$backend" != avx512 ]; then
  python3 scripts/ab_layers.py count "$out/bin-a" "$out/bin-b" "$backend"
fi
python3 scripts/ab_layers.py time "$out/bin-a" "$out/bin-b" "$backend" "$rounds"
