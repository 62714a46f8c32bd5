#!/usr/bin/env python3
"""A straightforward Python inference pipeline: the baseline `infer_e2e` is compared against.

PIL decode, numpy tiling with the same tile layout as the Rust engine (same model, same
manifest, same overlap), one onnxruntime session with default options, tent-window blending
in numpy, threshold, and connected components (union-find over foreground runs) with area
and mean probability. It does less post-processing than the engine (no outlines, no
skeletons), so the comparison favours Python.

    /opt/besikta-train/bin/python benches/python/infer_baseline.py \
        [--model fixtures/models/mtscrack_static.toml] [--dir /work/shared/data/flights/brighton-beach] [--limit 4]

`--model` may be given several times (the end-to-end bench `benches/python/e2e.py` passes the
three shipped manifests): each photo is decoded once and every model tiles the whole photo on
its own (SAHI-style: no regions of interest, no coverage planning). Segmentation models with
C channels get one mask per class; "yolov8" detection models get score threshold and NMS over
the photo. Tiles are cut at the photo's own scale (the bench flight lies inside every
shipped model's GSD range). `--scipy-components` labels components with scipy.ndimage
instead of the pure-Python union-find, as a practical Python pipeline would.

Prints photos per second, tiles and peak memory (VmHWM) as one JSON line.
"""
import argparse
import glob
import json
import os
import time
import tomllib

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def axis_positions(length, tile, overlap):
    """Same as besikta_infer::tiling::axis_positions."""
    if length <= tile:
        return [0]
    stride = max(tile - overlap, 1)
    span = length - tile
    n = -(-span // stride) + 1
    return [(i * span * 2 + (n - 1)) // (2 * (n - 1)) for i in range(n)]


def tent(n):
    i = np.arange(n, dtype=np.float32)
    d = np.minimum(i + 0.5, n - i - 0.5)
    return np.maximum(d / (n / 2), 1e-3).astype(np.float32)


def components(mask, prob):
    """8-connected components of a boolean mask: list of (area, mean probability)."""
    parent = []

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    runs = []  # (y, x0, x1)
    prev = []
    for y in range(mask.shape[0]):
        row = mask[y]
        if not row.any():
            prev = []
            continue
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row.view(np.int8), [0]))))
        cur = []
        for x0, x1 in zip(edges[0::2], edges[1::2]):
            rid = len(runs)
            runs.append((y, int(x0), int(x1)))
            parent.append(rid)
            for pid in prev:
                _, px0, px1 = runs[pid]
                if px1 >= x0 and px0 <= x1:
                    a, b = find(pid), find(rid)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
            cur.append(rid)
        prev = cur
    stats = {}
    for rid, (y, x0, x1) in enumerate(runs):
        root = find(rid)
        area, total = stats.get(root, (0, 0.0))
        stats[root] = (area + x1 - x0, total + float(prob[y, x0:x1].sum()))
    return [(a, t / a) for a, t in stats.values()]


