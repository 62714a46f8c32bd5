#!/usr/bin/env python3
"""Peak memory of `besikta process` against flight size: runs each flight folder once under
`rss_trace.py` (VmRSS every 0.2 s, peak per stage) and prints one JSON line per flight with
the peak, the wall seconds, the stage peaks and what summary.json says (photos, findings,
tiles inferred, alignment seconds, projections and the ground images' peak).

    python3 benches/python/memory_series.py --besikta /tmp/mem-bin/besikta-after \
        --models models --out benches/results/memory-series.json FLIGHT_DIR...

Flight folders of repeated Brighton photos: see `flight_subset` in e2e.py (`--copies`).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def summary_figures(out: str) -> dict:
    """The figures of `OUT/summary.json` that the memory benches record (or `summary_error`)."""
    try:
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
    except (OSError, ValueError) as e:
        return {"summary_error": str(e)}
    al = s.get("alignment") or {}
    row = {k: s.get(k) for k in ("photos_processed", "detections", "findings", "work_orders")}
    row["timings"] = s.get("timings")
    row["alignment"] = {k: al.get(k) for k in ("photos_aligned", "pairs_tried", "pairs_accepted", "projections",
                                               "held_peak_mb", "project_s", "correlate_s", "seconds")}
    row["tiles"] = {m["name"]: {k: m.get(k) for k in ("tiles_total", "tiles_inferred", "tiles_skipped",
                                                     "tiles_skipped_for_coverage")}
                    for m in s.get("models", [])}
    return row


def emit(row: dict, path: str | None) -> None:
    """Prints the row as one JSON line, and appends it to `path` if given."""
    line = json.dumps(row)
    print(line, flush=True)
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--besikta", required=True)
    ap.add_argument("--models", help="--models of besikta process")
    ap.add_argument("--label", default="", help="a name for this binary in the output")
    ap.add_argument("--out", help="append the JSON lines to this file")
    ap.add_argument("--process-args", default="", help="extra arguments of besikta process")
    ap.add_argument("flights", nargs="+")
    a = ap.parse_args()
    for flight in a.flights:
        out = tempfile.mkdtemp(prefix="mem-series-")
        cmd = [a.besikta, "process", flight, "-o", out] + a.process_args.split()
        if a.models:
            cmd += ["--models", a.models]
        r = subprocess.run([sys.executable, os.path.join(HERE, "rss_trace.py"), "--"] + cmd,
                           capture_output=True, text=True)
        trace = json.loads(r.stdout.strip().splitlines()[-1])
        row = {"label": a.label, "flight": flight, "command": " ".join(cmd), "exit": trace["exit"],
               "peak_rss_mb": max(trace["peak_rss_mb_by_stage"].values()),
               "seconds": trace["seconds"], "peak_rss_mb_by_stage": trace["peak_rss_mb_by_stage"]}
        row.update(summary_figures(out))
        shutil.rmtree(out, ignore_errors=True)
        emit(row, a.out)


if __name__ == "__main__":
    main()
