#!/bin/bash
# run.sh LABEL BINARY [MODELS]: process every flight of /tmp/trust with BINARY into O/LABEL, score it.
set -u
export ORT_DYLIB_PATH=/work/main/.cache/onnxruntime/libonnxruntime.so
cd /work/main
L=$1; B=$2; M=${3:-models}
R=fixtures/registers/helsinki.osm.pbf
T=/tmp/trust
E=/tmp/base-bin/besikta
one() { # name flight extra-args...
  local n=$1 s=$2; shift 2
  local o=$T/O/$L/$n
  [ -f $o/eval.json ] && return
  rm -rf $o; mkdir -p $T/O/$L
  local t0=$(date +%s)
  nice $B process $s --assets $R --models $M -o $o "$@" > $T/O/$L/$n.log 2>&1 || { echo "$n failed"; return; }
  find $o -mindepth 1 -maxdepth 1 ! -name findings.geojson ! -name summary.json -exec rm -rf {} +
  $E simulate --evaluate $s/truth.geojson $o/findings.geojson > $o/eval.json 2> $o/eval.txt
  echo "$L $n $(( $(date +%s) - t0 ))s $(jq -c '[.recall,.precision,.duplicates]' $o/eval.json)"
}
for seed in 21 22 23 31 32 33; do one S$seed $T/S$seed; done
for seed in 6 7 8 9 10; do
  one A$seed $T/N$seed --crs EPSG:3067
  one R$seed $T/N$seed --crs EPSG:3067 --reference $T/R$seed.tif
done
echo finished $L
