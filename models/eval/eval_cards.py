"""The model cards' figures for every shipped model of one or more model folders, side by side:
crack-unet pixel F1 (strict and 2 px) on the held-out split at 1/4/8/16 mm/px
(`eval_crack.py`), pothole-det P/R/F1/mAP@0.5 on potholes/valid (`eval_pothole.py`) and
roof-damage per-class F1 on the 150 synthetic validation roofs (`train_roof.evaluate_synthetic`).
It calls those harnesses' own functions, so the figures are computed exactly as the cards'.

    .cache/speedvenv/bin/python models/train/quantize_int8.py --float .cache/fp32   # float copies
    .cache/speedvenv/bin/python models/eval/eval_cards.py .cache/fp32 models --out benches/results/int8-accuracy.json

Each folder must hold crack/, pothole/ and roof/ with a manifest each (as `models/` and the
output of `models/train/quantize_int8.py` do). Needs numpy, scipy, pillow and onnxruntime;
not torch: the training modules' torch imports are stood in for (only their evaluation
functions, which use onnxruntime, are called).
"""
from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAIN = HERE.parent / "train"
DATA = Path("/work/shared/data")


def _stand_in_torch() -> None:
    """`common.py` and `train_roof.py` import torch at the top for training; evaluation does not
    use it. Register empty modules so that those files import without it."""
    try:
        import torch  # noqa: F401

        return
    except ImportError:
        pass
    torch = types.ModuleType("torch")
    nn = types.ModuleType("torch.nn")
    fn = types.ModuleType("torch.nn.functional")
    nn.Module = object
    nn.functional = fn
    torch.nn = nn
    sys.modules.update({"torch": torch, "torch.nn": nn, "torch.nn.functional": fn})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    _stand_in_torch()
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(TRAIN))
    if "torch" in sys.modules and not hasattr(sys.modules["torch"], "Tensor"):
        # common.py defines nn.Module subclasses with nn.Sequential etc. at import: give the
        # stand-in the names it touches at class-definition time.
        nn = sys.modules["torch.nn"]
        for n in ("Sequential", "Conv2d", "BatchNorm2d", "ReLU", "ModuleList", "Upsample", "MaxPool2d"):
            setattr(nn, n, object)
    import eval_crack
    import eval_pothole
    import train_roof

    results = {}
    for folder in a.folders:
        key = str(folder)
        res = {}
        crack = eval_crack.OnnxSeg.from_manifest(folder / "crack" / "crack-unet.toml")
        res["crack-unet"] = eval_crack.evaluate({"m": crack}, eval_crack.read_split(HERE.parent / "crack" / "val_split.txt"))["m"]
        res["pothole-det"] = eval_pothole.evaluate(folder / "pothole" / "pothole-det.toml", a.data / "potholes" / "valid")
        roof_manifest = folder / "roof" / "roof-damage.toml"
        import tomllib

        roof_model = roof_manifest.parent / tomllib.loads(roof_manifest.read_text())["model"]
        res["roof-damage"] = train_roof.evaluate_synthetic(roof_model)
        results[key] = res
        print(f"== {key}", flush=True)
        for s, m in res["crack-unet"].items():
            print(f"crack-unet {s}: F1 {m['f1']:.3f}  F1@2px {m['f1_tol2']:.3f}  P {m['precision']:.3f}  R {m['recall']:.3f}")
        p = res["pothole-det"]
        print(f"pothole-det: P {p['precision']:.3f}  R {p['recall']:.3f}  F1 {p['f1']:.3f}  mAP@0.5 {p['map50']:.3f}")
        for c, m in res["roof-damage"].items():
            print(f"roof-damage {c}: P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}")
    if a.out:
        a.out.write_text(json.dumps(results, indent=1, default=float) + "\n")
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
