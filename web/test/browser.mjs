// Browser test of the web pages in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core): a crew uploads a flight through the upload page, starts processing,
// waits for it, and a manager sees the findings on the map, opens one, and a screenshot
// is saved. Usage: node browser.mjs BASE_URL TOKEN PHOTO... --screenshot FILE
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const shotAt = args.indexOf('--screenshot');
const screenshot = args[shotAt + 1];
const [base, token, ...photos] = args.slice(0, shotAt);
const fail = msg => { console.error('browser test: ' + msg); process.exit(1); };
const log = msg => console.log('browser test: ' + msg);

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
  // Offline: the pages must not fetch anything from another host.
  await page.route(url => !url.href.startsWith(base), route => { errors.push('external request ' + route.request().url()); route.abort(); });

  // Drop the connection of the first PATCH of a later chunk (offset > 0): tus-js-client
  // must ask the server for the offset and resume, and the upload still completes.
  let dropped = null;
  await page.route(url => url.href.startsWith(base) && url.pathname.includes('/uploads/'), route => {
    const req = route.request();
    if (req.method() === 'PATCH' && dropped === null && req.headers()['upload-offset'] !== '0') {
      dropped = req.headers()['upload-offset'];
      return route.abort('connectionreset');
    }
    return route.continue();
  });

  await page.goto(base + '/upload');
  await page.fill('#token', token);
  await page.click('#save-token');
  await page.waitForSelector('#who:has-text("·")');
  await page.fill('#flight-name', 'browser test flight');
  await page.click('#create-flight');
  await page.waitForSelector('#flight-info:has-text("flight #")');
  await page.setInputFiles('#files', photos);
  await page.waitForFunction(n => {
    const cells = [...document.querySelectorAll('#rows tr td:last-child span')];
    return cells.length === n && cells.every(c => c.className === 'ok');
  }, photos.length, { timeout: 120000 });
  const total = await page.textContent('#total-text');
  log('uploaded: ' + total + '; dropped a PATCH at offset ' + dropped + ' and resumed');
  if (dropped === null) fail('no PATCH was dropped');
  if (!total.startsWith(photos.length + ' / ' + photos.length)) fail('total progress says ' + total);
  await page.click('#process');
  await page.waitForSelector('#state[data-state="done"], #state[data-state="failed"]', { timeout: 600000 });
  const state = await page.getAttribute('#state', 'data-state');
  if (state !== 'done') fail('processing ended ' + (await page.textContent('#state')));

  await page.click('#to-map');
  await page.waitForSelector('body[data-map-ready="yes"]', { timeout: 60000 });
  const shown = Number(await page.getAttribute('#count', 'data-count'));
  const flightId = await page.evaluate(() => new URLSearchParams(location.search).get('flight'));
  const api = await page.evaluate(async f => {
    const r = await fetch('/api/v1/flights/' + f + '/findings.geojson', { headers: { Authorization: 'Bearer ' + localStorage.getItem('besikta.token') } });
    return (await r.json()).features.length;
  }, flightId);
  log('findings: API ' + api + ', map ' + shown);
  if (shown !== api) fail('the map shows ' + shown + ' findings, the API has ' + api);
  const canvas = await page.$('canvas.maplibregl-canvas');
  if (!canvas) fail('no map canvas (WebGL unavailable?)');
  if (api === 0) fail('no findings to open');
  // Click the first finding where the map draws it.
  const point = await page.evaluate(() => {
    const m = window.besiktaMap;
    const f = m.querySourceFeatures('finding-points')[0];
    const p = m.project(f.geometry.coordinates);
    const r = m.getCanvas().getBoundingClientRect();
    return { x: r.left + p.x, y: r.top + p.y };
  });
  await page.mouse.click(point.x, point.y);
  await page.waitForSelector('#finding-photo[data-loaded="yes"]', { timeout: 60000 });
  log('opened: ' + (await page.textContent('#finding h3')));
  await page.screenshot({ path: screenshot });
  log('screenshot ' + screenshot);

  // Planners: the exports page lists the findings and downloads the work orders.
  await page.goto(base + '/exports');
  await page.waitForFunction(n => document.querySelectorAll('#findings tr').length === n, api, { timeout: 30000 });
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('button[data-ext="csv"]')]);
  const text = await (await csv.createReadStream()).toArray().then(chunks => Buffer.concat(chunks).toString());
  if (!text.startsWith('flight_id,')) fail('the CSV download starts with ' + JSON.stringify(text.slice(0, 40)));
  log('exports: ' + api + ' findings listed, ' + csv.suggestedFilename() + ' with ' + (text.trim().split('\n').length - 1) + ' work orders');
  if (errors.length) fail('page errors: ' + errors.join('; '));
} finally {
  await browser.close();
}
