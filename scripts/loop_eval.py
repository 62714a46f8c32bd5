#!/usr/bin/env python3
"""Score a processed simulated flight overall and per class with the product's own
evaluation (`besikta simulate --evaluate`, same class within 2 m), for the review-loop
measurement (issue 16). Standard library only; a measuring aid, not part of the product.

    python3 scripts/loop_eval.py --bin target/release/besikta \
        --truth /tmp/simB/truth.geojson --findings /tmp/procB/findings.geojson [--label base]

Per class, truth and findings are filtered to that class before scoring (roof damage: the
roof model's missing_tile, moss and debris findings against the simulator's roof_damage).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

CLASSES = {
    "crack": {"crack"},
    "pothole": {"pothole"},
    "roof_damage": {"roof_damage", "missing_tile", "moss", "debris", "roof-damage"},
}
KEYS = ("truth_count", "finding_count", "matched", "recall", "precision", "duplicates")


def evaluate(bin_: str, truth: dict, findings: dict) -> dict:
    with tempfile.TemporaryDirectory() as d:
        t, f = Path(d) / "truth.geojson", Path(d) / "findings.geojson"
        t.write_text(json.dumps(truth))
        f.write_text(json.dumps(findings))
        out = subprocess.run([bin_, "simulate", "--evaluate", str(t), str(f)], check=True,
                             capture_output=True, text=True).stdout
    m = json.loads(out)
    return {k: m[k] for k in KEYS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--findings", type=Path, required=True)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    truth = json.loads(a.truth.read_text())
    findings = json.loads(a.findings.read_text())
    res = {"label": a.label, "all": evaluate(a.bin, truth, findings)}
    for name, words in CLASSES.items():
        sub = lambda fc: {"type": "FeatureCollection",  # noqa: E731
                          "features": [x for x in fc["features"] if x["properties"].get("class") in words]}
        t, f = sub(truth), sub(findings)
        if t["features"] or f["features"]:
            res[name] = evaluate(a.bin, t, f)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
