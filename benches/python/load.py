#!/usr/bin/env python3
"""Load benchmark (issue 11): /healthz latency while finding photo crops (and the
findings GeoJSON) are hammered, crops per second, and the server's peak memory.

What it does, against a release `besikta serve` on loopback with a fresh --data folder
(SQLite in it):

1. `besikta token create` makes an admin token (uploads, processing) and a viewer token
   (all load requests read with it).
2. One flight: the Brighton fixture photos (fixtures/brighton, 3 photos) uploaded in one
   multipart request and processed by the server's own worker (`--workers 1`) with the
   test models (fixtures/models/coarse: the coarse crack model finds something there).
3. Idle baseline: one client on GET /healthz for --idle-secs, nothing else running.
4. Load for --secs: --healthz-clients clients on GET /healthz, --crop-clients clients on
   GET /api/v1/findings/{id}/photo.jpg (cycling through the flight's findings) and
   --findings-clients clients on GET /api/v1/flights/{id}/findings.geojson, all at once,
   each a thread with its own keep-alive connection (http.client), back to back.
   Meanwhile the server's VmRSS is sampled every 100 ms and the load average every second.
   The server's VmHWM is reset (/proc/PID/clear_refs = 5) after processing, so the peak
   reported for the load phase is that phase's own; the peak through processing is
   reported beside it.

Latency is measured in the client from sending the request to the last body byte; the
clients share the machine (and the Python GIL) with the server, so on a small machine the
figures include client-side scheduling delay: they are an upper bound of the server's.
With --healthz-process-clients N, N more /healthz clients run in a Python process of their
own through the load phase (group `healthz_own_process`): the same requests without the
crop clients' GIL, so the difference between the two healthz groups is client-side delay.
With --healthz-new-connections those N clients open a new connection for each probe
(Connection: close), as most load balancers' health checks do.
With --server-side (root: a packet capture on lo), loopback_latency.py runs through the
load phase (from 1 s after its start to 1 s before its end) and the results gain
`load.server_side_ms`: each kind of request's latency from its first packet to the first
packet of the answer, as the server's side sees it (no client scheduling).

    nice -n 19 cargo build --release -p besikta-cli
    mkdir -p /tmp/load-bin && cp target/release/besikta /tmp/load-bin/besikta
    python3 benches/python/load.py --besikta /tmp/load-bin/besikta --secs 60 \\
        --commit "$(git rev-parse --short HEAD)" --out benches/results/load-2026-12-02.json

Issue 11's targets, for comparison (not measurements): /healthz p99 under 50 ms while
findings and crops are hammered; at least 50 crops/s; server memory under 1 GB throughout.
"""
from __future__ import annotations

import argparse
import glob
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-q * len(sorted_values) // 100)))  # ceil(q/100 * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary(latencies_s: list[float], statuses: dict, secs: float) -> dict:
    lat = sorted(x * 1000 for x in latencies_s)
    ok = statuses.get(200, 0)
    r = lambda v: None if v is None else round(v, 1)  # noqa: E731
    return {
        "requests": len(lat),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        "ok_per_s": round(ok / secs, 2),
        "p50_ms": r(percentile(lat, 50)),
        "p95_ms": r(percentile(lat, 95)),
        "p99_ms": r(percentile(lat, 99)),
        "max_ms": r(lat[-1] if lat else None),
    }


def proc_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) / 1024  # MiB
    except OSError:
        pass
    return out


class Client(threading.Thread):
    """Sends GET requests back to back on one keep-alive connection until `stop_at` (with
    `fresh`, on a new connection for each request, closed after it, as most load
    balancers' health checks do; the latency then includes connecting)."""

    def __init__(self, addr: str, paths: list[str], token: str | None, start: threading.Event, stop_at: list[float],
                 offset: int = 0, fresh: bool = False):
        super().__init__(daemon=True)
        self.fresh = fresh
        self.host, port = addr.rsplit(":", 1)
        self.port = int(port)
        self.paths = paths
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        if fresh:
            self.headers["Connection"] = "close"
        self.start_event = start
        self.stop_at = stop_at
        self.i = offset
        self.latencies: list[float] = []
        self.statuses: dict = {}
        self.bytes = 0

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=180)
        self.start_event.wait()
        while time.monotonic() < self.stop_at[0]:
            path = self.paths[self.i % len(self.paths)]
            self.i += 1
            t0 = time.perf_counter()
            if self.fresh:
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=180)
            try:
                conn.request("GET", path, headers=self.headers)
                resp = conn.getresponse()
                body = resp.read()
                status = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as e:
                status = type(e).__name__
                body = b""
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=180)
            self.latencies.append(time.perf_counter() - t0)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.bytes += len(body)
        conn.close()


