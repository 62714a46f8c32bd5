#!/usr/bin/env python3
"""Engine settings through the Rust engine itself: `infer_e2e` (release) over the same
Brighton photos for each model and each (workers, intra-op threads, batch) setting,
interleaved round by round; prints the median milliseconds per inferred tile.

    cargo build --release -p besikta-benches --bin infer_e2e
    python3 benches/python/engine_sweep.py --rounds 3 --limit 2 --out benches/results/engine-sweep.json

Models default to the shipped manifests (int8) and, when `.cache/fp32` exists (made by
`models/train/quantize_int8.py --float .cache/fp32`), their float copies.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = ["crack/crack-unet.toml", "pothole/pothole-det.toml", "roof/roof-damage.toml"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/infer_e2e"))
    ap.add_argument("--dir", default=os.path.join(ROOT, "../shared/data/flights/brighton-beach"))
    ap.add_argument("--limit", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settings", nargs="*", default=["2,1,1", "2,1,2", "2,1,4", "2,1,8", "1,2,4"],
                    help="workers,intra,batch")
    ap.add_argument("--out")
    a = ap.parse_args()
    models = [("int8", os.path.join(ROOT, "models", n)) for n in NAMES]
    if os.path.isdir(os.path.join(ROOT, ".cache/fp32")):
        models += [("fp32", os.path.join(ROOT, ".cache/fp32", n)) for n in NAMES]
    configs = [dict(kind=k, manifest=m, setting=s, ms=[]) for (k, m), s in itertools.product(models, a.settings)]
    for r in range(a.rounds):
        for c in configs:
            w, i, b = c["setting"].split(",")
            out = subprocess.run([a.bin, "--model", c["manifest"], "--dir", a.dir, "--limit", str(a.limit),
                                  "--workers", w, "--intra", i, "--batch", b], capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"{c}: {out.stderr}")
            j = json.loads(out.stdout.strip().splitlines()[-1])
            c["ms"].append(j["infer_seconds"] * 1000 / max(j["tiles"], 1))
            c["tiles"] = j["tiles"]
        print(f"round {r + 1}/{a.rounds} done, load {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    print(f"{'model':<28} {'kind':<5} {'workers,intra,batch':<20} {'median ms/tile':>15} {'min':>7}")
    for c in configs:
        name = os.path.basename(c["manifest"]).replace(".toml", "")
        med = statistics.median(c["ms"])
        rows.append(dict(model=name, kind=c["kind"], setting=c["setting"], tiles=c["tiles"],
                         median_ms_per_tile=round(med, 2), min_ms_per_tile=round(min(c["ms"]), 2),
                         runs=[round(v, 2) for v in c["ms"]]))
        print(f"{name:<28} {c['kind']:<5} {c['setting']:<20} {med:>15.2f} {min(c['ms']):>7.2f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(dict(when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), photos=a.limit,
                           rounds=a.rounds, rows=rows), f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
