"""Operating points through the product path: precision/recall of each class as the
evidence thresholds of `models/evidence.toml` move, measured on `besikta process` outputs.

  besikta process S --assets R --models M_PERMISSIVE -o O     # once per flight, evidence keep-all
  python3 models/eval/sweep_operating_points.py --flights S21:O21 S22:O22 ... --out sweep.json

Every finding carries its `views`, `support` and combined `confidence`, and whether a rule
keeps it depends on those three numbers only (`crates/report/src/evidence.rs`: drop when
support < min_support, or when views >= min_views_for_ratio (2) and support / views <
min_ratio, or when the combined confidence < min_confidence). But the rules also decide how
many photos infer each spot (coverage planning, `crates/pipeline/src/coverage.rs::owners_for`:
a model's cells get 1 owner, or min_support + 1, or floor(1 / min_ratio) + 1 when its classes
have such rules). So the findings a rule set would keep are exactly a subset of a run's
findings only when the rule is at least as strict as the run's (`--run-rules`, the
evidence.toml of the models folder the flights were processed with) AND gives the model the
same number of owners. The sweep marks each row `exact`; the markdown tables show exact rows
only. A run with an `evidence.toml` that keeps everything (one `*` rule) is exact for
confidence-only rules of one-owner models (pothole); a run with the shipped rules is exact for
every stricter rule with the same owners (the curve from the shipped point up).

Scoring is `besikta simulate --evaluate`'s (`crates/sim/src/evaluate.rs`), re-implemented
here so a sweep does not start hundreds of processes: a finding is at its area centroid,
matches the nearest truth defect of its class (missing_tile, moss, debris -> roof_damage)
within 2 m (cracks: distance to the centreline), each finding on its own; precision =
matched findings / findings, recall = defects matched / defects, duplicates = matched
findings beyond the first per defect. `--check` runs the binary on
the permissive output and on one rule set to show the two scorers agree.

Per class the sweep gives a table over min_confidence for every (min_support, min_ratio)
pair; roof classes share one truth class (roof_damage), so each roof class is swept with the
other two at their `--base` rule.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import tomllib
from pathlib import Path

ALIAS = {"missing_tile": "roof_damage", "moss": "roof_damage", "debris": "roof_damage", "roof-damage": "roof_damage"}
TRUTH_OF = lambda c: ALIAS.get(c, c)  # noqa: E731


class Local:
    def __init__(self, lon0, lat0):
        a, e2 = 6_378_137.0, 0.006_694_379_990_14
        s = math.sin(math.radians(lat0))
        w = math.sqrt(1 - e2 * s * s)
        n, m = a / w, a * (1 - e2) / w**3
        self.lon0, self.lat0 = lon0, lat0
        self.kx = n * math.cos(math.radians(lat0)) * math.pi / 180
        self.ky = m * math.pi / 180

    def xy(self, p):
        return ((p[0] - self.lon0) * self.kx, (p[1] - self.lat0) * self.ky)


def geom_points(g):
    t, c = g["type"], g["coordinates"]
    if t == "Point":
        return [c], False
    if t == "LineString":
        return c, True
    if t == "MultiLineString":
        return [p for l in c for p in l], True
    if t == "Polygon":
        return c[0], False
    if t == "MultiPolygon":
        return [p for poly in c for p in poly[0]], False
    raise ValueError(f"geometry {t}")


def centroid(pts):
    o = pts[0]
    cx = cy = a2 = 0.0
    n = len(pts)
    for i in range(n):
        p, q = pts[i], pts[(i + 1) % n]
        p, q = (p[0] - o[0], p[1] - o[1]), (q[0] - o[0], q[1] - o[1])
        c = p[0] * q[1] - q[0] * p[1]
        a2 += c
        cx += (p[0] + q[0]) * c
        cy += (p[1] + q[1]) * c
    if abs(a2) > 1e-12:
        return (o[0] + cx / (3 * a2), o[1] + cy / (3 * a2))
    return (sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n)


def dist_polyline(p, line):
    if len(line) == 1:
        return math.dist(p, line[0])
    best = math.inf
    for a, b in zip(line, line[1:]):
        dx, dy = b[0] - a[0], b[1] - a[1]
        l2 = dx * dx + dy * dy
        t = min(max(((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2, 0), 1) if l2 > 0 else 0
        best = min(best, math.dist(p, (a[0] + t * dx, a[1] + t * dy)))
    return best


def load_flight(truth_path: Path, findings_path: Path, tol: float = 2.0):
    """Truth defects [(id, class)] and findings [dict(class, truth_class, views, support,
    confidence, match)] where match = index of the truth defect it is assigned to or None."""
    tj, fj = json.loads(truth_path.read_text()), json.loads(findings_path.read_text())
    local = None
    truth = []
    for i, f in enumerate(tj["features"]):
        pts, line = geom_points(f["geometry"])
        if not pts:
            continue
        local = local or Local(*pts[0][:2])
        xy = [local.xy(p) for p in pts]
        truth.append(dict(id=f["properties"].get("id", f"#{i}"), cls=f["properties"]["class"], line=line, pts=xy,
                          c=None if line else centroid(xy)))
    out = []
    for i, f in enumerate(fj["features"]):
        pts, line = geom_points(f["geometry"])
        if not pts:
            continue
        local = local or Local(*pts[0][:2])
        xy = [local.xy(p) for p in pts]
        pos = xy[len(xy) // 2] if line else centroid(xy)
        pr = f["properties"]
        cls = pr["class"]
        best = None
        for ti, t in enumerate(truth):
            if t["cls"] != TRUTH_OF(cls):
                continue
            e = dist_polyline(pos, t["pts"]) if t["line"] else math.dist(pos, t["c"])
            if e <= tol and (best is None or e < best[0]):
                best = (e, ti)
        out.append(dict(cls=cls, views=int(pr["views"]), support=int(pr["support"]), conf=float(pr["confidence"]),
                        match=None if best is None else best[1]))
    return [(t["id"], t["cls"]) for t in truth], out


def keeps(f, rule) -> bool:
    sup, ratio, conf = rule
    if f["support"] < sup:
        return False
    if f["views"] >= 2 and f["support"] / f["views"] < ratio:
        return False
    return f["conf"] >= conf


def score(flights, rules, truth_class=None):
    """Pooled over flights: (matched defects, defects, true findings, findings). `rules` maps a
    finding class to (min_support, min_ratio, min_confidence); classes without a rule keep all."""
    found = n_truth = tp = n = 0
    for truth, fs in flights:
        hit = set()
        for f in fs:
            if truth_class and TRUTH_OF(f["cls"]) != truth_class:
                continue
            if not keeps(f, rules.get(f["cls"], (1, 0.0, 0.0))):
                continue
            n += 1
            if f["match"] is not None:
                tp += 1
                hit.add(f["match"])
        found += len(hit)
        n_truth += sum(1 for _, c in truth if truth_class is None or c == truth_class)
    return found, n_truth, tp, n


def rules_from_toml(path: Path, classes) -> dict:
    doc = tomllib.loads(path.read_text())
    by = {r["class"]: r for r in doc.get("rule", [])}
    out = {}
    for c in classes:
        r = by.get(c, by.get("*"))
        if r:
            out[c] = (r.get("min_support", 1), r.get("min_ratio", 0.0), r.get("min_confidence", 0.0))
    return out


def fmt(found, n_truth, tp, n):
    p = tp / n if n else 1.0
    r = found / n_truth if n_truth else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return dict(recall=round(r, 3), precision=round(p, 3), f1=round(f1, 3), found=found, defects=n_truth, true=tp,
                findings=n, duplicates=tp - found)


CLASSES = ["crack", "pothole", "missing_tile", "moss", "debris"]
MODEL_OF = {"crack": "crack", "pothole": "pothole", "missing_tile": "roof", "moss": "roof", "debris": "roof"}


def owners(rule) -> int:
    """`coverage::owners_for` for one class's rule (min_views_for_ratio 2)."""
    sup, ratio, _ = rule
    a = sup + 1 if sup > 1 else 1
    b = max(math.floor(1 / ratio) + 1, 2) if ratio > 0 else 1
    return max(a, b)


