#!/usr/bin/env python3
"""Worker throughput: the same flights through PostgreSQL with 1, 2 and 3 `besikta worker`
processes, and the queue overhead per job.

For each worker count: a fresh database in a throw-away PostgreSQL cluster (initdb on a
free loopback port, as the tests do), a fresh data folder, `besikta serve --workers 0`, N
flights each holding the same photos (uploaded, not yet processed), then W `besikta worker`
processes are started, all flights are queued at once and the clock runs until every
flight is `done`. A flight's photos are inferred in batch units of `--unit-photos` photos
(issue 15) that any worker takes, so with `--flights 1` and units smaller than the flight,
one flight uses several workers; the default unit (32 photos) keeps small flights one unit.

Reported per worker count: wall time from queueing to the last `done`, photos/s, the sum
of the pipeline's own time per job (`summary.json` timings.total_s), and the queue overhead
per job = (W x wall - sum of pipeline time) / jobs: the time a worker slot spends on
anything but the pipeline (polling the queue, claiming, reading the job's rows, storing the
findings, waiting at the end for the last flight). With W = 1 this is the per-job cost of
the queue and the job wrapper; with more workers it also holds idle slots at the tail.

    cargo build --release -p besikta-cli        # once; or reuse another helper's copy
    cp target/release/besikta /tmp/ops-bin/besikta
    python3 benches/python/worker_throughput.py --besikta /tmp/ops-bin/besikta \
        --flights 6 --workers 1 2 3 --out benches/results/worker-throughput.json

One flight over more workers (issue 15), e.g. 12 photos of the real Brighton flight in
units of 2 photos:

    python3 benches/python/worker_throughput.py --besikta target/debug/besikta --flights 1 \
        --workers 1 2 --photos /work/shared/data/flights/brighton-beach --limit 12 --unit-photos 2

Default photos: the three Brighton fixture photos (fixtures/brighton) per flight, with the
shipped models (models/). `--models fixtures/models/coarse` gives a fast, overhead-dominated
run. On a machine shared with other jobs the figures are noisy: say so beside them.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> str:
    if os.environ.get("BESIKTA_PG_BIN"):
        return os.environ["BESIKTA_PG_BIN"]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        sys.exit("no /usr/lib/postgresql/<version>/bin/initdb: run scripts/setup")
    return os.path.dirname(found[-1])


def as_postgres(cmd: list[str]) -> list[str]:
    return (["runuser", "-u", "postgres", "--"] + cmd) if os.geteuid() == 0 else cmd


class Cluster:
    def __init__(self) -> None:
        self.bin = pg_bin()
        self.dir = tempfile.mkdtemp(prefix="ops-bench-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = os.path.join(self.dir, "data")
        subprocess.run(as_postgres([f"{self.bin}/initdb", "-D", data, "-U", "postgres", "--auth=trust",
                                    "--no-sync", "-E", "UTF8", "--locale=C"]),
                       check=True, stdout=subprocess.DEVNULL)
        self.port = free_port()
        self.proc = subprocess.Popen(as_postgres([
            f"{self.bin}/postgres", "-D", data, "-p", str(self.port), "-k", self.dir,
            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if subprocess.run([f"{self.bin}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                              stdout=subprocess.DEVNULL).returncode == 0:
                return
            time.sleep(0.1)
        sys.exit("PostgreSQL did not start")

    def fresh(self, name: str) -> str:
        subprocess.run([f"{self.bin}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
                       check=True)
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(as_postgres([f"{self.bin}/pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "fast", "stop"]),
                       stdout=subprocess.DEVNULL)
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def request(addr: str, method: str, path: str, token: str, body: bytes = b"", ctype: str = "application/json"):
    req = urllib.request.Request(f"http://{addr}{path}", data=body if method != "GET" else None, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")


def multipart(photos: list[str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = bytearray()
    for p in photos:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"p\"; "
                f"filename=\"{os.path.basename(p)}\"\r\n\r\n").encode()
        out += open(p, "rb").read() + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def run(besikta: str, cluster: Cluster, workers: int, flights: int, photos: list[str], models: str,
        threads: int, unit_photos: int | None = None) -> dict:
    url = cluster.fresh(f"bench_w{workers}_{int(time.time())}")
    data = tempfile.mkdtemp(prefix=f"ops-bench-w{workers}-")
    procs: list[subprocess.Popen] = []
    try:
        token = subprocess.run([besikta, "token", "create", "--org", "Bench", "--role", "admin",
                                "--database", url, "--data", data],
                               check=True, capture_output=True, text=True).stdout.strip()
        serve = subprocess.Popen([besikta, "serve", "--addr", "127.0.0.1:0", "--workers", "0", "--database", url,
                                  "--data", data, "--models", models],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(serve)
        addr = serve.stdout.readline().strip().removeprefix("besikta: listening on http://")
        body, ctype = multipart(photos)
        ids = []
        for i in range(flights):
            f = request(addr, "POST", "/api/v1/flights", token, json.dumps({"name": f"f{i}"}).encode())
            request(addr, "POST", f"/api/v1/flights/{f['id']}/photos", token, body, ctype)
            ids.append(f["id"])
        for _ in range(workers):
            extra = ["--unit-photos", str(unit_photos)] if unit_photos else []
            procs.append(subprocess.Popen([besikta, "worker", "--database", url, "--data", data, "--models", models,
                                           "--threads", str(threads)] + extra,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)  # workers connected and polling
        load_start = os.getloadavg()
        t0 = time.monotonic()
        for fid in ids:
            request(addr, "POST", f"/api/v1/flights/{fid}/process", token, b"{}")
        while True:
            states = [request(addr, "GET", f"/api/v1/flights/{fid}", token)["state"] for fid in ids]
            if "failed" in states:
                sys.exit(f"a flight failed: {states}")
            if all(s == "done" for s in states):
                break
            time.sleep(0.05)
        wall = time.monotonic() - t0
        pipeline = 0.0
        timings = None
        for fid in ids:
            for summary in glob.glob(os.path.join(data, "flights", str(fid), "out-*", "summary.json")):
                timings = json.load(open(summary))["timings"]
                pipeline += timings["total_s"]
        # Which worker process ran how many batch units (issue 15).
        by_worker = subprocess.run(
            [f"{cluster.bin}/psql", url, "-At", "-c",
             "SELECT split_part(worker, ':', 2), COUNT(*) FROM work_units GROUP BY 1 ORDER BY 1"],
            capture_output=True, text=True).stdout.split()
        n_photos = flights * len(photos)
        return {
            "workers": workers,
            "flights": flights,
            "photos": n_photos,
            "threads_per_worker": threads,
            "wall_s": round(wall, 2),
            "photos_per_s": round(n_photos / wall, 3),
            "pipeline_s_sum": round(pipeline, 2),
            "pipeline_s_per_job": round(pipeline / flights, 2),
            "queue_overhead_ms_per_job": round((workers * wall - pipeline) / flights * 1000, 1),
            "unit_photos": unit_photos,
            "units_by_worker_pid": by_worker,
            "timings_last_job": timings,
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--besikta", default="/tmp/ops-bin/besikta")
    ap.add_argument("--flights", type=int, default=6)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--threads", type=int, default=1,
                    help="ONNX Runtime threads per model session of each worker (the workers' default, 1)")
    ap.add_argument("--models", default=os.path.join(REPO, "models"))
    ap.add_argument("--photos", default=os.path.join(REPO, "fixtures", "brighton"))
    ap.add_argument("--limit", type=int, help="only the first N photos (by name)")
    ap.add_argument("--unit-photos", type=int, help="photos per batch unit (besikta worker --unit-photos)")
    ap.add_argument("--out")
    args = ap.parse_args()
    photos = sorted(glob.glob(os.path.join(args.photos, "*.JPG")))[: args.limit]
    cluster = Cluster()
    results = []
    try:
        for w in args.workers:
            r = run(args.besikta, cluster, w, args.flights, photos, args.models, args.threads, args.unit_photos)
            print(json.dumps(r), flush=True)
            results.append(r)
    finally:
        cluster.stop()
    report = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "machine": {"cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()},
        "models": os.path.relpath(args.models, REPO),
        "results": results,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
