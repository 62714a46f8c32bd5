#!/usr/bin/env bash
# Measure the review -> fine-tune loop (issue 16) on simulated flights, through the product
# path. NOT part of the product: the reviewer is scripted from the simulation's truth.
#
#   1. simulate flight A (seed 21, central Helsinki) and flight B (seed 22, ~490 m south-west),
#      and flight C (seed 23, ~650 m west), all 25 photos at 20 m, 2000 px wide (15 mm/px: fine
#      enough for the crack model);
#   2. scripts/review_loop.py: besikta serve on a fresh data folder, upload + process A, review
#      every finding through PUT /api/v1/findings/{id}/review (confirm matches of the truth,
#      reject the rest as not-a-defect), besikta export-training;
#   3. models/train/finetune_crack.py on that export (nice, 2 threads, at most 12 min of training);
#   4. besikta process B and C (held out: other seeds, other streets) with the shipped models, with the float base crack model and with the
#      fine-tuned one (pothole and roof models unchanged), scored by scripts/loop_eval.py.
#
# BIN=path/to/besikta (default target/release/besikta) WORK=/tmp/review-loop OUT=results folder.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="${BIN:-$root/target/release/besikta}"
work="${WORK:-/tmp/review-loop}"
out="${OUT:-$root/benches/results/review-loop}"
py="${PY:-/opt/besikta-train/bin/python}"
reg=fixtures/registers/helsinki.osm.pbf
rm -rf "$work" && mkdir -p "$work/svcA" "$out"
sim=(--assets "$reg" --photos 25 --overlap 60 --altitude 20 --width 2000 --defects 40)
nice "$bin" simulate "${sim[@]}" --seed 21 --out "$work/simA"
nice "$bin" simulate "${sim[@]}" --seed 22 --center 60.1672,24.9405 --out "$work/simB"
nice "$bin" simulate "${sim[@]}" --seed 23 --center 60.1690,24.9360 --out "$work/simC"

python3 scripts/review_loop.py --bin "$bin" --flight "$work/simA" --register "$reg" \
  --data "$work/svcA" --export "$work/exportA" --summary "$out/review_summary.json"

nice "$py" models/train/finetune_crack.py --export "$work/exportA" --out "$work/ft1" --tag ft1 \
  --iters 320 --max-minutes 12 --threads 2 | tee "$work/ft1.log"

# model folders: shipped (int8), float base crack, fine-tuned crack; pothole/roof as shipped
for v in float ft; do
  mkdir -p "$work/models-$v/crack"
  ln -sfn "$root/models/pothole" "$work/models-$v/pothole"
  ln -sfn "$root/models/roof" "$work/models-$v/roof"
done
ln -sf "$root/models/crack/crack-unet.onnx" "$work/models-float/crack/"
sed 's/^version = .*/version = "0.1.0"/; s/^model = .*/model = "crack-unet.onnx"/' \
  models/crack/crack-unet.toml >"$work/models-float/crack/crack-unet.toml"
cp "$work/ft1/crack-unet-ft1.onnx" "$work/ft1/crack-unet-ft1.toml" "$work/models-ft/crack/"

rm -f "$out/heldout.jsonl"
for f in B C; do
  for v in shipped float ft; do
    models="$root/models"; [ "$v" = shipped ] || models="$work/models-$v"
    nice "$bin" process "$work/sim$f" --assets "$reg" --crs EPSG:3067 --models "$models" \
      --threads 1 -o "$work/proc$f-$v" 2>"$work/proc$f-$v.log" || [ $? -le 1 ]
    python3 scripts/loop_eval.py --bin "$bin" --truth "$work/sim$f/truth.geojson" \
      --findings "$work/proc$f-$v/findings.geojson" --label "flight $f, crack model $v" | tee -a "$out/heldout.jsonl"
  done
done
