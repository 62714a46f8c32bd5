"""Strict and 2 px-tolerant F1 of a crack manifest on the card's validation split at 1 / 4 / 8 /
16 mm/px for several probability thresholds at once (each image inferred once):

  .cache/trainvenv/bin/python benches/python/crack_thresholds.py MANIFEST OUT.json [0.5 0.6 ...]

Used in `benches/results/crack-cheaper-2026-12-07-s48.md` to ask whether a student's wider
masks come back to the card's strict F1 at a higher threshold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "models" / "eval"))
sys.path.insert(0, str(REPO / "models" / "train"))
import eval_crack  # noqa: E402
from crackdata import downscale, load_pair  # noqa: E402


def main() -> None:
    manifest, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    ths = tuple(float(t) for t in sys.argv[3:]) or (0.5, 0.6, 0.7, 0.8)
    m = eval_crack.OnnxSeg.from_manifest(manifest)
    data = [load_pair(p) for p in eval_crack.read_split(REPO / "models" / "crack" / "val_split.txt")]
    out = {}
    for f in eval_crack.SCALES:
        acc = {t: np.zeros(7) for t in ths}
        for img, lab in data:
            im, gt = downscale(img, lab, f)
            p = m.predict(im)
            for t in ths:
                acc[t] += eval_crack.counts(p >= t, gt)
        for t in ths:
            r = eval_crack.summarise(acc[t])
            out[f"x{f} t{t}"] = r
            print(f"x{f} t{t}: F1 {r['f1']:.4f} F1@2px {r['f1_tol2']:.4f} P {r['precision']:.3f} "
                  f"R {r['recall']:.3f}", flush=True)
    out_path.write_text(json.dumps(out, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
