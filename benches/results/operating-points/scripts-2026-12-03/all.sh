#!/bin/bash
# all.sh LABEL MODELS: simulate (once) and process every flight with ${BESIKTA:-/tmp/bin/besikta}, score.
set -u
export ORT_DYLIB_PATH=/work/main/.cache/onnxruntime/libonnxruntime.so
cd /work/main
L=$1; M=$2
B=${BESIKTA:-/tmp/bin/besikta}
R=fixtures/registers/helsinki.osm.pbf
T=/tmp/trust
sim() { # name seed centre extra...
  local n=$1 seed=$2 c=$3; shift 3
  [ -f $T/$n/truth.geojson ] && return
  local C=""; [ "$c" != "-" ] && C="--center $c"
  $B simulate --assets $R --out $T/$n --seed $seed $C --photos 16 --width 1600 --altitude 20 "$@" > /dev/null 2>&1
}
one() { # name flight-dir extra-args...
  local n=$1 s=$2; shift 2
  local o=$T/O/$L/$n
  [ -f $o/eval.json ] && return
  rm -rf $o; mkdir -p $T/O/$L
  local t0=$(date +%s)
  $B process $s --assets $R --models $M -o $o "$@" > $T/O/$L/$n.log 2>&1 || { echo "$n failed"; return; }
  find $o -mindepth 1 -maxdepth 1 ! -name findings.geojson ! -name summary.json -exec rm -rf {} +
  $B simulate --evaluate $s/truth.geojson $o/findings.geojson > $o/eval.json 2> $o/eval.txt
  echo "$L $n $(( $(date +%s) - t0 ))s $(jq -c '[.recall,.precision,.duplicates]' $o/eval.json)"
}
for s in 21:- 22:- 23:- 31:60.1670,24.9420 32:60.1730,24.9450 33:60.1750,24.9400 61:60.1680,24.9500 62:60.1725,24.9375 64:- 65:60.1670,24.9420; do
  seed=${s%%:*}; c=${s#*:}
  sim S$seed $seed $c --overlap 65 --defects 15 --patches $T/P
  one S$seed $T/S$seed
done
one bundled fixtures/sim --crs EPSG:3067
for seed in 6 7 8 9 10; do
  if [ ! -f $T/N$seed/truth.geojson ]; then
    $B simulate --assets $R --out $T/N$seed --seed $seed --photos 16 --altitude 20 --gps-noise 2 --yaw-noise 1 --orthophoto $T/T$seed.tif > /dev/null 2>&1
    gdalwarp -q -t_srs EPSG:3067 $T/T$seed.tif $T/R$seed.tif && rm $T/T$seed.tif
  fi
  one A$seed $T/N$seed --crs EPSG:3067
  one R$seed $T/N$seed --crs EPSG:3067 --reference $T/R$seed.tif
done
echo finished $L
