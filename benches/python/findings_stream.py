#!/usr/bin/env python3
"""Findings pages before and after streaming (issue 11): the server's peak memory serving
the all-flights findings.geojson of an organisation with many findings, requests per
second for a small page, and whether both binaries write the same bytes.

What it does:

1. With the --before binary: `besikta token create` (admin, viewer), `besikta serve` on a
   fresh --data folder (SQLite), the Brighton fixture photos uploaded and processed by the
   server's worker with the test models (fixtures/models/coarse), as benches/python/load.py
   does (15 findings, 29 KB of GeoJSON at 0804c01).
2. A copy of that data folder gets a second flight with --findings findings written
   straight into SQLite: copies of the processed flight's stored findings (real sizes,
   observations and all), each with its own finding id. The all-flights page of that
   copy is the large page.
3. For each binary (--before, then --after), each on its own copy of the folders, with
   `besikta serve --workers 0`:
   - large page: the server's VmHWM is reset (/proc/PID/clear_refs = 5) after start, one
     GET /api/v1/findings.geojson is read to the end (sha256 and length of the body, time),
     then VmHWM; then the same with --concurrent requests at once;
   - small page: --clients keep-alive clients GET the flight's findings.geojson back to
     back for --secs (200s), then the same with If-None-Match of its ETag (304s); the small
   page is a third flight of --page-findings copies of the processed findings (92: the
   size of the page issue 11 measured).
4. The bodies' sha256 of both binaries are compared (large and small page).

    python3 benches/python/findings_stream.py --before /tmp/stream-bin/before \\
        --after /tmp/stream-bin/after --out benches/results/findings-stream-2026-12-02.json

Memory is the server process's own (VmHWM, MiB); the clients are Python threads on the
same machine, so requests per second are a lower bound of the server's.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402  (the same set-up and clients as the load benchmark)


def serve(besikta: str, data: str, models: str, workers: int) -> tuple[subprocess.Popen, str]:
    return load.start_serve(besikta, data, models, [], workers)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def prepare(args, base: str) -> dict:
    """Step 1: the processed fixture flight; returns the tokens and the flight id."""
    photos = sorted(os.path.join(args.photos, p) for p in os.listdir(args.photos) if p.endswith(".JPG"))
    admin = load.token(args.before, base, "admin")
    viewer = load.token(args.before, base, "viewer")
    proc, addr = serve(args.before, base, args.models, 1)
    try:
        flight = load.api(addr, "POST", "/api/v1/flights", admin, json.dumps({"name": "small"}).encode())["id"]
        body, ctype = load.multipart(photos)
        load.api(addr, "POST", f"/api/v1/flights/{flight}/photos", admin, body, ctype)
        load.api(addr, "POST", f"/api/v1/flights/{flight}/process", admin, b"{}")
        while True:
            state = load.api(addr, "GET", f"/api/v1/flights/{flight}", admin)["state"]
            if state == "failed":
                sys.exit("the fixture flight failed to process")
            if state == "done":
                break
            time.sleep(0.2)
        big = load.api(addr, "POST", "/api/v1/flights", admin, json.dumps({"name": "large"}).encode())["id"]
        page = load.api(addr, "POST", "/api/v1/flights", admin, json.dumps({"name": "page"}).encode())["id"]
    finally:
        stop(proc)
    return {"admin": admin, "viewer": viewer, "flight": flight, "large_flight": big, "page_flight": page}


def multiply(data: str, flight: int, large_flight: int, n: int) -> int:
    """Step 2: `n` copies of `flight`'s stored findings in `large_flight`."""
    db = sqlite3.connect(os.path.join(data, "besikta.db"))
    cols = "org_id, class, severity, created_at, min_x, min_y, max_x, max_y, status, finding"
    rows = db.execute(f"SELECT {cols} FROM findings WHERE flight_id = ? ORDER BY id", (flight,)).fetchall()
    if not rows:
        sys.exit("the fixture flight has no findings")
    out = []
    for i in range(n):
        prefix = f"L{large_flight}-"
        org, cls, sev, at, x0, y0, x1, y1, status, finding = rows[i % len(rows)]
        typed = json.loads(finding)
        typed["id"] = f"{prefix}{i}"
        out.append((org, large_flight, f"{prefix}{i}", cls, sev, at, x0, y0, x1, y1, status, json.dumps(typed)))
    db.executemany("INSERT INTO findings (org_id, flight_id, finding_id, class, severity, created_at, "
                   "min_x, min_y, max_x, max_y, status, finding) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", out)
    db.execute("UPDATE flights SET state = 'done' WHERE id = ?", (large_flight,))
    db.commit()
    db.close()
    return len(rows)


def read_page(addr: str, path: str, token: str, result: dict) -> None:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    h = hashlib.sha256()
    size = 0
    while True:
        piece = resp.read(1 << 20)
        if not piece:
            break
        h.update(piece)
        size += len(piece)
    result.update({"status": resp.status, "bytes": size, "sha256": h.hexdigest(),
                   "secs": round(time.perf_counter() - t0, 2),
                   "content_length": resp.getheader("Content-Length"),
                   "transfer_encoding": resp.getheader("Transfer-Encoding"),
                   "etag": resp.getheader("ETag")})
    conn.close()


