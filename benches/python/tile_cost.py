"""What one tile costs each model: Python onnxruntime, one thread, random input, median of runs.

    .cache/speedvenv/bin/python benches/python/tile_cost.py models/*/*-int8.onnx
    .cache/speedvenv/bin/python benches/python/tile_cost.py models/crack/crack-unet-int8.onnx \
        --sizes 128 160 192 224 256 384 512

Without `--sizes` each model runs at its exported 256x256 input, batches of 1 and 4, and the
time per tile is printed. With `--interleave N` the models take turns, N rounds of `--runs`
tiles each (batch 1), so that a busy neighbour slows them alike; the median round per model is
printed, with every round:

    .cache/speedvenv/bin/python benches/python/tile_cost.py A.onnx B.onnx --interleave 8

With `--sizes` the model's input and output height and width are made dynamic (a copy in a
temporary folder; fully convolutional models only) and it runs one tile of each size: the time
per 256x256 worth of pixels says whether bigger or smaller tiles would be cheaper. Needs numpy,
onnx and onnxruntime (`.cache/speedvenv`). Timings depend on the machine's load; compare rows of
one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


def session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def median_ms(s: ort.InferenceSession, x: np.ndarray, runs: int) -> float:
    name = s.get_inputs()[0].name
    for _ in range(3):
        s.run(None, {name: x})
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        s.run(None, {name: x})
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)) * 1000.0


def dynamic_copy(path: Path, folder: Path) -> Path:
    m = onnx.load(str(path))
    for t in list(m.graph.input) + list(m.graph.output):
        d = t.type.tensor_type.shape.dim
        d[2].dim_param, d[3].dim_param = "h", "w"
    del m.graph.value_info[:]
    out = folder / path.name
    onnx.save(m, str(out))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--sizes", type=int, nargs="*", help="tile sizes to time (input dims made dynamic)")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--interleave", type=int, metavar="N", help="N rounds, the models in turn (batch 1)")
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    if a.interleave:
        x = rng.random((1, 3, 256, 256), dtype=np.float32)
        sessions = [session(path) for path in a.models]
        rounds: list[list[float]] = [[] for _ in sessions]
        for _ in range(a.interleave):
            for s, r in zip(sessions, rounds):
                r.append(median_ms(s, x, a.runs))
        for path, r in zip(a.models, rounds):
            print(f"{str(path):48s} median {np.median(r):6.2f} ms per tile; rounds {' '.join(f'{v:.1f}' for v in r)}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        for path in a.models:
            if a.sizes:
                s = session(dynamic_copy(path, Path(tmp)))
                for size in a.sizes:
                    x = rng.random((1, 3, size, size), dtype=np.float32)
                    ms = median_ms(s, x, a.runs)
                    print(f"{path.name:32s} {size:4d} px: {ms:7.2f} ms per tile, {ms / (size / 256) ** 2:6.2f} ms per 256^2")
            else:
                s = session(path)
                for batch in (1, 4):
                    x = rng.random((batch, 3, 256, 256), dtype=np.float32)
                    ms = median_ms(s, x, a.runs) / batch
                    print(f"{path.name:32s} batch {batch}: {ms:6.2f} ms per tile")


if __name__ == "__main__":
    main()
