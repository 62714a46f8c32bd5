"""Pools the runs of flights.sh: recall / precision / duplicates on the six issue flights and the
four held-out ones, crack rows alone, and crack recall by how much darker the pasted crack
made the ground (`patch_contrast` in truth.geojson).

    python3 aggregate.py LABEL [--trust /tmp/trust2]
"""
import argparse, json
from pathlib import Path

SIX = [21, 22, 23, 31, 32, 33]
HELD = [61, 62, 64, 65]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("label")
    ap.add_argument("--trust", type=Path, default=Path("/tmp/trust2"))
    a = ap.parse_args()
    root = a.trust / "O" / a.label
    pooled = {}
    for cd in sorted(p.name for p in root.iterdir() if p.is_dir()):
        for name, seeds in (("six", SIX), ("held-out", HELD)):
            t = {"tp": 0, "truth": 0, "true_f": 0, "found": 0, "dup": 0, "ctp": 0, "ct": 0, "cf": 0, "cm": 0}
            bins = {}
            n = 0
            for s in seeds:
                e = root / cd / f"S{s}" / "eval.json"
                if not e.exists():
                    continue
                n += 1
                m = json.loads(e.read_text())
                t["tp"] += m["matched"]; t["truth"] += m["truth_count"]
                t["found"] += m["finding_count"]; t["dup"] += m["duplicates"]
                t["true_f"] += m["finding_count"] - len(m["false_positives"])
                for c in m["per_class"]:
                    if c["class"] == "crack":
                        t["ct"] += c["truth_count"]; t["ctp"] += c["matched"]
                        t["cf"] += c["finding_count"]; t["cm"] += c["findings_on_a_defect"]
                truth = json.loads((a.trust / "F" / cd / f"S{s}" / "truth.geojson").read_text())
                missed = set(m["missed"])
                for f in truth["features"]:
                    p = f["properties"]
                    if p["class"] != "crack" or "patch_contrast" not in p:
                        continue
                    c = p["patch_contrast"]
                    b = "<= 2" if c <= 2 else "2-6" if c <= 6 else "6-12" if c <= 12 else "> 12"
                    found = p["id"] not in missed
                    x = bins.setdefault(b, [0, 0])
                    x[0] += found; x[1] += 1
            if n == 0:
                continue
            key = (cd.split("-")[0], name)
            acc = pooled.setdefault(key, {"draws": 0, "bins": {}})
            acc["draws"] += 1
            for k, v in t.items():
                acc[k] = acc.get(k, 0) + v
            for k, v in bins.items():
                x = acc["bins"].setdefault(k, [0, 0])
                x[0] += v[0]; x[1] += v[1]
            r = t["tp"] / max(t["truth"], 1); pr = t["true_f"] / max(t["found"], 1)
            print(f"{a.label} {cd} {name} ({n} flights): recall {r:.3f} ({t['tp']}/{t['truth']}) "
                  f"precision {pr:.3f} ({t['true_f']}/{t['found']}) dup {t['dup']}; "
                  f"crack recall {t['ctp']}/{t['ct']} precision {t['cm']}/{t['cf']}; "
                  "crack found by contrast (grey levels): "
                  + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(bins.items())))

    for (mode, name), t in sorted(pooled.items()):
        print(f"POOLED {mode} {name} over {t['draws']} draws: recall {t['tp'] / t['truth']:.3f} ({t['tp']}/{t['truth']}) "
              f"precision {t['true_f'] / t['found']:.3f} ({t['true_f']}/{t['found']}) dup {t['dup']}; "
              f"crack recall {t['ctp']}/{t['ct']} precision {t['cm']}/{t['cf']}; by contrast: "
              + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(t["bins"].items())))


if __name__ == "__main__":
    main()
