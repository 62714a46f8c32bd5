// The review queue: planners go through findings one at a time with the keyboard, the
// best crop large and the other views beside it, and confirm, reject (with a reason) or
// correct the class or severity; work orders follow their word.
'use strict';
(async () => {
  const { json, api, el } = Besikta;
  const $ = id => document.getElementById(id);
  const me = await Besikta.header('/review');
  if (!me) return;
  if (!me.rights.review) { $('empty').hidden = false; $('empty').textContent = 'Your role (' + me.role + ') cannot review findings.'; return; }
  const params = new URLSearchParams(location.search);
  const REASONS = [['not-a-defect', 'not a defect'], ['wrong-class', 'wrong class'], ['duplicate', 'duplicate'], ['out-of-scope', 'out of scope']];
  const SEVERITIES = ['low', 'medium', 'high'];
  const RANK = { high: 0, medium: 1, low: 2 };

  // The classes a correction may give: the models' (with their asset kind).
  const modelClasses = (await json('/api/v1/classes').catch(() => ({ classes: [] }))).classes;
  const { flights } = await json('/api/v1/flights');
  $('flight').append(...flights.filter(f => f.state === 'done').map(f => el('option', { value: f.id }, '#' + f.id + ' ' + f.name)));
  if (params.get('flight')) $('flight').value = params.get('flight');

  let queue = [];   // features, in review order
  let at = 0;       // index into queue
  let mode = null;  // null, 'reject', 'class' or 'severity' while a choice is open
  let classes = [];
  const crops = new Map(); // url -> object URL, so going back is instant

  async function crop(url) {
    if (!crops.has(url)) crops.set(url, api(url).then(r => r.blob()).then(b => URL.createObjectURL(b)));
    return crops.get(url);
  }

  function order(list) {
    const by = $('order').value;
    const conf = f => (typeof f.properties.confidence === 'number' ? f.properties.confidence : 1);
    const sev = f => RANK[f.properties.severity] ?? 3;
    const asset = f => (f.properties.asset_name || f.properties.asset_id || '\uffff');
    return list.slice().sort((a, b) => (by === 'asset' ? asset(a).localeCompare(asset(b)) : 0)
      || sev(a) - sev(b) || conf(a) - conf(b) || a.id - b.id);
  }

  async function load() {
    const flight = $('flight').value;
    const fc = await json('/api/v1/findings.geojson' + (flight ? '?flight=' + flight : ''));
    queue = order(fc.features);
    classes = modelClasses.length ? modelClasses.map(c => c.name)
      : [...new Set(queue.map(f => f.properties.class))].sort();
    at = Math.max(0, queue.findIndex(f => f.properties.review === 'unreviewed'));
    // `?finding=ID` opens that finding (a link from the map or another page).
    const wanted = queue.findIndex(f => String(f.id) === params.get('finding'));
    if (wanted >= 0) at = wanted;
    await show();
  }

  function progress() {
    const done = queue.filter(f => f.properties.review !== 'unreviewed').length;
    $('progress-text').textContent = done + ' of ' + queue.length + ' reviewed';
    $('progress-text').dataset.reviewed = done;
    $('progress').max = Math.max(queue.length, 1);
    $('progress').value = done;
  }

  function fmt(v, unit) { return v === null || v === undefined ? '–' : Number(v).toFixed(2) + (unit ? ' ' + unit : ''); }

  function stateText(p) {
    if (p.review === 'unreviewed') return 'unreviewed';
    let t = p.review;
    if (p.review_reason) t += ' · ' + p.review_reason.replace(/-/g, ' ');
    if (p.corrected_class) t += ' · class ' + p.corrected_class;
    if (p.corrected_severity) t += ' · severity ' + p.corrected_severity;
    t += ' · by ' + p.reviewed_by + ' ' + (p.reviewed_at || '').replace('T', ' ').replace('Z', ' UTC');
    if (p.review_comment) t += ' · “' + p.review_comment + '”';
    return t;
  }

  async function show() {
    progress();
    closeChoice();
    const f = queue[at];
    document.body.dataset.current = f ? f.id : '';
    if (!f) {
      $('crop').hidden = true; $('empty').hidden = false;
      $('empty').textContent = queue.length ? 'Every finding is reviewed.' : 'No findings to review.';
      $('title').textContent = '–'; $('facts').replaceChildren(); $('views').replaceChildren(); $('state').textContent = '';
      return;
    }
    $('crop').hidden = false; $('empty').hidden = true;
    const p = f.properties;
    $('title').className = 'sev-' + (p.corrected_severity || p.severity);
    $('title').textContent = (p.corrected_class || p.class) + ' · ' + (p.corrected_severity || p.severity);
    $('position').textContent = 'Finding ' + (at + 1) + ' of ' + queue.length + ' in this order';
    $('facts').replaceChildren(
      el('tr', {}, el('th', {}, 'finding'), el('td', {}, '#' + f.id + ' (flight ' + p.flight_id + ', ' + (p.flight_finding_id || '') + ')')),
      el('tr', {}, el('th', {}, 'model'), el('td', {}, p.class + ' · ' + p.severity)),
      el('tr', {}, el('th', {}, 'confidence'), el('td', {}, fmt(p.confidence) + ' (' + p.support + ' of ' + p.views + ' views)')),
      el('tr', {}, el('th', {}, 'size'), el('td', {}, p.length_m ? fmt(p.length_m, 'm') : fmt(p.area_m2, 'm²'))),
      el('tr', {}, el('th', {}, 'asset'), el('td', {}, (p.asset_name || '–') + (p.asset_id ? ' (' + p.asset_id + ')' : ''))));
    $('state').textContent = stateText(p);
    $('state').dataset.review = p.review;
    const shownId = f.id;
    $('crop').dataset.loaded = 'no';
    $('crop-caption').textContent = 'best view: ' + (p.best_photo || '–');
    const url = await crop(p.photo_url).catch(e => { $('message').textContent = e.message; return ''; });
    if (queue[at] !== f) return; // moved on meanwhile
    $('crop').onload = () => { if (document.body.dataset.current === String(shownId)) $('crop').dataset.loaded = 'yes'; };
    $('crop').src = url;
    // The other views: every photo that saw the spot (its footprint holds the finding), each
    // cropped around the finding's outline there; photos where the model did not detect it
    // are marked so. Without the views list (older servers), the detecting photos.
    const obs = p.observations || [];
    const listed = await json('/api/v1/findings/' + f.id + '/views').then(r => r.views)
      .catch(() => obs.map((o, i) => ({ photo: o.photo, detected: true, crop_url: p.photo_url + '?view=' + i })));
    if (queue[at] !== f) return;
    const conf = new Map(obs.map(o => [o.photo, o.confidence]));
    $('views').replaceChildren(...listed.map((v, i) => {
      const img = el('img', { alt: 'view ' + (i + 1) + ': ' + v.photo, 'data-view': i, 'data-detected': v.detected ? 'yes' : 'no' });
      img.onload = () => { img.dataset.loaded = 'yes'; };
      crop(v.crop_url).then(u => { img.src = u; }).catch(() => { img.alt = v.photo + ' (no crop)'; img.dataset.loaded = 'failed'; });
      const cls = (v.photo === p.best_photo ? 'best' : '') + (v.detected ? '' : ' undetected');
      return el('figure', { class: cls.trim() }, img,
        el('figcaption', {}, v.photo + ' · ' + (v.detected ? fmt(conf.get(v.photo)) : 'not detected here')));
    }));
    $('views-count').textContent = listed.length ? '(' + listed.length + ' photos, ' + listed.filter(v => v.detected).length + ' detected it)' : '';
    if (!listed.length) $('views').textContent = 'none';
    // Prefetch the next crop so the next key press shows it at once.
    if (queue[at + 1]) crop(queue[at + 1].properties.photo_url).catch(() => {});
  }

  // One step back or forth; after a decision (`next`), to the next unreviewed one when
  // "skip reviewed" is ticked.
  function move(step, next = false) {
    let i = at + step;
    if (next && $('skip-reviewed').checked) {
      // The next unreviewed one, from the start again at the end; past the end when none is left.
      while (i < queue.length && queue[i].properties.review !== 'unreviewed') i += 1;
      if (i >= queue.length) {
        const first = queue.findIndex(f => f.properties.review === 'unreviewed');
        i = first >= 0 ? first : queue.length;
      }
    } else {
      i = Math.min(Math.max(i, 0), Math.max(queue.length - 1, 0));
    }
    at = i;
    return show();
  }

  async function review(body) {
    const f = queue[at];
    if (!f) return;
    const comment = $('comment').value.trim();
    if (comment) body.comment = comment;
    try {
      const r = await json('/api/v1/findings/' + f.id + '/review', {
        method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      for (const k of ['review', 'reviewed_by', 'reviewed_at', 'review_reason', 'review_comment', 'corrected_class', 'corrected_severity']) f.properties[k] = r[k];
      $('comment').value = '';
      $('message').textContent = '';
      if (body.state === 'unreviewed') return show();
      await move(1, true);
    } catch (e) { $('message').textContent = e.message; }
  }

  function openChoice(kind, title, items) {
    mode = kind;
    $('choice-title').textContent = title;
    $('choice-list').replaceChildren(...items.map(([, text]) => el('li', {}, text)));
    $('choice').hidden = false;
    $('choice').dataset.kind = kind;
    $('choice').choices = items;
  }
  function closeChoice() { mode = null; $('choice').hidden = true; $('choice').dataset.kind = ''; }

  function rejectChoice() { openChoice('reject', 'Reject: why?', REASONS); }
  function classChoice() {
    const p = queue[at] && queue[at].properties;
    if (!p) return;
    const current = p.corrected_class || p.class;
    // Classes of the finding's asset kind first (a road defect is rarely a roof one).
    const kind = c => (modelClasses.find(m => m.name === c) || {}).asset_kind;
    const list = classes.filter(c => c !== current)
      .sort((a, b) => (kind(b) === p.asset_kind) - (kind(a) === p.asset_kind) || a.localeCompare(b));
    if (!list.length) { $('message').textContent = 'The models know no other class than ' + current + '.'; return; }
    openChoice('class', 'Class instead of ' + current + ':', list.slice(0, 9).map(c => [c, c.replace(/_/g, ' ')]));
  }
  function severityChoice() {
    const p = queue[at] && queue[at].properties;
    if (!p) return;
    const current = p.corrected_severity || p.severity;
    openChoice('severity', 'Severity instead of ' + current + ':', SEVERITIES.filter(s => s !== current).map(s => [s, s]));
  }

  function choose(n) {
    const items = $('choice').choices || [];
    const item = items[n - 1];
    if (!item) return;
    const kind = mode;
    closeChoice();
    const p = queue[at].properties;
    if (kind === 'reject') return review({ state: 'rejected', reason: item[0] });
    // A correction keeps what an earlier correction changed.
    const body = { state: 'corrected', class: p.corrected_class || undefined, severity: p.corrected_severity || undefined };
    body[kind] = item[0];
    return review(body);
  }

  document.addEventListener('keydown', e => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key;
    if (mode) {
      if (k === 'Escape') closeChoice();
      else if (/^[1-9]$/.test(k)) choose(Number(k));
      e.preventDefault();
      return;
    }
    const actions = {
      c: () => review({ state: 'confirmed' }), r: rejectChoice, x: classChoice, s: severityChoice,
      u: () => review({ state: 'unreviewed' }),
      k: () => move(-1), j: () => move(1), ArrowLeft: () => move(-1), ArrowUp: () => move(-1),
      ArrowRight: () => move(1), ArrowDown: () => move(1),
    };
    const act = actions[k.length === 1 ? k.toLowerCase() : k];
    if (act) { e.preventDefault(); act(); }
  });
  $('confirm').onclick = () => review({ state: 'confirmed' });
  $('reject').onclick = rejectChoice;
  $('change-class').onclick = classChoice;
  $('change-severity').onclick = severityChoice;
  $('prev').onclick = () => move(-1);
  $('next').onclick = () => move(1);
  $('choice-list').onclick = e => {
    const li = e.target.closest('li');
    if (li) choose([...$('choice-list').children].indexOf(li) + 1);
  };
  $('flight').onchange = load;
  $('order').onchange = () => { const id = queue[at] && queue[at].id; queue = order(queue); at = Math.max(0, queue.findIndex(f => f.id === id)); show(); };
  await load();
  document.body.dataset.reviewReady = 'yes';
})();
