"""int8 copies of the shipped models: ONNX Runtime static quantization (QDQ format) calibrated
on real drone tiles, each written beside a copy of its manifest so that `besikta process
--models OUT` runs them through the product path.

Calibration tiles are 256x256 crops at native scale (17 mm/px, inside every shipped model's
GSD range, so the engine would not resample them) of the Brighton photos DJI_0021-DJI_0035:
the same photos the models saw as negatives in training, never the overlay photos
DJI_0018-0020. With `--crack-tiles N` the calibration set also gets N tiles of the crack
training photos (never the validation split), downscaled 8x to drone scale like the
training mosaics, so the crack activations are calibrated on cracks too.

    .cache/speedvenv/bin/python models/train/quantize_int8.py --out .cache/int8
    # then: besikta process FLIGHT --models .cache/int8 -o OUT
    .cache/speedvenv/bin/python models/train/quantize_int8.py --out models   # the shipped files
    .cache/speedvenv/bin/python models/train/quantize_int8.py --float .cache/fp32  # float copies

The float model is always the source: a manifest that already names `X-int8.onnx` is
quantized from `X.onnx` beside it. The output manifest names the int8 file and the version
`V+int8w7` (`V+int8u8` with `--weights u8`, `V+int8` with `--weights s8`).

Needs numpy, pillow, onnx and onnxruntime (no torch). Weights are quantized per channel
(`--weights`: int8 in 7 bits, uint8, or int8 in 8 bits; see `quantize_file`), activations per
tensor to uint8 (QDQ, MinMax calibration by default). A detector's box decoding after its last
convolution stays float (quantizing it cost pothole-det 19 points of mAP@0.5; see
benches/results/int8.md).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("BESIKTA_DATA", "/work/shared/data"))
BRIGHTON = DATA / "flights" / "brighton-beach"
CALIBRATION_PHOTOS = [f"DJI_00{i}.JPG" for i in range(21, 36)]
SHIPPED = ["crack/crack-unet.toml", "pothole/pothole-det.toml", "roof/roof-damage.toml"]
TILE = 256


def brighton_tiles(n: int, seed: int) -> list[np.ndarray]:
    """`n` random native-scale tiles (uint8 HWC) spread evenly over the calibration photos."""
    rng = np.random.default_rng(seed)
    per = -(-n // len(CALIBRATION_PHOTOS))
    out = []
    for name in CALIBRATION_PHOTOS:
        img = np.asarray(Image.open(BRIGHTON / name).convert("RGB"))
        h, w = img.shape[:2]
        for _ in range(per):
            y, x = rng.integers(0, h - TILE + 1), rng.integers(0, w - TILE + 1)
            out.append(img[y : y + TILE, x : x + TILE])
    return out[:n]


def crack_tiles(n: int, seed: int) -> list[np.ndarray]:
    """`n` crack training photos (not in models/crack/val_split.txt) downscaled 8x by area
    averaging and edge-padded to one tile: cracks as thin lines at drone scale."""
    val = set()
    for line in (REPO / "models/crack/val_split.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            val.add(Path(line.split("\t")[0]).name)
    photos = []
    for ds in ("deepcrack", "crack500"):
        d = DATA / "cracks" / ds / "train_img"
        photos += [p for p in sorted(d.iterdir()) if p.name not in val and p.suffix.lower() in (".jpg", ".png")]
    rng = np.random.default_rng(seed)
    return [drone_scale_tile(photos[i]) for i in rng.choice(len(photos), size=min(n, len(photos)), replace=False)]


def drone_scale_tile(photo: Path) -> np.ndarray:
    """A close-up crack photo downscaled 8x by area averaging, its mosaic filling one tile like
    the training mosaics do."""
    im = Image.open(photo).convert("RGB")
    a = np.asarray(im.resize((max(1, im.width // 8), max(1, im.height // 8)), Image.BOX))
    reps = (-(-TILE // a.shape[0]), -(-TILE // a.shape[1]), 1)
    return np.tile(a, reps)[:TILE, :TILE]


class Tiles(CalibrationDataReader):
    """Feeds the tiles one at a time, normalised as the manifest says."""

    def __init__(self, tiles: list[np.ndarray], manifest: dict):
        inp = manifest["input"]
        mean = np.asarray(inp["mean"], np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(inp["std"], np.float32).reshape(1, 3, 1, 1)
        self.items = []
        for t in tiles:
            x = t.astype(np.float32).transpose(2, 0, 1)[None]
            if inp["channels"] == "bgr":
                x = x[:, ::-1]
            self.items.append({inp["name"]: np.ascontiguousarray((x * inp["scale"] - mean) / std, np.float32)})
        self.it = iter(self.items)

    def get_next(self):
        return next(self.it, None)

    def rewind(self):
        self.it = iter(self.items)


def float_model(manifest_path: Path, m: dict) -> Path:
    """The float ONNX file a manifest's model comes from (itself, or the file without -int8)."""
    name = m["model"].replace("-int8.onnx", ".onnx")
    return manifest_path.parent / name


