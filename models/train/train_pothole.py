"""Train the single-class pothole detector from scratch (small CNN, CenterNet-style heatmap +
box-distance head at stride 8, grid decoding inside the exported graph -> "yolov8" layout
[N, 5, 1024]: cx, cy, w, h in input pixels, score 0..1), export models/pothole/pothole-det.onnx,
write its manifest and evaluate on the validation folder.

  OMP_NUM_THREADS=1 /opt/besikta-train/bin/python models/train/train_pothole.py

Owned data: --train DIR --valid DIR, each with images/ and labels/ (YOLO txt), see README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from common import DATA, MODELS, REPO, conv_bn, export_onnx, log, n_params, setup, time_onnx, write_manifest  # noqa: E402
from crackdata import asphalt_fraction_map, brighton_negatives  # noqa: E402

SEED = 7
SIZE = 256
STRIDE = 8
# The pothole photos are oblique road-level views: at 256 px a 3.5 m lane spans ~150-250 px
# near the bottom, i.e. roughly 15-30 mm/px; the 2x2 mosaics halve that again. 20 mm/px is an
# honest middle, with a wide tolerated range.
GSD = dict(mm_per_px=20.0, min_mm_per_px=10.0, max_mm_per_px=40.0)


class PotholeNet(nn.Module):
    """Backbone to stride 32, a light top-down neck to stride 8, two heads. forward() returns
    the decoded [N, 5, (H/8)*(W/8)] tensor; forward_raw() the training outputs."""

    def __init__(self):
        super().__init__()
        self.s2 = conv_bn(3, 16, 3, 2)
        self.s4 = nn.Sequential(conv_bn(16, 32, 3, 2), conv_bn(32, 32))
        self.s8 = nn.Sequential(conv_bn(32, 64, 3, 2), conv_bn(64, 64))
        self.s16 = nn.Sequential(conv_bn(64, 96, 3, 2), conv_bn(96, 96), conv_bn(96, 96))
        self.s32 = nn.Sequential(conv_bn(96, 160, 3, 2), conv_bn(160, 160), conv_bn(160, 160))
        self.lat32 = nn.Conv2d(160, 96, 1)
        self.fuse16 = conv_bn(96, 96)
        self.lat16 = nn.Conv2d(96, 64, 1)
        self.fuse8 = conv_bn(64, 64)
        self.cls = nn.Sequential(conv_bn(64, 64), nn.Conv2d(64, 1, 1))
        self.reg = nn.Sequential(conv_bn(64, 64), nn.Conv2d(64, 4, 1))
        nn.init.constant_(self.cls[-1].bias, -4.0)

    def forward_raw(self, x):
        c8 = self.s8(self.s4(self.s2(x)))
        c16 = self.s16(c8)
        c32 = self.s32(c16)
        p16 = self.fuse16(c16 + self.lat32(F.interpolate(c32, scale_factor=2.0, mode="nearest")))
        p8 = self.fuse8(c8 + self.lat16(F.interpolate(p16, scale_factor=2.0, mode="nearest")))
        heat = self.cls(p8)  # logits [N,1,h,w]
        ltrb = F.softplus(self.reg(p8)) * 16.0  # distances to box sides in input pixels
        return heat, ltrb

    def forward(self, x):
        heat, ltrb = self.forward_raw(x)
        score = torch.sigmoid(heat)
        # Peak picking inside the graph: keep local maxima of the heatmap only.
        peak = F.max_pool2d(score, 3, 1, 1)
        score = score * (score >= peak).to(score.dtype)
        n, _, h, w = score.shape
        ys = (torch.arange(h, dtype=x.dtype) + 0.5) * STRIDE
        xs = (torch.arange(w, dtype=x.dtype) + 0.5) * STRIDE
        gy, gx = ys.view(1, h, 1).expand(1, h, w), xs.view(1, 1, w).expand(1, h, w)
        l, t, r, b = ltrb[:, 0], ltrb[:, 1], ltrb[:, 2], ltrb[:, 3]
        x1, y1, x2, y2 = gx - l, gy - t, gx + r, gy + b
        out = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, score[:, 0]], 1)
        return out.flatten(2)


# ---------------------------------------------------------------------------------------
def load_split(folder: Path, max_side: int = 512):
    items = []
    for p in sorted((folder / "images").iterdir()):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        im = Image.open(p).convert("RGB")
        s = max_side / max(im.size)
        if s < 1:
            im = im.resize((round(im.width * s), round(im.height * s)), Image.BILINEAR)
        boxes = []
        lp = folder / "labels" / (p.stem + ".txt")
        if lp.exists():
            for line in lp.read_text().split("\n"):
                v = line.split()
                if len(v) >= 5:
                    _, cx, cy, bw, bh = (float(t) for t in v[:5])
                    boxes.append([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])  # normalised
        items.append((np.asarray(im), np.asarray(boxes, np.float32).reshape(-1, 4)))
    return items


class Sampler:
    def __init__(self, items, negatives, rng):
        self.items, self.rng = items, rng
        self.neg = negatives
        self.neg_ii = [asphalt_fraction_map(n) for n in negatives]

    def crop(self, out: int):
        """Random zoom crop of one photo resized to out x out; boxes in output pixels."""
        img, boxes = self.items[self.rng.integers(len(self.items))]
        h, w = img.shape[:2]
        s = self.rng.uniform(0.55, 1.0)
        ch, cw = int(h * s * self.rng.uniform(0.85, 1.15)), int(w * s * self.rng.uniform(0.85, 1.15))
        ch, cw = min(ch, h), min(cw, w)
        y0, x0 = self.rng.integers(0, h - ch + 1), self.rng.integers(0, w - cw + 1)
        im = np.asarray(Image.fromarray(img[y0 : y0 + ch, x0 : x0 + cw]).resize((out, out), Image.BILINEAR))
        b = boxes * np.array([w, h, w, h], np.float32) - np.array([x0, y0, x0, y0], np.float32)
        area0 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        b = np.clip(b, 0, [cw, ch, cw, ch])
        area1 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        b = b[area1 > 0.4 * area0] * np.array([out / cw, out / ch, out / cw, out / ch], np.float32)
        if self.rng.random() < 0.5:
            im = im[:, ::-1]
            b = np.stack([out - b[:, 2], b[:, 1], out - b[:, 0], b[:, 3]], 1) if len(b) else b
        return np.ascontiguousarray(im), b.reshape(-1, 4)

    def brighton(self, out: int):
        """Drone crop (mostly road or not) at about the model GSD: no potholes annotated."""
        k = self.rng.integers(len(self.neg))
        im = self.neg[k]
        cs = int(out * self.rng.uniform(0.6, 1.4))
        y = self.rng.integers(0, im.shape[0] - cs)
        x = self.rng.integers(0, im.shape[1] - cs)
        return np.asarray(Image.fromarray(im[y : y + cs, x : x + cs]).resize((out, out), Image.BILINEAR)), np.zeros((0, 4), np.float32)

    def sample(self):
        r = self.rng.random()
        if r < 0.12 and self.neg:
            img, b = self.brighton(SIZE)
        elif r < 0.5:
            img, b = self.crop(SIZE)
        else:  # 2x2 mosaic: smaller potholes, closer to drone GSDs
            img = np.zeros((SIZE, SIZE, 3), np.uint8)
            bs = []
            h = SIZE // 2
            for q, (oy, ox) in enumerate([(0, 0), (0, h), (h, 0), (h, h)]):
                ti, tb = self.brighton(h) if (self.neg and self.rng.random() < 0.2) else self.crop(h)
                img[oy : oy + h, ox : ox + h] = ti
                bs.append(tb + np.array([ox, oy, ox, oy], np.float32))
            b = np.concatenate(bs)
        x = img.astype(np.float32)
        x = x * self.rng.uniform(0.7, 1.3) + self.rng.uniform(-20, 20)
        x = (x - x.mean()) * self.rng.uniform(0.75, 1.25) + x.mean()
        x = x * self.rng.uniform(0.92, 1.08, 3)
        return np.clip(x, 0, 255).astype(np.uint8), b


def targets(boxes_list, n: int):
    """CenterNet heatmap (elliptic Gaussians at box centres) and per-cell box/weight targets."""
    g = SIZE // STRIDE
    heat = np.zeros((n, 1, g, g), np.float32)
    box = np.zeros((n, 4, g, g), np.float32)  # x1 y1 x2 y2 of the assigned box
    wt = np.zeros((n, g, g), np.float32)
    cy, cx = np.mgrid[0:g, 0:g].astype(np.float32)
    cx, cy = (cx + 0.5) * STRIDE, (cy + 0.5) * STRIDE
    for i, boxes in enumerate(boxes_list):
        for x1, y1, x2, y2 in boxes:
            w, h = x2 - x1, y2 - y1
            if w < 2 or h < 2:
                continue
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            sx, sy = max(w / 6, STRIDE * 0.5), max(h / 6, STRIDE * 0.5)
            gauss = np.exp(-((cx - mx) ** 2) / (2 * sx**2) - ((cy - my) ** 2) / (2 * sy**2))
            # The cell holding the centre is the exact positive (value 1).
            ci, cj = min(int(my // STRIDE), g - 1), min(int(mx // STRIDE), g - 1)
            gauss[ci, cj] = 1.0
            heat[i, 0] = np.maximum(heat[i, 0], gauss)
            inside = (cx > x1) & (cx < x2) & (cy > y1) & (cy < y2)
            take = inside & (gauss > wt[i]) & (gauss > 0.2)
            take[ci, cj] = True
            wt[i][take] = gauss[take]
            box[i, :, take] = np.array([x1, y1, x2, y2], np.float32)
    return torch.from_numpy(heat), torch.from_numpy(box), torch.from_numpy(wt)


def focal(logits, heat):
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def giou_loss(ltrb, box, wt):
    g = ltrb.shape[-1]
    ys = (torch.arange(g, dtype=torch.float32) + 0.5) * STRIDE
    gy, gx = ys.view(g, 1).expand(g, g), ys.view(1, g).expand(g, g)
    px1, py1, px2, py2 = gx - ltrb[:, 0], gy - ltrb[:, 1], gx + ltrb[:, 2], gy + ltrb[:, 3]
    tx1, ty1, tx2, ty2 = box[:, 0], box[:, 1], box[:, 2], box[:, 3]
    iw = (torch.min(px2, tx2) - torch.max(px1, tx1)).clamp(min=0)
    ih = (torch.min(py2, ty2) - torch.max(py1, ty1)).clamp(min=0)
    inter = iw * ih
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter
    iou = inter / union.clamp(min=1e-6)
    cw = torch.max(px2, tx2) - torch.min(px1, tx1)
    chh = torch.max(py2, ty2) - torch.min(py1, ty1)
    c = (cw * chh).clamp(min=1e-6)
    giou = iou - (c - union) / c
    return ((1 - giou) * wt).sum() / wt.sum().clamp(min=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, default=DATA / "potholes" / "train")
    ap.add_argument("--valid", type=Path, default=DATA / "potholes" / "valid")
    ap.add_argument("--out", type=Path, default=MODELS / "pothole")
    ap.add_argument("--iters", type=int, default=1300)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--no-brighton", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    a = ap.parse_args()
    setup(SEED)
    a.out.mkdir(parents=True, exist_ok=True)
    ckpt = REPO / "models" / "train" / "logs" / "pothole.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    model = PotholeNet()
    log(f"params {n_params(model)}")
    if not a.skip_train:
        items = load_split(a.train)
        negs = [] if a.no_brighton else brighton_negatives()
        log(f"{len(items)} training photos, {len(negs)} Brighton negative photos")
        sampler = Sampler(items, negs, np.random.default_rng(SEED))
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=5e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.iters, pct_start=0.05)
        t0, run = time.time(), 0.0
        model.train()
        for it in range(1, a.iters + 1):
            ims, bl = zip(*[sampler.sample() for _ in range(a.batch)])
            x = torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float() / 255.0
            heat_t, box_t, wt_t = targets(bl, len(ims))
            heat, ltrb = model.forward_raw(x)
            lf, lg = focal(heat, heat_t), giou_loss(ltrb, box_t, wt_t)
            loss = lf + 2.0 * lg
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            run = 0.98 * run + 0.02 * loss.item() if it > 1 else loss.item()
            if it % 50 == 0 or it == 20:
                el = time.time() - t0
                log(f"it {it}/{a.iters} loss {run:.3f} (focal {lf.item():.3f} giou {lg.item():.3f}) "
                    f"{el / it:.3f} s/it eta {(a.iters - it) * el / it / 60:.1f} min")
            if it % 500 == 0:
                torch.save(model.state_dict(), ckpt)
        torch.save(model.state_dict(), ckpt)
    model.load_state_dict(torch.load(ckpt))
    model.eval()
    onnx_path = a.out / "pothole-det.onnx"
    export_onnx(model, onnx_path, "image", "boxes", SIZE, [5, (SIZE // STRIDE) ** 2])
    ms = time_onnx(onnx_path, "image")
    log(f"onnxruntime 1 thread: {ms:.1f} ms per 256x256 tile")
    manifest = a.out / "pothole-det.toml"
    write_manifest(
        manifest,
        dict(name="pothole-det", version="0.1.0", task="detection", model="pothole-det.onnx",
             license="MIT OR Apache-2.0 (weights); trained on the ODbL-1.0 Roboflow pothole dataset, see MODEL_CARD.md",
             provenance=f"trained by models/train/train_pothole.py, seed {SEED}, {datetime.date.today()}"),
        {
            "input": dict(name="image", width=SIZE, height=SIZE, channels="rgb", scale=1 / 255,
                          mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], dynamic_batch=True),
            "output": dict(name="boxes", decode="yolov8"),
            "gsd": GSD,
            "tiling": dict(overlap_px=48),
            "thresholds": dict(confidence=0.3, nms_iou=0.5, min_area_px=64),
        },
        [dict(name="pothole", asset_kind="road")],
    )
    import eval_pothole

    res = eval_pothole.evaluate(manifest, a.valid)
    res["ms_per_tile_1thread"] = ms
    print(json.dumps(res, indent=2))
    (a.out / "metrics.json").write_text(json.dumps(res, indent=2) + "\n")
    log("done")


if __name__ == "__main__":
    main()
