#!/bin/bash
# Simulate the six issue flights and the extra noisy seeds 6-10 (as PERCLASS did).
set -e
cd /work/main
B=/tmp/base-bin/besikta
R=fixtures/registers/helsinki.osm.pbf
T=/tmp/trust
for s in 21:- 22:- 23:- 31:60.1670,24.9420 32:60.1730,24.9450 33:60.1750,24.9400; do
  seed=${s%%:*}; c=${s#*:}
  [ -f $T/S$seed/truth.geojson ] && continue
  C=""; [ "$c" != "-" ] && C="--center $c"
  nice $B simulate --assets $R --out $T/S$seed --seed $seed $C --photos 16 --width 1600 --altitude 20 --overlap 65 --defects 15 --patches $T/P > /dev/null
done
for seed in 6 7 8 9 10; do
  [ -f $T/N$seed/truth.geojson ] && continue
  nice $B simulate --assets $R --out $T/N$seed --seed $seed --photos 16 --altitude 20 --gps-noise 2 --yaw-noise 1 --orthophoto $T/T$seed.tif > /dev/null
  gdalwarp -q -t_srs EPSG:3067 $T/T$seed.tif $T/R$seed.tif && rm $T/T$seed.tif
done
echo simulated
