"""Fine-tune the crack model on reviewed findings: a folder written by
`besikta export-training` next to the base training data.

  nice /opt/besikta-train/bin/python models/train/finetune_crack.py \
      --export /tmp/export --out benches/results/review-loop --tag ft1

Starts from the float ONNX the base manifest came from (default `models/crack/crack-unet.onnx`;
the BatchNorms the exporter folded stay folded and fixed, see `common.unet_from_onnx`), then
trains on batches that mix

- the base sampler of `train_crack.py` (DeepCrack + CRACK500 training split, drone-scale
  mosaics, Brighton hard negatives; `--review-share` of each batch is left for reviews) so
  the model does not forget what it knew, and
- the export's chips of this model (`<model>/images`, `<model>/masks`, `manifest.json`):
  `positive` chips (confirmed or corrected findings) with their masks, `hard_negative` chips
  (rejected findings) and `background` chips with empty masks. Chips that an unreviewed
  finding reaches into are dropped (the manifest's `unreviewed_overlap`): nobody said what
  is there. Crops of the chips are taken around the chip centre, where the finding is.

Then it exports one self-contained ONNX file `<out>/crack-unet-<tag>.onnx`, writes its
manifest `<out>/crack-unet-<tag>.toml` (version `<base version>+<tag>`, e.g. 0.1.0+ft1),
evaluates base and fine-tuned model on the card's validation split (the same harness as the
card's table: `models/eval/eval_crack.py`), and writes `<out>/MODEL_CARD-<tag>.md` (what
data, how many reviews, the validation figures before and after) and
`<out>/finetune-<tag>.json`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from common import DATA, MODELS, REPO, UNet, export_onnx, freeze_batchnorm, log, setup, time_onnx, unet_from_onnx, write_manifest  # noqa: E402
from crackdata import CrackSampler, brighton_negatives, split  # noqa: E402
from train_crack import ARCH, SEED, loss_fn  # noqa: E402


def read_export(export: Path, model_name: str) -> tuple[list[tuple[np.ndarray, np.ndarray, str]], dict]:
    """The export's chips of `model_name` as (image uint8 HxWx3, mask bool HxW, kind)."""
    mpath = export / "manifest.json"
    if not mpath.is_file():
        raise SystemExit(f"{mpath} is missing: give --export the folder `besikta export-training -o` wrote")
    man = json.loads(mpath.read_text())
    entry = next((m for m in man.get("models", []) if m["name"] == model_name), None)
    if entry is None:
        names = [m["name"] for m in man.get("models", [])]
        raise SystemExit(f"{mpath} has no chips of model {model_name} (it has: {names}); was the flight reviewed?")
    chips, stats = [], Counter()
    reviews = {}
    for c in man["chips"]:
        if c["model"] != model_name:
            continue
        if c.get("finding_id") is not None:
            reviews[(c["flight"], c["finding_id"])] = c["review"]
        if c.get("unreviewed_overlap"):
            stats[f"dropped_unreviewed_overlap_{c['kind']}"] += 1
            continue
        img_path = export / c["file"]
        img = np.asarray(Image.open(img_path).convert("RGB"))
        mask_path = img_path.parent.parent / "masks" / (img_path.stem + ".png")
        if not mask_path.is_file():
            raise SystemExit(f"{mask_path} is missing (segmentation chips need their mask)")
        mask = np.asarray(Image.open(mask_path)) == 1  # value = class index, crack = 1
        chips.append((img, mask, c["kind"]))
        stats[c["kind"]] += 1
    if not chips:
        raise SystemExit(f"{mpath}: no usable chips of {model_name} ({dict(stats)})")
    stats_out = dict(stats)
    stats_out["reviewed_findings"] = dict(Counter(reviews.values()))
    stats_out["flights"] = sorted({c["flight"] for c in man["chips"] if c["model"] == model_name})
    return chips, stats_out


