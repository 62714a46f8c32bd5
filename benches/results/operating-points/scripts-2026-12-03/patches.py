"""Builds the folder of held-out crack photos that the simulated flights paste in (`--patches`).

    python3 benches/results/operating-points/scripts-2026-12-03/patches.py OUT [--prefixed | --draw N]

For every line of `models/crack/val_split.txt` (88 photos: DeepCrack and CRACK500 held out from
training), OUT gets `NAME.jpg` (a hard link to the photo, or a copy across file systems) and
`NAME_mask.png` (the ground truth binarised: > 127 -> 255). NAME is the photo's file stem
(`11115`, `20160222_081031`), the naming the README's trust figures were measured with.

The simulator sorts the names and picks a photo per planted crack by index, so the NAMES
decide which crack lands where: `--prefixed` names them `deepcrack_11115`,
`crack500_20160222_081031` instead (the folder the 2026-12-04 s28/s29 runs used), the same
88 photos in another order, and the same seeds then plant other cracks
(`benches/results/operating-points/crack-recall-2026-12-04-s30.md`, "Two draws"). `--draw N`
(N >= 1) puts a short hash of N and the stem in front of each name: another fixed order of the
same photos per N, for measuring how much the figures move with the draw.

Needs numpy and pillow (`.cache/speedvenv`). The photos are research-only data (see
`models/LICENSE-DATA.md`); OUT is for local measurement, not for the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[4]
DATA = Path(os.environ.get("BESIKTA_DATA", REPO.parent / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--prefixed", action="store_true", help="names start with the data set (deepcrack_, crack500_)")
    ap.add_argument("--draw", type=int, default=0, help="N >= 1: names start with a hash of N and the stem")
    a = ap.parse_args()
    if a.prefixed and a.draw:
        ap.error("--prefixed and --draw are two different orders: give one")
    a.out.mkdir(parents=True, exist_ok=True)
    n = 0
    for line in (REPO / "models/crack/val_split.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        img, lab = (Path(p) for p in line.split("\t"))
        # The split names files under /work/shared/data; read them from BESIKTA_DATA.
        img = DATA / img.relative_to("/work/shared/data")
        lab = DATA / lab.relative_to("/work/shared/data")
        name = img.stem
        if a.prefixed:
            name = ("deepcrack_" if "deepcrack" in img.parts else "crack500_") + name
        elif a.draw:
            name = hashlib.sha256(f"{a.draw}:{name}".encode()).hexdigest()[:8] + "_" + name
        dst = a.out / f"{name}.jpg"
        if not dst.exists():
            try:
                os.link(img, dst)
            except OSError:
                shutil.copyfile(img, dst)
        mask = np.asarray(Image.open(lab).convert("L")) > 127
        Image.fromarray((mask * 255).astype(np.uint8)).save(a.out / f"{name}_mask.png")
        n += 1
    print(f"{n} photos with masks in {a.out}")


if __name__ == "__main__":
    main()
