#!/usr/bin/env python3
"""Server memory series (issue 14): the peak RSS of `besikta serve` while it processes one
simulated flight of N photos, for several N, so the server's job path can be held to the
same target as `besikta process` (peak flat in flight size, 1,000 photos within 1 GB).

For each N: a fresh --data folder (SQLite), `besikta serve --workers 1 --models MODELS`, the
register uploaded as the organisation's `osm` register, the flight's photos uploaded in
requests of --per-request photos, the flight queued, and the server's VmRSS sampled every
0.2 s until the flight is `done`. The flight is the one `memory_series_sim.py` simulates
(same seed and size; reused when its folder exists), so the two series compare. A flight of
more than `--unit-photos` photos is inferred in batch units (the server's default, 32), and
the job's finish reads the units' results one at a time.

Reported per N: the server's VmHWM after the upload (before processing) and at the end,
the largest sampled VmRSS while the job ran, by quarter of the job's wall time, the wall
time, and the findings with their score against the simulator's truth.

    python3 benches/python/memory_series_server.py --besikta BIN \
        --register fixtures/registers/helsinki.osm.pbf --models models --work /tmp/memseries \
        --photos 20 200 1000 --out benches/results/memory-series-server-DATE.jsonl
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from load import api, multipart, proc_status, start_serve, stop_serve, token  # noqa: E402
from memory_series_sim import simulate  # noqa: E402


def vm_rss(pid: int) -> float | None:
    return proc_status(pid).get("VmRSS")


def run(a, n: int) -> dict:
    folder = os.path.join(a.work, f"f{n}")
    sim = simulate(a, n, folder) if not os.path.isdir(folder) else {"reused": folder}
    photos = sorted(glob.glob(os.path.join(folder, "*.jpg")) + glob.glob(os.path.join(folder, "*.JPG")))
    data = tempfile.mkdtemp(prefix="memseries-server-")
    serve = None
    try:
        admin = token(a.besikta, data, "admin")
        serve, addr = start_serve(a.besikta, data, a.models, a.serve_arg)
        with open(a.register, "rb") as f:
            api(addr, "PUT", "/api/v1/registers/osm", admin, f.read(), "application/octet-stream")
        flight = api(addr, "POST", "/api/v1/flights", admin, json.dumps({"name": f"memory {n}"}).encode())["id"]
        for i in range(0, len(photos), a.per_request):
            body, ctype = multipart(photos[i:i + a.per_request])
            api(addr, "POST", f"/api/v1/flights/{flight}/photos", admin, body, ctype)
        hwm_upload = proc_status(serve.pid).get("VmHWM")
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            while not stop.is_set():
                r = vm_rss(serve.pid)
                if r is not None:
                    samples.append((time.monotonic() - t0, r))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        t0 = time.monotonic()
        sampler.start()
        api(addr, "POST", f"/api/v1/flights/{flight}/process", admin, b"{}")
        while True:
            info = api(addr, "GET", f"/api/v1/flights/{flight}", admin)
            if info["state"] == "failed":
                sys.exit(f"the flight failed to process: {json.dumps(info)[:800]}")
            if info["state"] == "done":
                break
            time.sleep(1.0)
        wall = time.monotonic() - t0
        stop.set()
        sampler.join()
        hwm_end = proc_status(serve.pid).get("VmHWM")
        time.sleep(2.0)
        rss_idle = vm_rss(serve.pid)
        findings = api(addr, "GET", f"/api/v1/flights/{flight}/findings.geojson", admin)
        out = os.path.join(a.work, f"server-findings{n}.geojson")
        with open(out, "w") as f:
            json.dump(findings, f)
        ev = subprocess.run([a.besikta, "simulate", "--evaluate", os.path.join(folder, "truth.geojson"), out],
                            capture_output=True, text=True)
        try:
            m = json.loads(ev.stdout)
            evaluation = {k: m.get(k) for k in ("truth_count", "finding_count", "matched", "recall",
                                                "precision", "duplicates")}
        except ValueError:
            evaluation = {"error": ev.stderr[-600:]}
        # The job's own timings, from the summary.json it wrote in the data folder.
        timings = None
        for path in glob.glob(os.path.join(data, "**", "summary.json"), recursive=True):
            with open(path) as f:
                timings = {k: round(v, 2) for k, v in (json.load(f).get("timings") or {}).items()
                           if isinstance(v, (int, float))}
        quarters = {}
        for q in range(4):
            lo, hi = wall * q / 4, wall * (q + 1) / 4
            vals = [r for t, r in samples if lo <= t < hi or (q == 3 and t >= hi)]
            quarters[f"<= {q + 1}/4 of the job"] = round(max(vals), 1) if vals else None
        return {
            "label": a.label, "photos": n, "flight": folder, "simulate": sim,
            "command": f"{a.besikta} serve --workers 1 --models {a.models} {' '.join(a.serve_arg)} "
                       f"(register {a.register})",
            "job_wall_s": round(wall, 1), "photos_per_s": round(n / wall, 3),
            "server_vm_hwm_mb_after_upload": hwm_upload, "server_vm_hwm_mb_at_end": hwm_end,
            "server_rss_mb_idle_after_job": round(rss_idle, 1) if rss_idle else None,
            "server_rss_mb_max_sampled": round(max(r for _, r in samples), 1) if samples else None,
            "server_rss_mb_by_quarter": quarters,
            "load1_end": round(os.getloadavg()[0], 2),
            "findings": len(findings.get("features", [])), "evaluation": evaluation,
            "job_timings_s": timings,
        }
    finally:
        stop_serve(serve)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--besikta", required=True)
    ap.add_argument("--register", default=os.path.join(REPO, "fixtures", "registers", "helsinki.osm.pbf"))
    ap.add_argument("--models", default=os.path.join(REPO, "models"))
    ap.add_argument("--work", default="/tmp/memseries")
    ap.add_argument("--photos", type=int, nargs="+", default=[20, 200, 1000])
    ap.add_argument("--per-request", type=int, default=50, help="photos per upload request")
    ap.add_argument("--label", default="")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="one more argument for `besikta serve` (repeat for several)")
    ap.add_argument("--out", help="append the JSON lines to this file")
    # What memory_series_sim.simulate reads.
    ap.add_argument("--altitude", type=float, default=20.0)
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--overlap", type=float, default=70.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    ort = os.path.join(REPO, ".cache", "onnxruntime", "libonnxruntime.so")
    if "ORT_DYLIB_PATH" not in os.environ and os.path.exists(ort):
        os.environ["ORT_DYLIB_PATH"] = ort
    os.makedirs(a.work, exist_ok=True)
    for n in a.photos:
        row = run(a, n)
        print(json.dumps(row), flush=True)
        if a.out:
            with open(a.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
