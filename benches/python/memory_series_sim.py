#!/usr/bin/env python3
"""Peak memory of `besikta process` on simulated flights of growing size (issue 14: 20, 200 and 1,000 photos).

For each photo count: renders a flight with `besikta simulate` (unless its folder exists),
runs `besikta process` on it with the register under `/usr/bin/time -v` while sampling the
process's VmRSS every 0.5 s (with the stage and photo count of its progress bar), scores
the findings with `besikta simulate --evaluate`, and appends one JSON line: wall seconds,
photos/s, peak RSS (trace and `time -v`), peak and time window per stage, RSS at each quarter
of the inference stage, a 10 s trace, summary.json figures, the evaluation and load average.

    export ORT_DYLIB_PATH=/work/main/.cache/onnxruntime/libonnxruntime.so
    python3 benches/python/memory_series_sim.py --besikta /tmp/coord-bin/besikta \
        --register fixtures/registers/helsinki.osm.pbf --models models --work /tmp/memseries \
        --photos 20 200 1000 --out benches/results/memory-series-sim-2026-12-02.jsonl

Flights are rendered at --altitude 20 m and --width 1600 px (the bundled flight's size) with
70 % overlap; run one flight at a time (each row records the load average it ran under).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory_series import emit, summary_figures  # noqa: E402  (the same summary.json rows)
from rss_trace import rss_kb  # noqa: E402  (the same VmRSS sampler)

PROGRESS = re.compile(r"^(?P<stage>[a-z][a-z ]*?)\s*\[[# ]*\]\s*(?P<done>\d+)/(?P<total>\d+)$")
# The stage that runs once a stage's progress line reaches N/N.
# "after inference" is the moment between the owner pass and the second-view windows (or the
# merge, when no candidate needs windows): the models are still loaded.
AFTER = {"reading photos": "aligning", "placing photos on the ground": "finding defects",
         "finding defects": "after inference", "second views": "merging and matching",
         "merging and matching": "writing results", "writing results": "finishing"}


def child_pid(pid: int) -> int | None:
    """The first child of `pid` (the program `/usr/bin/time` started)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except (OSError, ValueError):
        return None


def load1() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def simulate(a, n: int, folder: str) -> dict:
    cmd = [a.besikta, "simulate", "--assets", a.register, "--out", folder, "--seed", str(a.seed),
           "--photos", str(n), "--altitude", str(a.altitude), "--width", str(a.width),
           "--overlap", str(a.overlap)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"simulating {n} photos into {folder} failed ({r.returncode}): {r.stderr[-2000:]}")
    return {"command": " ".join(cmd), "seconds": round(time.perf_counter() - t0, 1),
            "message": [l for l in r.stderr.replace("\r", "\n").splitlines() if l and not l.startswith("rendered")]}


