"""Train the roof damage segmentation model on SYNTHETIC roofs (roofsynth.py): a small U-Net
with three independent sigmoid channels (missing_tile, moss, debris), export
models/roof/roof-damage.onnx, write its manifest and evaluate on a fixed synthetic
validation set (seed 1007, never seen in training).

  OMP_NUM_THREADS=1 /opt/besikta-train/bin/python models/train/train_roof.py

Owned data: --data DIR with images/*.jpg|png and masks/<stem>.png (pixel value = class
index: 0 background, 1 missing_tile, 2 moss, 3 debris) trains on real roofs instead, see README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (MODELS, REPO, UNet, export_onnx, log, n_params, segmentation_tables, setup,  # noqa: E402
                    time_onnx, train_steps, write_manifest)
from roofsynth import CLASSES, roof_sample  # noqa: E402

SEED = 7
VAL_SEED = 1007
ARCH = dict(ch=(8, 12, 24, 64, 144), enc_n=(1, 1, 2, 2, 2), dec_n=(1, 1, 1, 2))
GSD = dict(mm_per_px=10.0, min_mm_per_px=5.0, max_mm_per_px=20.0)


class OwnedRoofs:
    """Random crops of owned labelled roof photos (same sample interface as roof_sample)."""

    def __init__(self, root: Path):
        self.items = []
        for p in sorted((root / "images").iterdir()):
            m = root / "masks" / (p.stem + ".png")
            if not m.exists():
                raise FileNotFoundError(f"no mask {m} for {p}")
            self.items.append((np.asarray(Image.open(p).convert("RGB")), np.asarray(Image.open(m))))

    def __call__(self, rng, s):
        img, lab = self.items[rng.integers(len(self.items))]
        y = rng.integers(0, img.shape[0] - s + 1)
        x = rng.integers(0, img.shape[1] - s + 1)
        return img[y : y + s, x : x + s], lab[y : y + s, x : x + s]


def to_tensors(samples):
    x = torch.from_numpy(np.stack([s[0] for s in samples])).permute(0, 3, 1, 2).float() / 255.0
    lab = torch.from_numpy(np.stack([s[1] for s in samples]).astype(np.int64))
    y = torch.stack([(lab == k + 1).float() for k in range(len(CLASSES))], 1)
    return x, y


def loss_fn(logits, y):
    bce = F.binary_cross_entropy_with_logits(logits, y, pos_weight=torch.tensor(2.0))
    p = torch.sigmoid(logits)
    inter = (p * y).sum((0, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((0, 2, 3)) + y.sum((0, 2, 3)) + 1)
    return bce + dice.mean()


def evaluate_synthetic(onnx_path: Path, n: int = 150, size: int = 256, thr: float = 0.5) -> dict:
    from common import ort_session

    sess = ort_session(onnx_path)
    rng = np.random.default_rng(VAL_SEED)
    acc = np.zeros((len(CLASSES), 3))
    for _ in range(n):
        img, lab = roof_sample(rng, size)
        x = (img.astype(np.float32).transpose(2, 0, 1)[None]) / 255.0
        prob = sess.run(None, {"image": x})[0][0]
        for k in range(len(CLASSES)):
            pr, gt = prob[k] >= thr, lab == k + 1
            acc[k] += [(pr & gt).sum(), (pr & ~gt).sum(), (~pr & gt).sum()]
    res = {}
    for k, c in enumerate(CLASSES):
        tp, fp, fn = acc[k]
        p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        res[c] = {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-9), "gt_pixels": int(tp + fn)}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=MODELS / "roof")
    ap.add_argument("--data", type=Path, help="owned labelled roofs instead of synthetic ones")
    ap.add_argument("--iters", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--half-res", action="store_true",
                    help="run the U-Net on the tile averaged 2x2 (a quarter of the cost), logits upsampled 2x "
                         "(tried 2026-12-04, not shipped: benches/results/roof-half-res-2026-12-04.md)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    setup(SEED, a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    tag = f"-half{a.iters}" if a.half_res else ""
    ckpt = REPO / "models" / "train" / "logs" / f"roof{tag}.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    model = UNet(len(CLASSES), **ARCH, half_res=a.half_res)
    log(f"params {n_params(model)}")
    make = OwnedRoofs(a.data) if a.data else roof_sample
    if not a.skip_train:
        rng = np.random.default_rng(SEED)
        train_steps(model, lambda: to_tensors([make(rng, a.crop) for _ in range(a.batch)]), loss_fn,
                    a.iters, a.lr, ckpt, save_every=500)
    model.load_state_dict(torch.load(ckpt))
    model.eval()
    onnx_path = a.out / "roof-damage.onnx"
    export_onnx(model, onnx_path, "image", "mask", 256)
    ms = time_onnx(onnx_path, "image")
    log(f"onnxruntime 1 thread: {ms:.1f} ms per 256x256 tile")
    write_manifest(
        a.out / "roof-damage.toml",
        dict(name="roof-damage", version="0.1.0", task="segmentation", model="roof-damage.onnx",
             license="MIT OR Apache-2.0 (weights); trained on synthetic roofs only, see MODEL_CARD.md",
             provenance=f"trained by models/train/train_roof.py on procedural roofs, seed {SEED}, {datetime.date.today()}"),
        segmentation_tables(GSD, min_area_px=25),
        [dict(name=c, asset_kind="roof") for c in CLASSES],
    )
    res = evaluate_synthetic(onnx_path)
    print(json.dumps(res, indent=2))
    (a.out / "metrics.json").write_text(json.dumps({"ms_per_tile_1thread": ms, "synthetic_validation": res}, indent=2) + "\n")
    log("done")


if __name__ == "__main__":
    main()
