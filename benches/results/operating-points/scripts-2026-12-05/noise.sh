#!/bin/bash
# noise.sh LABEL GPS_M MODELS [DRAW]: seeds 6-10 (16 photos at 20 m, 1600 px, 65 % overlap, 15
# defects) with GPS noise GPS_M metres (drifting bias plus jitter) and compass noise 1 degree, the
# crack photos of $T/P$DRAW pasted in (relative contrast; DRAW A, B, 1 or 2 as flights.sh, default
# A), each processed aligned to the flight only (A<seed>) and to the true ground as a reference
# orthophoto (R<seed>), and scored (MODES="A" runs the first only). Draw A keeps the folders
# noise$GPS_M; the others noise$GPS_M-$DRAW.
set -u
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-/work/main/.cache/onnxruntime/libonnxruntime.so}
cd "$(dirname "$0")/../../../.."
L=$1; G=$2; M=$3; D=${4:-A}
N=noise$G; [ "$D" != A ] && N=noise$G-$D
B=${BESIKTA:-/tmp/bin/besikta}
R=fixtures/registers/helsinki.osm.pbf
T=${TRUST:-/tmp/trust2}
for seed in 6 7 8 9 10; do
  F=$T/F/$N/N$seed
  mkdir -p "$(dirname $F)"
  if [ ! -f $F/truth.geojson ]; then
    $B simulate --assets $R --out $F --seed $seed --photos 16 --width 1600 --altitude 20 --overlap 65 \
      --defects 15 --patches $T/P$D --gps-noise $G --yaw-noise 1 --orthophoto $F.tif > /dev/null 2>&1 || { echo "sim $seed failed"; continue; }
    gdalwarp -q -t_srs EPSG:3067 $F.tif $F-ref.tif && rm $F.tif
  fi
  for mode in ${MODES:-A R}; do
    o=$T/O/$L/$N/$mode$seed
    [ -f $o/eval.json ] && continue
    rm -rf $o; mkdir -p $o
    extra=""; [ $mode = R ] && extra="--reference $F-ref.tif"
    $B process $F --assets $R --models $M --crs EPSG:3067 $extra -o $o > $o.log 2>&1 || { echo "$mode$seed failed"; continue; }
    find $o -mindepth 1 -maxdepth 1 ! -name findings.geojson ! -name summary.json -exec rm -rf {} +
    $B simulate --evaluate $F/truth.geojson $o/findings.geojson > $o/eval.json 2> $o/eval.txt
    echo "$L $N $mode$seed $(jq -c '[.recall,.precision,.duplicates,.median_err_m]' $o/eval.json)"
  done
done
