// Browser test of the review queue in headless Chromium (Debian's /usr/bin/chromium driven
// by playwright-core): a planner reviews findings of a processed flight with the keyboard
// only (C confirm, R then 1 reject, S then 1 change the severity, K/J back and forth) and
// the work-order CSV changes with each decision; the map hides the rejected finding.
// Usage: node review.mjs BASE_URL PLANNER_TOKEN FLIGHT_ID --screenshot FILE
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const shotAt = args.indexOf('--screenshot');
const screenshot = args[shotAt + 1];
const [base, token, flight] = args.slice(0, shotAt);
const fail = msg => { console.error('review test: ' + msg); process.exit(1); };
const log = msg => console.log('review test: ' + msg);

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

  // The work orders of the flight as the API gives them: finding ids by review column.
  const workOrders = async (query = '') => page.evaluate(async ([f, q]) => {
    const r = await fetch('/api/v1/workorders.csv?flight=' + f + q, { headers: { Authorization: 'Bearer ' + localStorage.getItem('besikta.token') } });
    if (r.status === 404) return { status: 404, ids: {} };
    const text = await r.text();
    // RFC 4180: quoted fields may hold commas, quotes ("") and newlines.
    const records = [];
    let row = [], cell = '', quoted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') { row.push(cell); cell = ''; }
      else if (c === '\n') { row.push(cell); records.push(row); row = []; cell = ''; }
      else if (c !== '\r') cell += c;
    }
    if (cell || row.length) { row.push(cell); records.push(row); }
    const [cols, ...rows] = records;
    const head = cols.join(',');
    const ids = {};
    for (const cells of rows) {
      const review = cells[cols.indexOf('review')] ?? 'no review column';
      for (const id of cells[cols.indexOf('finding_ids')].split(' ').filter(Boolean)) ids[id] = review;
    }
    return { status: r.status, header: head, ids };
  }, [flight, query]);

  await page.goto(base + '/review?flight=' + flight);
  await page.fill('#token', token);
  await page.click('#save-token');
  await page.waitForSelector('body[data-review-ready="yes"]', { timeout: 60000 });
  await page.waitForSelector('#crop[data-loaded="yes"]', { timeout: 60000 });
  const progress = async () => page.textContent('#progress-text');
  const start = await progress();
  log('queue: ' + start);
  const total = Number(start.split(' of ')[1].split(' ')[0]);
  if (total < 3) fail('need at least 3 findings to review, the flight has ' + total);
  if (!start.startsWith('0 of ')) fail('a fresh flight starts at 0 reviewed: ' + start);

  const before = await workOrders();
  const withUnreviewed = await workOrders('&include=unreviewed');

  // The finding on screen, by its flight's id (as in the CSV's finding_ids).
  const current = () => page.evaluate(async () => {
    const id = document.body.dataset.current;
    const r = await fetch('/api/v1/findings.geojson', { headers: { Authorization: 'Bearer ' + localStorage.getItem('besikta.token') } });
    const f = (await r.json()).features.find(x => String(x.id) === id);
    return { id, fid: f.properties.flight_finding_id, review: f.properties.review, severity: f.properties.severity };
  });
  const waitReviewed = n => page.waitForFunction(n => document.getElementById('progress-text').dataset.reviewed === String(n), n, { timeout: 20000 });

  const first = await current();
  await page.keyboard.press('c');
  await waitReviewed(1);
  const second = await current();
  if (second.id === first.id) fail('C did not move on');
  await page.keyboard.press('r');
  await page.waitForSelector('#choice[data-kind="reject"]');
  await page.keyboard.press('1');
  await waitReviewed(2);
  const third = await current();
  await page.keyboard.press('s');
  await page.waitForSelector('#choice[data-kind="severity"]');
  const newSeverity = await page.textContent('#choice-list li:first-child');
  await page.keyboard.press('1');
  await waitReviewed(3);
  // Back with K to the rejected one, forward with J.
  await page.keyboard.press('k');
  await page.waitForFunction(id => document.body.dataset.current === id, third.id);
  await page.keyboard.press('k');
  await page.waitForFunction(id => document.body.dataset.current === id, second.id);
  const state = await page.textContent('#state');
  if (!state.startsWith('rejected · not a defect')) fail('the rejected finding shows ' + state);
  await page.waitForSelector('#crop[data-loaded="yes"]', { timeout: 30000 });
  await page.waitForFunction(() => [...document.querySelectorAll('#views img')].every(i => i.dataset.loaded), null, { timeout: 60000 });
  const views = await page.$$eval('#views img', list => list.map(i => i.dataset.loaded));
  if (!views.length || views.some(v => v !== 'yes')) fail('the other views did not all load: ' + views.join(', '));
  log('other views of the rejected finding: ' + views.length);
  // The views are every photo the API says saw the spot, detecting or not.
  const apiViews = await page.evaluate(async id => {
    const r = await fetch('/api/v1/findings/' + id + '/views', { headers: { Authorization: 'Bearer ' + localStorage.getItem('besikta.token') } });
    return (await r.json()).views;
  }, second.id);
  const shownViews = await page.$$eval('#views img', list => list.map(i => i.alt.replace(/^view \d+: /, '') + '|' + i.dataset.detected));
  const wanted = apiViews.map(v => v.photo + '|' + (v.detected ? 'yes' : 'no'));
  if (shownViews.join(',') !== wanted.join(',')) fail('the page shows views ' + shownViews.join(', ') + ', the API ' + wanted.join(', '));
  log('views of the rejected finding: ' + shownViews.join(', '));
  await page.screenshot({ path: screenshot });
  log('screenshot ' + screenshot);
  await page.keyboard.press('j');
  await page.waitForFunction(id => document.body.dataset.current === id, third.id);
  // X offers the models' other classes; the test flight's model knows only cracks.
  await page.keyboard.press('x');
  await page.waitForFunction(() => document.getElementById('message').textContent.includes('no other class than crack'), null, { timeout: 10000 });
  const progressText = await progress();
  log('after C, R 1, S 1: ' + progressText + '; confirmed ' + first.fid + ', rejected ' + second.fid + ', corrected ' + third.fid + ' to ' + newSeverity);

  // A finding that photos saw without detecting it: opened directly (?finding=), its
  // views show those photos too, each with a crop of the projected outline.
  const withUndetected = await page.evaluate(async f => {
    const h = { headers: { Authorization: 'Bearer ' + localStorage.getItem('besikta.token') } };
    const fc = await (await fetch('/api/v1/flights/' + f + '/findings.geojson', h)).json();
    for (const feature of fc.features) {
      const v = (await (await fetch('/api/v1/findings/' + feature.id + '/views', h)).json()).views;
      if (v.some(x => !x.detected)) return { id: String(feature.id), views: v.length, undetected: v.filter(x => !x.detected).length };
    }
    return null;
  }, flight);
  if (!withUndetected) fail('no finding of the flight was seen by a photo that did not detect it');
  await page.goto(base + '/review?flight=' + flight + '&finding=' + withUndetected.id);
  await page.waitForSelector('body[data-review-ready="yes"]', { timeout: 60000 });
  await page.waitForFunction(id => document.body.dataset.current === id, withUndetected.id, { timeout: 20000 });
  await page.waitForFunction(n => document.querySelectorAll('#views img').length === n
    && [...document.querySelectorAll('#views img')].every(i => i.dataset.loaded), withUndetected.views, { timeout: 60000 });
  const undetectedShown = await page.$$eval('#views img[data-detected="no"]', list => list.map(i => i.dataset.loaded));
  if (undetectedShown.length !== withUndetected.undetected || undetectedShown.some(v => v !== 'yes')) {
    fail('finding ' + withUndetected.id + ': undetected views shown ' + undetectedShown.join(', ') + ', the API lists ' + withUndetected.undetected);
  }
  log('finding ' + withUndetected.id + ': ' + withUndetected.views + ' views, ' + withUndetected.undetected + ' without a detection, all cropped');
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-views.png') });

  // The work orders before the review (checked here, after the screenshot, so a failure
  // still leaves a picture of the page).
  log('work orders before: ' + Object.keys(before.ids).length + ' findings; with include=unreviewed ' + Object.keys(withUnreviewed.ids).length);
  if (Object.keys(before.ids).length) fail('unreviewed findings are not work yet: ' + JSON.stringify(before));
  if (Object.keys(withUnreviewed.ids).length !== total) fail('include=unreviewed has ' + Object.keys(withUnreviewed.ids).length + ' findings, the flight ' + total);
  if (!(withUnreviewed.header || '').includes('review,reviewed_by,reviewed_at')) fail('CSV header ' + withUnreviewed.header);
  const after = await workOrders();
  log('work orders after: ' + JSON.stringify(after.ids));
  if (after.ids[first.fid] !== 'confirmed') fail('the confirmed finding is not a confirmed work order');
  if (after.ids[third.fid] !== 'corrected') fail('the corrected finding is not a corrected work order');
  if (second.fid in after.ids) fail('the rejected finding is still a work order');
  if (Object.keys(after.ids).length !== 2) fail('only the two reviewed findings are work: ' + JSON.stringify(after.ids));
  const all = await workOrders('&include=unreviewed');
  if (second.fid in all.ids) fail('a rejected finding never becomes work, even with include=unreviewed');
  if (Object.keys(all.ids).length !== total - 1) fail('include=unreviewed: ' + Object.keys(all.ids).length + ' of ' + (total - 1));

  // The map hides rejected findings by default.
  await page.goto(base + '/map?flight=' + flight);
  await page.waitForSelector('body[data-map-ready="yes"]', { timeout: 60000 });
  const shown = Number(await page.getAttribute('#count', 'data-count'));
  log('map: ' + shown + ' of ' + total + ' findings shown');
  if (shown !== total - 1) fail('the map shows ' + shown + ' findings, expected all but the rejected one');
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-map.png') });
  await page.check('input[name=review][value=rejected]');
  await page.waitForFunction(n => document.getElementById('count').dataset.count === String(n), total, { timeout: 20000 });
  if (errors.length) fail('page errors: ' + errors.join('; '));
} finally {
  await browser.close();
}
