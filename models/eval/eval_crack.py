"""Pixel precision/recall/F1 of crack segmentation ONNX models on the held-out validation
split, strict and with a 2-pixel tolerance, at the native ~1 mm/px and at downscaled
drone-like GSDs. Compares our crack-unet with the third-party mtscrack baseline.

Usage (from the repo root):
  /opt/besikta-train/bin/python models/eval/eval_crack.py \
      --manifest models/crack/crack-unet.toml --baseline fixtures/models/mtscrack_static.onnx \
      --split models/crack/val_split.txt --out models/crack/metrics.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from common import ort_session  # noqa: E402
from crackdata import downscale, load_pair  # noqa: E402

TILE = 256
SCALES = (1, 4, 8, 16)  # downscale factors of the ~1 mm/px photos -> ~1, 4, 8, 16 mm/px
TOL_PX = 2


class OnnxSeg:
    """A single-channel segmentation ONNX model with its input convention."""

    def __init__(self, path: Path, input_name: str, bgr: bool, scale: float, mean, std, threshold: float):
        self.sess = ort_session(path)
        self.input_name = input_name
        self.bgr, self.scale = bgr, scale
        self.mean = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
        self.threshold = threshold

    @classmethod
    def from_manifest(cls, path: Path) -> "OnnxSeg":
        m = tomllib.loads(path.read_text())
        i = m["input"]
        return cls(path.parent / m["model"], i["name"], i["channels"] == "bgr", i["scale"], i["mean"], i["std"],
                   m["thresholds"]["confidence"])

    def run(self, tiles: np.ndarray) -> np.ndarray:
        """tiles: uint8 [N, 256, 256, 3] RGB -> probabilities [N, 256, 256]."""
        x = tiles.astype(np.float32).transpose(0, 3, 1, 2)
        if self.bgr:
            x = x[:, ::-1]
        x = (x * self.scale - self.mean) / self.std
        outs = [self.sess.run(None, {self.input_name: np.ascontiguousarray(x[i : i + 1])})[0] for i in range(len(x))]
        return np.concatenate(outs)[:, 0]

    @staticmethod
    def grid(img: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]], tuple[int, int]]:
        """The card's tiling of an image: replicate-padded to a multiple of 256 and cut into
        tiles without overlap. Returns the tiles, their (y, x) corners and the padded size."""
        h, w = img.shape[:2]
        ph, pw = -(-h // TILE) * TILE, -(-w // TILE) * TILE
        pad = np.pad(img, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        pos = [(y, x) for y in range(0, ph, TILE) for x in range(0, pw, TILE)]
        return np.stack([pad[y : y + TILE, x : x + TILE] for y, x in pos]), pos, (ph, pw)

    @staticmethod
    def stitch(probs, pos: list[tuple[int, int]], padded: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
        """Tiles' probabilities (None for a tile left empty) back into one map of `size`."""
        out = np.zeros(padded, np.float32)
        for p, (y, x) in zip(probs, pos):
            if p is not None:
                out[y : y + TILE, x : x + TILE] = p
        return out[: size[0], : size[1]]

    def predict(self, img: np.ndarray) -> np.ndarray:
        """Probability map of a whole image: replicate-pad to a multiple of 256 and tile."""
        tiles, pos, padded = self.grid(img)
        return self.stitch(self.run(tiles), pos, padded, img.shape[:2])


DISK = np.hypot(*np.mgrid[-TOL_PX : TOL_PX + 1, -TOL_PX : TOL_PX + 1]) <= TOL_PX


def counts(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """[tp, fp, fn, tol_tp_pred, n_pred, tol_tp_gt, n_gt] for one image."""
    tp = int((pred & gt).sum())
    fp = int((pred & ~gt).sum())
    fn = int((~pred & gt).sum())
    gt_d = ndimage.binary_dilation(gt, DISK) if gt.any() else gt
    pr_d = ndimage.binary_dilation(pred, DISK) if pred.any() else pred
    return np.array([tp, fp, fn, int((pred & gt_d).sum()), int(pred.sum()), int((gt & pr_d).sum()), int(gt.sum())])


def summarise(c: np.ndarray) -> dict:
    tp, fp, fn, ttp_p, n_p, ttp_g, n_g = (float(v) for v in c)
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    tp_ = ttp_p / max(n_p, 1)
    tr = ttp_g / max(n_g, 1)
    f = lambda a, b: 2 * a * b / max(a + b, 1e-9)  # noqa: E731
    return {"precision": p, "recall": r, "f1": f(p, r), "precision_tol2": tp_, "recall_tol2": tr, "f1_tol2": f(tp_, tr)}


def read_split(path: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            a, b = line.split("\t")
            pairs.append((Path(a), Path(b)))
    return pairs


def evaluate(models: dict[str, OnnxSeg], pairs, scales=SCALES) -> dict:
    data = [load_pair(p) for p in pairs]
    res = {}
    for f in scales:
        acc = {k: np.zeros(7) for k in models}
        for img, lab in data:
            im, gt = downscale(img, lab, f)
            for k, m in models.items():
                acc[k] += counts(m.predict(im) >= m.threshold, gt)
        for k in models:
            res.setdefault(k, {})[f"x{f}"] = summarise(acc[k])
    return res


def table(res: dict) -> str:
    lines = ["| model | scale (mm/px) | P | R | F1 | P@2px | R@2px | F1@2px |", "|---|---|---|---|---|---|---|---|"]
    for k, per in res.items():
        for s, m in per.items():
            lines.append(f"| {k} | {s[1:]} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
                         f"{m['precision_tol2']:.3f} | {m['recall_tol2']:.3f} | {m['f1_tol2']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--baseline", type=Path, help="mtscrack_static.onnx (BGR raw 0..255, threshold 0.5)")
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    models = {"crack-unet": OnnxSeg.from_manifest(a.manifest)}
    if a.baseline:
        models["mtscrack (baseline)"] = OnnxSeg(a.baseline, "input_bgr", True, 1.0, [0, 0, 0], [1, 1, 1], 0.5)
    res = evaluate(models, read_split(a.split))
    print(table(res))
    if a.out:
        a.out.write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
