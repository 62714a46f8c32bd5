// The managers' map: the organisation's registers, flight footprints and findings styled
// by severity, with filters; clicking a finding shows its photo crop, quantities and asset.
// Works offline: without a configured tile URL the background is plain.
'use strict';
(async () => {
  const { json, api, el } = Besikta;
  const $ = id => document.getElementById(id);
  const me = await Besikta.header('/map');
  if (!me) return;
  const params = new URLSearchParams(location.search);
  const style = { version: 8, sources: {}, layers: [{ id: 'bg', type: 'background', paint: { 'background-color': '#f2efe9' } }] };
  if (me.tile_url) {
    style.sources.tiles = { type: 'raster', tiles: [me.tile_url], tileSize: 256 };
    style.layers.push({ id: 'tiles', type: 'raster', source: 'tiles' });
  }
  // Our own tiles (the flights' mosaics) need the bearer token; background tiles do not.
  const transformRequest = url => (url.startsWith(location.origin + '/api/v1/')
    ? { url, headers: { Authorization: 'Bearer ' + Besikta.token() } } : { url });
  const map = new maplibregl.Map({ container: 'map', style, center: [0, 0], zoom: 1, attributionControl: false, transformRequest });
  window.besiktaMap = map;
  map.addControl(new maplibregl.NavigationControl());
  await new Promise(r => map.on('load', r));
  const empty = { type: 'FeatureCollection', features: [] };
  const bounds = new maplibregl.LngLatBounds();
  const extend = fc => {
    const walk = c => (typeof c[0] === 'number' ? bounds.extend(c) : c.forEach(walk));
    fc.features.forEach(f => f.geometry && walk(f.geometry.coordinates));
  };

  // Registers, whatever format was uploaded: the assets in view, asked for by bounding box
  // once zoomed in far enough to tell them apart; hovering one names it.
  const { registers } = await json('/api/v1/registers');
  map.addSource('registers', { type: 'geojson', data: empty });
  map.addLayer({ id: 'reg-fill', type: 'fill', source: 'registers', filter: ['==', ['get', 'asset_kind'], 'roof'],
    paint: { 'fill-color': '#8d6e63', 'fill-opacity': 0.15 } });
  map.addLayer({ id: 'reg-line', type: 'line', source: 'registers',
    paint: { 'line-color': ['match', ['get', 'asset_kind'], 'road', '#457b9d', '#8d6e63'], 'line-width': ['match', ['get', 'asset_kind'], 'road', 3, 1.5] } });
  const REGISTER_ZOOM = 14;
  let registerCall = 0;
  async function loadRegisters() {
    const call = ++registerCall;
    const status = $('registers');
    if (!registers.length) return;
    if (map.getZoom() < REGISTER_ZOOM) {
      map.getSource('registers').setData(empty);
      status.textContent = 'Registers: zoom in to see the assets.';
      document.body.dataset.registers = 'zoom';
      return;
    }
    const b = map.getBounds();
    const clamp = (v, m) => Math.max(-m, Math.min(m, v)).toFixed(6);
    const bbox = [clamp(b.getWest(), 180), clamp(b.getSouth(), 90), clamp(b.getEast(), 180), clamp(b.getNorth(), 90)].join(',');
    const features = [];
    let capped = false;
    try {
      for (const r of registers) {
        const fc = await json(r.features_url + '?bbox=' + bbox);
        features.push(...fc.features);
        capped = capped || fc.capped;
      }
    } catch (e) { status.textContent = 'Registers: ' + e.message; return; }
    if (call !== registerCall) return; // the view moved on meanwhile
    map.getSource('registers').setData({ type: 'FeatureCollection', features });
    status.textContent = 'Registers: ' + features.length + ' assets in view' + (capped ? ' (not all: zoom in to see every one)' : '') + '.';
    document.body.dataset.registers = String(features.length);
  }
  let registerTimer = null;
  map.on('moveend', () => { clearTimeout(registerTimer); registerTimer = setTimeout(loadRegisters, 200); });
  const hover = new maplibregl.Popup({ closeButton: false, closeOnClick: false, className: 'asset-hover' });
  map.on('mousemove', e => {
    const f = map.getLayer('reg-line') && map.queryRenderedFeatures(e.point, { layers: ['reg-line', 'reg-fill'] })[0];
    if (!f) { hover.remove(); return; }
    const p = f.properties;
    hover.setLngLat(e.lngLat).setDOMContent(el('div', { id: 'asset-hover' },
      el('strong', {}, p.asset_name || 'unnamed ' + p.asset_kind), el('br'),
      p.asset_id + (p.class ? ' · ' + p.class : ''))).addTo(map);
  });
  map.on('mouseout', () => hover.remove());

  // Footprints of processed flights.
  const { flights } = await json('/api/v1/flights');
  const footprints = { type: 'FeatureCollection', features: [] };
  const flightBounds = {};
  for (const f of flights.filter(f => f.state === 'done')) {
    try {
      const fc = await json('/api/v1/flights/' + f.id + '/footprints.geojson');
      footprints.features.push(...fc.features);
      const b = new maplibregl.LngLatBounds();
      const walk = c => (typeof c[0] === 'number' ? b.extend(c) : c.forEach(walk));
      fc.features.forEach(x => x.geometry && walk(x.geometry.coordinates));
      if (!b.isEmpty()) flightBounds[f.id] = b.toArray().flat();
    } catch (_) { /* none */ }
  }
  // Each processed flight's orthomosaic (when the server makes them) under everything else:
  // tiles read from its COG; 404 where a flight has no mosaic or no ground.
  for (const f of flights.filter(f => f.state === 'done')) {
    let m = null;
    try { m = await json('/api/v1/flights/' + f.id + '/mosaic'); } catch (_) { /* none */ }
    if (!m || !m.available) continue;
    map.addSource('mosaic-' + f.id, { type: 'raster', tileSize: 256, minzoom: 14, maxzoom: 24,
      tiles: [location.origin + m.tiles], ...(flightBounds[f.id] ? { bounds: flightBounds[f.id] } : {}) });
    map.addLayer({ id: 'mosaic-' + f.id, type: 'raster', source: 'mosaic-' + f.id }, 'reg-fill');
  }
  map.addSource('footprints', { type: 'geojson', data: footprints });
  map.addLayer({ id: 'footprints', type: 'line', source: 'footprints', paint: { 'line-color': '#888', 'line-dasharray': [2, 2] } });
  extend(footprints);

  // A reviewer's corrected severity wins over the model's.
  const color = ['match', ['coalesce', ['get', 'corrected_severity'], ['get', 'severity']], 'high', '#d7191c', 'medium', '#fdae61', '#ffe34d'];
  map.addSource('findings', { type: 'geojson', data: empty });
  map.addLayer({ id: 'findings-fill', type: 'fill', source: 'findings', paint: { 'fill-color': color, 'fill-opacity': 0.6 } });
  map.addLayer({ id: 'findings-line', type: 'line', source: 'findings', paint: { 'line-color': color, 'line-width': 3 } });
  // Small defects vanish at city zoom; a circle at each finding keeps them visible.
  map.addSource('finding-points', { type: 'geojson', data: empty });
  map.addLayer({ id: 'findings-point', type: 'circle', source: 'finding-points', paint: { 'circle-color': color, 'circle-radius': 6,
    // The ring says the review: green confirmed, blue corrected, grey rejected, thin dark unreviewed.
    'circle-stroke-color': ['match', ['get', 'review'], 'confirmed', '#1a9641', 'corrected', '#2b83ba', 'rejected', '#777', '#333'],
    'circle-stroke-width': ['match', ['get', 'review'], 'unreviewed', 1, 3] } });

  let loaded = null;
  async function refresh(first) {
    const q = new URLSearchParams();
    const sev = [...document.querySelectorAll('input[name=severity]:checked')].map(i => i.value);
    q.set('severity', sev.join(',') || 'none');
    const classes = [...document.querySelectorAll('input[name=class]')];
    if (classes.length && classes.some(c => !c.checked)) q.set('class', classes.filter(c => c.checked).map(c => c.value).join(',') || 'none');
    if ($('since').value) q.set('since', $('since').value);
    const review = [...document.querySelectorAll('input[name=review]:checked')].map(i => i.value);
    q.set('review', review.join(','));
    if (params.get('flight')) q.set('flight', params.get('flight'));
    if (!sev.length || !review.length) { loaded = empty; } else {
      try { loaded = await json('/api/v1/findings.geojson?' + q); } catch (e) { $('count').textContent = e.message; return; }
    }
    map.getSource('findings').setData(loaded);
    map.getSource('finding-points').setData({ type: 'FeatureCollection', features: loaded.features.map(f => {
      const b = new maplibregl.LngLatBounds(); const walk = c => (typeof c[0] === 'number' ? b.extend(c) : c.forEach(walk));
      walk(f.geometry.coordinates);
      return { type: 'Feature', id: f.id, properties: f.properties, geometry: { type: 'Point', coordinates: b.getCenter().toArray() } };
    }) });
    $('count').textContent = loaded.features.length + ' findings';
    $('count').dataset.count = loaded.features.length;
    if (first) {
      extend(loaded);
      const classSet = [...new Set(loaded.features.map(f => f.properties.class))].sort();
      $('classes').replaceChildren('Class: ', ...classSet.map(c => el('label', {}, el('input', { type: 'checkbox', name: 'class', value: c, checked: '' }), ' ' + c + ' ')));
      document.querySelectorAll('input[name=class]').forEach(i => (i.onchange = () => refresh(false)));
      if (!bounds.isEmpty()) map.fitBounds(bounds, { padding: 40, maxZoom: 20, duration: 0 });
    }
    document.body.dataset.findingsLoaded = 'yes';
  }
  document.querySelectorAll('input[name=severity], input[name=review]').forEach(i => (i.onchange = () => refresh(false)));
  if (params.get('flight')) $('to-review').href = '/review?flight=' + encodeURIComponent(params.get('flight'));
  $('since').onchange = () => refresh(false);
  await refresh(true);
  await loadRegisters();

  function fmt(v, unit) { return v === null || v === undefined ? '–' : Number(v).toFixed(2) + ' ' + unit; }
  async function show(id) {
    const f = loaded.features.find(x => x.id === id);
    if (!f) return;
    const p = f.properties;
    const img = el('img', { id: 'finding-photo', alt: 'photo of the finding' });
    $('finding').replaceChildren(
      el('h3', { class: 'sev-' + p.severity }, p.class + ' · ' + p.severity),
      img,
      el('table', {},
        el('tr', {}, el('th', {}, 'finding'), el('td', {}, '#' + f.id + ' (flight ' + p.flight_id + ')')),
        el('tr', {}, el('th', {}, 'length'), el('td', {}, fmt(p.length_m, 'm'))),
        el('tr', {}, el('th', {}, 'area'), el('td', {}, fmt(p.area_m2, 'm²'))),
        el('tr', {}, el('th', {}, 'confidence'), el('td', {}, fmt(p.confidence, ''))),
        el('tr', {}, el('th', {}, 'asset'), el('td', {}, (p.asset_name || '–') + (p.asset_id ? ' (' + p.asset_id + ')' : ''))),
        el('tr', {}, el('th', {}, 'chainage'), el('td', {}, fmt(p.chainage_m, 'm'))),
        el('tr', {}, el('th', {}, 'status'), el('td', {}, p.status)),
        el('tr', {}, el('th', {}, 'review'), el('td', { id: 'finding-review' }, p.review + (p.review_reason ? ' (' + p.review_reason + ')' : '')
          + (p.corrected_class ? ', class ' + p.corrected_class : '') + (p.corrected_severity ? ', severity ' + p.corrected_severity : '')
          + (p.reviewed_by ? ' by ' + p.reviewed_by + ' ' + p.reviewed_at : ''))),
        el('tr', {}, el('th', {}, 'best photo'), el('td', {}, p.best_photo || '–'))));
    // <img> cannot send the token, so fetch the crop and show it as a blob.
    const blob = await (await api(p.photo_url)).blob();
    img.onload = () => { img.dataset.loaded = 'yes'; };
    img.src = URL.createObjectURL(blob);
  }
  window.besiktaShowFinding = show;
  for (const layer of ['findings-fill', 'findings-point']) {
    map.on('click', layer, e => show(e.features[0].id));
    map.on('mouseenter', layer, () => (map.getCanvas().style.cursor = 'pointer'));
    map.on('mouseleave', layer, () => (map.getCanvas().style.cursor = ''));
  }
  document.body.dataset.mapReady = 'yes';
})();
