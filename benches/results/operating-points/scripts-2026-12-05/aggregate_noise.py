"""Pools the runs of noise.sh over seeds 6-10 per GPS noise level: recall / precision within 2 m,
duplicates, each flight's median position error, and the shift the road fit took; with --draws,
pooled over those patch draws of noise.sh (A is the folder noise<G>, the others noise<G>-<D>).

    python3 aggregate_noise.py LABEL [--trust /tmp/trust2] [--draws A B 1 2]
"""
import argparse, json
from pathlib import Path

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("label")
    ap.add_argument("--trust", type=Path, default=Path("/tmp/trust2"))
    ap.add_argument("--draws", nargs="+", default=["A"])
    a = ap.parse_args()
    root = a.trust / "O" / a.label
    for g in ["2", "1", "0.5"]:
        for mode, name in (("A", "aligned to the flight (road fit when it fits)"), ("R", "aligned to a reference")):
            tp = truth = true_f = found = dup = 0
            errs, shifts = [], []
            for draw, s in ((dr, s) for dr in a.draws for s in range(6, 11)):
                d = root / (f"noise{g}" if draw == "A" else f"noise{g}-{draw}") / f"{mode}{s}"
                if not (d / "eval.json").exists():
                    continue
                m = json.loads((d / "eval.json").read_text())
                tp += m["matched"]; truth += m["truth_count"]
                found += m["finding_count"]; dup += m["duplicates"]
                true_f += m["finding_count"] - len(m["false_positives"])
                e = m["median_err_m"]
                errs.append(None if e is None else round(e, 3))
                al = json.loads((d / "summary.json").read_text()).get("alignment") or {}
                sh = al.get("road_shift_m")
                shifts.append(None if sh is None else [round(v, 2) for v in sh])
            if truth:
                print(f"GPS {g} m, {name}, draws {' '.join(a.draws)}: recall {tp / truth:.3f} ({tp}/{truth}), precision "
                      f"{true_f / found:.3f} ({true_f}/{found}), duplicates {dup}; median error per "
                      f"flight {errs}; road shift {shifts}")

if __name__ == "__main__":
    main()
