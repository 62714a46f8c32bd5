#!/bin/bash
# simulated.rs's second flight: seed 22 with fixtures/cracks patches; processed with BIN [MODELS].
set -u
export ORT_DYLIB_PATH=/work/main/.cache/onnxruntime/libonnxruntime.so
cd /work/main
L=$1; B=$2; M=${3:-models}; T=/tmp/trust; R=fixtures/registers/helsinki.osm.pbf
[ -f $T/F22/truth.geojson ] || nice /tmp/base-bin/besikta simulate --assets $R --out $T/F22 --seed 22 --photos 16 --width 1600 --altitude 20 --overlap 65 --defects 15 --patches fixtures/cracks > /dev/null 2>&1
o=$T/O/$L/F22; rm -rf $o; mkdir -p $T/O/$L
nice $B process $T/F22 --assets $R --models $M -o $o > $T/O/$L/F22.log 2>&1 || { echo F22 failed; exit 1; }
find $o -mindepth 1 -maxdepth 1 ! -name findings.geojson ! -name summary.json -exec rm -rf {} +
/tmp/base-bin/besikta simulate --evaluate $T/F22/truth.geojson $o/findings.geojson > $o/eval.json 2> $o/eval.txt
echo "$L F22 $(jq -c '[.recall,.precision,.duplicates]' $o/eval.json)"
