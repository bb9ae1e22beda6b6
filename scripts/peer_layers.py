"""The peers' benchmark (../shared/bench/peers: XNNPACK through LiteRT, ONNX Runtime) on
issue 15's kernel sizes as well as MobileNetV1's layers: 5x5, 7x7 and 9x9 depthwise on
56x56x128 -> 128 (K5A, K7A, K9A) and 28x28x256 -> 256 (K5B, K7B, K9B), stride 1, "same"
padding. The layers are added to the shared layer table, then its own model generator or
runner does the rest, unchanged:

    python3 scripts/peer_layers.py gen [MODEL...]                # models into PEERS_DIR
    python3 scripts/peer_layers.py bench ENGINE THREADS MODEL... # one JSON line per model

MODEL is a layer and a kind, for example K7A_dwpw (the whole layer) or K7A_dw (the
depthwise stage alone). Run it with the peers' Python (PEERS_PY of peers_threads.py).
`benches/forward_ab.rs` declares the same layers for dsconv.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "bench", "peers"))

import layers  # noqa: E402

# name, H, W, C, dk, stride, N: the shared table's columns.
EXTRA = [
    ("K5A", 56, 56, 128, 5, 1, 128),
    ("K7A", 56, 56, 128, 7, 1, 128),
    ("K9A", 56, 56, 128, 9, 1, 128),
    ("K5B", 28, 28, 256, 5, 1, 256),
    ("K7B", 28, 28, 256, 7, 1, 256),
    ("K9B", 28, 28, 256, 9, 1, 256),
]
for layer in EXTRA:
    if layer[0] not in layers.BYNAME:
        layers.LAYERS.append(layer)
        layers.BYNAME[layer[0]] = layer


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("gen", "bench"):
        raise SystemExit(__doc__)
    command = sys.argv.pop(1)
    if command == "gen":
        import gen_models
        gen_models.main()
    else:
        import bench_py
        bench_py.main()


if __name__ == "__main__":
    main()
