#!/usr/bin/env python3
"""Draws a reproducible random sample of findings and writes a crop of each for a person to judge.

Usage: scripts/sample_findings.py FINDINGS.geojson OUT_DIR [--n 30] [--seed 2026] [--photos DIR]

The sample is `random.Random(seed).sample(features, n)` over the features in file order. Each
crop shows the finding's observation in its best photo (the one named by `best_photo`, else the
first observation), with the pixel outline in red, at least 240 px and three times the outline's
size. A contact sheet `sheet.png` puts them side by side, numbered as in `sample.csv`, which has a
blank `verdict` column to fill in. Needs Pillow (`pip install pillow`); a measurement tool, not
part of the product.
"""
import argparse
import csv
import json
import os
import random

from PIL import Image, ImageDraw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("findings")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--photos", help="folder of the photos, when the paths in the file are not valid here")
    a = ap.parse_args()
    features = json.load(open(a.findings))["features"]
    sample = random.Random(a.seed).sample(features, min(a.n, len(features)))
    os.makedirs(a.out, exist_ok=True)
    tiles = []
    rows = []
    for i, f in enumerate(sample, 1):
        p = f["properties"]
        obs = p.get("observations") or []
        best = p.get("best_photo")
        o = next((o for o in obs if o.get("photo") == best), obs[0] if obs else None)
        if o is None:
            continue
        photo = o["photo"]
        if a.photos:
            photo = os.path.join(a.photos, os.path.basename(photo))
        img = Image.open(photo).convert("RGB")
        x0, y0, x1, y1 = o["bbox_px"]
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half = max(120, 1.5 * max(x1 - x0, y1 - y0))
        box = (int(cx - half), int(cy - half), int(cx + half), int(cy + half))
        crop = img.crop(box)
        d = ImageDraw.Draw(crop)
        poly = [(x - box[0], y - box[1]) for x, y in o.get("polygon_px") or []]
        if len(poly) >= 2:
            d.line(poly + [poly[0]], fill=(255, 0, 0), width=2)
        else:
            d.rectangle((x0 - box[0], y0 - box[1], x1 - box[0], y1 - box[1]), outline=(255, 0, 0), width=2)
        crop = crop.resize((240, 240))
        d = ImageDraw.Draw(crop)
        label = f"{i} {p.get('class')} {p.get('id')}"
        d.rectangle((0, 0, 240, 14), fill=(0, 0, 0))
        d.text((3, 1), label, fill=(255, 255, 255))
        crop.save(os.path.join(a.out, f"{i:02d}-{p.get('id')}.png"))
        tiles.append(crop)
        rows.append({
            "n": i,
            "id": p.get("id"),
            "class": p.get("class"),
            "confidence": p.get("confidence"),
            "views": p.get("views"),
            "support": p.get("support"),
            "photo": os.path.basename(photo),
            "bbox_px": o["bbox_px"],
            "verdict": "",
        })
    cols = 6
    sheet = Image.new("RGB", (cols * 240, ((len(tiles) + cols - 1) // cols) * 240), (40, 40, 40))
    for k, t in enumerate(tiles):
        sheet.paste(t, ((k % cols) * 240, (k // cols) * 240))
    sheet.save(os.path.join(a.out, "sheet.png"))
    with open(os.path.join(a.out, "sample.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} of {len(features)} findings sampled (seed {a.seed}) into {a.out}")


if __name__ == "__main__":
    main()
