#!/usr/bin/env python3
"""Zoomed contact sheets of sampled findings, for judging small cracks by eye.

Usage: scripts/zoom_sheet.py SAMPLE.csv OUT_PREFIX [HALF_WIDTH_PX] [--photos DIR]

Reads the `sample.csv` written by `scripts/sample_findings.py` and, for each finding, crops its
best photo around the outline's box (at least 2 x HALF_WIDTH_PX photo pixels, default 90 px:
about 3 m at Brighton's 1.7 cm/px), enlarges it to 320 px and draws the box in red; 15
findings per sheet, OUT_PREFIX-1.png, OUT_PREFIX-2.png, ... Needs Pillow; a measurement tool,
not part of the product.
"""
import argparse
import csv
import json
import os

from PIL import Image, ImageDraw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sample")
    ap.add_argument("out")
    ap.add_argument("half", nargs="?", type=int, default=90)
    ap.add_argument("--photos", default=os.path.join(os.path.dirname(__file__), "../../shared/data/flights/brighton-beach"))
    a = ap.parse_args()
    rows = list(csv.DictReader(open(a.sample)))
    tiles = []
    for r in rows:
        b = json.loads(r["bbox_px"])
        im = Image.open(os.path.join(a.photos, r["photo"])).convert("RGB")
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        hw = max(a.half, (b[2] - b[0]) * 0.8, (b[3] - b[1]) * 0.8)
        box = (int(cx - hw), int(cy - hw), int(cx + hw), int(cy + hw))
        c = im.crop(box)
        s = 320 / c.size[0]
        c = c.resize((320, 320), Image.BICUBIC)
        d = ImageDraw.Draw(c)
        d.rectangle([(b[0] - box[0]) * s - 4, (b[1] - box[1]) * s - 4, (b[2] - box[0]) * s + 4, (b[3] - box[1]) * s + 4],
                    outline=(255, 0, 0), width=2)
        d.rectangle([0, 0, 150, 14], fill=(0, 0, 0))
        d.text((3, 2), f"{r['n']} {r['class']} {r['id']}", fill=(255, 255, 0))
        tiles.append(c)
    for part in range(0, len(tiles), 15):
        sheet = Image.new("RGB", (5 * 325, 3 * 325), (40, 40, 40))
        for i, t in enumerate(tiles[part:part + 15]):
            sheet.paste(t, ((i % 5) * 325, (i // 5) * 325))
        sheet.save(f"{a.out}-{part // 15 + 1}.png")


if __name__ == "__main__":
    main()