def run_process(a, folder: str, out: str, trace_csv: str | None) -> dict:
    cmd = [a.besikta, "process", folder, "-o", out, "--assets", a.register] + a.process_args.split()
    if a.models:
        cmd += ["--models", a.models]
    time_file = out + ".time"
    load_start = os.getloadavg()
    p = subprocess.Popen(["/usr/bin/time", "-v", "-o", time_file] + cmd,
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    state = {"stage": "start", "done": 0, "total": 0, "tail": [], "finished": set()}

    def read() -> None:
        # The CLI draws "\rSTAGE [###   ] k/N" (in several writes) and ends a stage's line
        # with "\n" when k = N; a draw is read once the next one starts (one draw late). A
        # finished stage hands over to the next one (alignment runs between "reading photos"
        # and "placing ...": it draws nothing; nor do merging and writing until they are done).
        fd = p.stderr.fileno()
        buf = ""
        while True:
            data = os.read(fd, 65536)
            if not data:
                return
            pieces = re.split(r"[\r\n]", buf + data.decode(errors="replace"))
            buf = pieces.pop()
            for text in pieces:
                text = text.strip()
                m = PROGRESS.match(text)
                if m:
                    done, total = int(m["done"]), int(m["total"])
                    stage = m["stage"].strip()
                    # The second-view windows report as a second round of "finding defects".
                    if stage == "finding defects" and "finding defects" in state["finished"]:
                        stage = "second views"
                    if done >= total:
                        state["finished"].add(stage)
                        stage, done = AFTER.get(stage, stage), 0
                    state.update(stage=stage, done=done, total=total)
                elif text:
                    state["tail"].append(text)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    samples: list[tuple[float, str, int, int]] = []  # seconds, stage, photos done in stage, VmRSS kB
    loads: list[float] = []
    t0 = time.perf_counter()
    pid = None
    next_load = 0.0
    while p.poll() is None:
        pid = pid or child_pid(p.pid)
        now = time.perf_counter() - t0
        if pid:
            samples.append((round(now, 1), state["stage"], state["done"], rss_kb(pid)))
        if now >= next_load:
            loads.append(load1())
            next_load = now + 10.0
        time.sleep(0.5)
    seconds = round(time.perf_counter() - t0, 1)
    reader.join(timeout=2)
    load_end = os.getloadavg()

    time_v = {}
    try:
        with open(time_file) as f:
            for line in f:
                k, _, v = line.strip().rpartition(": ")
                time_v[k] = v
    except OSError:
        pass
    if trace_csv:
        with open(trace_csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["seconds", "stage", "done", "vmrss_kb"])
            w.writerows(samples)

    stages: dict[str, dict] = {}
    for t, st, done, kb in samples:
        s = stages.setdefault(st, {"from_s": t, "to_s": t, "peak_mb": 0.0})
        s["to_s"] = t
        s["peak_mb"] = max(s["peak_mb"], round(kb / 1024, 1))
    infer = [(done, kb) for _, st, done, kb in samples if st == "finding defects"]
    quarters = {}
    if infer:
        total = max(d for d, _ in infer) or 1
        for q in (1, 2, 3, 4):
            upto = [kb for d, kb in infer if d <= total * q / 4]
            if upto:
                quarters[f"<= {q}/4 of photos"] = round(max(upto) / 1024, 1)
    every10 = []
    last = -10.0
    for t, st, done, kb in samples:
        if t - last >= 10.0:
            every10.append([t, st, done, round(kb / 1024, 1)])
            last = t
    peak_trace = max((kb for *_, kb in samples), default=0)
    return {
        "command": " ".join(cmd), "exit": p.returncode, "seconds": seconds,
        "peak_rss_mb": round(peak_trace / 1024, 1),
        "time_v_max_rss_mb": round(int(time_v.get("Maximum resident set size (kbytes)", 0)) / 1024, 1),
        "time_v_elapsed": time_v.get("Elapsed (wall clock) time (h:mm:ss or m:ss)"),
        "time_v_user_s": float(time_v.get("User time (seconds)", 0) or 0),
        "time_v_system_s": float(time_v.get("System time (seconds)", 0) or 0),
        "stages": stages, "inference_peak_by_quarter_mb": quarters, "trace_every_10s": every10,
        "load_start": [round(x, 2) for x in load_start], "load_end": [round(x, 2) for x in load_end],
        "load1_mean": round(sum(loads) / len(loads), 2) if loads else None,
        "load1_max": max(loads) if loads else None,
        "log_tail": state["tail"][-12:],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--besikta", required=True)
    ap.add_argument("--register", required=True, help="--assets of simulate and process")
    ap.add_argument("--models", help="--models of besikta process")
    ap.add_argument("--work", required=True, help="folder for the flights (fN) and outputs (oN)")
    ap.add_argument("--photos", type=int, nargs="+", default=[20, 200, 1000])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--altitude", type=float, default=20.0)
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--overlap", type=float, default=70.0)
    ap.add_argument("--label", default="", help="a name for this binary in the output")
    ap.add_argument("--process-args", default="", help="extra arguments of besikta process")
    ap.add_argument("--out", help="append the JSON lines to this file")
    ap.add_argument("--keep-outputs", action="store_true", help="keep oN (process output) folders")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    for n in a.photos:
        folder = os.path.join(a.work, f"f{n}")
        sim = simulate(a, n, folder) if not os.path.isdir(folder) else {"reused": folder}
        out = os.path.join(a.work, f"o{n}")
        shutil.rmtree(out, ignore_errors=True)
        row = {"label": a.label, "photos": n, "flight": folder, "simulate": sim,
               "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        row.update(run_process(a, folder, out, os.path.join(a.work, f"trace{n}.csv")))
        row.update(summary_figures(out))
        row["photos_per_s"] = round((row.get("photos_processed") or 0) / row["seconds"], 3)
        ev = subprocess.run([a.besikta, "simulate", "--evaluate", os.path.join(folder, "truth.geojson"),
                             os.path.join(out, "findings.geojson")], capture_output=True, text=True)
        try:
            m = json.loads(ev.stdout)
            row["evaluation"] = {k: m.get(k) for k in ("truth_count", "finding_count", "matched", "recall",
                                                      "precision", "median_err_m", "p95_err_m", "duplicates",
                                                      "asset_id_accuracy")}
        except ValueError:
            row["evaluation_error"] = ev.stderr[-1000:]
        if not a.keep_outputs:
            shutil.rmtree(out, ignore_errors=True)
        emit(row, a.out)


if __name__ == "__main__":
    main()
