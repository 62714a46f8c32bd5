"""Distil the shipped crack U-Net into a cheaper shape, starting from the shipped weights
wherever the shapes agree, so that the student keeps what the teacher knows.

  OMP_NUM_THREADS=2 .cache/trainvenv/bin/python models/train/distill_crack.py --shape light_top \
      --out /tmp/crack-lt --tag lt1 --iters 3000

- Teacher: the float file beside the shipped int8 crack model (`--base`), loaded with
  `common.unet_from_onnx` (BatchNorms folded and fixed), frozen.
- Student: `UNet(**train_crack.ARCH, <shape>=True)`. `light_top`: the full-resolution decoder
  level adds the upsampled features to the skip instead of running a 3x3 convolution over
  both (about a quarter of the tile cost, `benches/python/unet_variant_cost.py`); every other
  weight is the teacher's, copied (s48's lt2, with `--transfer`: 13.2 against 20.8 ms per tile,
  better through the product, strict card F1 4-8 points lower at drone scales; not shipped,
  `benches/results/crack-cheaper-2026-12-07-s48.md`). `s2d`: nothing can be copied (other input shape), the
  student starts from scratch and learns from the teacher only (slower to converge).
  `--ch` gives the student other channel widths (s46: `--shape s2d --ch 16,16,24,64,144
  --lr 3e-3 --kd 2 --iters 12000`, the s2d-wide shape of `benches/python/unet_variant_cost.py`;
  measured and not shipped, `benches/results/crack-s2d-distilled-2026-12-07-s46.md`). s47 trained
  that student on with `--init` and `--transfer` (kd3, kd4; also not shipped,
  `benches/results/crack-s2d-distilled-transfer-2026-12-07-s47.md`).
- Loss on each batch of `train_crack.py`'s sampler (DeepCrack + CRACK500 training split,
  drone-scale mosaics, Brighton negatives): `train_crack.loss_fn` against the labels plus
  `--kd` times the binary cross-entropy against the teacher's probabilities on the same crop.
  The teacher's soft targets carry what the labels do not say (how sure it is on marking edges
  and joints), which a student trained on labels alone (s43's s2d model) lost.
- Transfer photos (`--transfer` folders, e.g. `besikta simulate --defects 0` flights at a GSD the
  model accepts): unlabelled drone-scale ground. Chips are mined from them as
  `finetune_negatives.py` does (one on each place the `--init` student, or else the teacher,
  fires, plus random ones) and `--transfer-share` of each batch is drawn from them. They carry
  **no label**: only the loss against the teacher counts on them, so the student learns how the
  teacher treats slab joints and marking edges at drone scale without being told that such ground
  never holds a crack (the label-only fine-tune of 2026-12-02 learned exactly that, MODEL_CARD).
- `--init`: start from an earlier student's float ONNX of the same shape (BatchNorms folded and
  fixed, as `common.unet_from_onnx` loads them), to train it on.
- `--drone-range LO HI`: mm/px of the labelled drone-scale mosaics (`CrackSampler.drone_range`,
  default 4-16). s48's kd5 (kd4 trained on at 8-16) did not gain at those scales, not shipped
  (`benches/results/crack-cheaper-2026-12-07-s48.md`).
- Export: `<out>/crack-unet-<tag>.onnx` (one self-contained file) and its manifest (version
  `<base>+<tag>`, thresholds as the base), `<out>/distill-<tag>.json` (iterations, time, loss).

Card figures from `models/eval/eval_crack.py`; product figures from `besikta process` on the
simulated trust flights and Brighton, as for every crack model change.
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
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, MODELS, UNet, export_like, freeze_batchnorm, log, setup, unet_from_onnx  # noqa: E402
from crackdata import CrackSampler, brighton_negatives, split  # noqa: E402
from finetune_negatives import NegSampler, mine, photos_of  # noqa: E402
from train_crack import ARCH, SEED, batch, loss_fn  # noqa: E402


def copy_matching(student: UNet, teacher: UNet) -> tuple[int, int]:
    """Copy every parameter and buffer of `teacher` into `student` where the name and shape
    agree; returns (copied, student tensors)."""
    src = teacher.state_dict()
    dst = student.state_dict()
    n = 0
    for k, v in dst.items():
        if k in src and src[k].shape == v.shape:
            dst[k] = src[k].clone()
            n += 1
    student.load_state_dict(dst)
    return n, len(dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=["light_top", "s2d"], required=True)
    ap.add_argument("--base", type=Path, help="teacher float ONNX (default: the shipped float crack file)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tag", default="lt1")
    ap.add_argument("--iters", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--kd", type=float, default=1.0, help="weight of the loss against the teacher's probabilities")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop training after this many minutes (0: no limit)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", type=Path, help="float ONNX of an earlier student of the same shape to start from")
    ap.add_argument("--transfer", type=Path, nargs="*", default=[],
                    help="folders of unlabelled drone photos; chips of them are learnt from the teacher only")
    ap.add_argument("--transfer-share", type=float, default=0.25, help="share of each batch from the transfer chips")
    ap.add_argument("--chip", type=int, default=192, help="transfer chip size, photo px")
    ap.add_argument("--drone-range", type=float, nargs=2, metavar=("LO", "HI"),
                    help="mm/px range of the labelled drone-scale mosaics (default: CrackSampler's, 4-16)")
    ap.add_argument("--ch", help="student channels per level, comma-separated (default: the teacher's, "
                                 "train_crack.ARCH); e.g. 16,16,24,64,144 for s2d-wide")
    a = ap.parse_args()
    setup(SEED, a.threads)
    t_start = time.time()
    folder = MODELS / "crack"
    manifest = next(folder.glob("*.toml"))
    base_man = tomllib.loads(manifest.read_text())
    base = a.base or folder / base_man["model"].replace("-int8", "")
    a.out.mkdir(parents=True, exist_ok=True)

    teacher = unet_from_onnx(UNet(1, **ARCH), base).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    arch = dict(ARCH, ch=tuple(int(c) for c in a.ch.split(","))) if a.ch else ARCH
    student = UNet(1, **arch, **{a.shape: True})
    if a.init:
        student = unet_from_onnx(student, a.init)
        copied, total = len(student.state_dict()), len(student.state_dict())
        log(f"student {a.shape}: started from {a.init}")
    else:
        copied, total = copy_matching(student, teacher) if a.shape == "light_top" else (0, len(student.state_dict()))
        log(f"student {a.shape}: {copied} of {total} tensors copied from {base.name}")

    rng = np.random.default_rng(SEED)
    train, _val = split([DATA / "cracks" / "deepcrack", DATA / "cracks" / "crack500"], 0.15, SEED)
    sampler = CrackSampler(train, brighton_negatives(), a.crop, rng)
    if a.drone_range:
        sampler.drone_range = tuple(a.drone_range)
    n_tr, mined = 0, {}
    if a.transfer:
        miner = a.init or base
        chips, mined = mine(photos_of(a.transfer), miner, base_man["input"]["name"],
                            base_man["thresholds"]["confidence"], base_man["thresholds"]["min_area_px"],
                            a.chip, 4, rng, 60)
        mined["miner"] = str(miner)
        log(f"transfer chips: {mined}")
        tr_sampler = NegSampler(chips, a.crop, rng, sampler.photometric)
        n_tr = int(round(a.batch * a.transfer_share))

    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.iters, pct_start=0.05)
    student.train()
    if a.shape == "light_top" or a.init:
        freeze_batchnorm(student)  # the copied BatchNorms hold folded (identity) statistics
    t0, run, run_kd, it = time.time(), 0.0, 0.0, 0
    for it in range(1, a.iters + 1):
        x, y = batch(sampler, a.batch - n_tr)
        if n_tr:
            xt = np.stack([tr_sampler.sample() for _ in range(n_tr)])
            x = torch.cat([x, torch.from_numpy(xt).permute(0, 3, 1, 2).float() / 255.0])
        with torch.no_grad():
            soft = teacher(x)
        logits = student.forward_logits(x)
        hard = loss_fn(logits[: a.batch - n_tr], y)  # the transfer chips have no label
        kd = F.binary_cross_entropy_with_logits(logits, soft)
        loss = hard + a.kd * kd
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * hard.item() if it > 1 else hard.item()
        run_kd = 0.98 * run_kd + 0.02 * kd.item() if it > 1 else kd.item()
        if it % 25 == 0:
            el = time.time() - t0
            log(f"it {it}/{a.iters} label loss {run:.4f} teacher loss {run_kd:.4f} {el / it:.3f} s/it "
                f"eta {(a.iters - it) * el / it / 60:.1f} min")
        if a.max_minutes and time.time() - t0 > a.max_minutes * 60:
            log(f"stopped at iteration {it} of {a.iters}: --max-minutes {a.max_minutes} reached")
            break
    train_min = (time.time() - t0) / 60
    student.eval()

    name, base_version = base_man["name"], base_man["version"]
    onnx_path = a.out / f"{name}-{a.tag}.onnx"
    export_like(student, base_man, onnx_path, f"{base_version.split('+')[0]}+{a.tag}",
                f"distilled by models/train/distill_crack.py ({a.shape}) from {name} {base_version} "
                f"({base.name}), seed {SEED}, {datetime.date.today()}")
    result = dict(shape=a.shape, iters_done=it, train_minutes=round(train_min, 2),
                  total_minutes=round((time.time() - t_start) / 60, 2), label_loss=round(run, 4),
                  teacher_loss=round(run_kd, 4), copied_tensors=copied, transfer_mined=mined, args={k: str(v) for k, v in vars(a).items()})
    (a.out / f"distill-{a.tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    log(f"done: {onnx_path} ({train_min:.1f} min training)")


if __name__ == "__main__":
    main()
