#!/usr/bin/env python3
"""Per-tile cost of the shipped models under ONNX Runtime settings, on real Brighton tiles.

For each model (fp32, and an int8 copy when `--extra NAME=PATH.onnx` is given), each graph
optimisation level, intra-op thread count and batch size, runs the same real 256x256 tiles
(cut at native scale from the Brighton photos, normalised as the manifest says) and reports
the median milliseconds per tile. Settings are interleaved round by round (A, B, C, A, B, C,
...) so that load from other work on a shared machine hits every setting alike.

    .cache/speedvenv/bin/python benches/python/ort_sweep.py --rounds 5 --tiles 16 \
        --out benches/results/ort-sweep.json

It uses the same onnxruntime version as the Rust engine (1.31.1, the library scripts/setup
unpacks from the same wheel), so relative figures carry over; the bench binary `infer_e2e`
re-measures the chosen setting through the engine.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
import tomllib

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def real_tiles(photo_dir: str, photos: list[str], n: int, size: int = 256) -> np.ndarray:
    """`n` tiles [n, 256, 256, 3] uint8 spread over the given photos, native scale."""
    out = []
    per = -(-n // len(photos))
    for name in photos:
        img = np.asarray(Image.open(os.path.join(photo_dir, name)).convert("RGB"))
        h, w = img.shape[:2]
        ys = np.linspace(0, h - size, 3).astype(int)
        xs = np.linspace(0, w - size, -(-per // 3) + 1).astype(int)
        for y, x in itertools.product(ys, xs):
            out.append(img[y : y + size, x : x + size])
    return np.stack(out[:n])


def normalise(tiles: np.ndarray, manifest: dict) -> np.ndarray:
    inp = manifest["input"]
    x = tiles.astype(np.float32).transpose(0, 3, 1, 2)
    if inp["channels"] == "bgr":
        x = x[:, ::-1]
    mean = np.asarray(inp["mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(inp["std"], np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x * inp["scale"] - mean) / std, dtype=np.float32)


def session(path: str, level: str, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = LEVELS[level]
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ms_per_tile(sess: ort.InferenceSession, name: str, x: np.ndarray, batch: int) -> float:
    t = time.perf_counter()
    for i in range(0, len(x), batch):
        sess.run(None, {name: x[i : i + batch]})
    return (time.perf_counter() - t) * 1000 / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=["crack/crack-unet.toml", "pothole/pothole-det.toml",
                                                     "roof/roof-damage.toml"], help="manifests under models/")
    ap.add_argument("--extra", action="append", default=[],
                    help="NAME=MANIFEST.toml:MODEL.onnx, another ONNX file with a manifest's input convention")
    ap.add_argument("--photos", default="/work/shared/data/flights/brighton-beach")
    ap.add_argument("--levels", nargs="*", default=list(LEVELS))
    ap.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--batches", nargs="*", type=int, default=[1, 4, 8])
    ap.add_argument("--tiles", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()

    tiles = real_tiles(a.photos, ["DJI_0018.JPG", "DJI_0024.JPG", "DJI_0030.JPG"], a.tiles)
    entries = []  # (name, manifest, onnx path)
    for rel in a.models:
        mpath = os.path.join(ROOT, "models", rel)
        m = tomllib.load(open(mpath, "rb"))
        entries.append((m["name"], m, os.path.join(os.path.dirname(mpath), m["model"])))
    for spec in a.extra:
        name, rest = spec.split("=", 1)
        mpath, onnx_path = rest.split(":", 1)
        entries.append((name, tomllib.load(open(mpath, "rb")), onnx_path))

    configs = []
    for (name, m, path), level, threads, batch in itertools.product(entries, a.levels, a.threads, a.batches):
        if batch > 1 and not m["input"]["dynamic_batch"]:
            continue
        configs.append(dict(model=name, level=level, threads=threads, batch=batch, path=path, manifest=m))
    sessions = {}
    for c in configs:
        key = (c["path"], c["level"], c["threads"])
        if key not in sessions:
            sessions[key] = session(c["path"], c["level"], c["threads"])
        c["sess"] = sessions[key]
        c["x"] = normalise(tiles, c["manifest"])
        ms_per_tile(c["sess"], c["manifest"]["input"]["name"], c["x"][: c["batch"]], c["batch"])  # warm up
        c["ms"] = []
    for r in range(a.rounds):
        for c in configs:
            c["ms"].append(ms_per_tile(c["sess"], c["manifest"]["input"]["name"], c["x"], c["batch"]))
        print(f"round {r + 1}/{a.rounds} done, load {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for c in configs:
        rows.append(dict(model=c["model"], level=c["level"], threads=c["threads"], batch=c["batch"],
                         median_ms_per_tile=round(statistics.median(c["ms"]), 2),
                         min_ms_per_tile=round(min(c["ms"]), 2), runs=[round(v, 2) for v in c["ms"]]))
    print(f"{'model':<22} {'level':<9} {'thr':>3} {'batch':>5} {'median ms/tile':>15} {'min':>7}")
    for r in rows:
        print(f"{r['model']:<22} {r['level']:<9} {r['threads']:>3} {r['batch']:>5} "
              f"{r['median_ms_per_tile']:>15.2f} {r['min_ms_per_tile']:>7.2f}")
    if a.out:
        meta = dict(onnxruntime=ort.__version__, tiles=len(tiles), rounds=a.rounds, cores=os.cpu_count(),
                    loadavg_end=os.getloadavg(), when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        with open(a.out, "w") as f:
            json.dump(dict(meta=meta, rows=rows), f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