def drive(addr: str, groups: dict[str, tuple[int, list[str], str | None]], secs: float, pid: int,
          fresh: bool = False) -> dict:
    """Runs every group's clients at once for `secs`; samples the server's memory and the
    machine's load average meanwhile. `fresh`: every client opens a new connection per request."""
    start = threading.Event()
    stop_at = [0.0]
    clients: dict[str, list[Client]] = {}
    for name, (n, paths, token) in groups.items():
        clients[name] = [Client(addr, paths, token, start, stop_at, offset=i * 7, fresh=fresh) for i in range(n)]
        for c in clients[name]:
            c.start()
    rss: list[float] = []
    loads: list[float] = []
    stop_at[0] = time.monotonic() + secs
    t0 = time.monotonic()
    start.set()
    next_load = t0
    while time.monotonic() < stop_at[0]:
        s = proc_status(pid)
        if "VmRSS" in s:
            rss.append(s["VmRSS"])
        if time.monotonic() >= next_load:
            loads.append(os.getloadavg()[0])
            next_load += 1.0
        time.sleep(0.1)
    for group in clients.values():
        for c in group:
            c.join()
    wall = time.monotonic() - t0  # includes the requests in flight at the deadline
    out = {"secs": round(wall, 2), "groups": {}}
    for name, group in clients.items():
        lat = [x for c in group for x in c.latencies]
        statuses: dict = {}
        for c in group:
            for k, v in c.statuses.items():
                statuses[k] = statuses.get(k, 0) + v
        s = summary(lat, statuses, wall)
        s["clients"] = len(group)
        s["mean_bytes"] = round(sum(c.bytes for c in group) / max(1, s["requests"]))
        out["groups"][name] = s
    status = proc_status(pid)
    out["server_rss_mib"] = {
        "samples": len(rss),
        "start": round(rss[0], 1) if rss else None,
        "max_sampled": round(max(rss), 1) if rss else None,
        "end": round(rss[-1], 1) if rss else None,
        "vm_hwm": round(status.get("VmHWM", 0), 1),
    }
    out["load_avg_1min"] = {
        "min": round(min(loads), 2) if loads else None,
        "max": round(max(loads), 2) if loads else None,
        "mean": round(sum(loads) / len(loads), 2) if loads else None,
    }
    return out


def probe(addr: str, secs: float, clients: int, fresh: bool) -> None:
    """--probe: `clients` /healthz clients for `secs` in this process (`fresh`: a new
    connection per request); prints drive()'s JSON."""
    pid = os.getpid()  # no server pid here: memory samples are of this process, dropped below
    out = drive(addr, {"healthz": (clients, ["/healthz"], None)}, secs, pid, fresh=fresh)
    print(json.dumps(out["groups"]["healthz"]), flush=True)


