import json,sys,glob
for L in sys.argv[1:]:
    tot={}
    fl=sorted(glob.glob(f'/tmp/trust/NR/{L}/S*/eval.json'))
    for f in fl:
        e=json.load(open(f))
        for c in e['per_class']:
            t=tot.setdefault(c['class'],[0,0,0,0])
            t[0]+=c['matched']; t[1]+=c['truth_count']; t[2]+=c['findings_on_a_defect']; t[3]+=c['finding_count']
        t=tot.setdefault('all',[0,0,0,0]); t[0]+=e['matched']; t[1]+=e['truth_count']; t[3]+=e['finding_count']; t[2]+=round(e['precision']*e['finding_count']) if e['finding_count'] else 0
    print(L,len(fl),{k:f"recall {v[0]}/{v[1]} precision {v[2]}/{v[3]}" for k,v in tot.items()})