def hwm_of(pid: int, requests: list[tuple[str, str, str]]) -> tuple[float, list[dict]]:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    results = [dict() for _ in requests]
    threads = [threading.Thread(target=read_page, args=(*r, out)) for r, out in zip(requests, results)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return round(load.proc_status(pid)["VmHWM"], 1), results


def rate(addr: str, path: str, token: str, clients: int, secs: float, etag: str | None) -> dict:
    start = threading.Event()
    stop_at = [0.0]
    group = [load.Client(addr, [path], token, start, stop_at) for _ in range(clients)]
    for c in group:
        if etag:
            c.headers["If-None-Match"] = etag
        c.start()
    stop_at[0] = time.monotonic() + secs
    t0 = time.monotonic()
    start.set()
    for c in group:
        c.join()
    wall = time.monotonic() - t0
    statuses: dict = {}
    for c in group:
        for k, v in c.statuses.items():
            statuses[str(k)] = statuses.get(str(k), 0) + v
    lat = sorted(x * 1000 for c in group for x in c.latencies)
    return {"clients": clients, "secs": round(wall, 2), "statuses": statuses,
            "per_s": round(len(lat) / wall, 1),
            "p50_ms": round(load.percentile(lat, 50), 1), "p99_ms": round(load.percentile(lat, 99), 1)}


def measure(args, binary: str, small: str, large: str, setup: dict) -> dict:
    out = {"binary": binary}
    viewer = setup["viewer"]
    proc, addr = serve(binary, large, args.models, 0)
    try:
        time.sleep(1.0)
        out["large_idle_rss_mib"] = round(load.proc_status(proc.pid)["VmRSS"], 1)
        page = ("/api/v1/findings.geojson")
        hwm, [one] = hwm_of(proc.pid, [(addr, page, viewer)])
        out["large_one"] = {"vm_hwm_mib": hwm, **one}
        hwm, many = hwm_of(proc.pid, [(addr, page, viewer)] * args.concurrent)
        out["large_concurrent"] = {"requests": args.concurrent, "vm_hwm_mib": hwm,
                                   "secs_max": max(r["secs"] for r in many),
                                   "same_bytes": len({r["sha256"] for r in many}) == 1}
    finally:
        stop(proc)
    proc, addr = serve(binary, small, args.models, 0)
    try:
        path = f"/api/v1/flights/{setup['page_flight']}/findings.geojson"
        first: dict = {}
        read_page(addr, path, viewer, first)
        out["small_page"] = first
        out["small_200"] = rate(addr, path, viewer, args.clients, args.secs, None)
        out["small_304"] = rate(addr, path, viewer, args.clients, args.secs, first["etag"])
        out["small_vm_hwm_mib"] = round(load.proc_status(proc.pid)["VmHWM"], 1)
    finally:
        stop(proc)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--models", default=os.path.join(load.REPO, "fixtures", "models", "coarse"))
    ap.add_argument("--photos", default=os.path.join(load.REPO, "fixtures", "brighton"))
    ap.add_argument("--findings", type=int, default=50000)
    ap.add_argument("--page-findings", type=int, default=92,
                    help="findings of the small page (copies of the processed ones, in a flight of their own)")
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--secs", type=float, default=15.0)
    ap.add_argument("--out")
    args = ap.parse_args()
    ort = os.path.join(load.REPO, ".cache", "onnxruntime", "libonnxruntime.so")
    if "ORT_DYLIB_PATH" not in os.environ and os.path.exists(ort):
        os.environ["ORT_DYLIB_PATH"] = ort
    work = tempfile.mkdtemp(prefix="findings-stream-")
    try:
        base = os.path.join(work, "base")
        os.makedirs(base)
        setup = prepare(args, base)
        real = multiply(base, setup["flight"], setup["page_flight"], args.page_findings)
        large = os.path.join(work, "large")
        shutil.copytree(base, large)
        multiply(large, setup["flight"], setup["large_flight"], args.findings)
        results = {"findings_processed": real, "findings_small_page": args.page_findings,
                   "findings_large_page": args.findings + args.page_findings + real, "runs": {}}
        for label, binary in (("before", args.before), ("after", args.after)):
            small_copy, large_copy = os.path.join(work, f"small-{label}"), os.path.join(work, f"large-{label}")
            shutil.copytree(base, small_copy)
            shutil.copytree(large, large_copy)
            results["runs"][label] = measure(args, binary, small_copy, large_copy, setup)
            shutil.rmtree(small_copy)
            shutil.rmtree(large_copy)
            print(json.dumps({label: results["runs"][label]}, indent=1), flush=True)
        b, a = results["runs"]["before"], results["runs"]["after"]
        results["same_bytes"] = {"large": b["large_one"]["sha256"] == a["large_one"]["sha256"],
                                 "small": b["small_page"]["sha256"] == a["small_page"]["sha256"]}
        print(json.dumps(results["same_bytes"]))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
                f.write("\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
