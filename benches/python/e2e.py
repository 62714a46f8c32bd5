#!/usr/bin/env python3
"""End-to-end bench: `besikta process` against the plain Python baseline, in one run.

Runs, round by round and interleaved (A, B, A, B, ...), the release `besikta process` on a
flight folder and `benches/python/infer_baseline.py` with the same shipped models over the
same photos (PIL + onnxruntime, SAHI-style tiles over whole photos, no regions of interest,
no coverage planning). Each run is a child under `/usr/bin/time -v`, so peak memory is the
child's own maximum resident set. Prints and writes (with `--out`) the medians, the ratio,
photos per second, tiles inferred and skipped by reason (from `summary.json`: register or
vegetation regions, coverage, scale) and peak memory.

    cargo build --release -p besikta-cli
    python3 benches/python/e2e.py --rounds 2 --out benches/results/e2e-brighton.json

Extra runs of `besikta process` with other settings go in the same interleaving with
`--variant NAME='ARGS'`, e.g. `--variant fp32='--models .cache/fp32'`, and extra baseline runs
with `--baseline-variant NAME=DIR` (the manifests of DIR, e.g. `.cache/fp32`). The ratio is
always against `python-baseline`, which runs the shipped manifests in `models/`. `--no-baseline`
leaves the Python pipeline out (for memory series). The Python interpreter for the baseline
needs numpy, pillow, scipy and onnxruntime (`--python`, default `.cache/speedvenv/bin/python`
when it exists). Timings on a shared machine are noisy: compare ratios within one run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = ["crack/crack-unet.toml", "pothole/pothole-det.toml", "roof/roof-damage.toml"]


def timed(cmd: list[str], cwd: str | None = None) -> dict:
    """Runs `cmd` under /usr/bin/time -v; wall seconds, peak RSS (MB), exit code, stdout."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-v", "-o", tf.name, *cmd], cwd=cwd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        report = tf.read()
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    return {"wall_s": wall, "peak_rss_mb": int(m.group(1)) / 1024 if m else None, "exit": p.returncode,
            "stdout": p.stdout, "stderr_tail": p.stderr[-2000:]}


def flight_subset(src: str, limit: int | None, copies: int, tmp: str) -> tuple[str, int]:
    """A folder of symlinks to the first `limit` photos; with `copies` > 1 each photo again
    under other names (a longer flight of the same ground, for memory series). The copies
    get a few bytes after the JPEG's end so their SHA-256 differs (ingest drops duplicates);
    decoders ignore bytes after the end-of-image marker."""
    photos = sorted(f for f in os.listdir(src) if f.lower().endswith((".jpg", ".jpeg")))
    if limit:
        photos = photos[:limit]
    out = os.path.join(tmp, "photos")
    os.makedirs(out)
    n = 0
    for c in range(copies):
        for f in photos:
            stem, ext = os.path.splitext(f)
            if c == 0:
                os.symlink(os.path.join(src, f), os.path.join(out, f))
            else:
                shutil.copy(os.path.join(src, f), os.path.join(out, f"{stem}_c{c}{ext}"))
                with open(os.path.join(out, f"{stem}_c{c}{ext}"), "ab") as fh:
                    fh.write(f"besikta-copy-{c}".encode())
            n += 1
    return out, n


