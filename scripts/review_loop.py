#!/usr/bin/env python3
"""Scripted reviewer for measuring the review -> fine-tune loop (issue 16). NOT part of the
product: it knows the simulator's truth, which no real reviewer has.

It drives the product path end to end for one simulated flight:

1. `besikta token create` + `besikta serve` on a fresh --data folder;
2. uploads the register and the flight's photos, asks the service to process it, waits;
3. reads the flight's findings from the API, scores them with
   `besikta simulate --evaluate truth.geojson findings.geojson` (the simulation's own
   matching: same class within 2 m), and PUTs /api/v1/findings/{id}/review for every
   finding: `confirmed` when it matches a planted defect, `rejected` (reason
   `not-a-defect`) when it is one of the evaluation's false positives;
4. stops the service and runs `besikta export-training --data DIR -o OUT`.

    python3 scripts/review_loop.py --bin target/release/besikta --flight /tmp/simA \
        --register fixtures/registers/helsinki.osm.pbf --data /tmp/svc --export /tmp/export

Standard library only. Prints a JSON summary (counts per class and review state) and writes
it to OUT/../review_summary.json (`--summary` to choose).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base: str, token: str):
        self.base = base
        self.token = token

    def call(self, method: str, path: str, body: bytes | None = None, ctype: str | None = None):
        req = urllib.request.Request(self.base + path, data=body, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                data = r.read()
        except urllib.error.HTTPError as e:
            raise SystemExit(f"{method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')}")
        return json.loads(data) if data else None

    def json(self, method: str, path: str, obj) -> dict:
        return self.call(method, path, json.dumps(obj).encode(), "application/json")

    def upload_photos(self, flight: int, photos: list[Path]) -> None:
        # multipart/form-data, field "photos", a few photos per request
        for i in range(0, len(photos), 5):
            boundary = f"besiktaloop{time.time_ns()}"
            parts = []
            for p in photos[i : i + 5]:
                parts.append(
                    f"--{boundary}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"{p.name}\"\r\n"
                    "Content-Type: image/jpeg\r\n\r\n".encode() + p.read_bytes() + b"\r\n"
                )
            body = b"".join(parts) + f"--{boundary}--\r\n".encode()
            self.call("POST", f"/flights/{flight}/photos", body, f"multipart/form-data; boundary={boundary}")

    def all_findings(self, flight: int) -> dict:
        feats, path = [], f"/flights/{flight}/findings.geojson?limit=500"
        while path:
            page = self.call("GET", path)
            feats += page["features"]
            nxt = page.get("next")
            path = nxt.split("/api/v1", 1)[1] if nxt else None
        return {"type": "FeatureCollection", "features": feats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, required=True, help="the besikta binary")
    ap.add_argument("--flight", type=Path, required=True, help="simulated flight folder (photos + truth.geojson)")
    ap.add_argument("--register", type=Path, required=True)
    ap.add_argument("--register-kind", default="osm")
    ap.add_argument("--data", type=Path, required=True, help="service data folder (new)")
    ap.add_argument("--models", type=Path, default=Path("models"))
    ap.add_argument("--export", type=Path, required=True, help="export-training output folder (new)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--summary", type=Path)
    a = ap.parse_args()
    b = str(a.bin)
    a.data.mkdir(parents=True, exist_ok=True)

    token = subprocess.run(
        [b, "token", "create", "--data", str(a.data), "--org", "LoopTest", "--role", "admin", "--crs", "EPSG:3067"],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]
    port = free_port()
    log = open(a.data / "serve.log", "w")
    server = subprocess.Popen(
        ["nice", b, "serve", "--data", str(a.data), "--addr", f"127.0.0.1:{port}",
         "--models", str(a.models), "--threads", str(a.threads)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    summary: dict = {}
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        api = Api(f"http://127.0.0.1:{port}/api/v1", token)
        api.call("PUT", f"/registers/{a.register_kind}", a.register.read_bytes(), "application/octet-stream")
        flight = api.json("POST", "/flights", {"name": f"review loop {a.flight.name}"})["id"]
        photos = sorted(a.flight.glob("*.JPG"))
        api.upload_photos(flight, photos)
        t0 = time.time()
        api.call("POST", f"/flights/{flight}/process")
        while True:
            state = api.call("GET", f"/flights/{flight}")["state"]
            if state in ("done", "failed"):
                break
            time.sleep(5)
        summary["process_s"] = round(time.time() - t0, 1)
        if state != "done":
            raise SystemExit(f"processing flight {flight} failed; see {a.data}/serve.log")
        fc = api.all_findings(flight)
        # name each finding by its store id so the evaluation's false positives are those ids
        for feat in fc["features"]:
            feat["properties"]["id"] = str(feat["properties"]["finding_id"])
        with tempfile.NamedTemporaryFile("w", suffix=".geojson", delete=False) as f:
            json.dump(fc, f)
        ev = json.loads(subprocess.run(
            [b, "simulate", "--evaluate", str(a.flight / "truth.geojson"), f.name],
            check=True, capture_output=True, text=True,
        ).stdout)
        os.unlink(f.name)
        false_ids = set(map(str, ev["false_positives"]))
        states = Counter()
        for feat in fc["features"]:
            props = feat["properties"]
            fid = props["finding_id"]
            wrong = str(fid) in false_ids
            body = {"state": "rejected", "reason": "not-a-defect"} if wrong else {"state": "confirmed"}
            body["comment"] = "scripted reviewer (scripts/review_loop.py) from the simulation's truth"
            api.json("PUT", f"/findings/{fid}/review", body)
            states[(props.get("class"), body["state"])] += 1
        summary.update(
            flight=str(a.flight), service_flight_id=flight, findings=len(fc["features"]),
            evaluation={k: ev[k] for k in ("truth_count", "finding_count", "matched", "recall", "precision", "duplicates")},
            reviews={f"{c}/{s}": n for (c, s), n in sorted(states.items())},
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
    out = subprocess.run(
        [b, "export-training", "--data", str(a.data), "--models", str(a.models), "-o", str(a.export)],
        capture_output=True, text=True,
    )
    summary["export_training"] = (out.stdout + out.stderr).strip()[-2000:]
    if out.returncode != 0:
        print(json.dumps(summary, indent=1))
        raise SystemExit(f"export-training failed ({out.returncode})")
    text = json.dumps(summary, indent=1)
    print(text)
    (a.summary or a.export.parent / "review_summary.json").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