QUANTIZED_NOTE = "; int8 (QDQ) by models/train/quantize_int8.py, calibrated on Brighton tiles"
# How each kind of weights is quantized: (ONNX type, reduce_range, version suffix, provenance).
WEIGHTS = {
    "s7": (QuantType.QInt8, True, "+int8w7", ", 7-bit weights (2026-12-07)"),
    "u8": (QuantType.QUInt8, False, "+int8u8", ", uint8 weights (2026-12-07)"),
    "s8": (QuantType.QInt8, False, "+int8", ""),
}


def rewrite_manifest(text: str, model: str, version: str) -> str:
    """The manifest naming `model` and `version`, its provenance saying whether it is int8."""
    text = re.sub(r'^model = ".*"$', f'model = "{model}"', text, count=1, flags=re.M)
    text = re.sub(r'^version = ".*"$', f'version = "{version}"', text, count=1, flags=re.M)
    note = ""
    if model.endswith("-int8.onnx"):
        suffix = "+" + version.split("+", 1)[1] if "+" in version else ""
        note = QUANTIZED_NOTE + next((w[3] for w in WEIGHTS.values() if w[2] == suffix), "")
    return re.sub(r'^provenance = "(.*?)(; int8 \(QDQ\)[^"]*)?"$', lambda mt: f'provenance = "{mt.group(1)}{note}"',
                  text, count=1, flags=re.M)


