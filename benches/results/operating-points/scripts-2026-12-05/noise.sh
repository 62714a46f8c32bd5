#!/bin/bash
# noise.sh LABEL GPS_M MODELS: seeds 6-10 (16 photos at 20 m, 1600 px, 65 % overlap, 15 defects)
# with GPS noise GPS_M metres (drifting bias plus jitter) and compass noise 1 degree, the crack
# photos of $T/PA pasted in (relative contrast), each processed aligned to the flight only
# (A<seed>) and to the true ground as a reference orthophoto (R<seed>), and scored.
set -u
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-/work/main/.cache/onnxruntime/libonnxruntime.so}
cd "$(dirname "$0")/../../../.."
L=$1; G=$2; M=$3
B=${BESIKTA:-/tmp/bin/besikta}
R=fixtures/registers/helsinki.osm.pbf
T=${TRUST:-/tmp/trust2}
for seed in 6 7 8 9 10; do
  F=$T/F/noise$G/N$seed
  mkdir -p "$(dirname $F)"
  if [ ! -f $F/truth.geojson ]; then
    $B simulate --assets $R --out $F --seed $seed --photos 16 --width 1600 --altitude 20 --overlap 65 \
      --defects 15 --patches $T/PA --gps-noise $G --yaw-noise 1 --orthophoto $F.tif > /dev/null 2>&1 || { echo "sim $seed failed"; continue; }
    gdalwarp -q -t_srs EPSG:3067 $F.tif $F-ref.tif && rm $F.tif
  fi
  for mode in A R; do
    o=$T/O/$L/noise$G/$mode$seed
    [ -f $o/eval.json ] && continue
    rm -rf $o; mkdir -p $o
    extra=""; [ $mode = R ] && extra="--reference $F-ref.tif"
    $B process $F --assets $R --models $M --crs EPSG:3067 $extra -o $o > $o.log 2>&1 || { echo "$mode$seed failed"; continue; }
    find $o -mindepth 1 -maxdepth 1 ! -name findings.geojson ! -name summary.json -exec rm -rf {} +
    $B simulate --evaluate $F/truth.geojson $o/findings.geojson > $o/eval.json 2> $o/eval.txt
    echo "$L noise$G $mode$seed $(jq -c '[.recall,.precision,.duplicates,.median_err_m]' $o/eval.json)"
  done
done
