#!/usr/bin/env python3
"""Server-side latency of HTTP requests on loopback (issue 11, load benchmark): the kernel's
timestamp of each request's first packet and of the server's first response packet on the
same connection, from an AF_PACKET capture on `lo` (root; Python standard library only).
Unlike load.py's client-side figures, these leave out the clients' own scheduling and GIL
delays. Requests are told apart by their first 16 bytes: `GET /healthz` is "healthz",
`GET /api/v1/find...` (finding photo crops) "crops", `GET /api/v1/flig...` (a flight's
findings.geojson; a streamed body's first packet is its head) "findings", any other GET
"other".

    python3 benches/python/loopback_latency.py PORT DELAY_S SECS   # prints JSON

Run beside `load.py` (PORT: the server's, e.g. from `ss -ltnp`; DELAY_S: wait until the
load phase has started).
"""
import socket, struct, sys, time, json
port, delay, secs = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
SO_TIMESTAMPNS = 35
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind(("lo", 0)); s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
time.sleep(delay)
pending = {}; lat = {"healthz": [], "crops": [], "findings": [], "other": []}; seen = set(); n = 0
end = time.monotonic() + secs
while time.monotonic() < end:
    data, anc, _, addr = s.recvmsg(256, 64)
    if addr[2] == socket.PACKET_OUTGOING:
        continue  # each loopback packet is seen twice; keep the incoming copy
    ts = None
    for lvl, typ, d in anc:
        if typ == SO_TIMESTAMPNS:
            sec, ns = struct.unpack("qq", d[:16]); ts = sec + ns / 1e9
    ip = data[14:]
    if len(ip) < 20 or ip[9] != 6: continue
    ihl = (ip[0] & 15) * 4; tcp = ip[ihl:]
    sp, dp = struct.unpack("!HH", tcp[:4]); off = (tcp[12] >> 4) * 4; pl = tcp[off:off + 16]
    if not pl: continue
    n += 1
    if dp == port and pl.startswith(b"GET "):
        kind = ("healthz" if pl.startswith(b"GET /healthz") else
                "crops" if pl.startswith(b"GET /api/v1/find") else
                "findings" if pl.startswith(b"GET /api/v1/flig") else "other")
        pending[sp] = (ts, kind)
    elif sp == port and pl.startswith(b"HTTP/1.1") and dp in pending:
        t0, kind = pending.pop(dp); lat[kind].append((ts - t0) * 1000)
def pct(v, q):
    v = sorted(v); return round(v[min(len(v) - 1, max(0, int(-(-q * len(v) // 100)) - 1))], 2) if v else None
print(json.dumps({k: {"n": len(v), "p50_ms": pct(v, 50), "p95_ms": pct(v, 95), "p99_ms": pct(v, 99), "max_ms": round(max(v), 2) if v else None} for k, v in lat.items()}))
