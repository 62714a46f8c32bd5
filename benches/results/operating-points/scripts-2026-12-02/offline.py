# Offline effect of dropping crack findings whose median pieces per supporting photo > K.
import json, sys, collections, statistics, subprocess, os, tempfile
E=os.environ.get('BESIKTA', '/tmp/base-bin/besikta')
K=float(sys.argv[1]); label=sys.argv[2]; runs=sys.argv[3:]
tot=collections.Counter()
for run in runs:
    S,O=run.split(":")
    S=S if S!="bundled" else "/work/main/fixtures/sim"
    g=json.load(open(O+'/findings.geojson'))
    keep=[]
    for f in g['features']:
        p=f['properties']
        if p['class']=='crack':
            cnt=collections.Counter(o['photo'] for o in p['observations'])
            if statistics.median(cnt.values())>K: continue
        keep.append(f)
    g['features']=keep
    tmp=f'/tmp/trust/off_{os.getpid()}.geojson'; json.dump(g,open(tmp,'w'))
    m=json.loads(subprocess.run([E,'simulate','--evaluate',S+'/truth.geojson',tmp],capture_output=True,text=True,check=True).stdout)
    os.remove(tmp)
    m['findings_on_a_defect']=m['finding_count']-len(m['false_positives'])
    for k in ('truth_count','matched','finding_count','findings_on_a_defect','duplicates'): tot[k]+=m[k]
    for c in m['per_class']:
        for k in ('truth_count','matched','finding_count','findings_on_a_defect','duplicates'): tot[c['class']+'.'+k]+=c[k]
def fmt(pre=''):
    t=tot
    return '%.3f (%d/%d) / %.3f (%d/%d) / %d'%(t[pre+'matched']/max(1,t[pre+'truth_count']),t[pre+'matched'],t[pre+'truth_count'],t[pre+'findings_on_a_defect']/max(1,t[pre+'finding_count']),t[pre+'findings_on_a_defect'],t[pre+'finding_count'],t[pre+'duplicates'])
print(label, 'K=%g'%K, 'all', fmt(), '| crack', fmt('crack.'), '| pothole', fmt('pothole.'), '| roof', fmt('roof_damage.'))
