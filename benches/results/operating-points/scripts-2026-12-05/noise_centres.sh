#!/bin/bash
# noise_centres.sh LABEL MODELS: GPS 2 m / compass 1 deg flights at the other centres of the
# trust flights (the seeds and centres of flights.sh), the crack photos of $T/PA pasted in, each
# processed with the road fit (fit<seed>) and with --no-road-fit (nofit<seed>), and scored.
set -u
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-/work/main/.cache/onnxruntime/libonnxruntime.so}
cd "$(dirname "$0")/../../../.."
L=$1; M=$2
B=${BESIKTA:-/tmp/bin/besikta}
R=fixtures/registers/helsinki.osm.pbf
T=${TRUST:-/tmp/trust2}
for s in 31:60.1670,24.9420 32:60.1730,24.9450 33:60.1750,24.9400 61:60.1680,24.9500 62:60.1725,24.9375 65:60.1670,24.9420; do
  seed=${s%%:*}; c=${s#*:}
  F=$T/F/noisec2/N$seed
  [ -f $F/truth.geojson ] || $B simulate --assets $R --out $F --seed $seed --center $c --photos 16 --width 1600 \
    --altitude 20 --overlap 65 --defects 15 --patches $T/PA --gps-noise 2 --yaw-noise 1 > /dev/null 2>&1
  for mode in fit nofit; do
    o=$T/O/$L/noisec2/$mode$seed; rm -rf $o; mkdir -p $o
    extra=""; [ $mode = nofit ] && extra="--no-road-fit"
    $B process $F --assets $R --models $M --crs EPSG:3067 $extra -o $o > $o.log 2>&1 || { echo "$mode$seed failed"; continue; }
    find $o -mindepth 1 -maxdepth 1 ! -name findings.geojson ! -name summary.json -exec rm -rf {} +
    $B simulate --evaluate $F/truth.geojson $o/findings.geojson > $o/eval.json 2>/dev/null
    echo "$L $mode$seed $(jq -c '[.matched,.truth_count,.finding_count,.median_err_m]' $o/eval.json) $(jq -r '.alignment.roads' $o/summary.json)"
  done
done
