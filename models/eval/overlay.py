"""Run a Besikta model (ONNX + manifest) over whole drone photos exactly as its manifest says
(resample to the model GSD when the photo is outside the tolerated range, tiles of the input
size with `overlap_px` overlap, thresholds, min area) and draw the findings on a downsized
JPEG copy. Used for the overlays in models/<name>/overlays/.

  /opt/besikta-train/bin/python models/eval/overlay.py --manifest models/crack/crack-unet.toml \
      --out models/crack/overlays fixtures/brighton/DJI_0018.JPG ...

The photo GSD defaults to the Brighton flight (DJI FC300S at 40 m: 17.09 mm/px).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from common import BRIGHTON_GSD_MM, ort_session  # noqa: E402

COLOURS = [(255, 40, 40), (255, 200, 0), (0, 160, 255), (255, 0, 255)]


class Model:
    def __init__(self, manifest: Path):
        self.m = tomllib.loads(manifest.read_text())
        self.sess = ort_session(manifest.parent / self.m["model"])
        i = self.m["input"]
        self.size = (i["height"], i["width"])
        self.mean = np.asarray(i["mean"], np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(i["std"], np.float32).reshape(1, 3, 1, 1)

    def prep(self, tiles: np.ndarray) -> np.ndarray:
        i = self.m["input"]
        x = tiles.astype(np.float32).transpose(0, 3, 1, 2)
        if i["channels"] == "bgr":
            x = x[:, ::-1]
        return np.ascontiguousarray((x * i["scale"] - self.mean) / self.std)

    def run(self, tiles: np.ndarray) -> np.ndarray:
        outs = []
        bs = 8 if self.m["input"].get("dynamic_batch", False) else 1
        for k in range(0, len(tiles), bs):
            outs.append(self.sess.run(None, {self.m["input"]["name"]: self.prep(tiles[k : k + bs])})[0])
        return np.concatenate(outs)


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Tile starts covering [0, length); the last tile is shifted back to end at the border."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    xs = list(range(0, length - tile + 1, stride))
    if xs[-1] + tile < length:
        xs.append(length - tile)
    return xs


def resample_factor(m: dict, photo_gsd: float) -> float:
    """Factor applied to the photo size before tiling (1 when the GSD is tolerated)."""
    g = m["gsd"]
    if g["min_mm_per_px"] <= photo_gsd <= g["max_mm_per_px"]:
        return 1.0
    return photo_gsd / g["mm_per_px"]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = np.argsort(-scores)
    keep = []
    while len(order):
        i = order[0]
        keep.append(int(i))
        if len(order) == 1:
            break
        b = boxes[order[1:]]
        x1 = np.maximum(boxes[i, 0], b[:, 0])
        y1 = np.maximum(boxes[i, 1], b[:, 1])
        x2 = np.minimum(boxes[i, 2], b[:, 2])
        y2 = np.minimum(boxes[i, 3], b[:, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        a = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
        ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        order = order[1:][inter / (a + ab - inter + 1e-9) <= iou]
    return keep


def infer(model: Model, photo: np.ndarray, photo_gsd: float):
    """Returns (mode, result) with result = per-class boolean masks at photo size, or boxes
    [x1, y1, x2, y2, score, class] in photo pixels."""
    m = model.m
    f = resample_factor(m, photo_gsd)
    H, W = photo.shape[:2]
    img = photo
    if f != 1.0:
        img = np.asarray(Image.fromarray(photo).resize((round(W * f), round(H * f)), Image.BILINEAR))
    h, w = img.shape[:2]
    th, tw = model.size
    if h < th or w < tw:
        img = np.pad(img, ((0, max(0, th - h)), (0, max(0, tw - w)), (0, 0)), mode="edge")
    ov = m["tiling"]["overlap_px"]
    ys, xs = tile_origins(img.shape[0], th, ov), tile_origins(img.shape[1], tw, ov)
    origins = [(y, x) for y in ys for x in xs]
    tiles = np.stack([img[y : y + th, x : x + tw] for y, x in origins])
    out = model.run(tiles)
    thr = m["thresholds"]["confidence"]
    ncls = len(m["classes"])
    if m["task"] == "segmentation":
        c = out.shape[1]
        prob = np.zeros((c, img.shape[0], img.shape[1]), np.float32)
        for (y, x), o in zip(origins, out):
            prob[:, y : y + th, x : x + tw] = np.maximum(prob[:, y : y + th, x : x + tw], o)
        prob = prob[:, :h, :w]
        if m["output"]["decode"] == "logits":
            raise NotImplementedError("overlay.py handles decode = probabilities only")
        if c == ncls + 1:
            lab = prob.argmax(0)
            masks = [(lab == k + 1) & (prob[k + 1] >= thr) for k in range(ncls)]
        else:
            masks = [prob[k] >= thr for k in range(ncls)]
        if f != 1.0:
            masks = [np.asarray(Image.fromarray(mk.astype(np.uint8) * 255).resize((W, H), Image.NEAREST)) > 127 for mk in masks]
        min_area = m["thresholds"]["min_area_px"]
        clean = []
        for mk in masks:
            lab, n = ndimage.label(mk, structure=np.ones((3, 3)))
            if n:
                areas = ndimage.sum(mk, lab, index=np.arange(1, n + 1))
                mk = np.isin(lab, np.nonzero(areas >= min_area)[0] + 1)
            clean.append(mk)
        return "seg", clean
    if m["output"]["decode"] != "yolov8":
        raise NotImplementedError("overlay.py handles decode = yolov8 only")
    boxes = []
    for (y, x), o in zip(origins, out):
        scores = o[4:]
        cls = scores.argmax(0)
        sc = scores.max(0)
        sel = sc >= thr
        for cx, cy, bw, bh, s, k in zip(o[0][sel], o[1][sel], o[2][sel], o[3][sel], sc[sel], cls[sel]):
            boxes.append([(x + cx - bw / 2) / f, (y + cy - bh / 2) / f, (x + cx + bw / 2) / f, (y + cy + bh / 2) / f, s, k])
    if not boxes:
        return "det", np.zeros((0, 6))
    b = np.asarray(boxes, np.float64)
    keep = nms(b[:, :4], b[:, 4], m["thresholds"]["nms_iou"])
    b = b[keep]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return "det", b[area >= m["thresholds"]["min_area_px"]]


def draw(photo: np.ndarray, mode: str, res, classes: list[dict], width: int = 1600) -> Image.Image:
    H, W = photo.shape[:2]
    s = width / W
    im = Image.fromarray(photo).resize((width, round(H * s)), Image.LANCZOS)
    if mode == "seg":
        arr = np.asarray(im).astype(np.float32)
        for k, mk in enumerate(res):
            # Dilate before downsizing so 1-2 px findings stay visible at 1600 px.
            small = np.asarray(Image.fromarray(ndimage.binary_dilation(mk, iterations=2).astype(np.uint8) * 255)
                               .resize(im.size, Image.BOX)) > 40
            arr[small] = 0.35 * arr[small] + 0.65 * np.asarray(COLOURS[k % len(COLOURS)], np.float32)
        im = Image.fromarray(arr.astype(np.uint8))
    else:
        d = ImageDraw.Draw(im)
        for x1, y1, x2, y2, sc, k in res:
            col = COLOURS[int(k) % len(COLOURS)]
            d.rectangle([x1 * s, y1 * s, x2 * s, y2 * s], outline=col, width=3)
            d.text((x1 * s + 3, y1 * s + 2), f"{classes[int(k)]['name']} {sc:.2f}", fill=col)
    return im


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--gsd", type=float, default=BRIGHTON_GSD_MM, help="photo GSD in mm/px")
    ap.add_argument("photos", type=Path, nargs="+")
    a = ap.parse_args()
    model = Model(a.manifest)
    a.out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for p in a.photos:
        photo = np.asarray(Image.open(p).convert("RGB"))
        mode, res = infer(model, photo, a.gsd)
        im = draw(photo, mode, res, model.m["classes"])
        dst = a.out / (p.stem + "_overlay.jpg")
        q = 85
        while True:
            im.save(dst, quality=q)
            if dst.stat().st_size < 600_000 or q <= 50:
                break
            q -= 10
        if mode == "seg":
            info = {c["name"]: {"pixels": int(mk.sum()), "components": int(ndimage.label(mk, structure=np.ones((3, 3)))[1])}
                    for c, mk in zip(model.m["classes"], res)}
        else:
            info = {"boxes": [[round(float(v), 1) for v in b[:4]] + [round(float(b[4]), 3), model.m["classes"][int(b[5])]["name"]] for b in res]}
        summary[p.name] = info
        print(dst, json.dumps(info))
    (a.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
