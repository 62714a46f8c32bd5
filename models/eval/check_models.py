"""Check every shipped model against its manifest: one self-contained ONNX file (no external
data, under 10 MB), opset 17, input/output names and shapes as the manifest says, dynamic
batch when declared, and onnxruntime time per tile on one thread (best and median of 50).

  /opt/besikta-train/bin/python models/eval/check_models.py
"""

from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from common import ort_session  # noqa: E402

MODELS = Path(__file__).resolve().parents[1]


def check(manifest: Path) -> list[str]:
    m = tomllib.loads(manifest.read_text())
    path = manifest.parent / m["model"]
    problems = []
    if list(manifest.parent.glob("*.data")):
        problems.append("external .data file present")
    size_mb = path.stat().st_size / 1e6
    if size_mb >= 10:
        problems.append(f"{size_mb:.1f} MB >= 10 MB")
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        problems.append("initializers stored externally")
    if model.opset_import[0].version != 17:
        problems.append(f"opset {model.opset_import[0].version}")
    inp, out = model.graph.input[0], model.graph.output[0]
    if inp.name != m["input"]["name"] or out.name != m["output"]["name"]:
        problems.append(f"names {inp.name}/{out.name} vs manifest {m['input']['name']}/{m['output']['name']}")
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    if dims[1:] != [3, m["input"]["height"], m["input"]["width"]]:
        problems.append(f"input dims {dims}")
    sess = ort_session(path)
    h, w = m["input"]["height"], m["input"]["width"]
    n = 2 if m["input"]["dynamic_batch"] else 1
    y = sess.run(None, {inp.name: np.random.rand(n, 3, h, w).astype(np.float32)})[0]
    ncls = len(m["classes"])
    if m["task"] == "segmentation":
        if y.shape[0] != n or y.shape[1] not in (ncls, ncls + 1) or y.shape[2:] != (h, w):
            problems.append(f"segmentation output shape {y.shape}")
        if m["output"]["decode"] == "probabilities" and (y.min() < 0 or y.max() > 1):
            problems.append("probabilities outside 0..1")
    elif m["output"]["decode"] == "yolov8":
        if y.shape[0] != n or y.shape[1] != 4 + ncls:
            problems.append(f"yolov8 output shape {y.shape}")
        if y[:, 4:].min() < 0 or y[:, 4:].max() > 1:
            problems.append("class scores outside 0..1")
    x = np.random.rand(1, 3, h, w).astype(np.float32)
    for _ in range(5):
        sess.run(None, {inp.name: x})
    ts = []
    for _ in range(50):
        t0 = time.perf_counter()
        sess.run(None, {inp.name: x})
        ts.append((time.perf_counter() - t0) * 1000)
    print(f"{m['name']:14s} {size_mb:5.2f} MB  output {list(y.shape)}  {h}x{w} tile: "
          f"best {min(ts):.1f} ms, median {np.median(ts):.1f} ms (1 thread)  {'OK' if not problems else problems}")
    return problems


def main() -> None:
    bad = 0
    for manifest in sorted(MODELS.glob("*/*.toml")):
        bad += bool(check(manifest))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
