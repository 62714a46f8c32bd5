#!/usr/bin/env python3
"""What the heap holds at its peak, by the code that allocated it, for two heaptrack runs side
by side (issue 14: which memory grows with the flight).

Record a run with heaptrack (Debian's `heaptrack` package), e.g. the server's job through
`memory_series_server.py` with a wrapper as `--besikta` that runs `serve` under heaptrack:

    #!/bin/bash
    if [ "$1" = serve ]; then
      exec heaptrack -o /tmp/ht/serve-$N target/release/besikta "$@" | grep --line-buffered 'listening on'
    else
      exec target/release/besikta "$@"
    fi

then write each run's peak as a flame graph file and compare two of them:

    heaptrack_print -f /tmp/ht/serve-20.zst -p 0 -a 0 -T 0 -l 0 -F /tmp/ht/fg20.txt \
        --flamegraph-cost-type peak
    python3 benches/python/heaptrack_peak.py /tmp/ht/fg20.txt /tmp/ht/fg1000.txt --depth 2

Each allocation's bytes live at the peak are put under the innermost `--depth` frames that
lie in this repository's source files (file names from `crates/`), or `onnxruntime` / `other`.
"""
from __future__ import annotations

import argparse
import collections
import glob
import os

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
# Names too common to say the frame is ours.
COMMON = {"lib.rs", "mod.rs", "error.rs"}


def ours() -> set[str]:
    names = {os.path.basename(p) for p in glob.glob(os.path.join(REPO, "crates", "*", "src", "**", "*.rs"),
                                                   recursive=True)}
    return names - COMMON


def by_site(path: str, depth: int, names: set[str]) -> collections.Counter:
    cost: collections.Counter = collections.Counter()
    with open(path, errors="replace") as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            try:
                n = int(n)
            except ValueError:
                continue
            frames = stack.split(";")
            mine = [fr for fr in frames if fr.rsplit("(", 1)[-1].rstrip(") ") in names]
            if mine:
                key = ";".join(mine[-depth:])
            elif "onnxruntime" in stack:
                key = "onnxruntime"
            else:
                key = "other"
            cost[key] += n
    return cost


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", help="flame graph file of the first run (peak cost)")
    ap.add_argument("after", help="flame graph file of the second run (peak cost)")
    ap.add_argument("--depth", type=int, default=2, help="frames of ours per site")
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    names = ours()
    x, y = by_site(a.before, a.depth, names), by_site(a.after, a.depth, names)
    print(f"{'first MB':>9} {'second MB':>9} {'change':>8}  site")
    print(f"{sum(x.values()) / 1e6:9.2f} {sum(y.values()) / 1e6:9.2f} "
          f"{(sum(y.values()) - sum(x.values())) / 1e6:+8.2f}  (peak heap)")
    for k in sorted(set(x) | set(y), key=lambda k: -max(x[k], y[k]))[:a.top]:
        print(f"{x[k] / 1e6:9.2f} {y[k] / 1e6:9.2f} {(y[k] - x[k]) / 1e6:+8.2f}  {k[:140]}")


if __name__ == "__main__":
    main()