def tiles_of(summary: dict) -> dict:
    keys = ["tiles_total", "tiles_inferred", "tiles_skipped", "tiles_skipped_for_coverage", "tiles_skipped_for_scale",
            "tiles_skipped_without_register"]
    total = {k: sum(m.get(k, 0) for m in summary["models"]) for k in keys}
    total["per_model"] = {m["name"]: {k: m.get(k, 0) for k in keys} for m in summary["models"]}
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--besikta", default=os.path.join(ROOT, "target/release/besikta"))
    venv = os.path.join(ROOT, ".cache/speedvenv/bin/python")
    ap.add_argument("--python", default=venv if os.path.exists(venv) else sys.executable)
    ap.add_argument("--photos", default=os.path.join(ROOT, "../shared/data/flights/brighton-beach"))
    ap.add_argument("--limit", type=int, help="first N photos only")
    ap.add_argument("--copies", type=int, default=1, help="link each photo N times (memory series)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--process-args", default="", help="extra arguments of besikta process")
    ap.add_argument("--variant", action="append", default=[], help="NAME='ARGS': another besikta process run")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--no-default", action="store_true", help="only the --variant runs of besikta process")
    ap.add_argument("--baseline-variant", action="append", default=[],
                    help="NAME=DIR: another Python baseline run with the manifests of DIR (e.g. .cache/fp32)")
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="besikta-e2e-")
    try:
        photo_dir, n_photos = flight_subset(os.path.abspath(a.photos), a.limit, a.copies, tmp)
        runs = [] if a.no_default else [("besikta", shlex.split(a.process_args))]
        for v in a.variant:
            name, args = v.split("=", 1)
            runs.append((name, shlex.split(a.process_args) + shlex.split(args)))
        if not a.no_baseline:
            runs.append(("python-baseline", os.path.join(ROOT, "models")))
        for v in a.baseline_variant:
            name, folder = v.split("=", 1)
            runs.append((name, os.path.abspath(folder)))
        results = {name: [] for name, _ in runs}
        for r in range(a.rounds):
            for name, args in runs:
                if isinstance(args, str):  # a baseline run over the manifests of this folder
                    cmd = [a.python, os.path.join(ROOT, "benches/python/infer_baseline.py"), "--dir", photo_dir,
                           "--limit", str(n_photos), "--scipy-components"]
                    for m in SHIPPED:
                        cmd += ["--model", os.path.join(args, m)]
                    res = timed(cmd)
                    if res["exit"] == 0:
                        res["baseline"] = json.loads(res["stdout"].strip().splitlines()[-1])
                else:
                    out = os.path.join(tmp, f"out-{name}-{r}")
                    res = timed([a.besikta, "process", photo_dir, "-o", out, *args])
                    summary_path = os.path.join(out, "summary.json")
                    if os.path.exists(summary_path):
                        with open(summary_path) as f:
                            s = json.load(f)
                        res["summary"] = {"photos_processed": s["photos_processed"], "findings": s.get("findings"),
                                          "detections": s["detections"], "timings": s.get("timings"),
                                          "tiles": tiles_of(s)}
                    shutil.rmtree(out, ignore_errors=True)
                res.pop("stdout", None)
                res["load_after"] = os.getloadavg()[0]
                results[name].append(res)
                print(f"round {r + 1}: {name}: {res['wall_s']:.1f} s, peak {res['peak_rss_mb']:.0f} MB, "
                      f"exit {res['exit']}, load {res['load_after']:.2f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report = {"photos": n_photos, "source": os.path.abspath(a.photos), "copies": a.copies, "rounds": a.rounds,
              "command": " ".join(shlex.quote(x) for x in sys.argv), "cores": os.cpu_count(),
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pipelines": {}}
    print(f"\n{n_photos} photos, {a.rounds} rounds interleaved, {os.cpu_count()} cores")
    for name, rs in results.items():
        ok = [x for x in rs if x["exit"] in (0, 1)]  # besikta exits 1 when a photo was rejected
        if not ok:
            print(f"{name}: every run failed; last stderr:\n{rs[-1]['stderr_tail']}")
            report["pipelines"][name] = {"runs": rs}
            continue
        wall = statistics.median(x["wall_s"] for x in ok)
        peak = max(x["peak_rss_mb"] for x in ok)
        entry = {"median_wall_s": round(wall, 2), "photos_per_second": round(n_photos / wall, 4),
                 "peak_rss_mb_max": round(peak, 1), "runs": rs}
        line = f"{name:<16} median {wall:7.1f} s  {n_photos / wall:.3f} photos/s  peak RSS {peak:.0f} MB"
        s = ok[-1].get("summary")
        if s:
            t = s["tiles"]
            entry["tiles"] = t
            entry["findings"] = s["findings"]
            line += (f"  tiles: {t['tiles_inferred']} inferred of {t['tiles_total']}, skipped {t['tiles_skipped']} "
                     f"register/vegetation, {t['tiles_skipped_for_coverage']} coverage, "
                     f"{t['tiles_skipped_for_scale']} scale, {t['tiles_skipped_without_register']} model not run without a "
                     f"register (+ not counted in total)")
        b = ok[-1].get("baseline")
        if b:
            entry["tiles"] = {"tiles_inferred": b["tiles"]}
            line += f"  tiles: {b['tiles']} inferred (all)"
        report["pipelines"][name] = entry
        print(line)
    base = report["pipelines"].get("python-baseline", {}).get("median_wall_s")
    for name, e in report["pipelines"].items():
        if base and not name.startswith("python") and "median_wall_s" in e:
            e["speedup_vs_python"] = round(base / e["median_wall_s"], 2)
            print(f"ratio python-baseline / {name}: {base / e['median_wall_s']:.2f}x")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
