// Browser test of the register layer in headless Chromium (Debian's /usr/bin/chromium driven
// by playwright-core): the map at city zoom asks for nothing and says to zoom in; zoomed in
// on the box it draws the organisation's register assets (as many as the API serves for
// the map's bounds) and hovering one shows its name and id.
// Usage: node registers.mjs BASE_URL VIEWER_TOKEN LON LAT --screenshot FILE
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const shotAt = args.indexOf('--screenshot');
const screenshot = args[shotAt + 1];
const [base, token, lon, lat] = args.slice(0, shotAt);
const fail = msg => { console.error('registers test: ' + msg); process.exit(1); };
const log = msg => console.log('registers test: ' + msg);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on('pageerror', e => errors.push(e.message));
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  await page.route(url => !url.href.startsWith(base), route => { errors.push('external request ' + route.request().url()); route.abort(); });

  await page.goto(base + '/map');
  await page.fill('#token', token);
  await page.click('#save-token');
  await page.waitForSelector('body[data-map-ready="yes"]', { timeout: 60000 });
  await page.waitForSelector('body[data-registers="zoom"]', { timeout: 20000 });
  log('at zoom ' + (await page.evaluate(() => window.besiktaMap.getZoom())).toFixed(1) + ': ' + await page.textContent('#registers'));

  // Zoom in on the place: the assets in view are drawn.
  await page.evaluate(([x, y]) => window.besiktaMap.jumpTo({ center: [x, y], zoom: 17 }), [Number(lon), Number(lat)]);
  await page.waitForFunction(() => /^[0-9]+$/.test(document.body.dataset.registers || ''), null, { timeout: 30000 });
  const drawn = Number(await page.evaluate(() => document.body.dataset.registers));
  // What the API serves for the map's bounds, asked outside the page's code.
  const served = await page.evaluate(async () => {
    const b = window.besiktaMap.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(v => v.toFixed(6)).join(',');
    const { registers } = await (await fetch('/api/v1/registers', { headers: { Authorization: 'Bearer ' + localStorage.getItem('besikta.token') } })).json();
    let n = 0;
    for (const r of registers) {
      const fc = await (await fetch(r.features_url + '?bbox=' + bbox, { headers: { Authorization: 'Bearer ' + localStorage.getItem('besikta.token') } })).json();
      n += fc.features.length;
    }
    return n;
  });
  log('zoom 17: ' + drawn + ' assets drawn, ' + served + ' served for the view; ' + await page.textContent('#registers'));
  if (drawn < 10) fail('expected the register drawn, got ' + drawn + ' assets');
  if (drawn !== served) fail('drawn ' + drawn + ' but the API serves ' + served + ' for the view');
  // The map draws them: rendered features of both layers.
  await page.waitForFunction(() => window.besiktaMap.queryRenderedFeatures({ layers: ['reg-line'] }).length > 0, null, { timeout: 20000 });
  const rendered = await page.evaluate(() => ({
    roads: window.besiktaMap.queryRenderedFeatures({ layers: ['reg-line'], filter: ['==', ['get', 'asset_kind'], 'road'] }).length,
    roofs: window.besiktaMap.queryRenderedFeatures({ layers: ['reg-fill'] }).length,
  }));
  log('rendered pieces: ' + rendered.roads + ' road, ' + rendered.roofs + ' roof');
  if (!rendered.roads || !rendered.roofs) fail('roads and roofs must both be drawn: ' + JSON.stringify(rendered));

  // A named road near the centre: the pixel of a point on it, and what is on top there.
  const target = await page.evaluate(() => {
    const map = window.besiktaMap;
    const c = map.project(map.getCenter());
    const roads = map.queryRenderedFeatures({ layers: ['reg-line'], filter: ['all', ['==', ['get', 'asset_kind'], 'road'], ['has', 'asset_name']] });
    let best = null;
    for (const f of roads) {
      const lines = f.geometry.type === 'LineString' ? [f.geometry.coordinates] : f.geometry.coordinates;
      for (const line of lines) {
        for (let i = 0; i + 1 < line.length; i++) {
          const p = map.project([(line[i][0] + line[i + 1][0]) / 2, (line[i][1] + line[i + 1][1]) / 2]);
          const d = Math.hypot(p.x - c.x, p.y - c.y);
          const canvas = map.getCanvas();
          if (p.x < 20 || p.y < 20 || p.x > canvas.clientWidth - 20 || p.y > canvas.clientHeight - 20) continue;
          if (!best || d < best.d) best = { d, x: p.x, y: p.y };
        }
      }
    }
    if (!best) return null;
    const top = map.queryRenderedFeatures([best.x, best.y], { layers: ['reg-line', 'reg-fill'] })[0];
    const r = map.getCanvas().getBoundingClientRect();
    return { x: r.left + best.x, y: r.top + best.y, name: top.properties.asset_name, id: top.properties.asset_id };
  });
  if (!target) fail('no named road in view to hover');
  await page.mouse.move(target.x - 30, target.y - 30);
  await page.mouse.move(target.x, target.y, { steps: 5 });
  await page.waitForSelector('#asset-hover', { timeout: 10000 });
  const shown = await page.textContent('#asset-hover');
  log('hover at ' + target.x.toFixed(0) + ',' + target.y.toFixed(0) + ': "' + shown + '"');
  if (!shown.includes(target.name) || !shown.includes(target.id)) fail('hover shows "' + shown + '", expected ' + target.name + ' and ' + target.id);
  await page.screenshot({ path: screenshot });
  if (errors.length) fail('page errors: ' + errors.join('; '));
  log('ok');
} finally {
  await browser.close();
}
