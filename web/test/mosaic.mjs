// Browser test of the flight's orthomosaic on the map in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core): the map adds the mosaic layer of a processed
// flight, asks the server for its tiles with the token, gets PNG tiles back (200) and draws
// them under the footprints and findings; a screenshot is saved.
// Usage: node mosaic.mjs BASE_URL VIEWER_TOKEN FLIGHT_ID --screenshot FILE
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const shotAt = args.indexOf('--screenshot');
const screenshot = args[shotAt + 1];
const [base, token, flight] = args.slice(0, shotAt);
const fail = msg => { console.error('mosaic test: ' + msg); process.exit(1); };
const log = msg => console.log('mosaic test: ' + msg);

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
  await page.route(url => !url.href.startsWith(base), route => { errors.push('external request ' + route.request().url()); route.abort(); });
  // Every mosaic tile the page asks for, with the server's answer.
  const tiles = [];
  page.on('response', r => {
    if (r.url().includes('/flights/' + flight + '/mosaic/')) tiles.push({ status: r.status(), type: r.headers()['content-type'] || '' });
  });

  await page.goto(base + '/map');
  await page.fill('#token', token);
  await page.click('#save-token');
  await page.waitForSelector('body[data-map-ready="yes"]', { timeout: 60000 });
  const layer = 'mosaic-' + flight;
  if (!(await page.evaluate(id => !!window.besiktaMap.getLayer(id), layer))) fail('no layer ' + layer + ' on the map');
  // Under everything the map draws for the flight.
  const order = await page.evaluate(() => window.besiktaMap.getStyle().layers.map(l => l.id));
  if (order.indexOf(layer) > order.indexOf('footprints')) fail('the mosaic is drawn over the footprints: ' + order.join(', '));
  // Close in on the flight (the map fits the footprints) so the mosaic's own levels are asked.
  await page.evaluate(() => window.besiktaMap.setZoom(Math.max(window.besiktaMap.getZoom(), 18)));
  await page.waitForFunction(id => window.besiktaMap.isSourceLoaded(id) && window.besiktaMap.areTilesLoaded(), layer, { timeout: 60000 });
  const ok = tiles.filter(t => t.status === 200);
  log(tiles.length + ' mosaic tiles asked, ' + ok.length + ' PNG tiles served, ' + (tiles.length - ok.length) + ' without ground (404)');
  if (ok.length === 0) fail('no mosaic tile was served: ' + JSON.stringify(tiles));
  if (ok.some(t => t.type !== 'image/png')) fail('a tile that is not a PNG: ' + JSON.stringify(ok));
  if (tiles.some(t => t.status !== 200 && t.status !== 404)) fail('a tile answered neither 200 nor 404: ' + JSON.stringify(tiles));
  // A moment for the last tiles to be painted before the screenshot.
  await page.waitForTimeout(500);
  await page.screenshot({ path: screenshot });
  log('screenshot ' + screenshot);
  if (errors.length) fail('page errors: ' + errors.join('; '));
} finally {
  await browser.close();
}
