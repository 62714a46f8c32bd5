# Analysis helper of the 2026-12-02 class-group / crack-pieces measurement, kept as run (flights under /tmp/trust made by sim.sh).
import json, math, sys
exec(open('feat.py').read().split('rows=[]')[0])
S,O=sys.argv[1],sys.argv[2]
truth=[t for t in json.load(open(S+'/truth.geojson'))['features'] if t['properties']['class']=='roof_damage']
fs=[f for f in json.load(open(O+'/findings.geojson'))['features'] if f['properties']['class'] in ('missing_tile','moss','debris')]
def cen(r): return xy((sum(q[0] for q in r[:-1])/(len(r)-1), sum(q[1] for q in r[:-1])/(len(r)-1)))
for t in truth:
    near=[]
    for f in fs:
        c=cen(f['geometry']['coordinates'][0]); d=dring(c,t['geometry']['coordinates'][0])
        if d<=2: near.append((f['properties']['id'],f['properties']['class'],f['properties'].get('classes'),round(d,2),f['properties']['asset_id'],f['properties']['support']))
    if len(near)>1:
        print(t['properties'].get('id'), near)
        # distance between the findings' outlines
        ps=[f for f in fs if f['properties']['id'] in [n[0] for n in near]]
        for i in range(len(ps)):
            for j in range(i+1,len(ps)):
                a=[xy(q) for q in ps[i]['geometry']['coordinates'][0]]; b=[xy(q) for q in ps[j]['geometry']['coordinates'][0]]
                dd=min(min(dseg(p,b[k],b[k+1]) for k in range(len(b)-1)) for p in a)
                dd=min(dd,min(min(dseg(p,a[k],a[k+1]) for k in range(len(a)-1)) for p in b))
                print('   outline gap', ps[i]['properties']['id'], ps[j]['properties']['id'], round(dd,2))
