# Analysis helper of the 2026-12-02 class-group / crack-pieces measurement, kept as run (flights under /tmp/trust made by sim.sh).
import json, sys, collections, statistics
exec(open('feat.py').read().split('rows=[]')[0])
out=[]
for run in sys.argv[1:]:
    S,O=run.split(':')
    truth=[t for t in json.load(open(S+'/truth.geojson'))['features'] if t['properties']['class']=='crack']
    for f in json.load(open(O+'/findings.geojson'))['features']:
        p=f['properties']
        if p['class']!='crack': continue
        r=f['geometry']['coordinates'][0]
        c=xy((sum(q[0] for q in r[:-1])/(len(r)-1), sum(q[1] for q in r[:-1])/(len(r)-1)))
        d=min((dring(c,t['geometry']['coordinates'] if t['geometry']['type']=='LineString' else t['geometry']['coordinates'][0]) for t in truth), default=99)
        cnt=collections.Counter(o['photo'] for o in p['observations'])
        best=cnt[p['best_photo']]
        out.append((d<=2, statistics.median(cnt.values()), max(cnt.values()), best, O.split('/')[-1]+' '+p['id']))
for t in (True, False):
    print('TRUE' if t else 'false', sorted((m,mx,b) for tt,m,mx,b,_ in out if tt==t))
