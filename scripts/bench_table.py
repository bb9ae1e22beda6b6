#!/usr/bin/env python3
"""Puts `cargo bench --bench layers` (criterion's target/criterion/) beside the peers measured
by ../shared/bench/peers (PEERS_OUT, default /tmp/peers-results) as a markdown table: medians,
GFLOP/s, % of the FMA peak the peers' roofline measured (roofline.txt), and ratios (peer time / our time: > 1 means dsconv is faster).

Usage: python3 scripts/bench_table.py [criterion dir] [peers dir]
"""
import json, os, sys, glob

crit = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
peers_dir = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("PEERS_OUT", "/tmp/peers-results")
ENGINES = {"ort": "ORT", "ort_nhwc": "ORT-NHWC", "litert": "XNNPACK", "tract": "tract", "tract_native": "tract-native"}

ours = {}  # (layer, stage, backend) -> (median ns, flops)
for bench in glob.glob(os.path.join(crit, "*", "*", "*", "new", "benchmark.json")):
    meta = json.load(open(bench))
    est = json.load(open(os.path.join(os.path.dirname(bench), "estimates.json")))
    layer = meta["group_id"].split()[0]
    stage, backend = meta["function_id"], meta["value_str"]
    flops = (meta.get("throughput") or {}).get("Elements")
    ours[(layer, stage, backend)] = (est["median"]["point_estimate"], flops)

peers = {}  # (layer, kind) -> {engine: median µs}
for path in glob.glob(os.path.join(peers_dir, "*_t1.jsonl")):
    for line in open(path):
        r = json.loads(line)
        name = ENGINES.get(r["engine"])
        if not name or r.get("threads") != 1:
            continue
        model = r["model"]
        layer, kind = (model.split("_", 1) + ["dwpw"])[:2] if "_" in model else (model, "dwpw")
        peers.setdefault((layer, kind), {})[name] = r["median_us"]

# The FMA peaks the peers' roofline measured in the same session ("% of peak" columns).
peak = {}
roof = os.path.join(peers_dir, "roofline.txt")
if os.path.exists(roof):
    for line in open(roof):
        for isa, key in (("AVX2", "avx2"), ("AVX-512", "avx512")):
            if line.startswith(f"FMA peak {isa} ") and key not in peak:
                peak[key] = float(line.split(":")[1].split()[0])

KIND = {"forward": "dwpw", "depthwise": "dw", "pointwise": "pw"}
layers = ["S0", "L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9", "E5", "BODY", "DM2", "CEIL"]
backends = ["avx512", "avx2", "scalar", "reference"]
for stage in ["forward", "depthwise", "pointwise"]:
    print(f"\n#### {stage} (median µs; GFLOP/s of our best; ratio = best peer time / ours)\n")
    print("| layer | " + " | ".join(f"dsconv {b}" for b in backends) + " | GFLOP/s | % of peak | best peer | peer µs | ratio |")
    print("|---|" + "---|" * (len(backends) + 5))
    for layer in layers:
        row = {b: ours.get((layer, stage, b)) for b in backends}
        if not any(row.values()):
            continue
        best_b = min((b for b in backends[:3] if row[b]), key=lambda b: row[b][0])
        t_ns, flops = row[best_b]
        gf = f"{flops / t_ns:.1f}" if flops else ""
        pct = f"{100 * flops / t_ns / peak[best_b]:.1f}" if flops and best_b in peak else ""
        p = peers.get((layer, KIND[stage]), {})
        if p:
            eng, pt = min(p.items(), key=lambda kv: kv[1])
            ratio = f"{pt / (t_ns / 1000):.2f}x"
            peer = (eng, f"{pt:.1f}")
        else:
            peer, ratio = ("", ""), ""
        cells = [f"{row[b][0] / 1000:.1f}" if row[b] else "" for b in backends]
        print(f"| {layer} | " + " | ".join(cells) + f" | {gf} | {pct} | {peer[0]} | {peer[1]} | {ratio} |")
