// The crew's upload page: resumable tus uploads of a folder of photos, per-file and total
// progress; an upload interrupted by a dropped connection or a closed tab resumes where it
// stopped (tus-js-client remembers upload URLs in localStorage).
'use strict';
(() => {
  const { json, el } = Besikta;
  const $ = id => document.getElementById(id);
  let flightId = null;
  const files = new Map(); // name -> {size, sent, row}
  let active = 0;
  const queue = [];
  const PARALLEL = 2;

  function updateTotal() {
    let size = 0, sent = 0, done = 0;
    for (const f of files.values()) { size += f.size; sent += f.sent; if (f.finished) done++; }
    $('total').max = size || 1; $('total').value = sent;
    $('total-text').textContent = done + ' / ' + files.size + ' files, ' + (sent / 1e6).toFixed(1) + ' of ' + (size / 1e6).toFixed(1) + ' MB';
    $('process').disabled = !(flightId && files.size && done === files.size && active === 0);
  }

  async function loadFlights(select) {
    const { flights } = await json('/api/v1/flights');
    const sel = $('flight-select');
    sel.replaceChildren(el('option', { value: '' }, 'choose a flight…'),
      ...flights.map(f => el('option', { value: f.id }, '#' + f.id + ' ' + f.name + ' (' + f.state + ')')));
    if (select) sel.value = String(select);
  }

  function chooseFlight(id) {
    flightId = id ? Number(id) : null;
    $('flight-info').textContent = flightId ? 'Uploading into flight #' + flightId : '';
    if (flightId) poll();
  }

  function startNext() {
    while (active < PARALLEL && queue.length) {
      const file = queue.shift();
      active++;
      upload(file).finally(() => { active--; updateTotal(); startNext(); });
    }
  }

  function upload(file) {
    const entry = files.get(file.name);
    return new Promise(resolve => {
      const up = new tus.Upload(file, {
        endpoint: '/api/v1/flights/' + flightId + '/uploads',
        headers: { Authorization: 'Bearer ' + Besikta.token() },
        metadata: { filename: file.name, filetype: file.type || 'image/jpeg' },
        chunkSize: 2 * 1024 * 1024,
        retryDelays: [0, 1000, 2000, 5000, 10000, 20000, 30000],
        removeFingerprintOnSuccess: true,
        onProgress(sent) { entry.sent = sent; entry.bar.value = sent; updateTotal(); },
        onSuccess(payload) {
          const what = payload && payload.lastResponse && payload.lastResponse.getHeader('Besikta-Photo');
          entry.finished = true; entry.sent = entry.size;
          entry.status.textContent = what || 'stored'; entry.status.className = 'ok';
          resolve();
        },
        onError(err) {
          let reason = err.message;
          const res = err.originalResponse;
          if (res) { try { reason = JSON.parse(res.getBody()).error || reason; } catch (_) { /* keep */ } }
          entry.finished = true; entry.sent = entry.size;
          entry.status.textContent = 'rejected: ' + reason; entry.status.className = 'error';
          resolve();
        },
      });
      up.findPreviousUploads().then(previous => {
        if (previous.length) up.resumeFromPreviousUpload(previous[0]);
        up.start();
      });
    });
  }

  function addFiles(list) {
    if (!flightId) { alert('Create or choose a flight first.'); return; }
    for (const file of list) {
      if (!/\.jpe?g$/i.test(file.name) || files.has(file.name)) continue;
      const bar = el('progress', { value: 0, max: file.size });
      const status = el('span', {}, 'waiting');
      const row = el('tr', { 'data-file': file.name }, el('td', {}, file.name), el('td', {}, bar), el('td', {}, status));
      $('rows').append(row);
      files.set(file.name, { size: file.size, sent: 0, bar, status, finished: false });
      queue.push(file);
    }
    updateTotal();
    startNext();
  }

  async function walk(entry, out) {
    if (entry.isFile) {
      out.push(await new Promise((res, rej) => entry.file(res, rej)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e, out);
      }
    }
  }

  let polling = null;
  async function poll() {
    clearTimeout(polling);
    if (!flightId) return;
    try {
      const f = await json('/api/v1/flights/' + flightId);
      const p = f.progress;
      $('state').textContent = f.state + (p && f.state === 'running' ? ' · ' + p.stage + ' ' + p.done + '/' + p.total : '') +
        (f.error ? ' · ' + f.error : '') + ' · ' + f.photos + ' photos';
      $('state').dataset.state = f.state;
      $('rejected').replaceChildren(...f.rejected.map(r => el('li', {}, r.file + ': ' + r.reason)));
      $('warnings').replaceChildren(...(f.warnings || []).map(w => el('li', {}, 'warning: ' + w)));
      if (f.state === 'done') $('state').append(' · ', el('a', { href: '/map?flight=' + f.id, id: 'to-map' }, 'see the map'));
      if (f.state === 'queued' || f.state === 'running') polling = setTimeout(poll, 1000);
    } catch (e) { $('state').textContent = e.message; }
  }

  Besikta.header('/upload').then(me => { if (me) loadFlights(); });
  $('create-flight').onclick = async () => {
    const name = $('flight-name').value.trim();
    if (!name) return;
    const { id } = await json('/api/v1/flights', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
    await loadFlights(id);
    chooseFlight(id);
  };
  $('flight-select').onchange = e => chooseFlight(e.target.value);
  $('files').onchange = e => addFiles(e.target.files);
  $('folder').onchange = e => addFiles(e.target.files);
  const drop = $('drop');
  drop.ondragover = e => { e.preventDefault(); drop.classList.add('over'); };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = async e => {
    e.preventDefault(); drop.classList.remove('over');
    const out = [];
    for (const item of e.dataTransfer.items) {
      const entry = item.webkitGetAsEntry && item.webkitGetAsEntry();
      if (entry) await walk(entry, out); else if (item.getAsFile()) out.push(item.getAsFile());
    }
    addFiles(out);
  };
  $('process').onclick = async () => {
    await json('/api/v1/flights/' + flightId + '/process', { method: 'POST' });
    poll();
  };
})();
