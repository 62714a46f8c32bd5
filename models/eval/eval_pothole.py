"""Precision, recall, F1 (at the manifest's confidence threshold, after NMS) and mAP@0.5 of a
"yolov8"-layout detection ONNX model on a YOLO-txt labelled folder (images/ + labels/).
Each image is resized (stretched) to the model input size, as in training.

  /opt/besikta-train/bin/python models/eval/eval_pothole.py \
      --manifest models/pothole/pothole-det.toml --data /work/shared/data/potholes/valid \
      --out models/pothole/metrics.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from common import ort_session  # noqa: E402
from overlay import nms  # noqa: E402


def read_labels(path: Path, w: float, h: float) -> np.ndarray:
    """YOLO txt (class cx cy w h, normalised) -> [x1, y1, x2, y2] in a w x h frame."""
    out = []
    if path.exists():
        for line in path.read_text().split("\n"):
            v = line.split()
            if len(v) >= 5:
                _, cx, cy, bw, bh = (float(t) for t in v[:5])
                out.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
    return np.asarray(out, np.float64).reshape(-1, 4)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (aa[:, None] + ab[None] - inter + 1e-9)


def detect(sess, input_name: str, m: dict, img: np.ndarray, min_score: float) -> np.ndarray:
    """[x1, y1, x2, y2, score] after score threshold and NMS, in model input pixels."""
    i = m["input"]
    x = img.astype(np.float32).transpose(2, 0, 1)[None]
    if i["channels"] == "bgr":
        x = x[:, ::-1]
    x = (x * i["scale"] - np.asarray(i["mean"], np.float32).reshape(1, 3, 1, 1)) / np.asarray(i["std"], np.float32).reshape(1, 3, 1, 1)
    o = sess.run(None, {input_name: np.ascontiguousarray(x, np.float32)})[0][0]
    sc = o[4:].max(0)
    sel = sc >= min_score
    cx, cy, w, h = o[0][sel], o[1][sel], o[2][sel], o[3][sel]
    b = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, sc[sel]], 1)
    if len(b) == 0:
        return b.reshape(0, 5)
    return b[nms(b[:, :4], b[:, 4], m["thresholds"]["nms_iou"])]


def average_precision(scores, tp, n_gt) -> float:
    """VOC/COCO-style all-point interpolated AP."""
    if n_gt == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores))
    tp = np.asarray(tp, np.float64)[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    rec = ctp / n_gt
    prec = ctp / np.maximum(ctp + cfp, 1e-9)
    mrec = np.concatenate([[0], rec, [1]])
    mpre = np.concatenate([[1], prec, [0]])
    for k in range(len(mpre) - 2, -1, -1):
        mpre[k] = max(mpre[k], mpre[k + 1])
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def match(dets: np.ndarray, gts: np.ndarray, iou_thr: float = 0.5) -> list[int]:
    """Greedy by score: a detection is a TP when it hits an unmatched GT with IoU >= 0.5."""
    tp = []
    used = np.zeros(len(gts), bool)
    if len(dets) and len(gts):
        ious = iou_matrix(dets[:, :4], gts)
    for k in np.argsort(-dets[:, 4]) if len(dets) else []:
        hit = 0
        if len(gts):
            cand = np.where(~used, ious[k], -1)
            j = int(cand.argmax())
            if cand[j] >= iou_thr:
                used[j] = True
                hit = 1
        tp.append((float(dets[k, 4]), hit))
    return tp


def evaluate(manifest: Path, data: Path) -> dict:
    m = tomllib.loads(manifest.read_text())
    sess = ort_session(manifest.parent / m["model"])
    name, W, H = m["input"]["name"], m["input"]["width"], m["input"]["height"]
    conf = m["thresholds"]["confidence"]
    all_scores, all_tp, n_gt = [], [], 0
    tp_c = fp_c = 0
    images = sorted(p for p in (data / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for p in images:
        img = np.asarray(Image.open(p).convert("RGB").resize((W, H), Image.BILINEAR))
        gts = read_labels(data / "labels" / (p.stem + ".txt"), W, H)
        n_gt += len(gts)
        dets = detect(sess, name, m, img, 0.01)
        for s, hit in match(dets, gts):
            all_scores.append(s)
            all_tp.append(hit)
        hi = dets[dets[:, 4] >= conf]
        mt = match(hi, gts)
        tp_c += sum(h for _, h in mt)
        fp_c += sum(1 - h for _, h in mt)
    p = tp_c / max(tp_c + fp_c, 1)
    r = tp_c / max(n_gt, 1)
    return {"images": len(images), "gt_boxes": n_gt, "confidence": conf, "tp": tp_c, "fp": fp_c, "fn": n_gt - tp_c,
            "precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-9),
            "map50": average_precision(all_scores, all_tp, n_gt)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    res = evaluate(a.manifest, a.data)
    print(json.dumps(res, indent=2))
    if a.out:
        a.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
