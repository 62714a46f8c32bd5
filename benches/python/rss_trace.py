#!/usr/bin/env python3
"""Resident memory of `besikta process` over time, by stage: samples the child's VmRSS every
0.2 s and reads its progress bar (stderr) to know the stage; prints the peak per stage.

    python3 benches/python/rss_trace.py -- target/release/besikta process FLIGHT -o OUT

Used to find which stage makes peak memory grow with the number of photos.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    cmd = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    stage = ["start"]

    def read():
        buf = b""
        while True:
            ch = p.stderr.read(1)
            if not ch:
                return
            if ch in (b"\r", b"\n"):
                text = buf.decode(errors="replace").strip()
                if text:
                    stage[0] = text.split("[")[0].strip() or stage[0]
                buf = b""
            else:
                buf += ch

    t = threading.Thread(target=read, daemon=True)
    t.start()
    peaks: dict[str, int] = {}
    samples = []
    t0 = time.perf_counter()
    while p.poll() is None:
        r = rss_kb(p.pid)
        peaks[stage[0]] = max(peaks.get(stage[0], 0), r)
        samples.append((round(time.perf_counter() - t0, 1), stage[0], r))
        time.sleep(0.2)
    t.join(timeout=1)
    print(json.dumps({"exit": p.returncode, "peak_rss_mb_by_stage": {k: round(v / 1024, 1) for k, v in peaks.items()},
                      "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
