#!/bin/bash
cd /tmp/trust; L=$1
# The 2026-12-02 script, run with this binary; K = 99 applies no offline rule.
OFF="env BESIKTA=${BESIKTA:-/tmp/bin/besikta} python3 /work/main/benches/results/operating-points/scripts-2026-12-02/offline.py"
SIX=""; for s in 21 22 23 31 32 33; do SIX="$SIX S$s:O/$L/S$s"; done
EXA=""; for s in 6 7 8 9 10; do EXA="$EXA N$s:O/$L/A$s"; done
EXR=""; for s in 6 7 8 9 10; do EXR="$EXR N$s:O/$L/R$s"; done
HELD=""; for s in 61 62 64 65; do HELD="$HELD S$s:O/$L/S$s"; done
$OFF 99 "$L six      " $SIX
$OFF 99 "$L held     " $HELD
$OFF 99 "$L bundled  " bundled:O/$L/bundled
$OFF 99 "$L extra-fl " $EXA
$OFF 99 "$L extra-ref" $EXR
