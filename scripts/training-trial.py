#!/usr/bin/env python3
"""Trial of `besikta export-training` on a simulated flight processed by `besikta serve`.

Simulates a flight (seed 5, 12 photos at 20 m over the Helsinki fixture register), serves a
fresh data folder, uploads and processes the flight, then a scripted reviewer that knows the
truth reviews every finding through the API (confirmed when a truth defect of the same
family lies within 2 m of its centre, else rejected as not-a-defect), and exports training
chips. The reviewer lives here, never in the product.

    cargo build -p besikta-cli && python3 scripts/training-trial.py [OUT_DIR]
"""
import json, math, os, subprocess, sys, time, urllib.request, glob
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(repo, "target/debug/besikta")
root = sys.argv[1] if len(sys.argv) > 1 else "/tmp/besikta-training-trial"
os.makedirs(root, exist_ok=True)
sim, data = f"{root}/sim", f"{root}/data"
port = 18093
api = f"http://127.0.0.1:{port}/api/v1"
def sh(*a, **k):
    t = time.time(); r = subprocess.run(a, capture_output=True, text=True, **k)
    print("$", " ".join(a), f"({time.time()-t:.1f} s, exit {r.returncode})"); print(r.stdout[-3000:], r.stderr[-3000:]); return r
if not os.path.exists(f"{sim}/truth.geojson"):
    sh(B, "simulate", "--assets", os.path.join(repo, "fixtures/registers/helsinki.osm.pbf"), "--out", sim, "--seed", "5", "--photos", "12", "--altitude", "20", "--defects", "15")
if os.path.exists(data):
    sys.exit(f"{data} exists; give a new OUT_DIR")
tok = subprocess.run([B, "token", "create", "--data", data, "--org", "city", "--role", "admin"], capture_output=True, text=True, check=True).stdout.strip()
srv = subprocess.Popen([B, "serve", "--data", data, "--addr", f"127.0.0.1:{port}", "--models", os.path.join(repo, "models"), "--threads", "1"], stdout=open(f"{root}/serve.log", "w"), stderr=subprocess.STDOUT)
print("serve pid", srv.pid)
try:
    for _ in range(100):
        try: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz"); break
        except Exception: time.sleep(0.2)
    def call(method, path, body=None, ctype="application/json"):
        req = urllib.request.Request(api + path, data=body, method=method, headers={"Authorization": f"Bearer {tok}", "Content-Type": ctype})
        with urllib.request.urlopen(req) as r: return json.loads(r.read() or b"null")
    fl = call("POST", "/flights", json.dumps({"name": "sim5"}).encode())["id"]
    for p in sorted(glob.glob(f"{sim}/*.JPG")):
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", f"Authorization: Bearer {tok}", "-F", f"photo=@{p}", f"{api}/flights/{fl}/photos"], check=True)
    t0 = time.time(); call("POST", f"/flights/{fl}/process")
    while True:
        st = call("GET", f"/flights/{fl}")["state"]
        if st in ("done", "failed"): break
        time.sleep(2)
    print("processed", st, f"{time.time()-t0:.0f} s")
    feats = call("GET", f"/flights/{fl}/findings.geojson")["features"]
    truth = json.load(open(f"{sim}/truth.geojson"))["features"]
    def centre(g):
        pts = g["coordinates"][0] if g["type"] == "Polygon" else g["coordinates"]
        return [sum(p[0] for p in pts)/len(pts), sum(p[1] for p in pts)/len(pts)]
    def dist(a, b):
        return math.hypot((a[0]-b[0])*111320*math.cos(math.radians(a[1])), (a[1]-b[1])*111320)
    fam = {"crack": "crack", "pothole": "pothole", "roof_damage": "roof", "missing_tile": "roof", "moss": "roof", "debris": "roof"}
    tc = [(fam[t["properties"]["class"]], centre(t["geometry"])) for t in truth]
    n = {"confirmed": 0, "rejected": 0}
    for f in feats:
        c = centre(f["geometry"]); cls = fam.get(f["properties"]["class"], "?")
        true = any(k == cls and dist(c, x) < 2.0 for k, x in tc)
        body = {"state": "confirmed"} if true else {"state": "rejected", "reason": "not-a-defect"}
        call("PUT", f"/findings/{f['id']}/review", json.dumps(body).encode())
        n[body["state"]] += 1
    print(len(feats), "findings reviewed by the truth:", n)
finally:
    srv.terminate(); srv.wait()
out = f"{root}/export"
if os.path.exists(out):
    sys.exit(f"{out} exists; give a new OUT_DIR")
sh(B, "export-training", "--data", data, "--org", "city", "--flight", str(fl), "--models", os.path.join(repo, "models"), "-o", out)
print("flight", fl)