def model_owners(rules, model) -> int:
    return max(owners(rules.get(c, (1, 0.0, 0.0))) for c in CLASSES if MODEL_OF[c] == model)


def exact(rules, run_rules, cls) -> bool:
    """Whether the rule set's findings are exactly a subset of the run's (see the module docs)."""
    s, r, k = rules.get(cls, (1, 0.0, 0.0))
    s0, r0, k0 = run_rules.get(cls, (1, 0.0, 0.0))
    return (s >= s0 and r >= r0 and k >= k0
            and model_owners(rules, MODEL_OF[cls]) == model_owners(run_rules, MODEL_OF[cls]))
SUPPORTS = [1, 2, 3]
RATIOS = [0.0, 0.25, 0.34, 0.5, 0.6, 0.75]
CONFS = [round(0.05 * i, 2) for i in range(20)]


def sweep(flights, base_rules, run_rules):
    res = {}
    for c in CLASSES:
        tc = TRUTH_OF(c)
        rows = []
        for s in SUPPORTS:
            for r in RATIOS:
                for k in CONFS:
                    rules = dict(base_rules)
                    rules[c] = (s, r, k)
                    rows.append(dict(min_support=s, min_ratio=r, min_confidence=k, exact=exact(rules, run_rules, c),
                                     **fmt(*score(flights, rules, tc))))
        res[c] = rows
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flights", nargs="+", required=True, help="SIM:OUT pairs (SIM/truth.geojson, OUT/findings.geojson)")
    ap.add_argument("--base", type=Path, default=Path(__file__).resolve().parents[1] / "evidence.toml",
                    help="rules the other classes are held at (default: the shipped models/evidence.toml)")
    ap.add_argument("--run-rules", type=Path,
                    help="the evidence.toml the flights were processed with (default: the --base file)")
    ap.add_argument("--rules", type=Path, nargs="*", default=[], help="evidence.toml files to score as they are")
    ap.add_argument("--out", type=Path, help="write the whole sweep as JSON")
    ap.add_argument("--markdown", action="store_true",
                    help="print per class the curve over min_confidence at the base rule's min_support/min_ratio")
    ap.add_argument("--check", help="besikta binary: compare this scorer with `simulate --evaluate`")
    a = ap.parse_args()
    flights = []
    for pair in a.flights:
        s, o = pair.split(":")
        flights.append(load_flight(Path(s) / "truth.geojson", Path(o) / "findings.geojson"))
    base = rules_from_toml(a.base, CLASSES)
    report = {"flights": a.flights, "base": {c: list(v) for c, v in base.items()}}
    for name, rules in [("keep_all", {})] + [(str(p), rules_from_toml(p, CLASSES)) for p in [a.base] + a.rules]:
        report.setdefault("scored", {})[name] = {
            "all": fmt(*score(flights, rules)),
            **{tc: fmt(*score(flights, rules, tc)) for tc in ("crack", "pothole", "roof_damage")}}
        print(name, json.dumps(report["scored"][name]))
    if a.check:
        for pair in a.flights:
            s, o = pair.split(":")
            got = json.loads(subprocess.run([a.check, "simulate", "--evaluate", f"{s}/truth.geojson", f"{o}/findings.geojson"],
                                            capture_output=True, text=True, check=True).stdout)
            mine = fmt(*score([load_flight(Path(s) / "truth.geojson", Path(o) / "findings.geojson")], {}))
            print(f"check {pair}: binary recall {got['recall']:.3f} precision {got['precision']:.3f} | "
                  f"here recall {mine['recall']:.3f} precision {mine['precision']:.3f}")
    run_rules = rules_from_toml(a.run_rules or a.base, CLASSES)
    report["run_rules"] = {c: list(v) for c, v in run_rules.items()}
    report["sweep"] = sweep(flights, base, run_rules)
    if a.markdown:
        for c in CLASSES:
            bs, br, bk = base.get(c, (1, 0.0, 0.0))
            for s_, r_ in dict.fromkeys([(1, 0.0), (bs, br)]):
                rows = [row for row in report["sweep"][c] if row["exact"] and row["min_support"] == s_
                        and row["min_ratio"] == r_ and (row["min_confidence"] * 20) % 2 == 0]
                if not rows:
                    continue
                print(f"\n{c} (truth class {TRUTH_OF(c)}; other classes at the base rule), min_support {s_}, "
                      f"min_ratio {r_}, over min_confidence:\n")
                print("| min_confidence | recall | precision | F1 | findings | duplicates |\n|---|---|---|---|---|---|")
                for row in rows:
                    mark = " (base)" if (s_, r_) == (bs, br) and abs(row["min_confidence"] - bk) < 1e-9 else ""
                    print(f"| {row['min_confidence']:.1f}{mark} | {row['recall']:.3f} ({row['found']}/{row['defects']}) "
                          f"| {row['precision']:.3f} ({row['true']}/{row['findings']}) | {row['f1']:.3f} "
                          f"| {row['findings']} | {row['duplicates']} |")
    if a.out:
        a.out.write_text(json.dumps(report, indent=0) + "\n")


if __name__ == "__main__":
    main()
