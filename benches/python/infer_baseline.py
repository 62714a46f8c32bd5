#!/usr/bin/env python3
"""A straightforward Python inference pipeline: the baseline `infer_e2e` is compared against.

PIL decode, numpy tiling with the same tile layout as the Rust engine (same model, same
manifest, same overlap), one onnxruntime session with default options, tent-window blending
in numpy, threshold, and connected components (union-find over foreground runs) with area
and mean probability. It does less post-processing than the engine (no outlines, no
skeletons), so the comparison favours Python.

    /opt/besikta-train/bin/python benches/python/infer_baseline.py \
        [--model fixtures/models/mtscrack_static.toml] [--dir /work/shared/data/flights/brighton-beach] [--limit 4]

Prints photos per second and peak memory (VmHWM) as one JSON line.
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


def infer_photo(session, manifest, path):
    inp = manifest["input"]
    tw, th = inp["width"], inp["height"]
    overlap = manifest["tiling"]["overlap_px"]
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    h, w, _ = img.shape
    order = [0, 1, 2] if inp["channels"] == "rgb" else [2, 1, 0]
    mean = np.array(inp["mean"], dtype=np.float32)[:, None, None]
    std = np.array(inp["std"], dtype=np.float32)[:, None, None]
    window = tent(th)[:, None] * tent(tw)[None, :]
    acc = np.zeros((h, w), dtype=np.float32)
    wsum = np.zeros((h, w), dtype=np.float32)
    for y in axis_positions(h, th, overlap):
        for x in axis_positions(w, tw, overlap):
            tile = img[y : y + th, x : x + tw]
            ph, pw = tile.shape[:2]
            if ph < th or pw < tw:  # photo smaller than a tile: repeat the edge
                tile = np.pad(tile, ((0, th - ph), (0, tw - pw), (0, 0)), mode="edge")
            chw = tile[:, :, order].transpose(2, 0, 1)
            x_in = ((chw * inp["scale"] - mean) / std)[None].astype(np.float32)
            (out,) = session.run([manifest["output"]["name"]], {inp["name"]: x_in})
            prob = out[0, 0, :ph, :pw]
            wgt = window[:ph, :pw]
            acc[y : y + ph, x : x + pw] += prob * wgt
            wsum[y : y + ph, x : x + pw] += wgt
    prob = acc / np.maximum(wsum, 1e-12)
    mask = prob >= manifest["thresholds"]["confidence"]
    comps = [c for c in components(mask, prob) if c[0] >= manifest["thresholds"]["min_area_px"]]
    return w, h, comps


def vm_hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "fixtures/models/mtscrack_static.toml"))
    ap.add_argument("--dir", default="/work/shared/data/flights/brighton-beach")
    ap.add_argument("--limit", type=int, default=4)
    args = ap.parse_args()
    with open(args.model, "rb") as f:
        manifest = tomllib.load(f)
    model_path = os.path.join(os.path.dirname(os.path.abspath(args.model)), manifest["model"])
    photos = sorted(glob.glob(os.path.join(args.dir, "*.JPG")) + glob.glob(os.path.join(args.dir, "*.jpg")))
    photos = photos[: args.limit]
    t0 = time.perf_counter()
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    detections = 0
    for p in photos:
        w, h, comps = infer_photo(session, manifest, p)
        detections += len(comps)
    elapsed = time.perf_counter() - t1
    print(
        json.dumps(
            {
                "pipeline": "python-baseline",
                "photos": len(photos),
                "seconds": round(elapsed, 3),
                "photos_per_second": round(len(photos) / elapsed, 4),
                "model_load_seconds": round(t_load, 3),
                "detections": detections,
                "peak_rss_mb": round(vm_hwm_kb() / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