class ReviewSampler:
    """Crops of the review chips, around the centre (where the finding is), flipped/turned.
    The kind is drawn first (`shares`: positive, hard_negative, background), then a chip of
    that kind, so a few long rejected outlines (hundreds of chips each) do not drown the
    confirmed findings."""

    def __init__(self, chips, size: int, rng: np.random.Generator, photometric, shares, scale=(1.0, 1.0)):
        self.scale = scale
        self.by_kind = {}
        for c in chips:
            self.by_kind.setdefault(c[2], []).append(c)
        kinds = [k for k in shares if self.by_kind.get(k)]
        w = np.array([shares[k] for k in kinds], float)
        self.kinds, self.weights = kinds, w / w.sum()
        self.size, self.rng, self.photometric = size, rng, photometric

    def sample(self):
        pool = self.by_kind[self.kinds[self.rng.choice(len(self.kinds), p=self.weights)]]
        img, mask, _ = pool[self.rng.integers(len(pool))]
        s = self.size
        f = float(self.rng.uniform(*self.scale))
        if f != 1.0:  # the engine runs photos at their own GSD inside the model's tolerance
            n = max(s, int(round(mask.shape[0] * f)))
            img = np.asarray(Image.fromarray(img).resize((n, n), Image.BILINEAR))
            m = Image.fromarray(mask.astype(np.float32)).resize((n, n), Image.BILINEAR)
            mask = np.asarray(m) > 0.25
        h, w = mask.shape
        jy, jx = (h - s) // 3, (w - s) // 3
        y = int(np.clip((h - s) // 2 + self.rng.integers(-jy, jy + 1), 0, h - s))
        x = int(np.clip((w - s) // 2 + self.rng.integers(-jx, jx + 1), 0, w - s))
        img, mask = img[y : y + s, x : x + s], mask[y : y + s, x : x + s]
        if self.rng.random() < 0.5:
            img, mask = img[:, ::-1], mask[:, ::-1]
        if self.rng.random() < 0.5:
            img, mask = img[::-1], mask[::-1]
        if self.rng.random() < 0.5:
            img, mask = img.transpose(1, 0, 2), mask.T
        return self.photometric(np.ascontiguousarray(img)), np.ascontiguousarray(mask)


def make_batch(samplers_and_counts):
    xs, ys = [], []
    for sampler, n in samplers_and_counts:
        for _ in range(n):
            img, mask = sampler.sample()
            xs.append(img)
            ys.append(mask)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255.0
    y = torch.from_numpy(np.stack(ys)).float()[:, None]
    return x, y


def card_section(tag: str, version: str, base_version: str, stats: dict, args, res: dict, minutes: float) -> str:
    rows = []
    for scale in ("x1", "x4", "x8", "x16"):
        b, f = res["base"][scale], res["finetuned"][scale]
        rows.append(f"| {scale[1:]} | {b['precision']:.3f} -> {f['precision']:.3f} | {b['recall']:.3f} -> {f['recall']:.3f} "
                    f"| {b['f1']:.3f} -> {f['f1']:.3f} | {b['f1_tol2']:.3f} -> {f['f1_tol2']:.3f} |")
    rv = stats["reviewed_findings"]
    return f"""## Fine-tuned from reviews: crack-unet {version}

Made by `models/train/finetune_crack.py --tag {tag}` on {datetime.date.today()} from
crack-unet {base_version} (`{args.base.name}`), {minutes:.1f} min wall clock ({args.iters_done} of {args.iters} planned
iterations of batch {args.batch}, {args.review_share:.0%} review chips per batch drawn {args.kind_shares} by
kind positive/hard negative/background, chip scale {args.chip_scale}, lr {args.lr}, {args.threads} threads).

- Reviews: export `{args.export}` of flight(s) {', '.join(stats['flights'])}; reviewed findings
  with chips of this model: {', '.join(f'{v} {k}' for k, v in sorted(rv.items()))}.
- Chips used: {stats.get('positive', 0)} positive, {stats.get('hard_negative', 0)} hard negative,
  {stats.get('background', 0)} background (chips an unreviewed finding reaches into are dropped:
  {sum(v for k, v in stats.items() if k.startswith('dropped_'))}).
- Base data as in `train_crack.py` (DeepCrack + CRACK500 training split, seed {SEED}; Brighton
  negatives), {1 - args.review_share:.0%} of each batch, so the card's validation split stays unseen.

Validation (the card's harness and split, 88 held-out files, pixel metrics, threshold 0.5),
base -> fine-tuned, both float:

| scale (mm/px) | P | R | F1 | F1@2px |
|---|---|---|---|---|
""" + "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", type=Path, required=True, help="folder written by besikta export-training")
    ap.add_argument("--data", type=Path, nargs="+",
                    default=[DATA / "cracks" / "deepcrack", DATA / "cracks" / "crack500"], help="base training data")
    ap.add_argument("--manifest", type=Path, default=MODELS / "crack" / "crack-unet.toml", help="base manifest")
    ap.add_argument("--base", type=Path, default=MODELS / "crack" / "crack-unet.onnx",
                    help="float ONNX of the base model (the int8 file cannot be fine-tuned)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tag", default="ft1", help="version suffix: <base version>+<tag>")
    ap.add_argument("--iters", type=int, default=600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--review-share", type=float, default=0.5, help="share of each batch taken from the review chips")
    ap.add_argument("--kind-shares", type=float, nargs=3, default=[0.4, 0.4, 0.2],
                    metavar=("POS", "NEG", "BG"), help="how review crops are drawn by chip kind")
    ap.add_argument("--chip-scale", type=float, nargs=2, default=[1.0, 1.0], metavar=("MIN", "MAX"),
                    help="resize review chips by a random factor in [MIN, MAX] (e.g. 0.6 1.0: chips are at the "
                         "model's GSD, photos inside the tolerance are run at their own, up to 2x coarser)")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop training after this many minutes (0: no limit)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-eval", action="store_true", help="skip the before/after validation")
    a = ap.parse_args()
    setup(SEED, a.threads)
    t_start = time.time()
    base_man = tomllib.loads(a.manifest.read_text())
    name = base_man["name"]
    base_version = base_man["version"]
    version = f"{base_version.split('+')[0]}+{a.tag}"
    a.out.mkdir(parents=True, exist_ok=True)

    chips, stats = read_export(a.export, name)
    log(f"review chips of {name}: {stats}")
    model = unet_from_onnx(UNet(1, **ARCH), a.base)
    train, _val = split(a.data, 0.15, SEED)
    rng = np.random.default_rng(SEED)
    base_sampler = CrackSampler(train, brighton_negatives(), a.crop, rng)
    shares = dict(positive=a.kind_shares[0], hard_negative=a.kind_shares[1], background=a.kind_shares[2])
    review_sampler = ReviewSampler(chips, a.crop, rng, base_sampler.photometric, shares, tuple(a.chip_scale))
    n_rev = int(round(a.batch * a.review_share))
    mix = [(base_sampler, a.batch - n_rev), (review_sampler, n_rev)]

    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.iters)
    model.train()
    freeze_batchnorm(model)
    t0, run = time.time(), 0.0
    for it in range(1, a.iters + 1):
        x, y = make_batch(mix)
        loss = loss_fn(model.forward_logits(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if it > 1 else loss.item()
        if a.max_minutes and time.time() - t0 > a.max_minutes * 60:
            log(f"stopped at iteration {it} of {a.iters}: --max-minutes {a.max_minutes} reached")
            break
        if it % 25 == 0:
            el = time.time() - t0
            log(f"it {it}/{a.iters} loss {run:.4f} {el / it:.3f} s/it eta {(a.iters - it) * el / it / 60:.1f} min")
    train_min = (time.time() - t0) / 60
    a.iters_done = it
    model.eval()

    stem = f"{name}-{a.tag}"
    onnx_path = a.out / f"{stem}.onnx"
    export_onnx(model, onnx_path, base_man["input"]["name"], base_man["output"]["name"], base_man["input"]["width"])
    ms = time_onnx(onnx_path, base_man["input"]["name"])
    tables = {k: v for k, v in base_man.items() if isinstance(v, dict)}
    write_manifest(
        a.out / f"{stem}.toml",
        dict(name=name, version=version, task=base_man["task"], model=onnx_path.name,
             license=base_man["license"] + "; fine-tuned on the organisation's reviewed findings",
             provenance=f"fine-tuned by models/train/finetune_crack.py from {name} {base_version} ({a.base.name}) "
                        f"on {a.export.name} ({sum(stats['reviewed_findings'].values())} reviewed findings), seed {SEED}, "
                        f"{datetime.date.today()}"),
        tables,
        base_man["classes"],
    )
    result = dict(version=version, base_version=base_version, train_minutes=round(train_min, 2),
                  ms_per_tile_1thread=ms, chips=stats, args={k: str(v) for k, v in vars(a).items()})
    if not a.no_eval:
        import eval_crack

        split_file = a.manifest.parent / "val_split.txt"
        models = {"base": eval_crack.OnnxSeg(a.base, base_man["input"]["name"], False, 1 / 255, [0, 0, 0], [1, 1, 1], 0.5),
                  "finetuned": eval_crack.OnnxSeg.from_manifest(a.out / f"{stem}.toml")}
        res = eval_crack.evaluate(models, eval_crack.read_split(split_file))
        print(eval_crack.table(res))
        result["validation"] = res
        (a.out / f"MODEL_CARD-{a.tag}.md").write_text(
            card_section(a.tag, version, base_version, stats, a, res, (time.time() - t_start) / 60))
    (a.out / f"finetune-{a.tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    log(f"done: {onnx_path} ({train_min:.1f} min training, {(time.time() - t_start) / 60:.1f} min in all)")


if __name__ == "__main__":
    main()
