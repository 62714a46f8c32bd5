"""Which convolutions of an int8 model lose most with 7-bit weights: each one in turn gets uint8
(8-bit) weights while the rest keep 7-bit, and every variant is compared with the float model.

    .cache/speedvenv/bin/python benches/python/int8_layer_sensitivity.py [crack/crack-unet.toml]

(run on the crack model only; another segmentation manifest under `models/` is read the same way)

Evaluation tiles: 24 tiles spread over `fixtures/brighton/DJI_0018.JPG` (as
`crates/infer/tests/int8.rs`) and 40 photos of the crack validation split downscaled 8x into
tile mosaics (as `quantize_int8.py --crack-tiles`). Quantized by `quantize_int8.quantize_file` with the
shipped files' calibration (120 Brighton tiles, seed 7, MinMax). One JSON line per variant: mean and
p99.9 of |int8 - float|, the share of outputs off by more than 0.1, and at the manifest's
confidence threshold the pixels that flip (`flips`), become positive (`new_pos`) or stop being
positive (`lost_pos`). Needs numpy, pillow, onnx, onnxruntime (no torch).
"""
from __future__ import annotations

import json
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "models/train"))
import quantize_int8 as q  # noqa: E402


def eval_tiles() -> list[np.ndarray]:
    img = np.asarray(Image.open(REPO / "fixtures/brighton/DJI_0018.JPG").convert("RGB"))
    h, w = img.shape[:2]
    out = [img[y : y + q.TILE, x : x + q.TILE] for y in np.linspace(0, h - q.TILE, 4).astype(int)
           for x in np.linspace(0, w - q.TILE, 6).astype(int)]
    val = [line.split("\t")[0] for line in (REPO / "models/crack/val_split.txt").read_text().splitlines()
           if line.strip() and not line.startswith("#")]
    return out + [q.drone_scale_tile(Path(path)) for path in val[:: max(1, len(val) // 40)][:40]]


def main() -> None:
    rel = sys.argv[1] if len(sys.argv) > 1 else "crack/crack-unet.toml"
    manifest = REPO / "models" / rel
    m = tomllib.loads(manifest.read_text())
    src = q.float_model(manifest, m)
    threshold = m["thresholds"]["confidence"]
    x = np.concatenate([list(item.values())[0] for item in q.Tiles(eval_tiles(), m).items])

    def run(path: Path) -> np.ndarray:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        name = s.get_inputs()[0].name
        return np.concatenate([s.run(None, {name: x[i : i + 8]})[0] for i in range(0, len(x), 8)])

    ref = run(src)
    calibration = q.brighton_tiles(120, 7)
    with tempfile.TemporaryDirectory() as tmp:
        # The weights' names in the pre-processed graph, which `quantize_file` quantizes.
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        g = onnx.load(str(pre)).graph
        inits = {i.name for i in g.initializer}
        weights = [n.input[1] for n in g.node if n.op_type == "Conv" and n.input[1] in inits]

        def variant(u8: list[str], tag: str) -> None:
            dst = Path(tmp) / "v.onnx"
            overrides = {w: [{"quant_type": QuantType.QUInt8, "reduce_range": False}] for w in u8}
            q.quantize_file(src, dst, q.Tiles(calibration, m), overrides=overrides)
            out = run(dst)
            d = np.abs(out - ref)
            print(json.dumps({
                "variant": tag, "mean": round(float(d.mean()), 6), "p999": round(float(np.quantile(d, 0.999)), 4),
                "gt01": round(float(np.mean(d > 0.1)), 6), "flips": round(float(np.mean((out > threshold) != (ref > threshold))), 6),
                "new_pos": int(np.sum((out > threshold) & (ref <= threshold))),
                "lost_pos": int(np.sum((out <= threshold) & (ref > threshold)))}), flush=True)

        variant([], "all 7-bit (s7, shipped)")
        variant(weights, "all uint8 (u8)")
        for i, w in enumerate(weights):
            variant([w], f"conv {i} ({w}) uint8, rest 7-bit")


if __name__ == "__main__":
    main()
