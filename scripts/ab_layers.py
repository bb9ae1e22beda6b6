"""A/B of `forward` on the layers of benches/layers.rs: two builds of benches/forward_ab.rs.

    ab_layers.py count BIN_A BIN_B [BACKEND]          instructions per forward (callgrind)
    ab_layers.py time BIN_A BIN_B [BACKEND [ROUNDS]]  median times, A B / B A interleaved

scripts/ab_layers.sh builds the two binaries from two commits and calls this.
"""
import subprocess, sys, os, statistics, re
LAYERS = ["S0","L1","L2","L3","L4","L5","L6","L7","L8","L9","E5","Dm2","Ceil"] + (["BODY"] if os.environ.get("BODY") else [])
if os.environ.get("ONLY"):
    LAYERS = os.environ["ONLY"].split(",")
REPS = {"S0":3000,"Ceil":3000,"L1":60,"L2":80,"L3":80,"L4":100,"L5":150,"L6":200,"L7":250,"L8":250,"L9":250,"E5":100,"Dm2":80,"Dm3":40,"BODY":10,"Ch1024":300,"Ch1040":300,"V3a":300,"V3b":300,"K11":40,"K31":10}
def bin(v): return v
def timed(v, layer, backend):
    env = dict(os.environ, TIME="1", B=backend)
    out = subprocess.run([bin(v), layer, str(REPS[layer])], env=env, capture_output=True, text=True, check=True).stdout
    return float(out.strip())
def count(v, layer, reps, backend):
    env = dict(os.environ, B=backend)
    r = subprocess.run(["valgrind","--tool=callgrind","--callgrind-out-file=/dev/null", bin(v), layer, str(reps)], env=env, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", r.stderr).group(1))
mode = sys.argv[1]
a, b = sys.argv[2], sys.argv[3]
backend = sys.argv[4] if len(sys.argv) > 4 else "avx2"
if mode == "count":
    print(f"instructions per forward ({backend}), A -> B")
    for l in LAYERS:
        per = []
        for v in (a, b):
            per.append((count(v, l, 3, backend) - count(v, l, 1, backend)) / 2)
        print(f"{l:5} {per[0]:14.0f} {per[1]:14.0f}  ratio {per[1]/per[0]:.4f}")
else:
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 9
    ratios = {l: [] for l in LAYERS}
    times = {l: ([], []) for l in LAYERS}
    for r in range(rounds):
        for l in LAYERS:
            order = (a, b) if r % 2 == 0 else (b, a)
            t = {v: timed(v, l, backend) for v in order}
            ratios[l].append(t[b] / t[a])
            times[l][0].append(t[a]); times[l][1].append(t[b])
    print(f"forward median us ({backend}), {rounds} interleaved rounds; ratio = B/A (>1: B slower)")
    for l in LAYERS:
        rs = sorted(ratios[l])
        print(f"{l:5} {statistics.median(times[l][0]):10.1f} {statistics.median(times[l][1]):10.1f}  median ratio {statistics.median(rs):.3f}  [min {rs[0]:.3f}, max {rs[-1]:.3f}]")
