#!/bin/bash
# flights.sh LABEL CONTRAST DRAW MODELS: the ten simulated trust flights (six issue flights 21-23,
# 31-33 and held-out 61, 62, 64, 65; README "Trust figures") with the crack photos of patch
# folder $T/P$DRAW (A = stems, B = prefixed, 1, 2 = patches.py --draw N) pasted with
# `--patch-contrast CONTRAST`, each processed with ${BESIKTA:-/tmp/bin/besikta} and MODELS and
# scored. Results in $T/O/LABEL/C-D/S<seed>/eval.json; then aggregate.py. ALT=M flies them at M
# metres instead of 20 (folders C-D-aM).
set -u
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-/work/main/.cache/onnxruntime/libonnxruntime.so}
cd "$(dirname "$0")/../../../.."
L=$1; C=$2; D=$3; M=$4
B=${BESIKTA:-/tmp/bin/besikta}
R=fixtures/registers/helsinki.osm.pbf
T=${TRUST:-/tmp/trust2}
for s in 21:- 22:- 23:- 31:60.1670,24.9420 32:60.1730,24.9450 33:60.1750,24.9400 61:60.1680,24.9500 62:60.1725,24.9375 64:- 65:60.1670,24.9420; do
  seed=${s%%:*}; c=${s#*:}
  F=$T/F/$C-$D${ALT:+-a$ALT}/S$seed
  if [ ! -f $F/truth.geojson ]; then
    CE=""; [ "$c" != "-" ] && CE="--center $c"
    $B simulate --assets $R --out $F --seed $seed $CE --photos 16 --width 1600 --altitude ${ALT:-20} \
      --overlap 65 --defects 15 --patches $T/P$D --patch-contrast $C > /dev/null 2>&1 || { echo "sim $seed failed"; continue; }
  fi
  o=$T/O/$L/$C-$D${ALT:+-a$ALT}/S$seed
  [ -f $o/eval.json ] && continue
  rm -rf $o; mkdir -p $o
  t0=$(date +%s)
  $B process $F --assets $R --models $M -o $o > $o.log 2>&1 || { echo "$seed failed"; continue; }
  find $o -mindepth 1 -maxdepth 1 ! -name findings.geojson ! -name summary.json -exec rm -rf {} +
  $B simulate --evaluate $F/truth.geojson $o/findings.geojson > $o/eval.json 2> $o/eval.txt
  echo "$L $C-$D S$seed $(( $(date +%s) - t0 ))s $(jq -c '[.recall,.precision,.duplicates]' $o/eval.json)"
done
