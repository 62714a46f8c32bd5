"""Would a screened crack model pay? The cheap distilled student runs on every tile and the
shipped crack model only on the tiles where the student's highest probability reaches a screen
threshold; elsewhere the tile counts as empty. Measured before building it into the product:

- card: `eval_crack`'s validation split at 1 / 4 / 8 / 16 mm/px, strict F1 of the cascade for
  each screen threshold (screen 0 = the shipped model alone, the card's figure), and the share of
  tiles the student passes on;
- photos: folders of drone photos tiled as the product tiles a photo at its own scale (256 px,
  32 px overlap), the share of tiles passed on, and how many of the shipped model's detections
  (components at its threshold and minimum area) fall in tiles the student did not pass on, i.e.
  would be lost.

  .cache/trainvenv/bin/python benches/python/crack_cascade.py --student S.toml \
      --photos ../shared/data/flights/brighton-beach --out F.json

Tile cost of each model from `benches/python/tile_cost.py`; the cascade costs
student + passed share x shipped per tile.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "models" / "eval"))
sys.path.insert(0, str(REPO / "models" / "train"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_crack  # noqa: E402
from crackdata import downscale, load_pair  # noqa: E402
from infer_baseline import axis_positions  # noqa: E402

SCREENS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
TILE, OVERLAP = 256, 32


def tiles_of(img: np.ndarray, overlap: int) -> np.ndarray:
    """The photo's tiles, laid out as the product lays them (`infer_baseline.axis_positions`)."""
    h, w = img.shape[:2]
    ph, pw = max(h, TILE), max(w, TILE)
    pad = np.pad(img, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    ys, xs = axis_positions(ph, TILE, overlap), axis_positions(pw, TILE, overlap)
    return np.stack([pad[y : y + TILE, x : x + TILE] for y in ys for x in xs])


def card(student, teacher, pairs) -> dict:
    data = [load_pair(p) for p in pairs]
    res = {}
    for f in eval_crack.SCALES:
        acc = {s: np.zeros(7) for s in SCREENS}
        passed = {s: 0 for s in SCREENS}
        n_tiles = 0
        for img, lab in data:
            im, gt = downscale(img, lab, f)
            tiles, pos, padded = teacher.grid(im)
            ps, pt = student.run(tiles), teacher.run(tiles)
            smax = ps.reshape(len(pos), -1).max(1)
            n_tiles += len(pos)
            for s in SCREENS:
                kept = [pt[k] if smax[k] >= s else None for k in range(len(pos))]
                passed[s] += sum(t is not None for t in kept)
                out = teacher.stitch(kept, pos, padded, gt.shape)
                acc[s] += eval_crack.counts(out >= teacher.threshold, gt)
        res[f"x{f}"] = {f"screen {s}": dict(eval_crack.summarise(acc[s]), passed=passed[s] / n_tiles) for s in SCREENS}
    return res


def photos(student, teacher, folders: list[Path], min_area: int) -> dict:
    n_tiles, passed, comps, lost = 0, {s: 0 for s in SCREENS}, 0, {s: 0 for s in SCREENS}
    files = [p for d in folders for p in sorted(d.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    t0 = time.time()
    for p in files:
        img = np.asarray(Image.open(p).convert("RGB"))
        tiles = tiles_of(img, OVERLAP)
        ps, pt = student.run(tiles), teacher.run(tiles)
        smax = ps.reshape(len(tiles), -1).max(1)
        n_tiles += len(tiles)
        for k in range(len(tiles)):
            lab, n = ndimage.label(pt[k] >= teacher.threshold)
            big = int((np.bincount(lab.ravel())[1:] >= min_area).sum()) if n else 0
            comps += big
            for s in SCREENS:
                if smax[k] >= s:
                    passed[s] += 1
                else:
                    lost[s] += big
        print(f"{p.name}: {len(tiles)} tiles, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return dict(photos=len(files), tiles=n_tiles, shipped_components=comps,
                screens={f"screen {s}": dict(passed=passed[s] / max(n_tiles, 1), components_lost=lost[s])
                         for s in SCREENS})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", type=Path, required=True, help="manifest of the cheap model")
    ap.add_argument("--teacher", type=Path, default=REPO / "models" / "crack" / "crack-unet.toml")
    ap.add_argument("--photos", type=Path, nargs="*", default=[])
    ap.add_argument("--no-card", action="store_true")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    student = eval_crack.OnnxSeg.from_manifest(a.student)
    teacher = eval_crack.OnnxSeg.from_manifest(a.teacher)
    min_area = int(__import__("tomllib").loads(a.teacher.read_text())["thresholds"]["min_area_px"])
    out = dict(student=str(a.student), teacher=str(a.teacher))
    if not a.no_card:
        out["card"] = card(student, teacher, eval_crack.read_split(REPO / "models" / "crack" / "val_split.txt"))
        for sc, per in out["card"].items():
            for s, m in per.items():
                print(f"card {sc} {s}: F1 {m['f1']:.3f} P {m['precision']:.3f} R {m['recall']:.3f} "
                      f"passed {m['passed']:.3f}", flush=True)
    if a.photos:
        out["photos"] = photos(student, teacher, a.photos, min_area)
        print(json.dumps(out["photos"], indent=1), flush=True)
    if a.out:
        a.out.write_text(json.dumps(out, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