def quantize_file(src: Path, dst: Path, reader: CalibrationDataReader, method: str = "minmax",
                  exclude_head: bool = False, weights: str = "s7", overrides: dict | None = None) -> None:
    """`src` (float ONNX) as int8 QDQ in `dst`, calibrated on what `reader` gives: the settings
    of every shipped int8 file (also used by benches/python/unet_variant_cost.py).

    `weights`: ONNX Runtime's uint8 x int8 convolutions on x86 CPUs without VNNI (AVX2 only)
    add pairs of products in 16 bits, which saturates with 8-bit int8 weights (`s8`): on such a
    CPU the 8-bit crack file lost 3-4 points of card F1 and moved 0.9 % of its pixels by more
    than 0.1 (`crates/infer/tests/int8.rs`). Two ways are exact on every CPU: int8 weights in
    7 bits (`s7`, -64..64), or uint8 weights (`u8`, 8 bits with a zero point: ONNX Runtime's
    uint8 x uint8 kernel widens to 16 bits before it adds). `overrides`: ONNX Runtime's
    `TensorQuantOverrides` (per-tensor quantization settings, by the pre-processed graph's names)."""
    weight_type, reduce_range = WEIGHTS[weights][:2]
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        nodes_to_exclude = []
        if exclude_head:
            # The detector's box decoding inside the graph (grid offsets, softplus, peak
            # picking) stays float: only the convolutions before it are quantized.
            g = onnx.load(str(pre)).graph
            last_conv = max(i for i, n in enumerate(g.node) if n.op_type == "Conv")
            nodes_to_exclude = [n.name for n in g.node[last_conv + 1 :]]
        quantize_static(
            str(pre), str(dst), reader,
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=weight_type,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                              "entropy": CalibrationMethod.Entropy}[method],
            nodes_to_exclude=nodes_to_exclude,
            reduce_range=reduce_range,
            extra_options={"TensorQuantOverrides": overrides} if overrides else {},
        )
    # The pre-processing declares every ONNX Runtime domain; the graph uses standard ops only.
    model = onnx.load(str(dst))
    used = {n.domain for n in model.graph.node}
    keep = [o for o in model.opset_import if o.domain in ("", "ai.onnx") or o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def quantize(manifest_path: Path, out_dir: Path, tiles: list[np.ndarray], method: str, exclude_head: bool,
             weights: str) -> Path:
    m = tomllib.loads(manifest_path.read_text())
    src = float_model(manifest_path, m)
    dst_dir = out_dir / manifest_path.parent.name
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / (src.stem + "-int8.onnx")
    quantize_file(src, dst, Tiles(tiles, m), method, exclude_head, weights)
    version = m["version"].split("+")[0] + WEIGHTS[weights][2]
    if dst_dir.resolve() != manifest_path.parent.resolve():
        for extra in manifest_path.parent.glob("*.md"):
            shutil.copy(extra, dst_dir / extra.name)
    (dst_dir / manifest_path.name).write_text(rewrite_manifest(manifest_path.read_text(), dst.name, version))
    return dst


def write_float(manifest_path: Path, out_dir: Path) -> Path:
    """A copy of the float model with its manifest (for comparisons against the int8 one)."""
    m = tomllib.loads(manifest_path.read_text())
    src = float_model(manifest_path, m)
    dst_dir = out_dir / manifest_path.parent.name
    dst_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst_dir / src.name)
    text = rewrite_manifest(manifest_path.read_text(), src.name, m["version"].split("+")[0])
    (dst_dir / manifest_path.name).write_text(text)
    return dst_dir / src.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / ".cache/int8")
    ap.add_argument("--tiles", type=int, default=120, help="Brighton calibration tiles")
    ap.add_argument("--crack-tiles", type=int, default=0, help="crack training tiles added for the crack model")
    ap.add_argument("--method", choices=["minmax", "percentile", "entropy"], default="minmax")
    ap.add_argument("--quantize-head", action="store_true",
                    help="quantize the detector's in-graph box decoding too (pothole mAP@0.5 0.502 -> 0.308)")
    ap.add_argument("--weights", choices=sorted(WEIGHTS), default="s7",
                    help="s7: int8 weights in 7 bits (default); u8: uint8 weights; s8: int8 in 8 bits, as the "
                         "files shipped until 2026-12-07 (they saturate on x86 CPUs without VNNI)")
    ap.add_argument("--full-range", action="store_const", dest="weights", const="s8", help="the same as --weights s8")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--float", type=Path, metavar="DIR",
                    help="instead: copy the float models with manifests (and evidence.toml) to DIR")
    ap.add_argument("models", nargs="*", default=SHIPPED, help="manifests under models/")
    a = ap.parse_args()
    if a.float:
        for rel in a.models:
            print(f"{rel}: float copy {write_float(REPO / 'models' / rel, a.float)}")
        shutil.copy(REPO / "models/evidence.toml", a.float / "evidence.toml")
        return
    base = brighton_tiles(a.tiles, a.seed)
    for rel in a.models:
        tiles = base + (crack_tiles(a.crack_tiles, a.seed) if "crack" in rel and a.crack_tiles else [])
        manifest = REPO / "models" / rel
        detector = tomllib.loads(manifest.read_text())["task"] == "detection"
        dst = quantize(manifest, a.out, tiles, a.method, detector and not a.quantize_head, a.weights)
        print(f"{rel}: {len(tiles)} calibration tiles -> {dst} ({dst.stat().st_size / 1e6:.2f} MB)")
    if a.out.resolve() != (REPO / "models").resolve():
        shutil.copy(REPO / "models/evidence.toml", a.out / "evidence.toml")


if __name__ == "__main__":
    main()
