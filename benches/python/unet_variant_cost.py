"""What a tile would cost with another U-Net shape, before training one: each variant of
`models/train/common.py`'s `UNet` is built with random weights, exported like the shipped
models, quantized to int8 by `models/train/quantize_int8.py`'s `quantize_file` (calibrated
on random tiles, which is enough for timing and says nothing about accuracy),
and written to OUT; then time them with `tile_cost.py`.

    .cache/trainvenv/bin/python benches/python/unet_variant_cost.py --out /tmp/arch
    .cache/trainvenv/bin/python benches/python/tile_cost.py /tmp/arch/*-int8.onnx models/crack/crack-unet-int8.onnx

Needs torch, onnx and onnxruntime (`.cache/trainvenv`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from onnxruntime.quantization import CalibrationDataReader

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "train"))
from common import UNet, export_onnx, n_params  # noqa: E402
from quantize_int8 import quantize_file  # noqa: E402

SHIPPED = dict(ch=(8, 12, 24, 64, 144), enc_n=(1, 1, 2, 2, 2), dec_n=(1, 1, 1, 2))
VARIANTS = {
    # The crack and roof models' shape (train_crack.py / train_roof.py ARCH).
    "shipped": SHIPPED,
    # The same at half resolution (input averaged 2x2, logits upsampled 2x).
    "shipped-half": dict(SHIPPED, half_res=True),
    # Narrower and shallower deep levels, full resolution kept.
    "narrow": dict(ch=(8, 12, 24, 48, 96), enc_n=(1, 1, 1, 2, 2), dec_n=(1, 1, 1, 1)),
    # One convolution per level except the deepest.
    "thin-deep": dict(SHIPPED, enc_n=(1, 1, 1, 1, 2), dec_n=(1, 1, 1, 1)),
    # Space-to-depth stem and depth-to-space head: half-resolution levels, full-resolution
    # input and output, no pixel averaged away (s43).
    "s2d": dict(SHIPPED, s2d=True),
    # The same with the first level wider (its 12 input channels).
    "s2d-wide": dict(SHIPPED, ch=(16, 16, 24, 64, 144), s2d=True),
    # Full resolution kept, but the full-resolution decoder level only adds (s43).
    "light-top": dict(SHIPPED, light_top=True),
}


class RandomTiles(CalibrationDataReader):
    def __init__(self, n: int = 8):
        self.left = n
        self.rng = np.random.default_rng(7)

    def get_next(self):
        if self.left == 0:
            return None
        self.left -= 1
        return {"image": self.rng.random((1, 3, 256, 256), dtype=np.float32)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", nargs="*", help="variant names (default: all)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(7)
    for name, arch in VARIANTS.items():
        if a.only and name not in a.only:
            continue
        model = UNet(1, **arch)
        f32, q = (a.out / f"{name}{s}.onnx" for s in ("", "-int8"))
        export_onnx(model, f32, "image", "mask", 256)
        quantize_file(f32, q, RandomTiles())
        print(f"{name}: {n_params(model)} parameters -> {q}")


if __name__ == "__main__":
    main()
