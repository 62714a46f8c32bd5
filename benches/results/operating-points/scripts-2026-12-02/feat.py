# Analysis helper of the 2026-12-02 class-group / crack-pieces measurement, kept as run (flights under /tmp/trust made by sim.sh).
import json, math, sys
sys.path.insert(0,'/tmp/trust')
lat0=60.17; kx=111320*math.cos(math.radians(lat0)); ky=110540
def xy(p): return (p[0]*kx, p[1]*ky)
def dseg(p,a,b):
    ax,ay=a;bx,by=b;px,py=p; dx,dy=bx-ax,by-ay
    t=0 if dx==dy==0 else max(0,min(1,((px-ax)*dx+(py-ay)*dy)/(dx*dx+dy*dy)))
    return math.hypot(px-ax-t*dx,py-ay-t*dy)
def dring(p,r):
    r=[xy(q) for q in r]; return min(dseg(p,r[i],r[i+1]) for i in range(len(r)-1))
def shape(pts):
    n=len(pts); mx=sum(p[0] for p in pts)/n; my=sum(p[1] for p in pts)/n
    sxx=sum((p[0]-mx)**2 for p in pts); syy=sum((p[1]-my)**2 for p in pts); sxy=sum((p[0]-mx)*(p[1]-my) for p in pts)
    th=0.5*math.atan2(2*sxy,sxx-syy); c,s=math.cos(th),math.sin(th)
    u=[(p[0]-mx)*c+(p[1]-my)*s for p in pts]; v=[-(p[0]-mx)*s+(p[1]-my)*c for p in pts]
    return max(u)-min(u), max(v)-min(v)
rows=[]
for run in sys.argv[1:]:
    S,O=run.split(':')
    truth=[t for t in json.load(open(S+'/truth.geojson'))['features'] if t['properties']['class']=='crack']
    for f in json.load(open(O+'/findings.geojson'))['features']:
        p=f['properties']
        if p['class']!='crack': continue
        r=f['geometry']['coordinates'][0]
        c=xy((sum(q[0] for q in r[:-1])/(len(r)-1), sum(q[1] for q in r[:-1])/(len(r)-1)))
        d=min((dring(c,t['geometry']['coordinates'] if t['geometry']['type']=='LineString' else t['geometry']['coordinates'][0]) for t in truth), default=99)
        obs=[]
        for o in p['observations']:
            E,W=shape(o['polygon_px']); obs.append((E,W,o['confidence']))
        rows.append(dict(run=O.split('/')[-1], id=p['id'], true=d<=2, n=len(obs), len=p['length_m'] or 0, area=p['area_m2'], views=p['views'], support=p['support'], conf=p['confidence'], obs=obs))
json.dump(rows, open('feat.json','w'))
for r in rows:
    straight=sum(1 for E,W,c in r['obs'] if W<=2.5)/r['n']
    medW=sorted(W for E,W,c in r['obs'])[r['n']//2]; medE=sorted(E for E,W,c in r['obs'])[r['n']//2]
    print(r['run'], r['id'], 'TRUE ' if r['true'] else 'false', 'n=%3d len=%7.1f area=%6.2f v/s=%d/%d straight=%.2f medE=%.0f medW=%.1f'%(r['n'],r['len'],r['area'],r['views'],r['support'],straight,medE,medW))
