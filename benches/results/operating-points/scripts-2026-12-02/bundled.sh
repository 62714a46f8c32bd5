#!/bin/bash
# The bundled flight fixtures/sim (scripts/demo's run): process with BIN into O/LABEL/bundled, score.
set -u
export ORT_DYLIB_PATH=/work/main/.cache/onnxruntime/libonnxruntime.so
cd /work/main
L=$1; B=$2; M=${3:-models}; o=/tmp/trust/O/$L/bundled
[ -f $o/eval.json ] && exit 0
rm -rf $o; mkdir -p /tmp/trust/O/$L
nice $B process fixtures/sim --models $M --assets fixtures/registers/helsinki.osm.pbf --crs EPSG:3067 -o $o > /tmp/trust/O/$L/bundled.log 2>&1 || { echo bundled failed; exit 1; }
find $o -mindepth 1 -maxdepth 1 ! -name findings.geojson ! -name summary.json -exec rm -rf {} +
/tmp/base-bin/besikta simulate --evaluate fixtures/sim/truth.geojson $o/findings.geojson > $o/eval.json 2> $o/eval.txt
echo "$L bundled $(jq -c '[.recall,.precision,.duplicates]' $o/eval.json)"
