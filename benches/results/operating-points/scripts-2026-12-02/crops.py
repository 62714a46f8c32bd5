# Analysis helper of the 2026-12-02 class-group / crack-pieces measurement, kept as run (flights under /tmp/trust made by sim.sh).
import json, collections, statistics, random, sys
from PIL import Image, ImageDraw
g=json.load(open(sys.argv[1])); K=float(sys.argv[2]); out=sys.argv[3]
cr=[f['properties'] for f in g['features'] if f['properties']['class']=='crack']
random.seed(int(sys.argv[4]) if len(sys.argv)>4 else 1)
def med(p): return statistics.median(collections.Counter(o['photo'] for o in p['observations']).values())
drop=[p for p in cr if med(p)>K]; keep=[p for p in cr if med(p)<=K]
tiles=[]
for lab,sel in (('drop',random.sample(drop,min(16,len(drop)))),('keep',random.sample(keep,min(0,len(keep))))):
    for p in sel:
        b=[o for o in p['observations'] if o['photo']==p['best_photo']]
        xs=[q[0] for o in b for q in o['polygon_px']]; ys=[q[1] for o in b for q in o['polygon_px']]
        cx,cy=(min(xs)+max(xs))/2,(min(ys)+max(ys))/2; half=max(80,(max(xs)-min(xs))/2+20,(max(ys)-min(ys))/2+20)
        im=Image.open(p['best_photo']).convert('RGB')
        box=(int(cx-half),int(cy-half),int(cx+half),int(cy+half))
        c=im.crop(box); d=ImageDraw.Draw(c)
        for o in b: d.polygon([(q[0]-box[0],q[1]-box[1]) for q in o['polygon_px']], outline=(255,0,0) if lab=='drop' else (0,255,0))
        c=c.resize((300,300)); tiles.append(c)
W=Image.new('RGB',(300*8,600),'white')
for i,t in enumerate(tiles): W.paste(t,((i%8)*300,(i//8)*300))
W.save(out)
print(len(drop),len(keep))
