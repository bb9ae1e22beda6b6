#!/usr/bin/env python3
"""dsconv's pointwise stage against OpenBLAS sgemm on the very same GEMMs, interleaved.

    python3 scripts/pointwise_blas.py FORWARD_AB_BIN [ROUNDS] [LAYERS...]

Each round runs ../shared/bench/peers/bench_gemm.py (OpenBLAS, 1 thread, the median of 21
samples per layer) and `forward_ab LAYER REPS` with STAGE=pw TIME=1 (the median of REPS
pointwise calls), the order alternating between rounds. Prints per layer the median of
each side, the median per-round ratio OpenBLAS / dsconv (above 1: dsconv faster) with its
spread, and each side's GFLOP/s (2 flops per multiply-add). PEERS_PY: the Python with numpy
(default /tmp/peervenv/bin/python). B: dsconv's backend (default avx2).
"""
import json, os, statistics, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
peers = os.path.join(here, "..", "..", "shared", "bench", "peers")
py = os.environ.get("PEERS_PY", "/tmp/peervenv/bin/python")
binary = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 9
layers = sys.argv[3:] or ["L3", "L5", "L7", "L9"]
reps = {"L1": 40, "L2": 60, "L3": 60, "L4": 100, "L5": 100, "L6": 150, "L7": 150,
        "L8": 200, "L9": 200, "E5": 100}
env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
env.pop("OPENBLAS_CORETYPE", None)
env.pop("OPENBLAS_L2_SIZE", None)


def blas():
    out = subprocess.run([py, os.path.join(peers, "bench_gemm.py"), *layers], env=env,
                         cwd=peers, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return {r["model"][:-3]: (r["median_us"], r["gflops"]) for r in rows}


def dsconv():
    res = {}
    for l in layers:
        e = dict(os.environ, STAGE="pw", TIME="1", B=os.environ.get("B", "avx2"),
                 DSCONV_THREADS="1")
        out = subprocess.run([binary, l, str(reps.get(l, 100))], env=e, check=True,
                             capture_output=True, text=True).stdout
        res[l] = float(out.split()[-1])
    return res


ratios = {l: [] for l in layers}
ts = {l: ([], []) for l in layers}
gf = {}
for r in range(rounds):
    if r % 2 == 0:
        b, d = blas(), dsconv()
    else:
        d = dsconv()
        b = blas()
    for l in layers:
        us, g = b[l]
        gf[l] = g * us  # GFLOP/s x us = the layer's flops / 1000
        ratios[l].append(us / d[l])
        ts[l][0].append(us)
        ts[l][1].append(d[l])
print(f"pointwise stage, 1 thread, {rounds} interleaved rounds: OpenBLAS / dsconv (>1: dsconv faster)")
for l in layers:
    mb, md = statistics.median(ts[l][0]), statistics.median(ts[l][1])
    print(f"{l:4} OpenBLAS {mb:8.1f} us ({gf[l] / mb:6.1f} GFLOP/s)  dsconv {md:8.1f} us "
          f"({gf[l] / md:6.1f} GFLOP/s)  ratio {statistics.median(ratios[l]):.3f} "
          f"[{min(ratios[l]):.3f}, {max(ratios[l]):.3f}]")
