// Shared by every page: the API token (entered once, kept in localStorage), fetch with
// the token, and the navigation bar.
'use strict';

const Besikta = (() => {
  const KEY = 'besikta.token';
  const token = () => localStorage.getItem(KEY) || '';

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {}, { Authorization: 'Bearer ' + token() });
    const res = await fetch(path, Object.assign({}, options, { headers }));
    if (!res.ok) {
      let message = res.status + ' ' + res.statusText;
      try { message = (await res.json()).error || message; } catch (_) { /* not JSON */ }
      const err = new Error(message);
      err.status = res.status;
      throw err;
    }
    return res;
  }
  const json = async (path, options) => (await api(path, options)).json();

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined) e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  // The header: page links and the token box. Resolves with /api/v1/me once a token works.
  function header(active) {
    const bar = document.getElementById('bar');
    const who = el('span', { id: 'who' });
    const input = el('input', { id: 'token', type: 'password', placeholder: 'API token', value: token(), size: 24 });
    const save = el('button', { id: 'save-token', onclick: () => { localStorage.setItem(KEY, input.value.trim()); location.reload(); } }, 'Use token');
    const links = [['/upload', 'Upload'], ['/map', 'Map'], ['/review', 'Review'], ['/exports', 'Exports']].map(([href, text]) =>
      el('a', { href, class: href === active ? 'active' : '' }, text));
    bar.append(el('strong', {}, 'Besikta'), ...links, el('span', { class: 'grow' }), who, input, save);
    if (!token()) { who.textContent = 'enter your API token'; return Promise.resolve(null); }
    return json('/api/v1/me').then(me => {
      who.textContent = me.organisation + ' · ' + me.role;
      return me;
    }).catch(e => { who.textContent = 'token not accepted: ' + e.message; return null; });
  }

  async function download(path, name) {
    const blob = await (await api(path)).blob();
    const a = el('a', { href: URL.createObjectURL(blob), download: name });
    document.body.append(a); a.click(); a.remove();
  }

  return { api, json, el, header, token, download };
})();
