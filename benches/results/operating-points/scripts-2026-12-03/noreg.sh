#!/bin/bash
# noreg.sh LABEL BIN: simulate (once, as all.sh) and process the ten S flights without a register; score.
set -u
export ORT_DYLIB_PATH=/work/main/.cache/onnxruntime/libonnxruntime.so
cd /work/main
L=$1; B=$2
R=fixtures/registers/helsinki.osm.pbf
T=/tmp/trust
for s in 21:- 22:- 23:- 31:60.1670,24.9420 32:60.1730,24.9450 33:60.1750,24.9400 61:60.1680,24.9500 62:60.1725,24.9375 64:- 65:60.1670,24.9420; do
  seed=${s%%:*}; c=${s#*:}; n=S$seed
  if [ ! -f $T/$n/truth.geojson ]; then
    C=""; [ "$c" != "-" ] && C="--center $c"
    $B simulate --assets $R --out $T/$n --seed $seed $C --photos 16 --width 1600 --altitude 20 --overlap 65 --defects 15 --patches $T/P > /dev/null 2>&1
  fi
  o=$T/NR/$L/$n; rm -rf $o; mkdir -p $T/NR/$L
  $B process $T/$n -o $o > $T/NR/$L/$n.log 2>&1 || { echo "$n failed"; continue; }
  $B simulate --evaluate $T/$n/truth.geojson $o/findings.geojson > $o/eval.json 2>/dev/null
  echo "$L $n $(jq -c '[.recall,.precision,.duplicates]' $o/eval.json) $(jq -c '.dropped // .detections_dropped // empty' $o/summary.json | head -c 200)"
done
