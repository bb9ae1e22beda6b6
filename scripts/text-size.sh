#!/usr/bin/env bash
# The code a layer adds per backend: sums the sizes of the generated functions of each layer
# of benches/layers.rs by ISA (nm -S on the release bench binary).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cargo bench --bench layers --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="layers": print(m["executable"])' | tail -1)
echo "binary: $bin"
nm -S -C "$bin" | python3 -c '
import re, sys
sizes = {}
for line in sys.stdin:
    parts = line.split(None, 3)
    if len(parts) < 4 or "__dsconv_" not in parts[3]:
        continue
    m = re.search(r"layers::(\w+)::__dsconv_\w*?_(scalar|avx512|avx2|neon)\b", parts[3])
    if m:
        key = (m.group(1), m.group(2))
        sizes[key] = sizes.get(key, 0) + int(parts[1], 16)
print("| layer | scalar bytes | avx2 bytes | avx512 bytes |")
print("|---|---|---|---|")
for layer in ["S0", "L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9", "E5", "Dm2"]:
    print("| %s | %s |" % (layer, " | ".join(str(sizes.get((layer, i), 0)) for i in ["scalar", "avx2", "avx512"])))
'