def scipy_components(mask, prob):
    """The same (area, mean probability) list as `components`, through scipy.ndimage."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    areas = ndimage.sum_labels(np.ones_like(prob), labels, idx)
    sums = ndimage.sum_labels(prob, labels, idx)
    return [(int(a), float(t / a)) for a, t in zip(areas, sums)]


def nms(boxes, iou):
    """Greedy NMS over [x1, y1, x2, y2, score] rows; returns the kept rows."""
    if len(boxes) == 0:
        return boxes
    boxes = boxes[np.argsort(-boxes[:, 4])]
    keep = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    alive = np.ones(len(boxes), bool)
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[:, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[:, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[:, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        alive &= inter / (area[i] + area - inter + 1e-9) <= iou
        alive[i] = False
    return boxes[keep]


def infer_photo(session, manifest, img, labeler=None):
    """One model over one decoded photo (float32 HWC): returns (tiles, detections)."""
    labeler = labeler or components
    inp = manifest["input"]
    tw, th = inp["width"], inp["height"]
    overlap = manifest["tiling"]["overlap_px"]
    h, w, _ = img.shape
    order = [0, 1, 2] if inp["channels"] == "rgb" else [2, 1, 0]
    mean = np.array(inp["mean"], dtype=np.float32)[:, None, None]
    std = np.array(inp["std"], dtype=np.float32)[:, None, None]
    detection = manifest.get("task") == "detection"
    window = tent(th)[:, None] * tent(tw)[None, :]
    acc = wsum = None
    boxes = []
    tiles = 0
    for y in axis_positions(h, th, overlap):
        for x in axis_positions(w, tw, overlap):
            tile = img[y : y + th, x : x + tw]
            ph, pw = tile.shape[:2]
            if ph < th or pw < tw:  # photo smaller than a tile: repeat the edge
                tile = np.pad(tile, ((0, th - ph), (0, tw - pw), (0, 0)), mode="edge")
            chw = tile[:, :, order].transpose(2, 0, 1)
            x_in = ((chw * inp["scale"] - mean) / std)[None].astype(np.float32)
            (out,) = session.run([manifest["output"]["name"]], {inp["name"]: x_in})
            tiles += 1
            if detection:  # yolov8 layout [1, 4 + k, boxes]
                o = out[0]
                score = o[4:].max(0)
                sel = score >= manifest["thresholds"]["confidence"]
                cx, cy, bw, bh = o[0][sel] + x, o[1][sel] + y, o[2][sel], o[3][sel]
                boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, score[sel]], 1))
                continue
            if acc is None:
                acc = np.zeros((out.shape[1], h, w), dtype=np.float32)
                wsum = np.zeros((h, w), dtype=np.float32)
            wgt = window[:ph, :pw]
            acc[:, y : y + ph, x : x + pw] += out[0, :, :ph, :pw] * wgt
            wsum[y : y + ph, x : x + pw] += wgt
    min_area = manifest["thresholds"]["min_area_px"]
    if detection:
        kept = nms(np.concatenate(boxes) if boxes else np.zeros((0, 5)), manifest["thresholds"]["nms_iou"])
        areas = (kept[:, 2] - kept[:, 0]) * (kept[:, 3] - kept[:, 1])
        return tiles, int((areas >= min_area).sum())
    acc /= np.maximum(wsum, 1e-12)
    found = 0
    for prob in acc:
        mask = prob >= manifest["thresholds"]["confidence"]
        found += len([c for c in labeler(mask, prob) if c[0] >= min_area])
    return tiles, found


def vm_hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", help="manifest (repeatable; default the mtscrack fixture)")
    ap.add_argument("--dir", default="/work/shared/data/flights/brighton-beach")
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--scipy-components", action="store_true")
    args = ap.parse_args()
    models = []
    t0 = time.perf_counter()
    for mpath in args.model or [os.path.join(ROOT, "fixtures/models/mtscrack_static.toml")]:
        with open(mpath, "rb") as f:
            manifest = tomllib.load(f)
        model_path = os.path.join(os.path.dirname(os.path.abspath(mpath)), manifest["model"])
        models.append((manifest, ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])))
    t_load = time.perf_counter() - t0
    photos = sorted(glob.glob(os.path.join(args.dir, "*.JPG")) + glob.glob(os.path.join(args.dir, "*.jpg")))
    photos = photos[: args.limit]
    labeler = scipy_components if args.scipy_components else components
    t1 = time.perf_counter()
    detections = tiles = 0
    decode_s = 0.0
    for p in photos:
        td = time.perf_counter()
        img = np.asarray(Image.open(p).convert("RGB"), dtype=np.float32)
        decode_s += time.perf_counter() - td
        for manifest, session in models:
            n_tiles, found = infer_photo(session, manifest, img, labeler)
            tiles += n_tiles
            detections += found
    elapsed = time.perf_counter() - t1
    print(
        json.dumps(
            {
                "pipeline": "python-baseline",
                "models": [m["name"] for m, _ in models],
                "photos": len(photos),
                "seconds": round(elapsed, 3),
                "photos_per_second": round(len(photos) / elapsed, 4),
                "model_load_seconds": round(t_load, 3),
                "decode_seconds": round(decode_s, 3),
                "tiles": tiles,
                "detections": detections,
                "components": "scipy" if args.scipy_components else "python",
                "peak_rss_mb": round(vm_hwm_kb() / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
