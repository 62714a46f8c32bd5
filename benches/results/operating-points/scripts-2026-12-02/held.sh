#!/bin/bash
# Held-out flights 61, 62, 64, 65 (benches/results/operating-points/README.md): simulate, process with BIN into O/LABEL, score.
set -u
export ORT_DYLIB_PATH=/work/main/.cache/onnxruntime/libonnxruntime.so
cd /work/main
L=$1; B=$2
R=fixtures/registers/helsinki.osm.pbf; T=/tmp/trust
for s in 61:60.1680,24.9500 62:60.1725,24.9375 64:- 65:60.1670,24.9420; do
  seed=${s%%:*}; c=${s#*:}; C=""; [ "$c" != "-" ] && C="--center $c"
  [ -f $T/S$seed/truth.geojson ] || nice /tmp/base-bin/besikta simulate --assets $R --out $T/S$seed --seed $seed $C --photos 16 --width 1600 --altitude 20 --overlap 65 --defects 15 --patches $T/P > /dev/null 2>&1
  o=$T/O/$L/S$seed
  [ -f $o/eval.json ] && continue
  rm -rf $o; mkdir -p $T/O/$L
  nice $B process $T/S$seed --assets $R --models models -o $o > $T/O/$L/S$seed.log 2>&1 || { echo "S$seed failed"; continue; }
  find $o -mindepth 1 -maxdepth 1 ! -name findings.geojson ! -name summary.json -exec rm -rf {} +
  /tmp/base-bin/besikta simulate --evaluate $T/S$seed/truth.geojson $o/findings.geojson > $o/eval.json 2> $o/eval.txt
  echo "$L S$seed $(jq -c '[.recall,.precision,.duplicates]' $o/eval.json)"
done
echo finished held $L