def api(addr: str, method: str, path: str, token: str, body: bytes = b"", ctype: str = "application/json"):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    try:
        conn.request(method, path, body=body if method != "GET" else None,
                     headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            sys.exit(f"{method} {path}: {resp.status} {data[:300]!r}")
        return json.loads(data or b"null")
    finally:
        conn.close()


def multipart(photos: list[str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = bytearray()
    for p in photos:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"p\"; "
                f"filename=\"{os.path.basename(p)}\"\r\n\r\n").encode()
        with open(p, "rb") as f:
            out += f.read() + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def start_serve(besikta: str, data: str, models: str, extra: list[str],
                workers: int = 1) -> tuple[subprocess.Popen, str]:
    """`besikta serve` on a free loopback port with `workers` job workers; returns it and its
    address."""
    serve = subprocess.Popen([besikta, "serve", "--addr", "127.0.0.1:0", "--data", data,
                              "--models", models, "--workers", str(workers), *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = serve.stdout.readline().strip()
    addr = line.removeprefix("besikta: listening on http://")
    if not addr or addr == line:
        serve.kill()
        sys.exit(f"besikta serve did not say where it listens: {line!r}")
    return serve, addr


def stop_serve(serve: subprocess.Popen | None) -> None:
    """SIGTERM, then up to a minute for the jobs in hand, then kill."""
    if serve is None:
        return
    serve.send_signal(signal.SIGTERM)
    try:
        serve.wait(timeout=60)
    except subprocess.TimeoutExpired:
        serve.kill()


def token(besikta: str, data: str, role: str) -> str:
    return subprocess.run([besikta, "token", "create", "--org", "Bench", "--role", role, "--data", data],
                          check=True, capture_output=True, text=True).stdout.strip()


def git_commit() -> str:
    r = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--besikta", default="/tmp/load-bin/besikta")
    ap.add_argument("--models", default=os.path.join(REPO, "fixtures", "models", "coarse"))
    ap.add_argument("--photos", default=os.path.join(REPO, "fixtures", "brighton"))
    ap.add_argument("--secs", type=float, default=60.0, help="length of the load phase")
    ap.add_argument("--idle-secs", type=float, default=5.0, help="length of the idle /healthz baseline")
    ap.add_argument("--healthz-clients", type=int, default=4)
    ap.add_argument("--crop-clients", type=int, default=16)
    ap.add_argument("--findings-clients", type=int, default=2)
    ap.add_argument("--healthz-process-clients", type=int, default=0,
                    help="more /healthz clients in a Python process of their own during the load phase")
    ap.add_argument("--healthz-new-connections", action="store_true",
                    help="the --healthz-process-clients open a new connection for each probe (Connection: close), "
                         "as most load balancers do")
    ap.add_argument("--server-side", action="store_true",
                    help="also measure server-side latency with loopback_latency.py (root)")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="one more argument for `besikta serve` (repeat for several)")
    ap.add_argument("--probe", metavar="ADDR", help=argparse.SUPPRESS)
    ap.add_argument("--commit", help="commit the binary was built from (default: this checkout's HEAD)")
    ap.add_argument("--out", help="JSON results file")
    args = ap.parse_args()
    if args.probe:
        probe(args.probe, args.secs, args.healthz_clients, args.healthz_new_connections)
        return
    photos = sorted(glob.glob(os.path.join(args.photos, "*.JPG")))
    if not photos:
        sys.exit(f"no *.JPG photos in {args.photos}")
    # A copied binary does not find the project's ONNX Runtime by itself.
    ort = os.path.join(REPO, ".cache", "onnxruntime", "libonnxruntime.so")
    if "ORT_DYLIB_PATH" not in os.environ and os.path.exists(ort):
        os.environ["ORT_DYLIB_PATH"] = ort
    data = tempfile.mkdtemp(prefix="load-bench-")
    serve = None
    try:
        admin = token(args.besikta, data, "admin")
        viewer = token(args.besikta, data, "viewer")
        serve, addr = start_serve(args.besikta, data, args.models, args.serve_arg)
        flight = api(addr, "POST", "/api/v1/flights", admin, json.dumps({"name": "load"}).encode())["id"]
        body, ctype = multipart(photos)
        api(addr, "POST", f"/api/v1/flights/{flight}/photos", admin, body, ctype)
        t0 = time.monotonic()
        api(addr, "POST", f"/api/v1/flights/{flight}/process", admin, b"{}")
        while True:
            info = api(addr, "GET", f"/api/v1/flights/{flight}", admin)
            state = info["state"]
            if state == "failed":
                sys.exit(f"the flight failed to process: {json.dumps(info)[:800]}")
            if state == "done":
                break
            time.sleep(0.2)
        processing_s = time.monotonic() - t0
        findings = api(addr, "GET", f"/api/v1/flights/{flight}/findings.geojson", viewer)["features"]
        ids = [f["id"] for f in findings]
        if not ids:
            sys.exit("the flight has no findings: nothing to crop (models or photos?)")
        hwm_processing = proc_status(serve.pid).get("VmHWM")
        print(f"flight {flight}: {len(photos)} photos processed in {processing_s:.1f} s, {len(ids)} findings, "
              f"server VmHWM so far {hwm_processing:.0f} MiB", flush=True)

        idle = drive(addr, {"healthz": (1, ["/healthz"], None)}, args.idle_secs, serve.pid)
        # The load phase's own peak: reset the high-water mark (Linux: clear_refs 5).
        with open(f"/proc/{serve.pid}/clear_refs", "w") as f:
            f.write("5")
        groups = {"healthz": (args.healthz_clients, ["/healthz"], None),
                  "crops": (args.crop_clients, [f"/api/v1/findings/{i}/photo.jpg" for i in ids], viewer)}
        if args.findings_clients:
            groups["findings_geojson"] = (args.findings_clients, [f"/api/v1/flights/{flight}/findings.geojson"],
                                          viewer)
        prober = None
        if args.healthz_process_clients:
            prober = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--probe", addr,
                                       "--secs", str(args.secs),
                                       "--healthz-clients", str(args.healthz_process_clients)]
                                      + (["--healthz-new-connections"] if args.healthz_new_connections else []),
                                      stdout=subprocess.PIPE, text=True)
        capture = None
        if args.server_side:
            capture = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                     "loopback_latency.py"),
                                        addr.rsplit(":", 1)[1], "1", str(max(1.0, args.secs - 2))],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        loaded = drive(addr, groups, args.secs, serve.pid)
        if capture is not None:
            out, err = capture.communicate(timeout=120)
            loaded["server_side_ms"] = json.loads(out) if capture.returncode == 0 else {"error": err[-400:]}
        if prober is not None:
            own, _ = prober.communicate(timeout=args.secs + 120)
            loaded["groups"]["healthz_own_process"] = json.loads(own)
    finally:
        stop_serve(serve)
        shutil.rmtree(data, ignore_errors=True)

    g = loaded["groups"]
    rows = [("idle /healthz (1 client)", idle["groups"]["healthz"])] + [
        (f"{name} ({s['clients']} clients)", s) for name, s in g.items()]
    print(f"\n{'phase / requests':34} {'ok':>6} {'ok/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8}  other statuses")
    for name, s in rows:
        other = {k: v for k, v in s["statuses"].items() if k != "200"}
        print(f"{name:34} {s['ok']:>6} {s['ok_per_s']:>8} {s['p50_ms']!s:>8} {s['p95_ms']!s:>8} "
              f"{s['p99_ms']!s:>8} {s['max_ms']!s:>8}  {other or ''}")
    m = loaded["server_rss_mib"]
    print(f"\nserver RSS MiB during load: start {m['start']}, max sampled {m['max_sampled']}, end {m['end']}, "
          f"VmHWM of the load phase {m['vm_hwm']}; VmHWM through processing {hwm_processing:.1f}")
    print(f"load average (1 min) during load: {loaded['load_avg_1min']}")
    if "server_side_ms" in loaded:
        print(f"server-side latency (capture on lo): {json.dumps(loaded['server_side_ms'])}")

    report = {
        "command": " ".join(["python3"] + [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
        "binary": args.besikta,
        "serve_args": args.serve_arg,
        "commit_of_binary": args.commit or git_commit(),
        "checkout_head_at_run": git_commit(),
        "machine": {"cpus": os.cpu_count(), "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "models": os.path.relpath(args.models, REPO),
        "photos": [os.path.relpath(p, REPO) for p in photos],
        "flight": {"processing_s": round(processing_s, 1), "findings": len(ids),
                   "server_vm_hwm_mib_through_processing": round(hwm_processing or 0, 1)},
        "idle": idle,
        "load": loaded,
        "targets_issue_11": {"healthz_p99_ms_under_load_below": 50, "crops_per_s_at_least": 50,
                             "server_memory_below_mb": 1000},
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
