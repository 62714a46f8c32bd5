"""Train the road crack segmentation model (small U-Net, 256x256 tiles at ~10 mm/px), export
it to models/crack/crack-unet.onnx, write its manifest and evaluate it against the baseline.

  OMP_NUM_THREADS=1 /opt/besikta-train/bin/python models/train/train_crack.py

Owned data: --data DIR [DIR ...], each with train_img/ and train_lab/ (see README.md).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from common import (DATA, MODELS, REPO, UNet, export_onnx, log, n_params, segmentation_tables,  # noqa: E402
                    setup, time_onnx, train_steps, write_manifest)
from crackdata import CrackSampler, brighton_negatives, split  # noqa: E402

SEED = 7
ARCH = dict(ch=(8, 12, 24, 64, 144), enc_n=(1, 1, 2, 2, 2), dec_n=(1, 1, 1, 2))
GSD = dict(mm_per_px=10.0, min_mm_per_px=4.0, max_mm_per_px=20.0)


def loss_fn(logits, target):
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(3.0))
    p = torch.sigmoid(logits)
    inter = (p * target).sum()
    dice = 1 - (2 * inter + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


def batch(sampler: CrackSampler, n: int):
    xs, ys = [], []
    for _ in range(n):
        img, mask = sampler.sample()
        xs.append(img)
        ys.append(mask)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255.0
    y = torch.from_numpy(np.stack(ys)).float()[:, None]
    return x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+",
                    default=[DATA / "cracks" / "deepcrack", DATA / "cracks" / "crack500"])
    ap.add_argument("--out", type=Path, default=MODELS / "crack")
    ap.add_argument("--iters", type=int, default=8500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128, help="training crop (the net is fully convolutional)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--no-brighton", action="store_true", help="no Brighton negative crops")
    ap.add_argument("--skip-train", action="store_true", help="export/evaluate the saved checkpoint")
    ap.add_argument("--s2d", action="store_true",
                    help="space-to-depth stem and depth-to-space head (`UNet(s2d=True)`): every level at "
                         "half resolution, input and output at full (s43: a third of the tile cost)")
    ap.add_argument("--ckpt", type=Path, default=REPO / "models" / "train" / "logs" / "crack.pt")
    ap.add_argument("--version", default="0.1.0")
    a = ap.parse_args()
    setup(SEED)
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    ckpt = a.ckpt
    ckpt.parent.mkdir(parents=True, exist_ok=True)

    train, val = split(a.data, 0.15, SEED)
    split_file = out / "val_split.txt"
    split_file.write_text(f"# crack validation split: 15% of each dataset by file, seed {SEED}\n"
                          + "".join(f"{i}\t{l}\n" for i, l in val))
    log(f"{len(train)} train / {len(val)} val files; split in {split_file}")

    model = UNet(1, **ARCH, s2d=a.s2d)
    log(f"params {n_params(model)}")
    if not a.skip_train:
        negs = [] if a.no_brighton else brighton_negatives()
        sampler = CrackSampler(train, negs, a.crop, np.random.default_rng(SEED))
        if not negs:
            sampler.brighton = lambda: sampler.drone()  # owned data without Brighton photos
        train_steps(model, lambda: batch(sampler, a.batch), loss_fn, a.iters, a.lr, ckpt, save_every=1000)
    model.load_state_dict(torch.load(ckpt))
    model.eval()

    onnx_path = out / "crack-unet.onnx"
    export_onnx(model, onnx_path, "image", "mask", 256)
    ms = time_onnx(onnx_path, "image")
    log(f"onnxruntime 1 thread: {ms:.1f} ms per 256x256 tile")
    write_manifest(
        out / "crack-unet.toml",
        dict(name="crack-unet", version=a.version, task="segmentation", model="crack-unet.onnx",
             license="MIT OR Apache-2.0 (weights); trained on research-only data (DeepCrack, CRACK500), see MODEL_CARD.md",
             provenance=f"trained by models/train/train_crack.py, seed {SEED}, {datetime.date.today()}"),
        segmentation_tables(GSD, min_area_px=16),
        [dict(name="crack", asset_kind="road")],
    )
    import eval_crack

    models = {"crack-unet": eval_crack.OnnxSeg.from_manifest(out / "crack-unet.toml")}
    base = REPO / "fixtures" / "models" / "mtscrack_static.onnx"
    if base.exists():
        models["mtscrack (baseline)"] = eval_crack.OnnxSeg(base, "input_bgr", True, 1.0, [0, 0, 0], [1, 1, 1], 0.5)
    res = eval_crack.evaluate(models, eval_crack.read_split(split_file))
    print(eval_crack.table(res))
    import json

    (out / "metrics.json").write_text(json.dumps({"ms_per_tile_1thread": ms, "results": res}, indent=2) + "\n")
    log("done")


if __name__ == "__main__":
    main()
