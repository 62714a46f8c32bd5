// The planners' page: download work orders and findings, and set each finding's
// work-order status.
'use strict';
(async () => {
  const { json, el, download } = Besikta;
  const $ = id => document.getElementById(id);
  const me = await Besikta.header('/exports');
  if (!me) return;
  if (!me.rights.plan) { $('message').textContent = 'Your role (' + me.role + ') cannot download exports.'; return; }
  const { flights } = await json('/api/v1/flights');
  $('flight').append(...flights.filter(f => f.state === 'done').map(f => el('option', { value: f.id }, '#' + f.id + ' ' + f.name)));
  document.querySelectorAll('button[data-ext]').forEach(b => (b.onclick = async () => {
    const ext = b.dataset.ext;
    const flight = $('flight').value;
    const q = new URLSearchParams();
    if (flight) q.set('flight', flight);
    if ($('include-unreviewed').checked) q.set('include', 'unreviewed');
    try {
      await download('/api/v1/workorders.' + ext + (q.toString() ? '?' + q : ''), 'workorders' + (flight ? '-' + flight : '') + '.' + ext);
      $('message').textContent = '';
    } catch (e) { $('message').textContent = e.message; }
  }));
  const STATUSES = ['open', 'scheduled', 'in_progress', 'done', 'dismissed'];
  async function load() {
    const flight = $('flight').value;
    const fc = await json('/api/v1/findings.geojson' + (flight ? '?flight=' + flight : ''));
    $('findings').replaceChildren(...fc.features.map(f => {
      const p = f.properties;
      const sel = el('select', {}, ...STATUSES.map(s => el('option', { value: s }, s)));
      sel.value = p.status;
      sel.onchange = () => json('/api/v1/findings/' + f.id + '/status', {
        method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ status: sel.value }) })
        .catch(e => { $('message').textContent = e.message; });
      return el('tr', {}, el('td', {}, '#' + f.id), el('td', {}, p.flight_id), el('td', {}, p.class),
        el('td', { class: 'sev-' + p.severity }, p.severity), el('td', {}, p.asset_name || p.asset_id || '–'),
        el('td', { class: 'review-' + p.review }, p.review + (p.review_reason ? ' (' + p.review_reason + ')' : '')), el('td', {}, sel));
    }));
  }
  $('flight').onchange = load;
  load();
})();
