#!/bin/bash
# agg.sh LABEL [K...]: pooled and per-class recall/precision/duplicates per group of runs in O/LABEL;
# K = crack max pieces per supporting photo applied offline (99 = none).
cd /tmp/trust; L=$1; shift
SIX=""; for s in 21 22 23 31 32 33; do SIX="$SIX S$s:O/$L/S$s"; done
EXA=""; for s in 6 7 8 9 10; do EXA="$EXA N$s:O/$L/A$s"; done
EXR=""; for s in 6 7 8 9 10; do EXR="$EXR N$s:O/$L/R$s"; done
HELD=""; for s in 61 62 64 65; do HELD="$HELD S$s:O/$L/S$s"; done
for K in "${@:-99}"; do
  python3 offline.py $K "$L six      " $SIX
  [ -f O/$L/R10/eval.json ] && python3 offline.py $K "$L extra    " $EXA $EXR
  [ -f O/$L/R10/eval.json ] && python3 offline.py $K "$L extra-fl " $EXA
  [ -f O/$L/R10/eval.json ] && python3 offline.py $K "$L extra-ref" $EXR
  [ -f O/$L/S65/eval.json ] && python3 offline.py $K "$L held     " $HELD
  [ -f O/$L/bundled/eval.json ] && python3 offline.py $K "$L bundled  " bundled:O/$L/bundled
done
