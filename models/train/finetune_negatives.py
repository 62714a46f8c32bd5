"""Fine-tune the crack or the roof model with hard negatives mined from photos that hold no
defect (e.g. `besikta simulate --defects 0` flights, or real photos you know are clean).

  nice /opt/besikta-train/bin/python models/train/finetune_negatives.py --model crack \
      --negatives /tmp/S71 /tmp/S72 --out /tmp/neg-crack --tag neg1 --max-minutes 20 --threads 2

1. Mining: the base model (float ONNX, `--base`, default the float file of the shipped int8 one;
   a half-resolution base such as roof 0.3.0 is recognised from its graph) runs over
   every photo of the `--negatives` folders at the photo's own scale (the flights must be
   inside the model's GSD tolerance, as the engine would run them: no resampling), 256 px
   tiles without overlap. Every connected group of pixels it calls a defect
   (probability >= the manifest's threshold, any class, at least `min_area_px`) gives one chip of `--chip` px
   centred on it: these are the model's own false alarms (lane-marking edges, paving joints,
   roof texture called moss...). `--random-chips` random chips per photo are added so that
   the rest of the photo stays known as background. All chips have empty masks.
2. Training: starts from the base weights (`common.unet_from_onnx`, BatchNorms folded and
   fixed), each batch `1 - --neg-share` from the model's own training sampler (crack:
   `train_crack.py`'s DeepCrack + CRACK500 training split with drone-scale mosaics and
   Brighton negatives; roof: `roofsynth.py`'s procedural roofs, which carry every positive
   the roof model knows) and `--neg-share` from the mined chips (flipped, turned, the same
   photometric jitter as the base sampler for cracks).
3. Export: one self-contained ONNX file `<out>/<name>-<tag>.onnx` and its manifest
   `<out>/<name>-<tag>.toml` (version `<base>+<tag>`, thresholds as the base manifest), and
   `<out>/negatives-<name>-<tag>.json` (chips mined per folder, iterations, time).

The card figures of the result come from `models/eval/eval_cards.py`; product-path figures
from `besikta process` + `besikta simulate --evaluate` on flights NOT used for mining.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, MODELS, UNet, export_like, freeze_batchnorm, log, onnx_is_half_res, ort_session, setup, unet_from_onnx  # noqa: E402

SEED = 7


def photos_of(folders: list[Path]) -> list[Path]:
    out = []
    for f in folders:
        ps = sorted(p for p in f.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not ps:
            raise SystemExit(f"{f}: no photos (.jpg/.png) in this folder")
        out += ps
    return out


def mine(photos: list[Path], onnx_path: Path, input_name: str, thr: float, min_area: int, chip: int,
         n_random: int, rng: np.random.Generator, max_per_photo: int) -> tuple[list[np.ndarray], dict]:
    """Chips (uint8 chip x chip x 3) centred on the base model's detections plus random ones."""
    from scipy import ndimage

    sess = ort_session(onnx_path)
    chips, stats = [], {"photos": len(photos), "components": 0, "hard_chips": 0, "random_chips": 0}
    half = chip // 2
    for p in photos:
        img = np.asarray(Image.open(p).convert("RGB"))
        h, w = img.shape[:2]
        ph, pw = -(-h // 256) * 256, -(-w // 256) * 256
        pad = np.pad(img, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        tiles, pos = [], []
        for y in range(0, ph, 256):
            for x in range(0, pw, 256):
                tiles.append(pad[y : y + 256, x : x + 256])
                pos.append((y, x))
        hit = np.zeros((ph, pw), bool)
        for i in range(0, len(tiles), 16):
            xb = np.stack(tiles[i : i + 16]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
            prob = sess.run(None, {input_name: xb})[0]
            for k, (y, x) in enumerate(pos[i : i + 16]):
                hit[y : y + 256, x : x + 256] = (prob[k] >= thr).any(0)
        hit = hit[:h, :w]
        lab, n = ndimage.label(hit)
        stats["components"] += n
        centres = []
        if n:
            for sl_i, sl in enumerate(ndimage.find_objects(lab), start=1):
                ys, xs = np.nonzero(lab[sl] == sl_i)
                if len(ys) < min_area:  # the engine drops these too (min_area_px)
                    continue
                j = rng.integers(len(ys))
                centres.append((sl[0].start + ys[j], sl[1].start + xs[j]))
        if len(centres) > max_per_photo:
            idx = rng.choice(len(centres), max_per_photo, replace=False)
            centres = [centres[i] for i in idx]
        for cy, cx in centres:
            y0 = int(np.clip(cy - half, 0, h - chip))
            x0 = int(np.clip(cx - half, 0, w - chip))
            chips.append(img[y0 : y0 + chip, x0 : x0 + chip].copy())
            stats["hard_chips"] += 1
        for _ in range(n_random):
            y0, x0 = int(rng.integers(0, h - chip + 1)), int(rng.integers(0, w - chip + 1))
            chips.append(img[y0 : y0 + chip, x0 : x0 + chip].copy())
            stats["random_chips"] += 1
        log(f"mined {p.parent.name}/{p.name}: {n} components, {len(chips)} chips so far")
    return chips, stats


class NegSampler:
    """Crops of the mined chips, flipped and turned, with an all-background mask."""

    def __init__(self, chips, size, rng, photometric=None):
        self.chips, self.size, self.rng, self.photometric = chips, size, rng, photometric

    def sample(self):
        img = self.chips[self.rng.integers(len(self.chips))]
        s, h, w = self.size, img.shape[0], img.shape[1]
        jy, jx = (h - s) // 2, (w - s) // 2
        y = int(np.clip((h - s) // 2 + self.rng.integers(-jy // 2, jy // 2 + 1), 0, h - s))
        x = int(np.clip((w - s) // 2 + self.rng.integers(-jx // 2, jx // 2 + 1), 0, w - s))
        img = img[y : y + s, x : x + s]
        if self.rng.random() < 0.5:
            img = img[:, ::-1]
        if self.rng.random() < 0.5:
            img = img[::-1]
        if self.rng.random() < 0.5:
            img = img.transpose(1, 0, 2)
        img = np.ascontiguousarray(img)
        if self.photometric is not None:
            img = self.photometric(img)
        return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["crack", "roof"], required=True)
    ap.add_argument("--negatives", type=Path, nargs="*", default=[],
                    help="folders of photos without defects (none: no mined chips, --neg-share must be 0)")
    ap.add_argument("--base", type=Path, help="float ONNX to start from (default: the shipped float file)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tag", default="neg1")
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--chip", type=int, default=192, help="mined chip size, photo px")
    ap.add_argument("--random-chips", type=int, default=4, help="random chips per photo besides the mined ones")
    ap.add_argument("--max-per-photo", type=int, default=60, help="at most this many mined chips per photo")
    ap.add_argument("--neg-share", type=float, default=0.375, help="share of each batch taken from the mined chips")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop training after this many minutes (0: no limit)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--drone-scale", type=float, nargs=2, metavar=("LO", "HI"),
                    help="crack: draw the drone-scale mosaics at LO-HI mm/px instead of 4-16")
    ap.add_argument("--faint", type=float, default=0.0,
                    help="crack: share of crack samples whose cracks are made faint (CrackSampler.faint)")
    a = ap.parse_args()
    if not a.negatives and a.neg_share > 0:
        ap.error("--neg-share needs --negatives folders")
    setup(SEED, a.threads)
    t_start = time.time()
    folder = MODELS / a.model
    manifest = next(folder.glob("*.toml"))
    base_man = tomllib.loads(manifest.read_text())
    name, base_version = base_man["name"], base_man["version"]
    # the float file beside the int8 one the manifest names (roof 0.3.0: roof-damage-half.onnx)
    base = a.base or folder / base_man["model"].replace("-int8", "")
    version = f"{base_version.split('+')[0]}+{a.tag}"
    base_desc = str(base) if a.base else f"{name} {base_version} ({base.name})"
    a.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)

    photos = photos_of(a.negatives)
    chips, stats = mine(photos, base, base_man["input"]["name"], base_man["thresholds"]["confidence"],
                        base_man["thresholds"]["min_area_px"], a.chip,
                        a.random_chips, rng, a.max_per_photo)
    log(f"mined: {stats}")

    n_cls = len(base_man["classes"])
    if a.model == "crack":
        from crackdata import CrackSampler, brighton_negatives, split
        from train_crack import ARCH, loss_fn

        train, _val = split([DATA / "cracks" / "deepcrack", DATA / "cracks" / "crack500"], 0.15, SEED)
        base_sampler = CrackSampler(train, brighton_negatives(), a.crop, rng)
        if a.drone_scale:
            base_sampler.drone_range = tuple(a.drone_scale)
        base_sampler.faint_share = a.faint
        neg = NegSampler(chips, a.crop, rng, base_sampler.photometric)

        def batch(n_neg):
            xs, ys = [], []
            for _ in range(a.batch - n_neg):
                img, mask = base_sampler.sample()
                xs.append(img)
                ys.append(mask[None].astype(np.float32))
            for _ in range(n_neg):
                xs.append(neg.sample())
                ys.append(np.zeros((1, a.crop, a.crop), np.float32))
            return xs, ys
    else:
        from roofsynth import roof_sample
        from train_roof import ARCH, loss_fn

        neg = NegSampler(chips, a.crop, rng)

        def batch(n_neg):
            xs, ys = [], []
            for _ in range(a.batch - n_neg):
                img, lab = roof_sample(rng, a.crop)
                xs.append(img)
                ys.append(np.stack([(lab == k + 1) for k in range(n_cls)]).astype(np.float32))
            for _ in range(n_neg):
                xs.append(neg.sample())
                ys.append(np.zeros((n_cls, a.crop, a.crop), np.float32))
            return xs, ys

    model = unet_from_onnx(UNet(n_cls, **ARCH, half_res=onnx_is_half_res(base)), base)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.iters)
    model.train()
    freeze_batchnorm(model)
    n_neg = int(round(a.batch * a.neg_share))
    t0, run, it = time.time(), 0.0, 0
    for it in range(1, a.iters + 1):
        xs, ys = batch(n_neg)
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255.0
        y = torch.from_numpy(np.stack(ys))
        loss = loss_fn(model.forward_logits(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if it > 1 else loss.item()
        if it % 25 == 0:
            el = time.time() - t0
            log(f"it {it}/{a.iters} loss {run:.4f} {el / it:.3f} s/it eta {(a.iters - it) * el / it / 60:.1f} min")
        if a.max_minutes and time.time() - t0 > a.max_minutes * 60:
            log(f"stopped at iteration {it} of {a.iters}: --max-minutes {a.max_minutes} reached")
            break
    train_min = (time.time() - t0) / 60
    model.eval()

    stem = f"{name}-{a.tag}"
    onnx_path = a.out / f"{stem}.onnx"
    export_like(model, base_man, onnx_path, version,
                f"fine-tuned by models/train/finetune_negatives.py from {base_desc} "
                f"with {len(chips)} negative chips mined from {', '.join(p.name for p in a.negatives)}, "
                f"seed {SEED}, {datetime.date.today()}")
    result = dict(version=version, base_version=base_version, iters_done=it, train_minutes=round(train_min, 2),
                  total_minutes=round((time.time() - t_start) / 60, 2), mined=stats,
                  args={k: str(v) for k, v in vars(a).items()})
    (a.out / f"negatives-{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    log(f"done: {onnx_path} ({train_min:.1f} min training)")


if __name__ == "__main__":
    main()
