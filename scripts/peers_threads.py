"""dsconv against the peers (XNNPACK through LiteRT, ONNX Runtime) on MobileNetV1's L1..L9
and the 13-block body, at a thread count, interleaved: each round runs dsconv, then LiteRT,
then ONNX Runtime (the order rotates every round) on every case; per case, the median time
of each over the rounds and the median of the per-round ratios best peer / dsconv (>1:
dsconv faster) with their spread.

    python3 scripts/peers_threads.py BIN THREADS [ROUNDS]
    CASES=K5A,K7A,K9A,K5B,K7B,K9B STAGE=dw python3 scripts/peers_threads.py BIN 1 7

BIN: a build of benches/forward_ab.rs (`cargo bench --bench forward_ab --no-run`, or the
`target/ab/bin-*` of scripts/ab_layers.sh). The peers: ../shared/bench/peers/bench_py.py on
the models of its gen_models.py (PEERS_DIR, default /tmp/peers-models), run by PEERS_PY
(default: python3). dsconv runs with DSCONV_THREADS=THREADS, the peers with THREADS threads.
CASES (comma-separated) picks the cases: L1..L9 and BODY by default; K5A..K9B are the 5x5, 7x7
and 9x9 layers of scripts/peer_layers.py (its `gen` makes their models). STAGE=dw times the
depthwise stage alone (dsconv's `STAGE=dw`, the peers' `_dw` models; not for BODY).
"""
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The shared peers' runner, with issue 15's layers added to its table.
PEERS = os.path.join(HERE, "peer_layers.py")
CASES = os.environ.get("CASES", "L1,L2,L3,L4,L5,L6,L7,L8,L9,BODY").split(",")
STAGE = os.environ.get("STAGE", "dwpw")
REPS = {"L1": 60, "L2": 80, "L3": 60, "L4": 100, "L5": 80, "L6": 120, "L7": 100,
        "L8": 120, "L9": 100, "BODY": 15, "K5A": 40, "K7A": 30, "K9A": 20, "K5B": 40,
        "K7B": 30, "K9B": 20}
MODEL = {c: (c if c == "BODY" else f"{c}_{STAGE}") for c in CASES}


def dsconv(binary, threads):
    env = dict(os.environ, TIME="1", B=os.environ.get("B", "avx2"), DSCONV_THREADS=str(threads),
               STAGE=STAGE)
    return {c: float(subprocess.run([binary, c, str(REPS[c])], env=env, capture_output=True,
                                    text=True, check=True).stdout) for c in CASES}


def peer(engine, threads):
    py = os.environ.get("PEERS_PY", "python3")
    out = subprocess.run([py, PEERS, "bench", engine, str(threads)] + [MODEL[c] for c in CASES],
                         capture_output=True, text=True, check=True).stdout
    by_model = {}
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            by_model[r["model"]] = r["median_us"]
    return {c: by_model[MODEL[c]] for c in CASES}


def main():
    binary, threads = sys.argv[1], int(sys.argv[2])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    runs = {"dsconv": lambda: dsconv(binary, threads),
            "litert": lambda: peer("litert", threads),
            "ort": lambda: peer("ort", threads)}
    times = {k: {c: [] for c in CASES} for k in runs}
    ratios = {c: [] for c in CASES}
    order = list(runs)
    for r in range(rounds):
        this = order[r % 3:] + order[:r % 3]
        got = {k: runs[k]() for k in this}
        for c in CASES:
            for k in runs:
                times[k][c].append(got[k][c])
            ratios[c].append(min(got["litert"][c], got["ort"][c]) / got["dsconv"][c])
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    print(f"{threads} thread(s), {rounds} interleaved rounds; median us; "
          "ratio = best peer / dsconv per round (>1: dsconv faster), median [min, max]")
    print(f"{'case':5} {'dsconv':>9} {'litert':>9} {'ort':>9}  ratio")
    for c in CASES:
        med = {k: statistics.median(times[k][c]) for k in runs}
        rs = sorted(ratios[c])
        print(f"{c:5} {med['dsconv']:9.1f} {med['litert']:9.1f} {med['ort']:9.1f}  "
              f"{statistics.median(rs):.2f} [{rs[0]:.2f}, {rs[-1]:.2f}]")


if __name__ == "__main__":
    main()
