#!/bin/bash
cd /tmp/trust; L=$1
SIX=""; for s in 21 22 23 31 32 33; do SIX="$SIX S$s:O/$L/S$s"; done
EXA=""; for s in 6 7 8 9 10; do EXA="$EXA N$s:O/$L/A$s"; done
EXR=""; for s in 6 7 8 9 10; do EXR="$EXR N$s:O/$L/R$s"; done
HELD=""; for s in 61 62 64 65; do HELD="$HELD S$s:O/$L/S$s"; done
python3 offline.py 99 "$L six      " $SIX
python3 offline.py 99 "$L held     " $HELD
python3 offline.py 99 "$L bundled  " bundled:O/$L/bundled
python3 offline.py 99 "$L extra-fl " $EXA
python3 offline.py 99 "$L extra-ref" $EXR
